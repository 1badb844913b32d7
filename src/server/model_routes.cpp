// The server with many models (--models-dir, --models): each request names its model, which the
// model manager loads on demand; the listings describe every model of the catalog (loaded or
// not, its context and where it was defined), and /models/load and /models/unload (llama-server's
// router mode) and Ollama's keep_alive 0 load and unload them by hand.
#include "base/log.h"
#include "router/router.h"
#include "server/endpoint.h"
#include "server/json_fields.h"
#include "server/llama_api.h"
#include "server/ollama_api.h"
#include "server/openai_api.h"
#include "server/server.h"
#include "server/stream.h"

namespace hylo::server {

namespace {

// Names the router answers for (upstreams, aliases, local / cloud / auto).
bool router_name(const router::Router& r, const std::string& name) {
  return name == "local" || name == "cloud" || name == "auto" || r.config().find_upstream(name) >= 0 ||
         r.config().find_alias(name) != nullptr;
}

}  // namespace

void Server::set_models(std::shared_ptr<ModelManager> models) { models_ = std::move(models); }

bool Server::wait_ticket(const ModelTicket& t, ApiFamily family, httplib::Response& res) {
  for (;;) {
    switch (t.wait(current_client_socket(), shutdown_fd_, -1)) {
      case ModelTicket::Wake::kReady:
        if (auto e = t.error()) {
          reply_error(res, *e, family);
          return false;
        }
        return true;
      case ModelTicket::Wake::kTimeout:
        continue;
      case ModelTicket::Wake::kClientGone:
        metrics_.count_client_gone();
        res.status = 499;
        return false;
      case ModelTicket::Wake::kShutdown:
        reply_error(res, {ApiError::Kind::kShuttingDown, "the server is shutting down"}, family);
        return false;
    }
  }
}

std::shared_ptr<ModelLease> Server::lease_for(const httplib::Request& req, ApiFamily family, httplib::Response& res) {
  std::string name = req.get_param_value("model");
  if (name.empty() && req.method == "POST" && !req.body.empty()) {
    auto body = parse_body(req.body);
    if (!body.ok()) {
      reply_error(res, ApiError::bad_request(body.message()), family);
      return nullptr;
    }
    auto m = FieldReader(*body).string("model");
    if (!m.ok()) {
      reply_error(res, ApiError::bad_request(m.message()), family);
      return nullptr;
    }
    if (!(*m) && body->contains("name")) {  // Ollama's older /api/show field
      m = FieldReader(*body).string("name");
      if (!m.ok()) {
        reply_error(res, ApiError::bad_request(m.message()), family);
        return nullptr;
      }
    }
    name = m->value_or("");
  }
  if (name.empty()) name = models_->catalog().size() == 1 ? models_->catalog().front().name : models_->most_recent();
  if (name.empty()) {
    ApiError e = models_->unknown("");
    e.kind = ApiError::Kind::kBadRequest;
    e.message = "name the model (\"model\" in the body, or ?model=): none is loaded; " +
                e.message.substr(e.message.find("this server has"));
    reply_error(res, e, family);
    return nullptr;
  }
  auto ticket = models_->acquire(name);
  if (!wait_ticket(*ticket, family, res)) return nullptr;
  return ticket->lease();
}

void Server::with_backend(const httplib::Request& req, httplib::Response& res, ApiFamily family, const BackendFn& fn) {
  if (!models_) {
    const std::shared_ptr<Backend> b = backend();
    return fn(b, ctx_);
  }
  std::shared_ptr<ModelLease> lease = lease_for(req, family, res);
  if (!lease) return;
  fn(lease->backend(), context_for(*lease->backend()));
}

void Server::generate_named(const Endpoint& ep, const httplib::Request& req, httplib::Response& res,
                            const ojson& body) {
  auto fail = [&](const ApiError& e) {
    metrics_.count_rejected(e.kind == ApiError::Kind::kBadRequest ? "invalid" : "other");
    reply_error(res, e, ep.family);
  };
  std::string name;
  if (auto it = body.find("model"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return fail(ApiError::bad_request("model must be a string"));
    name = it->get<std::string>();
  }
  if (name.empty()) {
    if (models_->catalog().size() != 1) {
      ApiError e = models_->unknown("");
      e.kind = ApiError::Kind::kBadRequest;
      e.message = "model is required: " + e.message.substr(e.message.find("this server has"));
      return fail(e);
    }
    name = models_->catalog().front().name;
  }
  if (!models_->find(name)) {
    // Upstream routes share the name space (names cannot collide: checked at start-up).
    if (opt_.router && router_name(*opt_.router, name) &&
        route_elsewhere(ep.family, ep.name, ep.parse, req, body, nullptr, res))
      return;
    return fail(models_->unknown(name));
  }
  if (opt_.router) res.set_header("X-Hylo-Route", "local");  // a local model's name: runs here
  std::optional<double> keep_alive;
  if (ep.family == ApiFamily::kOllama) {
    auto k = ollama_keep_alive(body);
    if (!k.ok()) return fail(ApiError::bad_request(k.message()));
    keep_alive = *k;
  }
  ApiContext early_ctx;
  early_ctx.model_id = name;
  early_ctx.reasoning_field = opt_.reasoning_field;
  early_ctx.test_hooks = opt_.test_hooks;
  if (ep.load_only)
    if (auto answer = ep.load_only(body, early_ctx)) {
      if ((*answer)["done_reason"] == "unload") {  // keep_alive 0 without a prompt: unload now
        models_->unload(name);
        return reply_json(res, *answer);
      }
      auto ticket = models_->acquire(name, keep_alive);
      if (!wait_ticket(*ticket, ep.family, res)) return;
      return reply_json(res, *answer);
    }

  std::shared_ptr<ModelTicket> ticket = models_->acquire(name, keep_alive);
  auto run = [&] {
    std::shared_ptr<ModelLease> lease = ticket->lease();
    ticket.reset();
    const std::shared_ptr<Backend> b = lease->backend();
    run_generation(ep, req, res, body, b, context_for(*b), std::move(lease));
  };
  if (ticket->done()) {
    if (auto e = ticket->error()) return fail(*e);
    return run();
  }
  // Loading. The request is read now (a bad field is a 400 before anything is sent), with what
  // the header of the model's file says; it is read again with the loaded model.
  if (auto plan = models_->plan_of(name); plan.ok()) {
    early_ctx.n_vocab = plan->description.n_vocab;
    early_ctx.n_ctx = plan->n_ctx;
  }
  auto early = ep.parse(body, early_ctx);
  if (!early.ok()) return fail(ApiError::bad_request(early.message()));
  if (!early->stream) {
    if (!wait_ticket(*ticket, ep.family, res)) return;
    return run();
  }
  // Streamed: the stream starts now and is kept alive as during a long prefill.
  StreamSettings s;
  s.client_fd = current_client_socket();
  s.shutdown_fd = shutdown_fd_;
  s.ping_interval = opt_.ping_interval;
  s.metrics = &metrics_;
  std::shared_ptr<ResponseWriter> early_writer = ep.writer(*early, early_ctx);
  auto start = [this, &ep, body, ticket]() -> StartedGeneration {
    StartedGeneration st;
    if (auto e = ticket->error()) {
      st.error = *e;
      return st;
    }
    std::shared_ptr<ModelLease> lease = ticket->lease();
    const std::shared_ptr<Backend> b = lease->backend();
    const ApiContext ctx = context_for(*b);
    auto parsed = ep.parse(body, ctx);
    if (!parsed.ok()) {
      st.error = ApiError::bad_request(parsed.message());
      return st;
    }
    if (!parsed->enable_thinking && b->thinking_default) parsed->enable_thinking = b->thinking_default;
    st.writer = ep.writer(*parsed, ctx);
    ApiError error;
    st.generation = Generation::start(*b, std::move(*parsed), limits_, &error, std::move(lease));
    if (!st.generation) {
      metrics_.count_rejected(error.kind == ApiError::Kind::kContextExceeded ? "context" : "other");
      st.error = error;
    }
    return st;
  };
  stream_after_load(res, ticket, std::move(early_writer), std::move(start), s);
}

void Server::install_model_routes() {
  using Req = const httplib::Request&;
  using Res = httplib::Response&;
  // llama-server's router mode: {"model": NAME} → {"success": true}.
  auto named = [this](Req q, Res r, std::string* name) {
    if (!models_) {
      reply_error(r,
                  {ApiError::Kind::kNotImplemented,
                   "this server serves one model (-m); start it with --models-dir or --models to load and unload "
                   "models by name"},
                  ApiFamily::kOpenAI);
      return false;
    }
    auto body = parse_body(q.body);
    if (!body.ok()) {
      reply_error(r, ApiError::bad_request(body.message()), ApiFamily::kOpenAI);
      return false;
    }
    auto m = FieldReader(*body).string("model");
    if (!m.ok() || !*m || (*m)->empty()) {
      reply_error(r, ApiError::bad_request(m.ok() ? "model is required" : m.message()), ApiFamily::kOpenAI);
      return false;
    }
    if (!models_->find(**m)) {
      reply_error(r, models_->unknown(**m), ApiFamily::kOpenAI);
      return false;
    }
    *name = **m;
    return true;
  };
  http_.Post("/models/load", route("models_load", ApiFamily::kOpenAI, false, [this, named](Req q, Res r) {
               std::string name;
               if (!named(q, r, &name)) return;
               auto ticket = models_->acquire(name);
               if (!wait_ticket(*ticket, ApiFamily::kOpenAI, r)) return;
               reply_json(r, {{"success", true}});
             }));
  http_.Post("/models/unload", route("models_unload", ApiFamily::kOpenAI, false, [this, named](Req q, Res r) {
               std::string name;
               if (!named(q, r, &name)) return;
               if (!models_->unload(name))
                 return reply_error(r, ApiError::bad_request(fmt::format("model '{}' is not loaded", name)),
                                    ApiFamily::kOpenAI);
               reply_json(r, {{"success", true}});
             }));
}

namespace {

// What every listing says of a model beyond its name.
ojson model_meta(const ModelManager::Status& s, bool show_path) {
  ojson meta = ojson::object();
  if (s.plan) {
    const ModelDescription& d = s.plan->description;
    meta = {{"vocab_type", 2},          {"n_vocab", d.n_vocab},        {"n_ctx_train", d.n_ctx_train},
            {"n_ctx", s.plan->n_ctx},   {"n_embd", d.n_embd},          {"n_params", d.n_params},
            {"size", d.size_bytes},     {"n_slots", s.plan->n_slots},  {"architecture", d.arch},
            {"memory_bytes", s.plan->memory_bytes}};
  }
  meta["loaded"] = s.state == "loaded";
  meta["source"] = s.definition->source;
  if (show_path) meta["file"] = s.definition->file;
  if (!s.last_error.empty()) meta["error"] = s.last_error;
  return meta;
}

}  // namespace

ojson Server::models_openai() {
  for (const ModelDefinition& d : models_->catalog()) (void)models_->plan_of(d.name);  // cached after the first
  ojson data = ojson::array();
  for (const ModelManager::Status& s : models_->status(true)) {
    data.push_back({{"id", s.definition->name},
                    {"object", "model"},
                    {"created", s.plan ? s.plan->description.modified_unix : 0},
                    {"owned_by", "hylo"},
                    {"status", {{"value", s.state}}},
                    {"meta", model_meta(s, !opt_.api_key.empty())}});
  }
  if (opt_.router) {
    const ojson routes = opt_.router->openai_models();
    for (const auto& m : routes["data"]) data.push_back(m);
  }
  return {{"object", "list"}, {"data", std::move(data)}};
}

ojson Server::models_tags() {
  for (const ModelDefinition& d : models_->catalog()) (void)models_->plan_of(d.name);
  ojson models = ojson::array();
  for (const ModelManager::Status& s : models_->status(true)) {
    ojson m;
    if (s.plan) {
      ModelDescription d = s.plan->description;
      d.id = s.definition->name;
      m = ollama_tags(d)["models"][0];
      m["context_length"] = s.plan->n_ctx;
    } else {
      m = {{"name", s.definition->name}, {"model", s.definition->name}, {"size", 0}, {"details", ojson::object()}};
    }
    m["source"] = s.definition->source;
    models.push_back(std::move(m));
  }
  if (opt_.router) {
    const ojson routes = opt_.router->ollama_tags();
    for (const auto& m : routes["models"]) models.push_back(m);
  }
  return {{"models", std::move(models)}};
}

ojson Server::models_ps() {
  ojson models = ojson::array();
  for (const ModelManager::Status& s : models_->status(true)) {
    if (s.state != "loaded" || !s.backend || !s.plan) continue;
    ojson m = ollama_ps(s.backend->description, s.backend->n_ctx, 0)["models"][0];
    m["size"] = s.memory_bytes;
    // Ollama reports a model kept forever with an expiry far ahead.
    m["expires_at"] = rfc3339_time(s.forever ? std::chrono::system_clock::now() + std::chrono::hours(24 * 365 * 100)
                                             : s.expires);
    m["source"] = s.definition->source;
    m["active_requests"] = s.active;
    models.push_back(std::move(m));
  }
  return {{"models", std::move(models)}};
}

void Server::add_definition(ojson* show, const std::string& name) {
  for (const ModelManager::Status& s : models_->status(true)) {
    if (s.definition->name != name) continue;
    (*show)["hylo"] = {{"source", s.definition->source}, {"context_length", s.plan ? s.plan->n_ctx : 0}};
    if (!opt_.api_key.empty()) (*show)["hylo"]["file"] = s.definition->file;
  }
}

}  // namespace hylo::server
