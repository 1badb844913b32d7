// Server life cycle and what every route shares: API key, CORS, body limit, error bodies for
// httplib's own answers (404, 413), exceptions, request counting.
#include "server/server.h"

#include <arpa/inet.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "base/strings.h"
#include "router/router.h"
#include "server/json_fields.h"
#include "server/web_ui.h"

namespace hylo::server {

namespace {

ApiFamily family_of(const std::string& path) {
  return path.rfind("/api/", 0) == 0 ? ApiFamily::kOllama : ApiFamily::kOpenAI;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The host of a Host header or an origin's authority: lower case, without port or brackets.
std::string host_name(std::string_view authority) {
  if (!authority.empty() && authority[0] == '[') return lower(authority.substr(1, authority.find(']') - 1));
  const size_t colon = authority.find(':');
  if (colon != std::string_view::npos && authority.find(':', colon + 1) == std::string_view::npos)
    authority = authority.substr(0, colon);
  return lower(authority);
}

// Names that always mean this machine; a DNS rebinding page cannot make a browser send them.
// 127.x must be an address literal: "127.0.0.1.evil.example" is a name anyone can point anywhere.
bool loopback_host(const std::string& h) {
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return h == "localhost" || h == "::1" || (h.size() > 10 && h.compare(h.size() - 10, 10, ".localhost") == 0);
}

// An http(s) origin whose host is a loopback name or address (http://localhost:3000, http://[::1]:5173).
bool loopback_origin(const std::string& origin) {
  const size_t scheme = origin.find("://");
  if (scheme == std::string::npos || origin.rfind("http", 0) != 0) return false;
  return loopback_host(host_name(std::string_view(origin).substr(scheme + 3)));
}

}  // namespace

bool open_route(const std::string& method, const std::string& path) {
  if (method == "OPTIONS") return true;  // CORS preflight carries no credentials
  // The chat page and its files: it asks for the key itself.
  if (path.rfind(kWebAssetPrefix, 0) == 0) return true;
  return path == "/" || path == "/health" || path == "/v1/models" || path == "/models" || path == "/api/version" ||
         path == "/api/tags";
}

void reply_json(httplib::Response& res, const nlohmann::ordered_json& j, int status) {
  res.status = status;
  res.set_content(dump_json(j), "application/json");
}

void reply_error(httplib::Response& res, const ApiError& e, ApiFamily family) {
  reply_json(res, error_body(e, family), http_status(e));
  // Seconds a client should wait before retrying: a queue place frees within a generation step;
  // loading a model takes longer.
  if (e.kind == ApiError::Kind::kQueueFull) res.set_header("Retry-After", "1");
  if (e.kind == ApiError::Kind::kLoading) res.set_header("Retry-After", "5");
}

Server::Server(ServerOptions options) : opt_(std::move(options)) {
  shutdown_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  limits_.max_tokens_cap = opt_.max_tokens_cap;
  limits_.test_hooks = opt_.test_hooks;
  limits_.pooling = opt_.pooling == "last" ? runtime::Pooling::kLast : runtime::Pooling::kMean;
  // Every streamed request holds a thread while it waits or runs, so there must be one per slot
  // and queue place, plus spare ones for health checks, metrics and idle keep-alive connections.
  // Capped: past that, connections wait in httplib's queue until a thread is free.
  const int threads =
      opt_.http_threads > 0 ? opt_.http_threads : std::min(2 * (opt_.n_slots + opt_.max_queue) + 32, 1024);
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  HttpLimits limits;
  limits.max_body_bytes = opt_.max_body_bytes;
  limits.max_header_bytes = opt_.max_header_bytes;
  limits.header_timeout = opt_.header_timeout;
  limits.body_timeout = opt_.body_timeout;
  http_.configure(limits, shutdown_fd_, [this](const std::string& target, const ApiError& e) {
    metrics_.count_request("error", http_status(e));
    return dump_json(error_body(e, family_of(target)));
  });
  http_.set_tcp_nodelay(true);
  for (const auto& o : split(opt_.cors_origin, ','))
    if (!trim(o).empty()) cors_allowed_.emplace_back(trim(o));
  for (const auto& h : split(opt_.allowed_hosts, ','))
    if (!trim(h).empty()) hosts_allowed_.push_back(host_name(trim(h)));
  // The Host check guards a server that only this machine should reach; one listening on another
  // address is reached under names we cannot know, unless they are listed.
  check_host_ = loopback_host(host_name(opt_.host)) || !hosts_allowed_.empty();
  http_.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    if (req.path == "/health" || req.path == "/metrics")  // probes: only with -v
      log_debug("[server] {} {} {} {}", req.remote_addr, req.method, req.path, res.status);
    else
      log_info("[server] {} {} {} {}", req.remote_addr, req.method, req.path, res.status);
  });
  install_middleware();
  install_routes();
}

