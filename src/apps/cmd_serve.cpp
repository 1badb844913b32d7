// `hylo serve`: the OpenAI- and Ollama-compatible HTTP server. Listens first (so /health answers
// 503 while the model loads), loads the model in the background, serves until SIGINT/SIGTERM.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <thread>

#include "apps/command.h"
#include "apps/common.h"
#include "apps/default_model.h"
#include "apps/session.h"
#include "base/log.h"
#include "doctor/doctor.h"
#include "doctor/render.h"
#include "router/router.h"
#include "server/server.h"

namespace hylo::apps {
namespace {

struct Options {
  SessionFlags session;
  server::ServerOptions server;
  std::string port_file;
  std::vector<std::string> upstreams;
  std::string routes_file;
};

std::string url_host(const std::string& host) { return host.find(':') != std::string::npos ? "[" + host + "]" : host; }

std::shared_ptr<server::Backend> make_backend(Session& s, const Options& o) {
  auto b = std::make_shared<server::Backend>();
  b->engine = s.engine.get();
  b->tokenizer = &s.tokenizer;
  b->chat_template = &*s.chat_template;
  b->model = s.model.get();
  b->special = chat::special_tokens_of(s.tokenizer);
  b->sampling = s.sampling;
  b->thinking_model = s.thinking_model;
  b->n_ctx = s.n_ctx;
  b->n_slots = s.engine->options().n_slots;
  b->description = server::describe_model(*s.model, o.server.alias);
  // The doctor's view of this very set-up; the machine is detected (no bandwidth run) on each call.
  const runtime::Engine* engine = s.engine.get();
  b->doctor_report = [path = s.model->info().path, n_ctx = s.n_ctx, slots = b->n_slots, kv = s.cache_type_k,
                      engine]() -> Result<nlohmann::json> {
    doctor::Options d;
    d.model_path = path;
    d.ctx = n_ctx;
    d.parallel = slots;
    d.kv_type = kv;
    const runtime::EngineStats st = engine->stats();
    if (st.prefill_seconds > 0 && st.prefilled_tokens >= 512)
      d.measured.prefill_tps = static_cast<double>(st.prefilled_tokens) / st.prefill_seconds;
    HYLO_ASSIGN_OR_RETURN(doctor::Inputs in, doctor::gather_inputs(d));
    return doctor::render_json(doctor::analyze(in));
  };
  return b;
}

int run(Options& o) {
  if (o.server.api_key.empty())
    if (const char* key = std::getenv("HYLO_API_KEY")) o.server.api_key = key;
  if (!o.upstreams.empty() || !o.routes_file.empty()) {
    auto config = router::build_config(o.routes_file, o.upstreams);
    if (!config.ok()) return fail(config.error());
    o.server.gateway = o.session.model.empty() && !config->upstreams.empty();
    o.server.router = std::make_shared<router::Router>(std::move(*config));
  }
  o.server.max_queue = o.session.max_queue;
  o.server.n_slots = o.session.parallel;
  // Memory comes back after large requests: with one allocator arena per HTTP thread (hundreds)
  // freed request buffers stayed mapped in each; a few arenas, large buffers mapped on their own
  // (a fixed threshold: glibc otherwise raises it after each freed block, and 5 MB bodies then
  // stay in the heap), and a malloc_trim after requests over 1 MiB (http_guard.cpp) bound RSS.
  mallopt(M_ARENA_MAX, 4);
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  std::signal(SIGPIPE, SIG_IGN);  // a client gone mid-write is an error return, not the end of the server

  // Signals are taken by sigwait() below, whichever thread they hit; SIGUSR1 reports a failed load.
  // A shell starts background jobs with SIGINT ignored, which would discard it: take it anyway.
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  server::Server srv(o.server);
  auto port = srv.bind();
  if (!port.ok()) return fail(port.error());
  if (!o.port_file.empty()) {
    std::ofstream(o.port_file) << *port << "\n";
  }
  std::fprintf(stderr, "listening on http://%s:%d\n", url_host(o.server.host).c_str(), *port);
  std::fflush(stderr);
  if (o.server.api_key.empty() && o.server.host != "127.0.0.1" && o.server.host != "localhost" &&
      o.server.host != "::1")
    log_warn("[serve] listening on {} without --api-key: anyone who can reach this port can use the model",
             o.server.host);
  srv.start();

  std::unique_ptr<Session> session;
  std::atomic<bool> loaded{false};
  std::string load_error;
  if (o.server.gateway) {
    log_info("[serve] gateway: no local model, {} upstream(s), http://{}:{}",
             o.server.router->config().upstreams.size(), url_host(o.server.host), *port);
    int sig = 0;
    sigwait(&signals, &sig);
    log_info("[serve] stopping");
    srv.stop();
    return kExitOk;
  }
  std::thread loader([&] {
    auto s = open_session(o.session);
    if (!s.ok()) {
      load_error = s.message();
      kill(getpid(), SIGUSR1);
      return;
    }
    session = std::move(*s);
    log_info("[serve] {}", session->ctx_reason);
    log_info("[serve] {}", session->cache_reason);
    if (session->default_model) log_info("[serve] {}", default_model_note());
    if (session->random_weights)
      log_warn("[serve] {} has random weights (hylo make-model): its output is meaningless text",
               session->model->info().name);
    auto backend = make_backend(*session, o);
    log_info("[serve] ready: {} ({} slots of {} tokens), http://{}:{}", backend->description.id, backend->n_slots,
             backend->n_ctx, url_host(o.server.host), *port);
    srv.set_backend(std::move(backend));
    loaded = true;
  });

  int sig = 0;
  sigwait(&signals, &sig);
  if (sig == SIGUSR1) {
    loader.join();
    srv.stop();
    return fail(Error{load_error});
  }
  if (!loaded.load()) {
    // Loading (or generating the default model) cannot be interrupted half-way; leave now.
    std::fprintf(stderr, "hylo: interrupted while loading the model\n");
    std::_Exit(130);
  }
  log_info("[serve] stopping");
  loader.join();
  srv.stop();  // ends streams and cancels their requests before the engine goes away
  session.reset();
  return kExitOk;
}

CommandRegistrar reg("serve", "OpenAI- and Ollama-compatible HTTP server (continuous batching)", 60, [](CLI::App& app) {
  auto o = std::make_shared<Options>();
  o->session.parallel = 4;
  o->session.command = "serve";
  o->session.add(app, /*with_parallel=*/true);
  server::ServerOptions& s = o->server;
  app.add_option("--host", s.host, "Address to listen on (0.0.0.0: every interface)")->capture_default_str();
  app.add_option("--port", s.port, "Port (0: a free one; the URL is printed on stderr)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--port-file", o->port_file, "Write the port to this file once listening");
  app.add_option("--api-key", s.api_key,
                 "Require 'Authorization: Bearer KEY' (default: $HYLO_API_KEY). GET / (the chat page, which asks "
                 "for the key) and /web/*, /health, /v1/models, /models, /api/version and /api/tags stay open");
  app.add_option(
      "--cors-origin", s.cors_origin,
      "Allow browser requests from these origins too (comma-separated, or *); loopback origins "
      "(http://localhost:*, 127.0.0.1, [::1]) always are. Without --api-key other origins are refused (403)");
  app.add_option("--allowed-hosts", s.allowed_hosts,
                 "Host header names accepted besides loopback names and --host (comma-separated, or *); others: "
                 "421. Checked when --host is a loopback address or this is given");
  app.add_option("--max-queue", o->session.max_queue, "Requests that may wait for a slot; beyond that: HTTP 503")
      ->check(CLI::Range(0, 1 << 16))
      ->capture_default_str();
  app.add_option("--max-body-bytes", s.max_body_bytes, "Largest request body accepted (HTTP 413 beyond)")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 34))
      ->capture_default_str();
  app.add_option("--max-header-bytes", s.max_header_bytes,
                 "Largest request line + header fields accepted (HTTP 431 beyond; at most 100 fields)")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 24))
      ->capture_default_str();
  app.add_option("--header-timeout", s.header_timeout,
                 "Seconds for a request's line and headers to arrive (HTTP 408 beyond)")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  app.add_option("--body-timeout", s.body_timeout,
                 "Seconds for a request body to arrive, plus 1 s per 32 KiB received (HTTP 408 beyond)")
      ->check(CLI::Range(0.01, 3600.0))
      ->capture_default_str();
  app.add_option("--max-tokens-cap", s.max_tokens_cap,
                 "Most tokens one choice may generate, whatever max_tokens asks (0: up to the context)")
      ->check(CLI::Range(0, INT32_MAX))
      ->capture_default_str();
  app.add_option("--ping-interval", s.ping_interval,
                 "Seconds between ': ping' comments on a streamed request that is queued or prefilling (0: off)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--reasoning-field", s.reasoning_field, "OpenAI message field for the model's reasoning")
      ->check(CLI::IsMember({"reasoning_content", "reasoning"}))
      ->capture_default_str();
  app.add_option("--alias", s.alias, "Model id to report (default: the model's file name)");
  app.add_option("--upstream", o->upstreams,
                 "An upstream server: NAME=URL[,model=M,ctx=N,key-env=VAR] (repeatable). A URL ending in /v1 is "
                 "OpenAI-compatible, any other an Ollama server. Without -m: a gateway to the upstreams")
      ->type_name("SPEC");
  app.add_option("--routes", o->routes_file, "Routes file (YAML: upstreams, aliases, local limits; docs/router.md)")
      ->check(CLI::ExistingFile);
  app.add_option("--http-threads", s.http_threads, "HTTP worker threads (0: from --max-queue)")
      ->check(CLI::Range(0, 4096))
      ->group("");
  app.add_flag("--embeddings", s.embeddings, "Serve embeddings (/v1/embeddings, /api/embed)");
  app.add_option("--pooling", s.pooling, "How embeddings pool the prompt's hidden states")
      ->check(CLI::IsMember({"mean", "last"}))
      ->capture_default_str();
  app.add_flag("--test-hooks", s.test_hooks, "Accept test-only request fields (test_forced_output)")->group("");
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace hylo::apps
