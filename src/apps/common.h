// Pieces shared by the subcommands: engine flags (threads, KV type, ...), error reporting and
// small parsers.
#pragma once

#include <memory>
#include <utility>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/result.h"
#include "base/thread_pool.h"
#include "models/model.h"

namespace hylo::apps {

// Prints "hylo: <message>" to stderr and returns the error exit code.
int fail(const Error& e);

// "1,2,3" → {1, 2, 3}; a clear error naming the flag otherwise.
Result<std::vector<int32_t>> parse_int_list(const std::string& s, const std::string& flag);

// Tokenizes with special tokens parsed, using the model's embedded tokenizer.
Result<std::vector<int32_t>> tokenize_prompt(const models::Model& model, const std::string& text);

// KV cache element types as llama-server spells them: -ctk/--cache-type-k, -ctv/--cache-type-v
// (f32, f16, bf16, q8_0, q4_0), and --kv-type for both at once.
struct KvCacheFlags {
  std::string type_k, type_v, both;  // empty: not given

  void add(CLI::App& app);
  // The K and V types (`fallback` where no flag names one); an error naming the flag if the
  // model's attention layers cannot hold them.
  Result<std::pair<TensorType, TensorType>> resolve(const models::MemoryLayout& layout, TensorType fallback) const;
};

// llama-server's RoPE flags: --rope-scaling, --rope-scale, --yarn-orig-ctx, --yarn-ext-factor,
// --yarn-attn-factor, --yarn-beta-fast, --yarn-beta-slow.
struct RopeFlags {
  std::string scaling;  // empty: the file's, or automatic YaRN beyond the trained context
  double scale = 0, ext_factor = -1, attn_factor = 0, beta_fast = 0, beta_slow = 0;  // 0 (ext: < 0): not given
  int64_t orig_ctx = 0;

  void add(CLI::App& app);
  models::RopeRequest request() const;
};

// Decides the RoPE for a context of n_ctx positions, applies it to the model and logs it.
// Returns the sentence that says what is used.
Result<std::string> apply_rope(models::Model& model, const RopeFlags& flags, int64_t n_ctx);

// Rewrites llama-server's multi-letter short options (-ctk, -ctv) to their long names, which
// the command-line parser understands; every other argument is kept as it is.
std::vector<std::string> normalize_short_options(int argc, char** argv);

struct Engine {
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<models::Memory> memory;
};

struct EngineFlags {
  int threads = 0;  // 0: physical cores
  KvCacheFlags kv;
  RopeFlags rope;
  std::string default_kv;
  std::string delta_mode = "auto";

  void add(CLI::App& app, const std::string& default_kv);
  // Thread pool and memory for n_seq sequences of n_ctx positions; applies forward options.
  Result<Engine> make(models::Model& model, int n_seq, int32_t n_ctx, TensorType fallback_kv) const;
};

}  // namespace hylo::apps
