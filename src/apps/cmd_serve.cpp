// `hylo serve`: the OpenAI- and Ollama-compatible HTTP server. Listens first (so /health answers
// 503 while the model loads), loads the model in the background, serves until SIGINT/SIGTERM.
// With --models-dir / --models it serves many models by name, loading each on demand.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "apps/command.h"
#include "apps/common.h"
#include "apps/default_model.h"
#include "apps/session.h"
#include "base/cpu.h"
#include "base/log.h"
#include "base/strings.h"
#include "doctor/doctor.h"
#include "doctor/render.h"
#include "models/cost.h"
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
  // Many models.
  std::string models_dir, models_file;
  std::string models_memory;     // "": the memory available at start
  std::string keep_alive = "5m";  // idle models stay this long
  int models_max = 0;
};

std::string url_host(const std::string& host) { return host.find(':') != std::string::npos ? "[" + host + "]" : host; }

std::shared_ptr<server::Backend> make_backend(Session& s, const std::string& alias) {
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
  b->description = server::describe_model(*s.model, alias);
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

// The session flags for one definition: the server's flags, with what the definition sets.
SessionFlags flags_for(const SessionFlags& base, const server::ModelDefinition& d) {
  SessionFlags f = base;
  f.model = d.file;
  if (d.ctx > 0) f.ctx = d.ctx;
  if (!d.cache_type_k.empty() || !d.cache_type_v.empty()) {
    f.kv.both.clear();
    if (!d.cache_type_k.empty()) f.kv.type_k = d.cache_type_k;
    if (!d.cache_type_v.empty()) f.kv.type_v = d.cache_type_v;
  }
  if (d.parallel > 0) f.parallel = d.parallel;
  if (!d.chat_template_file.empty()) f.chat_template_file = d.chat_template_file;
  if (!d.spec.empty()) f.spec = d.spec;
  if (d.draft > 0) f.draft = d.draft;
  return f;
}

// What a definition will take once loaded, from its file's header (models/cost.h, as the doctor
// counts): weights, KV cache and recurrent state of its slots, buffers, and its prefix cache.
Result<server::ModelPlan> plan_model(const SessionFlags& base, const server::ModelDefinition& d, uint64_t limit) {
  const SessionFlags f = flags_for(base, d);
  HYLO_ASSIGN_OR_RETURN(std::unique_ptr<models::Model> shapes, models::load_model(f.model, {.repack = false}));
  const models::MemoryLayout layout = shapes->memory_layout();
  HYLO_ASSIGN_OR_RETURN(const auto kv, f.kv.resolve(layout, TensorType::kF16));
  const uint64_t available = std::min(limit, available_memory_bytes());
  server::ModelPlan p;
  const ContextChoice ctx = choose_context(*shapes, f.ctx, f.parallel, kv.first, kv.second, f.batch, available);
  p.n_ctx = ctx.n_ctx;
  p.ctx_reason = ctx.reason;
  p.n_slots = f.parallel;
  const models::MemoryNeed need = models::memory_need(*shapes, p.n_ctx, f.parallel, kv.first, kv.second, f.batch);
  // The prefix cache: --cache-ram per model, or (auto) as much as the slots' own KV and state.
  uint64_t cache = need.kv + need.state;
  if (f.cache_ram != "auto") {
    HYLO_ASSIGN_OR_RETURN(cache, parse_byte_size(f.cache_ram));
  }
  p.cache_bytes = cache;
  p.memory_bytes = need.total() + cache;
  p.description = server::describe_model(*shapes, d.name);
  return p;
}

Result<std::shared_ptr<server::Backend>> load_model(const SessionFlags& base, const server::ModelDefinition& d,
                                                    const server::ModelPlan& plan) {
  SessionFlags f = flags_for(base, d);
  f.ctx = plan.n_ctx;  // as planned (and counted)
  f.cache_ram = std::to_string(plan.cache_bytes);
  f.warm = false;  // no progress bar per load: the log says when it is ready
  HYLO_ASSIGN_OR_RETURN(std::unique_ptr<Session> session, open_session(f));
  log_info("[serve] {}: {}", d.name, session->ctx_reason);
  if (session->random_weights)
    log_warn("[serve] {} has random weights (hylo make-model): its output is meaningless text", d.name);
  std::shared_ptr<server::Backend> b = make_backend(*session, d.name);
  // The definition's sampling defaults over the file's.
  runtime::SamplingParams& sp = b->sampling;
  if (d.temperature) sp.temperature = *d.temperature;
  if (d.top_p) sp.top_p = *d.top_p;
  if (d.top_k) sp.top_k = *d.top_k;
  if (d.min_p) sp.min_p = *d.min_p;
  if (d.repeat_penalty) sp.repeat_penalty = *d.repeat_penalty;
  if (d.repeat_last_n) sp.repeat_last_n = *d.repeat_last_n;
  if (d.presence_penalty) sp.presence_penalty = *d.presence_penalty;
  if (d.frequency_penalty) sp.frequency_penalty = *d.frequency_penalty;
  b->thinking_default = d.thinking;
  b->owner = std::shared_ptr<Session>(std::move(session));
  return b;
}

// The catalog of --models-dir and --models, checked: files exist, names unique and not those of
// the router's routes.
Result<std::vector<server::ModelDefinition>> build_catalog(const Options& o) {
  std::vector<server::ModelDefinition> defs, dir;
  if (!o.models_file.empty()) {
    HYLO_ASSIGN_OR_RETURN(defs, server::load_model_definitions(o.models_file));
  }
  if (!o.models_dir.empty()) {
    HYLO_ASSIGN_OR_RETURN(dir, server::scan_models_dir(o.models_dir));
  }
  HYLO_ASSIGN_OR_RETURN(std::vector<server::ModelDefinition> all, server::merge_catalog(std::move(defs), std::move(dir)));
  if (all.empty())
    return make_error("[models] no model found ({}{}{})", o.models_dir.empty() ? "" : "--models-dir " + o.models_dir,
                      !o.models_dir.empty() && !o.models_file.empty() ? ", " : "",
                      o.models_file.empty() ? "" : "--models " + o.models_file);
  for (const server::ModelDefinition& d : all) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(d.file, ec))
      return make_error("[models] model '{}' ({}): the file {} does not exist", d.name, d.source, d.file);
    if (!d.chat_template_file.empty() && !std::filesystem::is_regular_file(d.chat_template_file, ec))
      return make_error("[models] model '{}' ({}): the chat template {} does not exist", d.name, d.source,
                        d.chat_template_file);
    if (o.server.router) {
      const router::RouterConfig& rc = o.server.router->config();
      if (d.name == "local" || d.name == "cloud" || d.name == "auto" || rc.find_upstream(d.name) >= 0 ||
          rc.find_alias(d.name) != nullptr)
        return make_error("[models] model '{}' ({}): the name is also a route of the router (an upstream, an alias "
                          "or local / cloud / auto); one name space serves both, rename one",
                          d.name, d.source);
    }
  }
  return all;
}

