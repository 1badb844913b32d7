// `hylo route --explain`: which route `hylo serve` would give a request of a given size, model
// name, privacy and time budget under a routes file and --upstream flags, and why. Loads no model.
#include <cstdio>
#include <limits>

#include "apps/command.h"
#include "apps/common.h"
#include "router/policy.h"

namespace hylo::apps {
namespace {

struct Options {
  std::string routes_file;
  std::vector<std::string> upstreams;
  bool explain = false;
  std::string model = "auto";
  int64_t prompt_tokens = -1;
  int64_t local_ctx = 0;
  double prefill_speed = 0;
  double timeout = 0;
  bool is_private = false, no_local = false;
  std::string client;  // a client of the routes file: the request carries its API key
};

int run(const Options& o) {
  auto config = router::build_config(o.routes_file, o.upstreams);
  if (!config.ok()) return fail(config.error());
  router::RouteQuery q;
  q.model = o.model;
  if (!o.client.empty()) {
    q.client = config->find_client(o.client);
    if (q.client == nullptr) return fail(make_error("--client {}: the routes file has no such client", o.client));
  }
  if (o.is_private) q.private_header = true;
  if (o.prompt_tokens >= 0) q.prompt_tokens = o.prompt_tokens;
  if (o.timeout > 0) q.budget_seconds = o.timeout;
  q.local_available = !o.no_local;
  q.local_unavailable_why = "there is no local model (gateway mode)";
  q.local_ctx = o.local_ctx > 0 ? o.local_ctx : std::numeric_limits<int64_t>::max();
  if (o.prefill_speed > 0) {
    q.prefill_tokens_per_second = o.prefill_speed;
    q.prefill_source = "--prefill-speed";
  } else if (config->prefill_tokens_per_second > 0) {
    q.prefill_tokens_per_second = config->prefill_tokens_per_second;
    q.prefill_source = "configured";
  }
  const router::RoutePlan p = router::plan_route(*config, q);
  if (q.client != nullptr) std::printf("client: %s\n", q.client->name.c_str());
  std::printf("request: model '%s', %s prompt tokens, %s, budget %s\n", o.model.c_str(),
              o.prompt_tokens >= 0 ? std::to_string(o.prompt_tokens).c_str() : "unknown",
              o.is_private ? "X-Hylo-Private: 1" : "no X-Hylo-Private",
              o.timeout > 0 ? fmt::format("{:g} s", o.timeout).c_str() : "none");
  if (o.local_ctx <= 0 && !o.no_local) std::printf("local context: not given (--local-ctx), taken as unlimited\n");
  for (const std::string& s : p.steps) std::printf("  %s\n", s.c_str());
  if (p.refusal_status > 0) {
    std::printf("route: none, refused with HTTP %d: %s\n", p.refusal_status, p.refusal.c_str());
    return kExitOk;
  }
  std::string fallbacks;
  for (size_t i = 1; i < p.order.size(); ++i)
    fallbacks += (i > 1 ? ", " : "") + router::route_name(*config, p.order[i]);
  std::printf("route: %s (%s)\n", router::route_name(*config, p.order[0]).c_str(), p.reason.c_str());
  std::printf("fallbacks: %s\n", fallbacks.empty() ? "none" : fallbacks.c_str());
  return kExitOk;
}

CommandRegistrar reg(
    "route", "Explain which route (local or an upstream) a request would take, and why", 61, [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_flag("--explain", o->explain, "Print the decision and the rules behind it")->required();
      app.add_option("--routes", o->routes_file, "Routes file (as for hylo serve)")->check(CLI::ExistingFile);
      app.add_option("--upstream", o->upstreams, "NAME=URL[,model=M,ctx=N,key-env=VAR] (repeatable)")
          ->type_name("SPEC");
      app.add_option("--model", o->model, "Model name of the request")->capture_default_str();
      app.add_option("--prompt-tokens", o->prompt_tokens, "Prompt length in tokens")
          ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
      app.add_option("--local-ctx", o->local_ctx, "Context of the local model (per sequence)")
          ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
      app.add_option("--prefill-speed", o->prefill_speed,
                     "Local prefill speed in tokens/s (default: the routes file's)")
          ->check(CLI::PositiveNumber);
      app.add_option("--timeout", o->timeout, "The client's time budget in seconds (X-Hylo-Timeout)")
          ->check(CLI::PositiveNumber);
      app.add_flag("--private", o->is_private, "The request is private (X-Hylo-Private: 1)");
      app.add_option("--client", o->client, "The request carries this client's API key (clients of the routes file)");
      app.add_flag("--no-local", o->no_local, "No local model (a gateway)");
      return [o] { return run(*o); };
    });

}  // namespace
}  // namespace hylo::apps
