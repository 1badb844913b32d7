// `hylo serve`'s HTTP server: OpenAI- and Ollama-compatible endpoints over one loaded model,
// with auth, CORS, body limits, health and metrics. Requests are translated by the API adapters
// (openai_api.h, ollama_api.h) into GenerationRequest and run on the engine's continuous
// batching; the server starts answering /health (503) before the model is loaded.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "server/api_error.h"
#include "server/backend.h"
#include "server/generation.h"
#include "server/http_guard.h"
#include "server/metrics.h"
#include "server/model_manager.h"
#include "server/request.h"

namespace hylo::router {
class Router;
}

namespace hylo::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;          // 0: a free port
  std::string api_key;      // non-empty: Bearer key required (see open_route())
  std::string cors_origin;  // "" CORS off; "*" or a comma-separated list of allowed origins
  // Host names (or "*") accepted in the Host header besides loopback names and --host; when
  // --host is not a loopback address and this is empty, any Host is accepted.
  std::string allowed_hosts;
  size_t max_body_bytes = 8u << 20;
  size_t max_header_bytes = 32u << 10;
  double header_timeout = 10, body_timeout = 30;      // seconds (see HttpLimits)
  int32_t max_tokens_cap = 0;                         // > 0: no request generates more tokens per choice
  double ping_interval = 15;                          // seconds of silence before an SSE ": ping"; ≤ 0: none
  std::string reasoning_field = "reasoning_content";  // or "reasoning"
  std::string alias;                                  // model id to report (default: the file name)
  bool test_hooks = false;                            // accept "test_forced_output" (tests only)
  int http_threads = 0;                               // 0: enough for every slot and queue place, plus spare
  int n_slots = 1, max_queue = 64;                    // the engine's, for sizing the thread pool
  // Upstream routing (router/router.h): null serves everything locally. `gateway`: no local
  // model will ever load, every request goes upstream.
  std::shared_ptr<router::Router> router;
  bool gateway = false;
  bool embeddings = false;       // serve /v1/embeddings and /api/embed
  std::string pooling = "mean";  // their pooling: "mean" or "last"
};

// Routes that answer without an API key: health and model listings (documented in --help).
bool open_route(const std::string& method, const std::string& path);

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port (the chosen one for port 0).
  Result<int> bind();
  // Accepts connections on a background thread.
  void start();
  // The model is loaded: generation requests are served from now on.
  void set_backend(std::shared_ptr<Backend> backend);
  // Many models (--models-dir, --models): requests name theirs, loaded on demand (model_routes.cpp).
  // Instead of set_backend; call before start().
  void set_models(std::shared_ptr<ModelManager> models);
  // Stops accepting, ends running streams with an error and cancels their requests, and joins
  // the threads. Call before the backend's engine is destroyed.
  void stop();

  const ServerOptions& options() const { return opt_; }

 private:
  struct Endpoint;
  void install_routes();
  void install_web_routes();  // web_ui.cpp
  void install_middleware();
  bool authorized(const httplib::Request& req) const;
  // DNS rebinding and cross-site requests: a Host or Origin this server should not answer.
  std::optional<ApiError> browser_check(const httplib::Request& req) const;
  httplib::Server::Handler route(const char* name, ApiFamily family, bool needs_model,
                                 std::function<void(const httplib::Request&, httplib::Response&)> fn);
  void generate(const Endpoint& ep, const httplib::Request& req, httplib::Response& res);
  // Parses, starts and streams (or waits for) one generation on `b`; `hold` lives as long as it.
  void run_generation(const Endpoint& ep, const httplib::Request& req, httplib::Response& res,
                      const nlohmann::ordered_json& body, const std::shared_ptr<Backend>& b, const ApiContext& ctx,
                      std::shared_ptr<void> hold);
  ApiContext context_for(const Backend& b) const;
  // With many models (model_routes.cpp): the request's model by name, waiting for its load.
  void generate_named(const Endpoint& ep, const httplib::Request& req, httplib::Response& res,
                      const nlohmann::ordered_json& body);
  void install_model_routes();
  nlohmann::ordered_json models_openai();  // GET /v1/models with many models (and the router's names)
  nlohmann::ordered_json models_tags();    // GET /api/tags
  nlohmann::ordered_json models_ps();      // GET /api/ps: the loaded ones
  void add_definition(nlohmann::ordered_json* show, const std::string& name);  // /api/show's "hylo" part
  // The model a request that is not a generation is about: "model" in the body or ?model=, else
  // the most recently used one; null after an error answer.
  std::shared_ptr<ModelLease> lease_for(const httplib::Request& req, ApiFamily family, httplib::Response& res);
  // Waits for a ticket (client hang-up and shutdown watched); false after an error answer.
  bool wait_ticket(const ModelTicket& t, ApiFamily family, httplib::Response& res);
  using BackendFn = std::function<void(const std::shared_ptr<Backend>&, const ApiContext&)>;
  // Runs `fn` with the one model, or (many models) the one the request is about.
  void with_backend(const httplib::Request& req, httplib::Response& res, ApiFamily family, const BackendFn& fn);
  // With a router: true when it answered (upstream or refused); false: run it here (routing.cpp).
  using RequestParser = Result<GenerationRequest> (*)(const nlohmann::ordered_json& body, const ApiContext& ctx);
  bool route_elsewhere(ApiFamily family, const char* endpoint, RequestParser parse, const httplib::Request& req,
                       const nlohmann::ordered_json& body, const std::shared_ptr<Backend>& b, httplib::Response& res);
  std::string router_metrics() const;
  void tokenize(const httplib::Request& req, httplib::Response& res, const Backend& b);
  void detokenize(const httplib::Request& req, httplib::Response& res, const Backend& b);
  void apply_template(const httplib::Request& req, httplib::Response& res, const Backend& b, const ApiContext& ctx);
  void props(const httplib::Request& req, httplib::Response& res, const Backend& b);
  std::shared_ptr<Backend> backend() const { return std::atomic_load(&backend_); }

  ServerOptions opt_;
  GuardedHttpServer http_;
  std::vector<std::string> cors_allowed_, hosts_allowed_;
  bool check_host_ = false;
  std::thread thread_;
  std::shared_ptr<Backend> backend_;  // null while loading (std::atomic_load / atomic_store)
  std::shared_ptr<ModelManager> models_;  // many models: set instead of backend_
  ApiContext ctx_;                    // set with the backend
  GenerationLimits limits_;
  Metrics metrics_;
  // The last request said Ollama keep_alive 0: /api/ps lists no model until one that does not (the
  // one model stays in memory; see docs/server.md).
  std::atomic<bool> unload_asked_{false};
  int shutdown_fd_ = -1;  // readable once stop() began
  std::atomic<bool> stopped_{false};
};

// The error answer for `e` in `family`'s format.
void reply_error(httplib::Response& res, const ApiError& e, ApiFamily family);
void reply_json(httplib::Response& res, const nlohmann::ordered_json& j, int status = 200);

}  // namespace hylo::server