Server::~Server() {
  stop();
  if (shutdown_fd_ >= 0) close(shutdown_fd_);
}

Result<int> Server::bind() {
  int port = opt_.port;
  if (port == 0) {
    port = http_.bind_to_any_port(opt_.host);
    if (port <= 0) return make_error("[server] cannot listen on {} (any port)", opt_.host);
  } else if (!http_.bind_to_port(opt_.host, port)) {
    return make_error("[server] cannot listen on {}:{} (in use, or not an address of this machine)", opt_.host, port);
  }
  if (!http_.raise_backlog()) log_warn("[server] cannot raise the listen backlog: {}", std::strerror(errno));
  opt_.port = port;
  return port;
}

void Server::start() {
  thread_ = std::thread([this] { http_.listen_after_bind(); });
}

void Server::set_backend(std::shared_ptr<Backend> backend) {
  ctx_.model_id = backend->description.id;
  ctx_.n_vocab = backend->model->info().n_vocab;
  ctx_.tool_call_format = backend->chat_template->tool_call_format();
  ctx_.reasoning_field = opt_.reasoning_field;
  ctx_.test_hooks = opt_.test_hooks;
  ctx_.sampling = backend->sampling;
  ctx_.n_ctx = backend->n_ctx;
  std::atomic_store(&backend_, std::move(backend));
}

void Server::stop() {
  if (stopped_.exchange(true)) return;
  // Streams and waits see the shutdown descriptor, answer with an error and cancel.
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(shutdown_fd_, &one, sizeof one);
  if (thread_.joinable()) {
    // httplib's stop() acts on a running accept loop only; the thread may not have entered it yet.
    for (int i = 0; i < 10000000 && !http_.is_running(); ++i) std::this_thread::yield();
    http_.stop();
    thread_.join();
  }
}

void Server::install_middleware() {
  // CORS: loopback origins (a front-end on http://localhost:3000) are allowed, as Ollama does;
  // any other origin only when listed in --cors-origin (or with "*").
  http_.set_post_routing_handler([allowed = cors_allowed_](const httplib::Request& req, httplib::Response& res) {
    const std::string origin = req.get_header_value("Origin");
    if (origin.empty()) return;
    bool any = false, match = false;
    for (const auto& a : allowed) {
      any = any || a == "*";
      match = match || a == origin;
    }
    if (any) {
      res.set_header("Access-Control-Allow-Origin", "*");
    } else if (match || loopback_origin(origin)) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
    } else {
      return;
    }
    res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    // SDKs send their own headers (x-stainless-*, OpenAI-Beta): a preflight's list is granted as asked.
    const std::string asked = req.get_header_value("Access-Control-Request-Headers");
    res.set_header("Access-Control-Allow-Headers", asked.empty() ? "Authorization, Content-Type" : asked);
    res.set_header("Access-Control-Max-Age", "600");
  });
  // Preflights: 204; the post-routing handler adds the headers when the origin is allowed.
  http_.Options(".*", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });

  // httplib's own answers (unknown route, body too large, bad request line) get an API body.
  http_.set_error_handler(
      httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
        // Our own answers have bodies; 499 is a request whose client went away (nobody reads it).
        if (!res.body.empty() || res.is_chunked_content_provider_ || res.status == 499)
          return httplib::Server::HandlerResponse::Unhandled;
        ApiError e;
        switch (res.status) {
          case 404:
            if (const std::string allow = http_.allowed_methods(req.path); !allow.empty()) {
              e = {ApiError::Kind::kMethodNotAllowed,
                   fmt::format("{} is not served on {}; use {}", req.method, req.path, allow)};
              res.status = 405;
              res.set_header("Allow", allow);
            } else {
              e = {ApiError::Kind::kNotFound, fmt::format("no route {} {}", req.method, req.path)};
            }
            break;
          case 413:
            e = {ApiError::Kind::kPayloadTooLarge,
                 fmt::format("the request body is larger than {} bytes (--max-body-bytes)", opt_.max_body_bytes)};
            break;
          default:
            e = ApiError::bad_request(fmt::format("HTTP {}", res.status));
            break;
        }
        metrics_.count_request(res.status == 404 ? "unknown" : "error", res.status);
        reply_json(res, error_body(e, family_of(req.path)), res.status);
        return httplib::Server::HandlerResponse::Handled;
      }));

  http_.set_exception_handler([this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log_error("[server] {} {}: {}", req.method, req.path, what);
    reply_error(res, ApiError::internal("internal error: " + what), family_of(req.path));
  });
}

