// Reads the configuration of a running server: hylo or llama-server (GET /v1/models with
// meta.n_ctx / n_ctx_train, GET /props) or Ollama (GET /api/ps, POST /api/show). Read-only:
// nothing is generated and no model is loaded by these calls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "doctor/model.h"

namespace hylo::doctor {

struct EndpointInfo {
  std::string url;
  std::string server;                     // "hylo", "llama-server" or "ollama"
  std::string model_id;                   // /v1/models data[0].id, or the Ollama model name
  std::optional<std::string> model_path;  // /props model_path (a GGUF on the server's disk)
  std::optional<int64_t> n_ctx;           // per sequence, as the server runs it
  std::string n_ctx_source;               // which field it came from
  std::optional<int64_t> n_ctx_train;
  std::optional<int64_t> parallel;  // /props total_slots
  std::optional<int64_t> n_params;
  std::optional<int64_t> size_bytes;  // weights (/v1/models meta.size, /api/ps size)
  std::string quant;                  // Ollama details.quantization_level ("Q4_K_M")
  Metadata model_info;                // Ollama /api/show model_info: GGUF keys of the model
  std::vector<std::string> read;      // what was read, one line per request
};

// `url` may omit the scheme ("localhost:8080", http assumed) and may end in "/v1" (an OpenAI base
// URL). `model_hint` picks the Ollama model when several are loaded (e.g. a Modelfile's FROM).
// Errors: unreachable server, timeouts, or a server that is neither kind.
Result<EndpointInfo> read_endpoint(const std::string& url, const std::string& model_hint = "",
                                   double timeout_seconds = 5.0);

}  // namespace hylo::doctor
