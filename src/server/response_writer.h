// How one endpoint writes its answer, streamed piece by piece or whole. The API adapters
// implement it once per endpoint (OpenAI chat/completions as SSE, Ollama chat/generate as NDJSON);
// the streaming loop that drives it (stream.cpp) is shared.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "server/api_error.h"
#include "server/generation.h"

namespace hylo::server {

class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;

  virtual const char* stream_content_type() const = 0;
  // Bytes sent right after the headers (OpenAI: the role chunk of every choice).
  virtual std::string stream_begin(const Generation& g) = 0;
  virtual std::string stream_update(const Generation& g, const Update& u) = 0;
  // After every choice finished: usage, the final Ollama line, "data: [DONE]".
  virtual std::string stream_end(const Generation& g) = 0;
  // A failure after the headers went out (the engine failed, the server is stopping).
  virtual std::string stream_error(const ApiError& e) = 0;
  // Sent while nothing else is (queued, long prefill); "" when the format has no such thing.
  virtual std::string keepalive() = 0;

  // The whole answer of a finished generation.
  virtual nlohmann::ordered_json complete(const Generation& g) = 0;
};

}  // namespace hylo::server
