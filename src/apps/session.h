// A loaded model ready to generate, as the run/chat/serve/bench commands need it: the model
// (or the built-in default), its tokenizer and chat template, sampling defaults, the context
// chosen (and why), a thread pool and the generation engine.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>

#include "apps/common.h"
#include "base/result.h"
#include "base/thread_pool.h"
#include "chat/chat_template.h"
#include "models/model.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

namespace hylo::apps {

struct SessionFlags {
  std::string model;  // empty: the built-in default model
  int threads = 0;
  int64_t ctx = 0;  // 0: the trained context, capped by what fits in memory
  KvCacheFlags kv;  // -ctk / -ctv / --kv-type (default f16)
  RopeFlags rope;   // --rope-scaling, --rope-scale, --yarn-*
  int parallel = 1;
  int32_t batch = 2048;  // MoE weights are read once per batch: large prefill batches amortise them
  int max_queue = 64;    // requests waiting beyond the slots (not a flag of add(); `hylo serve` sets it)
  std::string chat_template_file;
  std::string cache_ram = "auto";      // prefix cache budget: "auto", "0" (off), or a size such as 8G
  int32_t cache_interval = 2048;       // tokens between prefix cache checkpoints
  std::string cache_dir;               // disk tier of the prefix cache (empty: none)
  std::string cache_disk = "32G";      // its budget (at most half the free space of its file system)
  bool warm = true;                    // read the weights in up front (with progress)
  std::string command = "run";         // the command the flags belong to, for suggestions
  bool mmap = false;                   // --mmap: go ahead when the model does not fit (weights streamed from disk)
  bool no_mmap = false;                // --no-mmap: read the weights into memory instead of mapping the file
  bool mlock = false;                  // --mlock: lock the weights (and everything else loaded) in memory
  std::string spec = "none";           // speculative decoding: none | mtp
  int draft = runtime::kDefaultDraft;  // drafts per step with --spec mtp

  void add(CLI::App& app, bool with_parallel);
};

struct Session {
  std::unique_ptr<models::Model> model;
  tokenizer::Tokenizer tokenizer;
  std::optional<chat::ChatTemplate> chat_template;  // the model's, the given file, or ChatML
  bool chatml_fallback = false;
  bool thinking_model = false;  // the generation prompt opens <think>
  bool random_weights = false;
  bool default_model = false;        // no -m: the built-in default model
  runtime::SamplingParams sampling;  // defaults: GGUF general.sampling.*, else the Qwen3 card
  int32_t n_ctx = 0;
  std::string ctx_reason;
  TensorType cache_type_k = TensorType::kF16, cache_type_v = TensorType::kF16;
  uint64_t kv_bytes_per_token = 0;  // per sequence, all attention layers, K and V
  std::string rope_reason;          // what RoPE runs, and why
  std::string memory_summary;       // weights + KV + state + buffers against available memory
  std::string cache_reason;         // the prefix cache budget and where it comes from
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<runtime::Engine> engine;

  // Renders messages with the chat template (adding the generation prompt).
  Result<std::string> render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools = nullptr,
                             std::optional<bool> enable_thinking = std::nullopt,
                             bool add_generation_prompt = true) const;
};

// The largest context whose KV cache and recurrent state fit in available memory beside the
// weights, and the sentence that explains the choice.
struct ContextChoice {
  int32_t n_ctx;
  std::string reason;
};
ContextChoice choose_context(const models::Model& model, int64_t requested, int parallel, TensorType type_k,
                             TensorType type_v, int64_t n_batch, uint64_t available_bytes);

// "0", "512M", "8G", "1.5GiB", "1000000" (bytes) → bytes.
Result<uint64_t> parse_byte_size(const std::string& text);

// The prefix cache budget: the given size, or ("auto") half of what stays free once the weights
// and the slots' KV cache and recurrent state are counted.
struct CacheChoice {
  uint64_t bytes;
  std::string reason;
};
Result<CacheChoice> choose_cache_budget(const models::Model& model, const std::string& requested, int32_t n_ctx,
                                        int parallel, TensorType type_k, TensorType type_v, uint64_t available_bytes);

Result<std::unique_ptr<Session>> open_session(const SessionFlags& flags);

}  // namespace hylo::apps
