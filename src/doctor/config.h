// The serving configuration `hylo doctor` checks (context, parallel sequences, KV-cache type,
// batch sizes, client timeout, prompt size) and where each value came from: flags, an Ollama
// Modelfile, or a running endpoint. Parsing only; the arithmetic lives in analysis.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/tensor_type.h"

namespace hylo::doctor {

// Who set the context; decides how a fix is spelled (a flag, a Modelfile line, ...).
enum class Origin { kDefault, kFlag, kModelfile, kOllama, kLlamaServer };

struct Config {
  int64_t ctx = 0;  // tokens per sequence; 0 = the model's trained context
  Origin ctx_origin = Origin::kDefault;
  std::string ctx_source;  // "--ctx", "Modelfile line 3", "GET /props default_generation_settings.n_ctx"
  int64_t parallel = 1;    // sequences served at once; each has its own KV and recurrent state
  TensorType kv_type = TensorType::kF16;
  int64_t batch = 2048;                   // logical batch (prompt tokens submitted per decode call)
  int64_t ubatch = 512;                   // micro-batch actually computed at once; sizes the compute buffers
  uint64_t cache_bytes = 0;               // hylo's prefix cache budget (--cache-ram); 0: none counted
  int spec_draft = 0;                     // --spec mtp: drafts per verify step (0: no speculative decoding)
  double spec_acceptance = 0.7;           // --acceptance: share of drafts the model accepts
  std::optional<double> timeout_seconds;  // the client's request timeout
  std::optional<int64_t> prompt_tokens;
  std::optional<double> prefill_tps;   // prompt tokens per second, when the user knows it
  std::optional<int64_t> num_predict;  // answer length, when known (Modelfile num_predict)
  std::vector<std::string> sources;    // one line per value read from a file or endpoint

  // What the fixes are written against: the Modelfile as given (patched, never rewritten from
  // scratch), the model as a `hylo serve -m` argument, and the names that label the set-up.
  std::string modelfile_path, modelfile_text, modelfile_from;
  std::string model_ref;  // GGUF path for -m, or "" (the fix then says MODEL.gguf)
  std::string model_id;   // Ollama tag or endpoint model id, "" if none
  struct Name {
    std::string name;   // "v-128k"
    std::string where;  // "Modelfile file name", "--name", "FROM", ...
  };
  std::vector<Name> names;
  std::string ollama_name;  // the name the Modelfile is (or will be) created under
};

// Limits that reject absurd input with a clear message instead of overflowing arithmetic.
inline constexpr int64_t kMaxCtx = int64_t{1} << 32;
inline constexpr int64_t kMaxParallel = 4096;
inline constexpr int64_t kMaxBatch = int64_t{1} << 20;
inline constexpr double kMaxSeconds = 30.0 * 24 * 3600;

// "262144", "262,144", "256k" (×1024), "1M" (×1048576); errors name `what` and [lo, hi].
Result<int64_t> parse_count(std::string_view text, std::string_view what, int64_t lo, int64_t hi);
// A finite decimal number in (lo, hi].
Result<double> parse_positive(std::string_view text, std::string_view what, double hi);
// KV-cache types llama.cpp and hylo accept: f16, bf16, f32, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl.
Result<TensorType> parse_kv_type(std::string_view text);

// An Ollama Modelfile: FROM, PARAMETER lines and the instructions doctor does not need
// (TEMPLATE, SYSTEM, ADAPTER, LICENSE, MESSAGE, REQUIRES; """multi-line""" values allowed).
struct ModelfileParameter {
  std::string name;  // lower case
  std::string value;
  int line = 0;
};
struct Modelfile {
  std::string name;  // path, for messages
  std::string text;  // as given (fixes patch it)
  std::string from;
  int from_line = 0;
  std::vector<ModelfileParameter> parameters;
  const ModelfileParameter* find(std::string_view name) const;  // the last one wins, as in Ollama
};

Result<Modelfile> parse_modelfile(std::string_view text, const std::string& name);
Result<Modelfile> read_modelfile(const std::string& path);
// Applies num_ctx, num_batch and num_predict (validated) to `config`.
Status apply_modelfile(const Modelfile& modelfile, Config* config);

// `text` with PARAMETER `name` set to `value`: the last such line is rewritten in place (comments,
// TEMPLATE and the rest kept), or a line is added after FROM when there is none.
std::string patch_modelfile(std::string_view text, std::string_view name, std::string_view value);

// The context a name promises: "v-128k" → 131072, "qwen3-1m" → 1048576; nullopt when the name
// carries no figure (a digit run ending in k or m, standing alone between separators).
struct NamedContext {
  int64_t tokens = 0;
  std::string figure;  // "128k" as written
};
std::optional<NamedContext> context_in_name(std::string_view name);
// Whether a figure matches a context: "128k" is 128,000 or 131,072; "262k" and "256k" both 262,144.
bool figure_matches(const NamedContext& named, int64_t ctx);
// `name` with its figure replaced by the one for `ctx` (262,144 → "256k"), or "-256k" appended.
std::string rename_for_context(std::string_view name, int64_t ctx);

}  // namespace hylo::doctor
