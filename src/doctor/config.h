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
  std::optional<double> timeout_seconds;  // the client's request timeout
  std::optional<int64_t> prompt_tokens;
  std::optional<double> prefill_tps;   // prompt tokens per second, when the user knows it
  std::optional<int64_t> num_predict;  // answer length, when known (Modelfile num_predict)
  std::vector<std::string> sources;    // one line per value read from a file or endpoint
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
  std::string from;
  int from_line = 0;
  std::vector<ModelfileParameter> parameters;
  const ModelfileParameter* find(std::string_view name) const;  // the last one wins, as in Ollama
};

Result<Modelfile> parse_modelfile(std::string_view text, const std::string& name);
Result<Modelfile> read_modelfile(const std::string& path);
// Applies num_ctx, num_batch and num_predict (validated) to `config`.
Status apply_modelfile(const Modelfile& modelfile, Config* config);

}  // namespace hylo::doctor
