// The server's counters (HTTP requests by route and status, client disconnects, rejections,
// keep-alive pings) and the Prometheus text exposition of them together with the engine's
// statistics (slots, queue, tokens, rates, time to first token, cache memory).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "base/timer.h"
#include "runtime/engine.h"

namespace hylo::server {

class Metrics {
 public:
  void count_request(std::string_view route, int status);
  void count_client_gone();
  void count_ping();
  void count_rejected(std::string_view reason);  // "queue_full", "context", "invalid", "unauthorized"

  // Prometheus text format 0.0.4. `engine` is null while the model loads.
  std::string render(const runtime::EngineStats* engine) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> rejected_;
  uint64_t client_gone_ = 0, pings_ = 0;
  Timer uptime_;
};

}  // namespace hylo::server
