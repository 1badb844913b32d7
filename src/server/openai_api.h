// The OpenAI API family: chat completions and completions requests into GenerationRequest, and
// their answers (whole, or streamed as server-sent events), plus the model list. JSON lives here
// and in ollama_api.*, nowhere else on the generation path.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>

#include "base/result.h"
#include "server/backend.h"
#include "server/request.h"
#include "server/response_writer.h"

namespace hylo::server {

// POST /v1/chat/completions. Errors name the field ("messages[1].content must be ...").
Result<GenerationRequest> parse_openai_chat(const nlohmann::ordered_json& body, const ApiContext& ctx);
// POST /v1/completions.
Result<GenerationRequest> parse_openai_completion(const nlohmann::ordered_json& body, const ApiContext& ctx);

std::shared_ptr<ResponseWriter> openai_chat_writer(const GenerationRequest& req, const ApiContext& ctx);
std::shared_ptr<ResponseWriter> openai_completion_writer(const GenerationRequest& req, const ApiContext& ctx);

// GET /v1/models: the loaded model, with n_ctx (per slot) and n_ctx_train in "meta".
nlohmann::ordered_json openai_models(const ModelDescription& d, int32_t n_ctx, int n_slots);

// Normalises OpenAI chat messages for the chat template: text parts joined, "developer" as
// "system", tool-call arguments as the template family wants them (text for Hermes JSON, an
// object for the XML form), "reasoning" as "reasoning_content". Also used by /apply-template.
Result<nlohmann::ordered_json> normalize_openai_messages(const nlohmann::ordered_json& messages,
                                                         chat::ToolCallFormat format);
// Checks an OpenAI "tools" array (function tools with a name and optional JSON-schema parameters).
Status validate_tools(const nlohmann::ordered_json& tools, const std::string& field);

}  // namespace hylo::server
