#include "server/api_error.h"

#include <fmt/format.h>

#include <regex>

namespace hylo::server {

using ojson = nlohmann::ordered_json;

ApiError ApiError::context_exceeded(int32_t n_prompt, int32_t n_ctx) {
  ApiError e{Kind::kContextExceeded,
             fmt::format("request ({} tokens) exceeds the available context size ({} tokens)", n_prompt, n_ctx)};
  e.n_prompt = n_prompt;
  e.n_ctx = n_ctx;
  return e;
}

int http_status(const ApiError& e) {
  switch (e.kind) {
    case ApiError::Kind::kBadRequest:
      return 400;
    case ApiError::Kind::kContextExceeded:
      return 400;
    case ApiError::Kind::kUnauthorized:
      return 401;
    case ApiError::Kind::kForbidden:
      return 403;
    case ApiError::Kind::kNotFound:
    case ApiError::Kind::kModelNotFound:
      return 404;
    case ApiError::Kind::kMethodNotAllowed:
      return 405;
    case ApiError::Kind::kTimeout:
      return 408;
    case ApiError::Kind::kPayloadTooLarge:
      return 413;
    case ApiError::Kind::kUriTooLong:
      return 414;
    case ApiError::Kind::kUnsupportedMediaType:
      return 415;
    case ApiError::Kind::kMisdirected:
      return 421;
    case ApiError::Kind::kHeadersTooLarge:
      return 431;
    case ApiError::Kind::kNotImplemented:
      return 501;
    case ApiError::Kind::kQueueFull:
      return 503;
    case ApiError::Kind::kLoading:
    case ApiError::Kind::kNoMemory:
      return 503;
    case ApiError::Kind::kShuttingDown:
      return 503;
    case ApiError::Kind::kInternal:
      return 500;
  }
  return 500;
}

namespace {

// OpenAI's error "type" and a short machine-readable "code" for each kind.
std::pair<const char*, const char*> openai_type_and_code(ApiError::Kind k) {
  switch (k) {
    case ApiError::Kind::kBadRequest:
      return {"invalid_request_error", "invalid_value"};
    case ApiError::Kind::kContextExceeded:
      return {"exceed_context_size_error", "context_length_exceeded"};
    case ApiError::Kind::kUnauthorized:
      return {"authentication_error", "invalid_api_key"};
    case ApiError::Kind::kForbidden:
      return {"permission_error", "origin_not_allowed"};
    case ApiError::Kind::kNotFound:
      return {"not_found_error", "not_found"};
    case ApiError::Kind::kModelNotFound:
      return {"not_found_error", "model_not_found"};
    case ApiError::Kind::kMethodNotAllowed:
      return {"invalid_request_error", "method_not_allowed"};
    case ApiError::Kind::kTimeout:
      return {"invalid_request_error", "request_timeout"};
    case ApiError::Kind::kPayloadTooLarge:
      return {"invalid_request_error", "payload_too_large"};
    case ApiError::Kind::kUriTooLong:
      return {"invalid_request_error", "uri_too_long"};
    case ApiError::Kind::kUnsupportedMediaType:
      return {"invalid_request_error", "unsupported_content_encoding"};
    case ApiError::Kind::kMisdirected:
      return {"invalid_request_error", "host_not_allowed"};
    case ApiError::Kind::kHeadersTooLarge:
      return {"invalid_request_error", "headers_too_large"};
    case ApiError::Kind::kNotImplemented:
      return {"invalid_request_error", "not_implemented"};
    case ApiError::Kind::kQueueFull:
      return {"unavailable_error", "queue_full"};
    case ApiError::Kind::kLoading:
      return {"unavailable_error", "model_loading"};
    case ApiError::Kind::kNoMemory:
      return {"unavailable_error", "insufficient_memory"};
    case ApiError::Kind::kShuttingDown:
      return {"unavailable_error", "shutting_down"};
    case ApiError::Kind::kInternal:
      return {"server_error", "internal_error"};
  }
  return {"server_error", "internal_error"};
}

}  // namespace

std::string field_of_message(const std::string& message) {
  // Request errors start with the field's path: "temperature must be ...", "messages[1].content
  // must be ...", "options.num_ctx is out of range ...". Anything else names no field.
  static const std::regex kLeadingField(
      R"(^([A-Za-z_][A-Za-z0-9_]*(?:\[[0-9]+\]|\.[A-Za-z_][A-Za-z0-9_]*)*) (must|is|are|may|names|needs|keys|token)\b)");
  std::smatch m;
  if (!std::regex_search(message, m, kLeadingField)) return "";
  const std::string field = m[1].str();
  for (const char* word : {"a", "an", "the", "it", "this", "request", "prompts"})
    if (field == word) return "";
  return field;
}

ojson error_body(const ApiError& e, ApiFamily family) {
  // Ollama's shape is always {"error": "text"} (its clients print the string; an object would
  // show as "[object Object]"); the message itself holds the numbers.
  if (family == ApiFamily::kOllama) return {{"error", e.message}};
  if (e.kind == ApiError::Kind::kContextExceeded)
    return {{"error",
             {{"type", "exceed_context_size_error"},
              {"message", e.message},
              {"n_prompt_tokens", e.n_prompt},
              {"n_ctx", e.n_ctx}}}};
  const auto [type, code] = openai_type_and_code(e.kind);
  std::string param = e.param;
  if (param.empty() && e.kind == ApiError::Kind::kBadRequest) param = field_of_message(e.message);
  return {{"error",
           {{"message", e.message},
            {"type", type},
            {"param", param.empty() ? ojson(nullptr) : ojson(param)},
            {"code", code}}}};
}

ApiError from_submit_error(const runtime::SubmitError& e) {
  switch (e.kind) {
    case runtime::SubmitError::kNone:
      break;
    case runtime::SubmitError::kInvalid:
      return ApiError::bad_request(e.message);
    case runtime::SubmitError::kContextExceeded:
      return ApiError::context_exceeded(e.n_prompt, e.n_ctx);
    case runtime::SubmitError::kQueueFull:
      return {ApiError::Kind::kQueueFull, e.message};
    case runtime::SubmitError::kStopped:
      return {ApiError::Kind::kShuttingDown, e.message};
  }
  return ApiError::internal("unexpected engine answer");
}

}  // namespace hylo::server