std::optional<ApiError> Server::browser_check(const httplib::Request& req) const {
  if (check_host_ && req.has_header("Host")) {
    const std::string host = host_name(req.get_header_value("Host"));
    const bool listed = std::any_of(hosts_allowed_.begin(), hosts_allowed_.end(),
                                    [&](const std::string& h) { return h == "*" || h == host; });
    if (!loopback_host(host) && host != host_name(opt_.host) && !listed)
      return ApiError{ApiError::Kind::kMisdirected,
                      fmt::format("Host '{}' is not a name this server answers to (a guard against DNS rebinding); "
                                  "list it with --allowed-hosts",
                                  host)};
  }
  // With an API key a page cannot use the server without knowing the key; without one, any page
  // the user visits could, through "simple" requests a browser sends without asking (text/plain
  // POSTs), so only loopback pages, listed origins and (behind the Host check) the same origin
  // are served.
  if (opt_.api_key.empty() && req.has_header("Origin")) {
    const std::string origin = req.get_header_value("Origin");
    bool ok = std::any_of(cors_allowed_.begin(), cors_allowed_.end(),
                          [&](const std::string& o) { return o == "*" || o == origin; });
    const size_t scheme = origin.find("://");
    if (!ok && scheme != std::string::npos && (origin.rfind("http", 0) == 0)) {
      const std::string authority = origin.substr(scheme + 3);
      ok = loopback_host(host_name(authority)) ||
           (check_host_ && lower(authority) == lower(req.get_header_value("Host")));
    }
    if (!ok)
      return ApiError{ApiError::Kind::kForbidden,
                      fmt::format("cross-origin request from '{}' refused: without --api-key only loopback origins "
                                  "and those given with --cors-origin are served",
                                  origin.substr(0, 200))};
  }
  return std::nullopt;
}

bool Server::authorized(const httplib::Request& req) const {
  // The router's clients (routes file) bring their own keys: with any, a key is required.
  const bool clients = opt_.router && opt_.router->has_clients();
  if ((opt_.api_key.empty() && !clients) || open_route(req.method, req.path)) return true;
  const std::string auth = req.get_header_value("Authorization");
  const std::string_view prefix = "Bearer ";
  if (auth.size() <= prefix.size() || auth.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string_view token = std::string_view(auth).substr(prefix.size());
  return (!opt_.api_key.empty() && same_secret(token, opt_.api_key)) ||
         (clients && opt_.router->client_for_key(token) != nullptr);
}

httplib::Server::Handler Server::route(const char* name, ApiFamily family, bool needs_model,
                                       std::function<void(const httplib::Request&, httplib::Response&)> fn) {
  return [this, name, family, needs_model, fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
    // The key is checked here, after httplib has read the body: answering before that (in a
    // pre-routing handler) would leave the body in a kept-alive connection.
    if (auto refused = browser_check(req)) {
      metrics_.count_rejected(refused->kind == ApiError::Kind::kForbidden ? "origin" : "host");
      reply_error(res, *refused, family);
    } else if (!authorized(req)) {
      metrics_.count_rejected("unauthorized");
      const bool none = req.get_header_value("Authorization").empty();
      reply_error(res,
                  {ApiError::Kind::kUnauthorized,
                   none ? "this server needs an API key: send Authorization: Bearer <key>" : "invalid API key"},
                  family);
      res.set_header("WWW-Authenticate", "Bearer");
    } else if (needs_model && !backend() && !models_) {
      reply_error(res, {ApiError::Kind::kLoading, "the model is still loading; try again shortly"}, family);
    } else {
      try {
        fn(req, res);
      } catch (const std::exception& e) {  // a bug, not the client's fault: answer, log, go on
        log_error("[server] {} {}: {}", req.method, req.path, e.what());
        reply_error(res, ApiError::internal(std::string("internal error: ") + e.what()), family);
      }
    }
    metrics_.count_request(name, res.status == -1 ? 200 : res.status);  // -1: httplib's default, 200
  };
}

}  // namespace hylo::server
