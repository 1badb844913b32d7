// The loaded model as the server sees it: engine, tokenizer, chat template, sampling defaults and
// a description for the model-listing endpoints. `hylo serve` fills it once the model is loaded;
// the server only borrows the objects (the session owns them).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"
#include "chat/chat_template.h"
#include "models/model.h"
#include "runtime/engine.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

namespace hylo::runtime {
class TokenTrie;
}

namespace hylo::server {

using TokenTrie = runtime::TokenTrie;

// What the listing endpoints say about the model (/v1/models, /api/tags, /api/show, /api/ps, /props).
struct ModelDescription {
  std::string id;  // --alias, else the file name
  std::string path;
  std::string arch;          // general.architecture
  std::string quantization;  // "Q8_0", "F32", ... (most of the weight bytes)
  uint64_t size_bytes = 0;   // file size
  uint64_t n_params = 0;
  int64_t n_ctx_train = 0, n_embd = 0, n_layer = 0, n_vocab = 0;
  int64_t modified_unix = 0;  // file modification time
  std::string digest;         // stable short identifier of the file (not a content hash)
};

struct Backend {
  runtime::Engine* engine = nullptr;
  const tokenizer::Tokenizer* tokenizer = nullptr;
  const chat::ChatTemplate* chat_template = nullptr;
  const models::Model* model = nullptr;
  chat::SpecialTokens special;
  runtime::SamplingParams sampling;  // the model's defaults
  bool thinking_model = false;       // its generation prompt opens <think>
  int32_t n_ctx = 0;                 // per slot
  int n_slots = 1;
  ModelDescription description;
  // GET /doctor: the doctor's report (JSON) on this server's own set-up — model, context, slots,
  // KV type, this machine, the prefill speed measured so far. Set by the app, which links both.
  std::function<Result<nlohmann::json>()> doctor_report;
  // Many models: a request that does not say gets this thinking setting (its definition's).
  std::optional<bool> thinking_default;
  // What the borrowed objects belong to (the app's session), when the Backend owns them.
  std::shared_ptr<void> owner;

  // The vocabulary as byte tries, for JSON mode (built on first use; shared by the filters).
  std::shared_ptr<const TokenTrie> token_trie() const;

 private:
  mutable std::once_flag trie_once_;
  mutable std::shared_ptr<const TokenTrie> trie_;
};

// What the engine runs with beyond the file: KV cache types and the RoPE in use (the file's,
// the flags', or the automatic YaRN), for /props and /api/show.
nlohmann::ordered_json runtime_settings(const Backend& b);

// Fills the description from the loaded model (file size, parameter count, quantisation).
ModelDescription describe_model(const models::Model& model, const std::string& alias);

}  // namespace hylo::server