int serve_models(Options& o, server::Server& srv, sigset_t& signals, int port) {
  auto catalog = build_catalog(o);
  if (!catalog.ok()) {
    srv.stop();
    return fail(catalog.error());
  }
  server::ModelManagerOptions mo;
  mo.memory_limit = available_memory_bytes();
  if (!o.models_memory.empty()) {
    auto limit = parse_byte_size(o.models_memory);
    if (!limit.ok()) {
      srv.stop();
      return fail(Error{"[models] --models-memory: " + limit.message()});
    }
    mo.memory_limit = *limit;
  }
  auto keep = server::parse_keep_alive(o.keep_alive);
  if (!keep.ok()) {
    srv.stop();
    return fail(Error{"[models] --keep-alive: " + keep.message()});
  }
  mo.keep_alive = *keep;
  mo.max_loaded = o.models_max;
  server::ModelHooks hooks;
  const SessionFlags base = o.session;
  const uint64_t limit = mo.memory_limit;
  hooks.plan = [base, limit](const server::ModelDefinition& d) { return plan_model(base, d, limit); };
  hooks.load = [base](const server::ModelDefinition& d, const server::ModelPlan& p) { return load_model(base, d, p); };
  const size_t n = catalog->size();
  auto manager = std::make_shared<server::ModelManager>(std::move(*catalog), std::move(hooks), mo);
  manager->start();
  srv.set_models(manager);
  log_info("[serve] ready: {} model(s), loaded on demand within {} (--models-memory), idle ones unloaded after {}, "
           "http://{}:{}",
           n, format_bytes(mo.memory_limit), o.keep_alive, url_host(o.server.host), port);
  int sig = 0;
  sigwait(&signals, &sig);
  log_info("[serve] stopping");
  srv.stop();  // ends streams; their models are then idle
  manager->stop();
  return kExitOk;
}

int run(Options& o) {
  if (o.server.api_key.empty())
    if (const char* key = std::getenv("HYLO_API_KEY")) o.server.api_key = key;
  if (!o.upstreams.empty() || !o.routes_file.empty()) {
    auto config = router::build_config(o.routes_file, o.upstreams);
    if (!config.ok()) return fail(config.error());
    if (Status keys = router::check_client_keys(*config); !keys.ok()) return fail(keys.error());
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

  const bool many = !o.models_dir.empty() || !o.models_file.empty();
  if (many && !o.session.model.empty())
    return fail(Error{"[serve] -m serves one model; --models-dir and --models serve many by name: give one or the other"});
  if (many) o.server.gateway = false;
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

  if (many) return serve_models(o, srv, signals, *port);

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
    auto backend = make_backend(*session, o.server.alias);
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
  app.add_option("--models-dir", o->models_dir,
                 "Serve every GGUF file under this directory (recursively), named by its file name without .gguf; "
                 "requests name their model, loaded on demand (docs/models.md)")
      ->type_name("DIR");
  app.add_option("--models", o->models_file,
                 "Model definitions file (YAML: name, file, context, KV types, sampling, chat template, thinking, "
                 "spec, parallel, keep_alive; docs/models.md)")
      ->check(CLI::ExistingFile)
      ->type_name("FILE");
  app.add_option("--models-memory", o->models_memory,
                 "Memory all loaded models may hold together (512M, 24G; default: what is available at start). "
                 "Beyond it the least recently used idle model is unloaded, or the request gets a 503")
      ->type_name("SIZE");
  app.add_option("--models-max", o->models_max, "Most models loaded at once (0: as many as memory allows)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--keep-alive", o->keep_alive,
                 "How long an idle model stays loaded (Ollama's keep_alive: 5m, 1h, 0, -1 for ever); requests and "
                 "definitions may say otherwise")
      ->capture_default_str();
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
