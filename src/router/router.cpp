// The decision half of the router: reading the routing headers, planning, trying the routes in
// order, and what the router counts. The upstream calls themselves are in proxy.cpp.
#include "router/router.h"

#include <cmath>
#include <cstdlib>

#include "base/log.h"
#include "base/strings.h"

namespace hylo::router {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Header values carry no line breaks or control characters, and stay short.
std::string header_safe(const std::string& s) {
  std::string out;
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out += c;
  if (out.size() > 300) out.resize(300);
  return out;
}

}  // namespace

void reply_route_error(httplib::Response& res, Api api, int status, const std::string& message) {
  ojson body;
  if (api == Api::kOllama) {
    body = {{"error", message}};
  } else {
    const char* type = status == 403 ? "permission_error" : status == 400 ? "invalid_request_error" : "upstream_error";
    body = {{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", status}}}};
  }
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, ojson::error_handler_t::replace), "application/json");
  if (status == 503) res.set_header("Retry-After", "5");
}

Result<RouteQuery> query_from_headers(const httplib::Request& req, const std::string& model) {
  RouteQuery q;
  q.model = model;
  if (req.has_header("X-Hylo-Private")) {
    const std::string v = lower(std::string(trim(req.get_header_value("X-Hylo-Private"))));
    if (v == "1" || v == "true" || v == "yes")
      q.private_header = true;
    else if (v == "0" || v == "false" || v == "no")
      q.private_header = false;
    else
      return make_error("X-Hylo-Private must be 1 or 0 (true/false, yes/no), not '{}'", header_safe(v));
  }
  if (req.has_header("X-Hylo-Timeout")) {
    const std::string v(trim(req.get_header_value("X-Hylo-Timeout")));
    char* end = nullptr;
    const double s = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(s) || s <= 0)
      return make_error("X-Hylo-Timeout must be a positive number of seconds, not '{}'", header_safe(v));
    q.budget_seconds = s;
  }
  return q;
}

Router::Router(RouterConfig config)
    : config_(std::move(config)), in_flight_(new std::atomic<int>[config_.upstreams.size() + 1]) {
  for (size_t i = 0; i <= config_.upstreams.size(); ++i) in_flight_[i] = 0;
  for (const Upstream& u : config_.upstreams) {
    if (!u.key_env.empty() && std::getenv(u.key_env.c_str()) == nullptr)
      log_warn("[router] upstream {}: environment variable {} is not set; requests go without an API key", u.name,
               u.key_env);
  }
  for (const Client& cl : config_.clients) {
    const char* key = std::getenv(cl.key_env.c_str());
    client_keys_.push_back(key != nullptr ? key : "");
  }
}

const Client* Router::client_for_key(std::string_view key) const {
  const Client* found = nullptr;
  for (size_t i = 0; i < client_keys_.size(); ++i) {  // every key compared: no early exit
    if (!client_keys_[i].empty() && same_secret(key, client_keys_[i]) && found == nullptr) found = &config_.clients[i];
  }
  return found;
}

const Client* Router::client_of(const httplib::Request& req) const {
  const std::string auth = req.get_header_value("Authorization");
  constexpr std::string_view kPrefix = "Bearer ";
  if (client_keys_.empty() || auth.size() <= kPrefix.size() || auth.compare(0, kPrefix.size(), kPrefix) != 0)
    return nullptr;
  return client_for_key(std::string_view(auth).substr(kPrefix.size()));
}

Router::~Router() = default;

RoutePlan Router::plan(const Call& call, const RouteQuery& query) const {
  RouteQuery q = query;
  q.local_available = call.local.available;
  q.local_unavailable_why = call.local.unavailable_why;
  q.local_ctx = call.local.n_ctx;
  if (call.local.prefill_tokens_per_second > 0) {
    q.prefill_tokens_per_second = call.local.prefill_tokens_per_second;
    q.prefill_source = "measured";
  } else if (config_.prefill_tokens_per_second > 0) {
    q.prefill_tokens_per_second = config_.prefill_tokens_per_second;
    q.prefill_source = "configured";
  }
  RoutePlan p = plan_route(config_, q);
  // The prompt is counted only when the answer depends on it: tokenizing a long prompt twice
  // (here and in the local handler) costs time.
  const bool decided =
      p.refusal_status > 0 || p.is_private ||
      (p.order.size() == 1 && p.order[0] == kLocal && (q.model == "local" || config_.upstreams.empty()));
  if (!decided && !q.prompt_tokens && call.local.available && call.local.count_prompt_tokens) {
    q.prompt_tokens = call.local.count_prompt_tokens();
    if (q.prompt_tokens) p = plan_route(config_, q);
  }
  return p;
}

