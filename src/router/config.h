// The router's configuration: named upstream servers (OpenAI-compatible or Ollama), model
// aliases and the local limits the policy compares against. Read from --upstream flags and a
// routes file (YAML, see docs/router.md); API keys are named by environment variable, never given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "net/http_client.h"

namespace hylo::router {

enum class UpstreamApi { kOpenAI, kOllama };

struct Upstream {
  std::string name;
  net::BaseUrl url;  // OpenAI: the base ending in /v1; Ollama: the server's root
  UpstreamApi api = UpstreamApi::kOllama;
  std::string model;    // the model name sent upstream ("": the client's)
  int64_t ctx = 0;      // its context in tokens (0: unknown, any prompt may go)
  std::string key_env;  // environment variable holding its API key ("": none sent)
  int max_concurrent = 16;
  net::Timeouts timeouts{5, 120, 60};
};

// A model name clients may ask for that pins a route: "local", "cloud" (any upstream), "auto",
// or an upstream's name; `is_private` marks every request under it private.
struct Alias {
  std::string name;
  std::string route;
  bool is_private = false;
};

// A client of this server, known by its API key (Authorization: Bearer, the key read from the
// environment variable key_env, never written in the file), and the policy its requests get.
struct Client {
  std::string name;
  std::string key_env;
  bool is_private = false;               // its requests never leave the machine (no header undoes it)
  std::optional<double> budget_seconds;  // how long it waits, when it sends no X-Hylo-Timeout
};

struct RouterConfig {
  std::vector<Upstream> upstreams;
  std::vector<Alias> aliases;
  std::vector<Client> clients;
  int64_t max_local_prompt_tokens = 0;   // > 0: longer prompts go upstream (when not private)
  double prefill_tokens_per_second = 0;  // until this server has measured its own (0: unknown)
  bool private_by_default = false;       // requests are private unless X-Hylo-Private: 0

  int find_upstream(const std::string& name) const;  // -1: none
  const Alias* find_alias(const std::string& name) const;
  const Client* find_client(const std::string& name) const;
};

// "NAME=URL[,model=M,ctx=N,key-env=VAR]": a URL ending in /v1 is an OpenAI-compatible server,
// any other an Ollama server.
Result<Upstream> parse_upstream_flag(const std::string& spec);

// Reads a routes file; errors name the file, line and key.
Result<RouterConfig> load_routes_file(const std::string& path);
Result<RouterConfig> parse_routes(const std::string& text, const std::string& source_name);

// Unique names, aliases naming existing routes; call after merging flags and the file.
Status validate(const RouterConfig& config);

// Every client's key_env names a set, non-empty environment variable (a server refuses to start
// otherwise: a client without its key could never be told apart).
Status check_client_keys(const RouterConfig& config);

// The routes file (if any) with the --upstream flags after its upstreams, validated.
Result<RouterConfig> build_config(const std::string& routes_file, const std::vector<std::string>& upstream_flags);

}  // namespace hylo::router
