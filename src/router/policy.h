// The routing policy: for one request, which routes may run it and in which order (the first
// is tried first, the rest are fallbacks), and why. A pure function of the configuration and what
// is known of the request and the local engine, so `hylo route --explain` shows the same decision
// `hylo serve` takes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "router/config.h"

namespace hylo::router {

constexpr int kLocal = -1;  // a route: the local engine; otherwise an index into upstreams

struct RouteQuery {
  std::string model;                     // the name the client asked for
  std::optional<bool> private_header;    // X-Hylo-Private, when sent
  std::optional<int64_t> prompt_tokens;  // counted with the local tokenizer (nullopt: not counted)
  std::optional<double> budget_seconds;  // X-Hylo-Timeout: how long the client waits
  const Client* client = nullptr;        // the API key's client, when the key is one of clients
  bool local_available = false;          // a local model is loaded
  std::string local_unavailable_why;     // "no local model (gateway)", "the local model is loading"
  int64_t local_ctx = 0;                 // per sequence
  double prefill_tokens_per_second = 0;  // 0: unknown
  std::string prefill_source;            // "measured by this server", "configured", ...
};

struct RoutePlan {
  std::vector<int> order;  // kLocal or upstream indices; empty when refused
  bool is_private = false;
  std::string reason;              // one line: why the first route
  std::vector<std::string> steps;  // every rule looked at, for --explain
  int refusal_status = 0;          // > 0: nothing may run it (403, 503, 400)
  std::string refusal;             // the client's error message
};

RoutePlan plan_route(const RouterConfig& config, const RouteQuery& query);

// The route's name as reported (X-Hylo-Route, metrics): "local" or the upstream's name.
std::string route_name(const RouterConfig& config, int route);

}  // namespace hylo::router