Router::Outcome Router::serve(const Call& call, httplib::Response& res) {
  const std::string model =
      call.body->contains("model") && (*call.body)["model"].is_string() ? (*call.body)["model"].get<std::string>() : "";
  auto query = query_from_headers(*call.req, model);
  if (!query.ok()) {
    reply_route_error(res, call.api, 400, query.message());
    return Outcome::kAnswered;
  }
  query->client = client_of(*call.req);
  const RoutePlan p = plan(call, *query);
  if (p.refusal_status > 0) {
    count_event(p.is_private ? "refused_private" : "refused");
    log_info("[router] model '{}': refused ({})", model, p.refusal);
    res.set_header("X-Hylo-Route", "none");
    reply_route_error(res, call.api, p.refusal_status, p.refusal);
    return Outcome::kAnswered;
  }

  std::vector<Failure> failures;
  std::string reason = p.reason;
  for (int route : p.order) {
    if (route == kLocal) {
      if (!failures.empty()) {
        count_event("fallback");
        reason = fmt::format("fallback after {} failed: {}", failures.back().upstream, failures.back().message);
      }
      res.set_header("X-Hylo-Route", "local");
      res.set_header("X-Hylo-Route-Reason", header_safe(reason));
      if (!config_.upstreams.empty()) log_info("[router] model '{}' -> local ({})", model, reason);
      count("local");
      return Outcome::kLocal;
    }
    if (!failures.empty()) {
      count_event("fallback");
      reason = fmt::format("fallback after {} failed: {}", failures.back().upstream, failures.back().message);
    }
    std::optional<Failure> failure;
    const Outcome o = try_upstream(route, call, p, reason, res, &failure);
    if (!failure) return o;
    log_warn("[router] upstream {}: {}", failure->upstream, failure->message);
    count_failure(*failure);
    failures.push_back(std::move(*failure));
  }

  // Every route failed: the status says how (504 timeouts, 503 overloaded, 502 otherwise).
  bool all_busy = true, any_timeout = false;
  std::string message = "no route could answer:";
  for (const Failure& f : failures) {
    all_busy = all_busy && (f.kind == "busy" || f.kind == "http_429");
    any_timeout = any_timeout || f.kind == "timeout";
    message += fmt::format(" upstream {}: {};", f.upstream, f.message);
  }
  message.pop_back();
  const int status = any_timeout ? 504 : all_busy ? 503 : 502;
  res.set_header("X-Hylo-Route", "none");
  reply_route_error(res, call.api, status, message);
  return Outcome::kAnswered;
}

void Router::count(const std::string& route) {
  std::lock_guard<std::mutex> lock(mu_);
  ++routed_[route];
}

void Router::count_failure(const Failure& f) {
  std::lock_guard<std::mutex> lock(mu_);
  ++failures_[{f.upstream, f.kind}];
}

void Router::count_event(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  ++events_[name];
}

std::string Router::metrics() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out += "# HELP hylo_route_requests_total Generation requests by the route that ran them\n";
  out += "# TYPE hylo_route_requests_total counter\n";
  std::map<std::string, uint64_t> routed = routed_;
  routed.try_emplace("local", 0);
  for (const Upstream& u : config_.upstreams) routed.try_emplace(u.name, 0);
  for (const auto& [route, n] : routed)
    out += fmt::format("hylo_route_requests_total{{route=\"{}\"}} {}\n", prometheus_label(route), n);
  out += "# HELP hylo_route_events_total Fallbacks, refusals and stream errors of the router\n";
  out += "# TYPE hylo_route_events_total counter\n";
  for (const auto& [name, n] : events_)
    out += fmt::format("hylo_route_events_total{{event=\"{}\"}} {}\n", prometheus_label(name), n);
  out += "# HELP hylo_upstream_failures_total Upstream attempts that failed, by kind\n";
  out += "# TYPE hylo_upstream_failures_total counter\n";
  for (const auto& [key, n] : failures_)
    out += fmt::format("hylo_upstream_failures_total{{upstream=\"{}\",kind=\"{}\"}} {}\n", prometheus_label(key.first),
                       prometheus_label(key.second), n);
  out += "# HELP hylo_upstream_in_flight Requests running on each upstream\n";
  out += "# TYPE hylo_upstream_in_flight gauge\n";
  for (size_t i = 0; i < config_.upstreams.size(); ++i)
    out += fmt::format("hylo_upstream_in_flight{{upstream=\"{}\"}} {}\n", prometheus_label(config_.upstreams[i].name),
                       in_flight_[i].load());
  return out;
}

ojson Router::openai_models() const {
  ojson data = ojson::array();
  auto add = [&](const std::string& id) {
    data.push_back({{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "hylo"}});
  };
  add("auto");
  if (!config_.upstreams.empty() && config_.find_upstream("cloud") < 0) add("cloud");
  for (const Upstream& u : config_.upstreams) add(u.name);
  for (const Alias& a : config_.aliases) add(a.name);
  return {{"object", "list"}, {"data", std::move(data)}};
}

ojson Router::ollama_tags() const {
  ojson models = ojson::array();
  auto add = [&](const std::string& name) {
    models.push_back({{"name", name},
                      {"model", name},
                      {"modified_at", "1970-01-01T00:00:00Z"},
                      {"size", 0},
                      {"digest", ""},
                      {"details", ojson::object()}});
  };
  add("auto");
  if (!config_.upstreams.empty() && config_.find_upstream("cloud") < 0) add("cloud");
  for (const Upstream& u : config_.upstreams) add(u.name);
  for (const Alias& a : config_.aliases) add(a.name);
  return {{"models", std::move(models)}};
}

}  // namespace hylo::router
