// What went wrong with an API request, and the one place that maps it to an HTTP status and to
// each API family's error body. Handlers never build error JSON themselves. Messages are meant
// for the client: they name the field or the numbers involved, without a component tag.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "runtime/engine.h"

namespace hylo::server {

enum class ApiFamily { kOpenAI, kOllama };

struct ApiError {
  enum class Kind {
    kBadRequest,            // malformed JSON, wrong types, out-of-range values (400)
    kContextExceeded,       // the prompt does not fit the context (400, exceed_context_size_error)
    kUnauthorized,          // missing or wrong API key (401)
    kForbidden,             // a browser request from a foreign Origin (403)
    kNotFound,              // unknown route (404)
    kModelNotFound,         // a model name this server does not have (404, with the names it has)
    kMethodNotAllowed,      // a known route with another method (405, with Allow)
    kTimeout,               // the request head or body did not arrive in time (408)
    kPayloadTooLarge,       // body over --max-body-bytes (413)
    kUriTooLong,            // a request target over 8 KiB (414)
    kUnsupportedMediaType,  // a compressed request body (415)
    kMisdirected,           // a Host this server does not answer to (421)
    kHeadersTooLarge,       // header fields over --max-header-bytes or too many (431)
    kNotImplemented,        // a transfer coding other than chunked (501)
    kQueueFull,             // every slot busy and the queue full (503)
    kLoading,               // the model is still loading (503)
    kNoMemory,              // a model does not fit beside those in use (503, naming them)
    kShuttingDown,          // the server is stopping (503)
    kInternal,              // the engine failed (500)
  };
  Kind kind = Kind::kInternal;
  std::string message;
  int32_t n_prompt = 0, n_ctx = 0;  // kContextExceeded
  std::string param = {};           // the request field at fault ("": read from the message)

  static ApiError bad_request(std::string message) { return {Kind::kBadRequest, std::move(message)}; }
  static ApiError internal(std::string message) { return {Kind::kInternal, std::move(message)}; }
  // "request (N tokens) exceeds the available context size (M tokens)"
  static ApiError context_exceeded(int32_t n_prompt, int32_t n_ctx);
};

int http_status(const ApiError& e);
// OpenAI: {"error":{"message","type","param","code"}}, a context overflow as
// {"error":{"type":"exceed_context_size_error","message","n_prompt_tokens","n_ctx"}} (llama-server's
// shape); Ollama: always {"error":"..."}, the numbers in the message. "param" is the field a 400 is
// about, read from the message when not set.

nlohmann::ordered_json error_body(const ApiError& e, ApiFamily family);
// The request field a message starts with ("messages[1].content must be ..."), or "".
std::string field_of_message(const std::string& message);

// The engine's refusal of a request, as an API error.
ApiError from_submit_error(const runtime::SubmitError& e);

}  // namespace hylo::server
