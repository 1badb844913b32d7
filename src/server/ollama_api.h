// The Ollama API family: /api/chat and /api/generate requests into GenerationRequest, their
// answers (whole, or streamed as NDJSON lines), and the model endpoints (/api/tags, /api/show,
// /api/ps, /api/version) describing the one loaded model.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/result.h"
#include "server/backend.h"
#include "server/request.h"
#include "server/response_writer.h"

namespace hylo::server {

Result<GenerationRequest> parse_ollama_chat(const nlohmann::ordered_json& body, const ApiContext& ctx);
Result<GenerationRequest> parse_ollama_generate(const nlohmann::ordered_json& body, const ApiContext& ctx);

// A request without messages / prompt only loads the model in Ollama: the answer it gets then.
std::optional<nlohmann::ordered_json> ollama_load_only(const nlohmann::ordered_json& body, bool chat,
                                                       const ApiContext& ctx);

// Ollama's keep_alive: seconds as a number, or a duration ("5m", "1h30m", "0", "-1"); negative
// means forever. nullopt when absent.
Result<std::optional<double>> ollama_keep_alive(const nlohmann::ordered_json& body);

std::shared_ptr<ResponseWriter> ollama_chat_writer(const GenerationRequest& req, const ApiContext& ctx);
std::shared_ptr<ResponseWriter> ollama_generate_writer(const GenerationRequest& req, const ApiContext& ctx);

nlohmann::ordered_json ollama_tags(const ModelDescription& d);
// `loaded` false (after keep_alive 0, until the next request): no model listed.
nlohmann::ordered_json ollama_ps(const ModelDescription& d, int32_t n_ctx, uint64_t cache_bytes, bool loaded = true);
// model_info holds the GGUF metadata (general.architecture, <arch>.context_length, ...);
// token lists and other long arrays are null, as Ollama shows them without "verbose".
// show_path: the modelfile names the file's path (else the model id).
nlohmann::ordered_json ollama_show(const Backend& b, bool verbose, bool show_path);
nlohmann::ordered_json ollama_version();

// "2024-05-01T12:00:00.123456789Z"
std::string rfc3339_now();
std::string rfc3339_time(std::chrono::system_clock::time_point t);

}  // namespace hylo::server
