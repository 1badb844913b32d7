#include "router/policy.h"

#include <fmt/format.h>

namespace hylo::router {

namespace {

// Upstreams able to take `tokens` (context unknown or larger), in configuration order.
std::vector<int> fitting_upstreams(const RouterConfig& c, const std::vector<int>& candidates,
                                   std::optional<int64_t> tokens, RoutePlan* plan) {
  std::vector<int> out;
  for (int i : candidates) {
    const Upstream& u = c.upstreams[static_cast<size_t>(i)];
    if (tokens && u.ctx > 0 && *tokens >= u.ctx) {
      plan->steps.push_back(
          fmt::format("upstream {}: skipped, {} prompt tokens do not fit its context of {}", u.name, *tokens, u.ctx));
      continue;
    }
    out.push_back(i);
  }
  return out;
}

bool local_fits(const RouteQuery& q) {
  return q.local_available && (!q.prompt_tokens || *q.prompt_tokens < q.local_ctx);
}

}  // namespace

std::string route_name(const RouterConfig& c, int route) {
  return route == kLocal ? "local" : c.upstreams[static_cast<size_t>(route)].name;
}

RoutePlan plan_route(const RouterConfig& c, const RouteQuery& q) {
  RoutePlan plan;
  auto refuse = [&](int status, std::string message) {
    plan.order.clear();
    plan.refusal_status = status;
    plan.refusal = std::move(message);
    plan.reason = plan.refusal;
    plan.steps.push_back("refused: " + plan.refusal);
    return plan;
  };

  // Which routes the model name allows.
  std::string pinned = "auto";
  bool alias_private = false;
  if (q.model == "local" || q.model == "cloud" || q.model == "auto") {
    pinned = q.model;
  } else if (c.find_upstream(q.model) >= 0) {
    pinned = q.model;
  } else if (const Alias* a = c.find_alias(q.model)) {
    pinned = a->route;
    alias_private = a->is_private;
    plan.steps.push_back(
        fmt::format("model '{}': alias of route {}{}", q.model, a->route, a->is_private ? ", private" : ""));
  }
  if (pinned != "auto" && pinned == q.model) plan.steps.push_back(fmt::format("model '{}': pins the route", q.model));

  std::vector<int> all;
  for (size_t i = 0; i < c.upstreams.size(); ++i) all.push_back(static_cast<int>(i));

  // (1) Privacy: never leaves the machine.
  const bool client_private = q.client != nullptr && q.client->is_private;
  plan.is_private = alias_private || client_private || q.private_header.value_or(c.private_by_default);
  if (plan.is_private) {
    const std::string why = alias_private                  ? "the model alias"
                            : client_private               ? fmt::format("the API key of client '{}'", q.client->name)
                            : q.private_header.has_value() ? "X-Hylo-Private: 1"
                                                           : "private_by_default";
    plan.steps.push_back(fmt::format("privacy: private ({})", why));
    if (pinned != "auto" && pinned != "local")
      return refuse(403, fmt::format("this request is private (it may not leave this machine) but model '{}' names "
                                     "an upstream; ask for 'local' or 'auto'",
                                     q.model));
    if (!q.local_available)
      return refuse(503, fmt::format("this request is private (it may not leave this machine) and cannot run "
                                     "locally: {}",
                                     q.local_unavailable_why));
    plan.order = {kLocal};
    plan.reason = "private: runs locally only";
    return plan;
  }
  plan.steps.push_back("privacy: not private, may go upstream");

  if (pinned == "local") {
    if (!q.local_available) return refuse(503, "model 'local' asked for, but " + q.local_unavailable_why);
    plan.order = {kLocal};
    plan.reason = "model 'local'";
    return plan;
  }
  if (pinned != "auto") {  // "cloud" or one upstream
    std::vector<int> named = pinned == "cloud" ? all : std::vector<int>{c.find_upstream(pinned)};
    if (named.empty()) return refuse(503, "model 'cloud' asked for, but no upstream is configured");
    plan.order = fitting_upstreams(c, named, q.prompt_tokens, &plan);
    if (local_fits(q)) plan.order.push_back(kLocal);
    if (plan.order.empty())
      return refuse(400, fmt::format("the prompt ({} tokens) fits no context of the routes model '{}' allows",
                                     q.prompt_tokens.value_or(0), q.model));
    plan.reason = fmt::format("model '{}'", q.model);
    return plan;
  }

  // auto
  if (c.upstreams.empty()) {
    plan.order = {kLocal};
    plan.reason = "no upstream configured";
    return plan;
  }
  if (!q.local_available) {
    plan.steps.push_back("local: " + q.local_unavailable_why);
    plan.order = fitting_upstreams(c, all, q.prompt_tokens, &plan);
    if (plan.order.empty()) return refuse(400, "the prompt fits no upstream's context");
    plan.reason = q.local_unavailable_why;
    return plan;
  }

  // (2) Size.
  std::string upstream_reason;
  bool local_ok = true;  // as a fallback
  if (q.prompt_tokens) {
    const int64_t n = *q.prompt_tokens;
    if (n >= q.local_ctx) {
      upstream_reason = fmt::format("size: {} prompt tokens >= local context {}", n, q.local_ctx);
      local_ok = false;
    } else if (c.max_local_prompt_tokens > 0 && n > c.max_local_prompt_tokens) {
      upstream_reason = fmt::format("size: {} prompt tokens > local threshold {}", n, c.max_local_prompt_tokens);
    } else {
      plan.steps.push_back(fmt::format(
          "size: {} prompt tokens fit the local context {}{}", n, q.local_ctx,
          c.max_local_prompt_tokens > 0 ? fmt::format(" and threshold {}", c.max_local_prompt_tokens) : ""));
    }
  } else {
    plan.steps.push_back("size: prompt not counted");
  }
  if (!upstream_reason.empty()) plan.steps.push_back(upstream_reason);

  // (3) Time: the local prefill alone against the client's budget.
  // The header's budget, else the client's (its API key's) setting.
  const std::optional<double>& budget =
      q.budget_seconds || q.client == nullptr ? q.budget_seconds : q.client->budget_seconds;
  const std::string budget_source =
      q.budget_seconds ? "" : q.client != nullptr ? fmt::format(" of client '{}'", q.client->name) : "";
  if (upstream_reason.empty()) {
    if (!budget) {
      plan.steps.push_back("time: no budget given (X-Hylo-Timeout)");
    } else if (q.prefill_tokens_per_second <= 0 || !q.prompt_tokens) {
      plan.steps.push_back("time: the local prefill speed is not known yet");
    } else {
      const double est = static_cast<double>(*q.prompt_tokens) / q.prefill_tokens_per_second;
      const std::string line =
          fmt::format("time: estimated local prefill {:.1f} s ({} tokens at {:.0f} tok/s, {}) {} budget{} {:.0f} s",
                      est, *q.prompt_tokens, q.prefill_tokens_per_second, q.prefill_source,
                      est > *budget ? ">" : "<=", budget_source, *budget);
      plan.steps.push_back(line);
      if (est > *budget) upstream_reason = line;
    }
  }
  if (!upstream_reason.empty()) {
    plan.order = fitting_upstreams(c, all, q.prompt_tokens, &plan);
    if (local_ok) plan.order.push_back(kLocal);
    if (plan.order.empty())
      return refuse(400, fmt::format("the prompt ({} tokens) fits neither the local context ({}) nor an upstream's",
                                     q.prompt_tokens.value_or(0), q.local_ctx));
    plan.reason = upstream_reason;
    return plan;
  }
  plan.order = {kLocal};
  plan.reason = "fits locally";
  return plan;
}

}  // namespace hylo::router
