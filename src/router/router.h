// The router inside `hylo serve`: for each generation request, the policy's routes (policy.h)
// are tried in order; an upstream's answer is streamed back as it arrives (translated when the
// client's API family differs), a local route hands the request back to the server's own handler.
// Every answer names where it ran (X-Hylo-Route); failures fall back or end in an explicit error.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/http_client.h"
#include "router/config.h"
#include "router/policy.h"

namespace hylo::router {

using ojson = nlohmann::ordered_json;

enum class Api { kOpenAI, kOllama };
enum class Kind { kChat, kCompletion };  // Ollama: /api/chat, /api/generate

// What the server knows of its local engine when a request arrives.
struct LocalState {
  bool available = false;
  std::string unavailable_why;
  int64_t n_ctx = 0;
  double prefill_tokens_per_second = 0;  // measured by this server (0: not yet)
  // The request's prompt tokens under the local tokenizer and chat template; nullopt when the
  // request cannot be read (the local handler then answers with the reason).
  std::function<std::optional<int64_t>()> count_prompt_tokens;
};

struct Call {
  Api api = Api::kOpenAI;
  Kind kind = Kind::kChat;
  const httplib::Request* req = nullptr;
  const ojson* body = nullptr;
  LocalState local;
  int client_fd = -1, shutdown_fd = -1;
};

// The request's routing inputs from its headers: X-Hylo-Private (1/true/yes, 0/false/no) and
// X-Hylo-Timeout (seconds). Errors name the header.
Result<RouteQuery> query_from_headers(const httplib::Request& req, const std::string& model);

class Router {
 public:
  explicit Router(RouterConfig config);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  const RouterConfig& config() const { return config_; }

  // The routes file's clients, known by their API keys (read from the environment at start).
  bool has_clients() const { return !config_.clients.empty(); }
  const Client* client_for_key(std::string_view key) const;  // nullptr: not a client's key
  const Client* client_of(const httplib::Request& req) const;  // by Authorization: Bearer

  enum class Outcome { kAnswered, kLocal };
  // Answers the request from an upstream (or with an error), or returns kLocal with the route
  // headers set on `res` for the server's own handler.
  Outcome serve(const Call& call, httplib::Response& res);
  // The policy's plan for a call (also what serve() follows).
  RoutePlan plan(const Call& call, const RouteQuery& query) const;

  std::string metrics() const;  // Prometheus text lines
  ojson openai_models() const;  // gateway listings: upstreams and aliases
  ojson ollama_tags() const;

 private:
  struct Attempt;
  struct Failure {
    std::string upstream, kind, message;  // kind: unreachable, timeout, busy, http_429, http_5xx, config
  };
  class InFlight;
  Outcome try_upstream(int index, const Call& call, const RoutePlan& plan, const std::string& reason,
                       httplib::Response& res, std::optional<Failure>* failure);
  void count(const std::string& route);
  void count_failure(const Failure& f);
  void count_event(const std::string& name);
  // Retry coalescing: an upstream request whose client left before the answer's head arrived is
  // kept (until its first-byte timeout) for an identical request, which then takes it over
  // instead of starting the upstream's prefill again.
  struct Parked {
    std::shared_ptr<net::Exchange> exchange;
    std::shared_ptr<InFlight> place;
    std::chrono::steady_clock::time_point until;
  };
  void park(const std::string& key, std::shared_ptr<net::Exchange> ex, std::shared_ptr<InFlight> place, double seconds);
  std::optional<Parked> take_parked(const std::string& key);

  RouterConfig config_;
  std::vector<std::string> client_keys_;  // config_.clients[i]'s key ("" when its variable is unset)
  std::unique_ptr<std::atomic<int>[]> in_flight_;  // per upstream
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> routed_, events_;
  std::map<std::pair<std::string, std::string>, uint64_t> failures_;
  std::mutex parked_mu_;
  std::map<std::string, Parked> parked_;  // by upstream, path and body
};

// The error answer in the client's API format.
void reply_route_error(httplib::Response& res, Api api, int status, const std::string& message);

}  // namespace hylo::router
