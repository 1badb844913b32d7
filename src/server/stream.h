// Writing a running generation to its client: the streaming loop shared by SSE (OpenAI) and
// NDJSON (Ollama), which differ only in their ResponseWriter, and the wait of whole answers.
// Both watch the client's socket, so a hang-up cancels the request at once.
#pragma once

#include <httplib.h>

#include <functional>
#include <memory>

#include "server/generation.h"
#include "server/metrics.h"
#include "server/model_manager.h"
#include "server/response_writer.h"

namespace hylo::server {

struct StreamSettings {
  int client_fd = -1;         // the connection (current_client_socket), -1: unknown
  int shutdown_fd = -1;       // readable once the server stops
  double ping_interval = 15;  // seconds of silence before a keep-alive; ≤ 0: none
  Metrics* metrics = nullptr;
};

// Makes `res` a chunked response that streams `g` through `writer`. The headers go out when the
// handler returns; the loop then runs on the connection's thread.
void stream_generation(httplib::Response& res, std::shared_ptr<Generation> g, std::shared_ptr<ResponseWriter> writer,
                       const StreamSettings& settings);

// A streamed request whose model is still loading: the response starts at once and gets the
// keep-alives a long prefill gets (from `early`, a writer of the request's format) until `ticket`
// resolves; then `start` makes the generation and its writer (or an error, which ends the stream).
struct StartedGeneration {
  std::shared_ptr<Generation> generation;
  std::shared_ptr<ResponseWriter> writer;
  std::optional<ApiError> error;
};
void stream_after_load(httplib::Response& res, std::shared_ptr<ModelTicket> ticket,
                       std::shared_ptr<ResponseWriter> early, std::function<StartedGeneration()> start,
                       const StreamSettings& settings);

// Waits until every choice finished or one failed. kClientGone: the request was cancelled.
enum class WaitOutcome { kFinished, kClientGone, kShutdown };
WaitOutcome wait_for_answer(Generation& g, const StreamSettings& settings);

}  // namespace hylo::server
