// The endpoints. Generation routes share one handler (Server::generate): parse with the API's
// adapter, start the generation, then stream it or wait for the whole answer.
#include "base/log.h"
#include "router/router.h"
#include "server/embeddings_api.h"
#include "server/endpoint.h"
#include "server/json_fields.h"
#include "server/llama_api.h"
#include "server/ollama_api.h"
#include "server/openai_api.h"
#include "server/server.h"
#include "server/stream.h"

namespace hylo::server {

namespace {

const char* rejection_reason(const ApiError& e) {
  switch (e.kind) {
    case ApiError::Kind::kContextExceeded:
      return "context";
    case ApiError::Kind::kQueueFull:
      return "queue_full";
    case ApiError::Kind::kBadRequest:
      return "invalid";
    default:
      return "other";
  }
}

std::optional<ojson> ollama_chat_load(const ojson& body, const ApiContext& ctx) {
  return ollama_load_only(body, /*chat=*/true, ctx);
}
std::optional<ojson> ollama_generate_load(const ojson& body, const ApiContext& ctx) {
  return ollama_load_only(body, /*chat=*/false, ctx);
}

}  // namespace

void Server::install_routes() {
  static const Endpoint kChat{"chat", ApiFamily::kOpenAI, parse_openai_chat, openai_chat_writer};
  static const Endpoint kCompletion{"completions", ApiFamily::kOpenAI, parse_openai_completion,
                                    openai_completion_writer};
  static const Endpoint kLlamaCompletion{"completion", ApiFamily::kOpenAI, parse_llama_completion,
                                         llama_completion_writer};
  static const Endpoint kLlamaInfill{"infill", ApiFamily::kOpenAI, parse_llama_infill, llama_completion_writer};
  static const Endpoint kEmbeddings{"embeddings", ApiFamily::kOpenAI, parse_openai_embeddings,
                                    openai_embeddings_writer};
  static const Endpoint kOllamaEmbed{"api_embed", ApiFamily::kOllama, parse_ollama_embed, ollama_embed_writer};
  static const Endpoint kOllamaEmbeddings{"api_embeddings", ApiFamily::kOllama, parse_ollama_embeddings_legacy,
                                          ollama_embeddings_legacy_writer};
  static const Endpoint kOllamaChat{"api_chat", ApiFamily::kOllama, parse_ollama_chat, ollama_chat_writer,
                                    ollama_chat_load};
  static const Endpoint kOllamaGenerate{"api_generate", ApiFamily::kOllama, parse_ollama_generate,
                                        ollama_generate_writer, ollama_generate_load};
  // Embeddings only with --embeddings (as llama-server); otherwise a 501 that says so.
  auto embeddings = [this](const Endpoint& ep) {
    if (opt_.embeddings)
      return route(ep.name, ep.family, true,
                   [this, &ep](const httplib::Request& req, httplib::Response& res) { generate(ep, req, res); });
    return route(ep.name, ep.family, false, [&ep](const httplib::Request&, httplib::Response& res) {
      reply_error(res, {ApiError::Kind::kNotImplemented, "embeddings are off: start hylo serve with --embeddings"},
                  ep.family);
    });
  };
  auto generation = [this](const Endpoint& ep) {
    return route(ep.name, ep.family, /*needs_model=*/!opt_.router,
                 [this, &ep](const httplib::Request& req, httplib::Response& res) { generate(ep, req, res); });
  };
  using Req = const httplib::Request&;
  using Res = httplib::Response&;

  // OpenAI (and llama-server's paths without /v1).
  for (const char* p : {"/v1/chat/completions", "/chat/completions"}) http_.Post(p, generation(kChat));
  for (const char* p : {"/v1/completions", "/completions"}) http_.Post(p, generation(kCompletion));
  for (const char* p : {"/v1/models", "/models"})
    http_.Get(p, route("models", ApiFamily::kOpenAI, !opt_.router, [this](Req, Res res) {
                if (models_) return reply_json(res, models_openai());
                const auto b = backend();
                if (!b) return reply_json(res, opt_.router->openai_models());
                reply_json(res, openai_models(b->description, b->n_ctx, b->n_slots));
              }));
  // Endpoints about one model: the one, or (many models) the one the request names.
  auto about_model = [this](const char* name, ApiFamily family, auto fn) {
    return route(name, family, true, [this, family, fn](Req q, Res r) {
      with_backend(q, r, family, [&](const std::shared_ptr<Backend>& b, const ApiContext& ctx) { fn(q, r, *b, ctx); });
    });
  };
  http_.Post("/tokenize", about_model("tokenize", ApiFamily::kOpenAI,
                                      [this](Req q, Res r, const Backend& b, const ApiContext&) { tokenize(q, r, b); }));
  http_.Post("/detokenize", about_model("detokenize", ApiFamily::kOpenAI, [this](Req q, Res r, const Backend& b,
                                                                                 const ApiContext&) { detokenize(q, r, b); }));
  http_.Post("/apply-template",
             about_model("apply_template", ApiFamily::kOpenAI,
                         [this](Req q, Res r, const Backend& b, const ApiContext& c) { apply_template(q, r, b, c); }));
  http_.Get("/props", about_model("props", ApiFamily::kOpenAI,
                                  [this](Req q, Res r, const Backend& b, const ApiContext&) { props(q, r, b); }));
  // The doctor on this server's own set-up (the status page shows its verdict and findings).
  http_.Get("/doctor", about_model("doctor", ApiFamily::kOpenAI, [](Req, Res r, const Backend& bk, const ApiContext&) {
              const Backend* b = &bk;
              if (!b->doctor_report)
                return reply_error(r, {ApiError::Kind::kNotImplemented, "no doctor report for this server"},
                                   ApiFamily::kOpenAI);
              auto report = b->doctor_report();
              if (!report.ok())
                return reply_error(r, {ApiError::Kind::kInternal, report.message()}, ApiFamily::kOpenAI);
              reply_json(r, nlohmann::ordered_json::parse(report->dump()));
            }));
  for (const char* p : {"/v1/embeddings", "/embeddings"}) http_.Post(p, embeddings(kEmbeddings));
  http_.Post("/api/embed", embeddings(kOllamaEmbed));
  http_.Post("/api/embeddings", embeddings(kOllamaEmbeddings));
  // llama-server's native API (llama_api.h).
  http_.Post("/completion", generation(kLlamaCompletion));
  http_.Post("/infill", generation(kLlamaInfill));
  http_.Get("/slots", about_model("slots", ApiFamily::kOpenAI, [](Req, Res r, const Backend& b, const ApiContext& c) {
              reply_json(r, llama_slots(b.engine->slot_states(), c));
            }));

  // Ollama.
  http_.Post("/api/chat", generation(kOllamaChat));
  http_.Post("/api/generate", generation(kOllamaGenerate));
  http_.Get("/api/tags", route("api_tags", ApiFamily::kOllama, !opt_.router, [this](Req, Res r) {
              if (models_) return reply_json(r, models_tags());
              const auto b = backend();
              reply_json(r, b ? ollama_tags(b->description) : opt_.router->ollama_tags());
            }));
  http_.Get("/api/ps", route("api_ps", ApiFamily::kOllama, true, [this](Req, Res r) {
              if (models_) return reply_json(r, models_ps());
              const auto b = backend();
              reply_json(r, ollama_ps(b->description, b->n_ctx, b->engine->stats().memory_bytes, !unload_asked_));
            }));
  http_.Post("/api/show", about_model("api_show", ApiFamily::kOllama, [this](Req q, Res r, const Backend& b,
                                                                             const ApiContext&) {
               auto body = parse_body(q.body);
               if (!body.ok()) return reply_error(r, ApiError::bad_request(body.message()), ApiFamily::kOllama);
               auto verbose = FieldReader(*body).boolean("verbose");
               if (!verbose.ok()) return reply_error(r, ApiError::bad_request(verbose.message()), ApiFamily::kOllama);
               // Paths only for callers who proved the key (without one, anyone could ask).
               ojson show = ollama_show(b, verbose->value_or(false), !opt_.api_key.empty());
               if (models_) add_definition(&show, b.description.id);
               reply_json(r, show);
             }));
  http_.Get("/api/version",
            route("api_version", ApiFamily::kOllama, false, [](Req, Res r) { reply_json(r, ollama_version()); }));

  install_model_routes();  // /models/load, /models/unload (model_routes.cpp)

  // Both.
  install_web_routes();  // `/` and the chat page's files (web_ui.cpp)
  http_.Get("/health", route("health", ApiFamily::kOpenAI, false, [this](Req, Res r) {
              if (backend() || opt_.gateway || models_)
                reply_json(r, {{"status", "ok"}});
              else
                reply_json(r, {{"status", "loading"}}, 503);
            }));
  http_.Get("/metrics", route("metrics", ApiFamily::kOpenAI, false, [this](Req, Res r) {
              const auto b = backend();
              runtime::EngineStats stats;
              if (b) stats = b->engine->stats();
              r.set_content(metrics_.render(b ? &stats : nullptr) + (models_ ? models_->metrics() : "") +
                                (opt_.router ? router_metrics() : ""),
                            "text/plain; version=0.0.4; charset=utf-8");
            }));
}

void Server::generate(const Endpoint& ep, const httplib::Request& req, httplib::Response& res) {
  const std::shared_ptr<Backend> b = backend();
  auto fail = [&](const ApiError& e) {
    metrics_.count_rejected(rejection_reason(e));
    reply_error(res, e, ep.family);
  };
  auto body = parse_body(req.body);
  if (!body.ok()) return fail(ApiError::bad_request(body.message()));
  if (models_) return generate_named(ep, req, res, *body);
  if (opt_.router && route_elsewhere(ep.family, ep.name, ep.parse, req, *body, b, res)) return;
  if (!b)
    return reply_error(res, {ApiError::Kind::kLoading, "the model is still loading; try again shortly"}, ep.family);
  if (ep.load_only)
    if (auto answer = ep.load_only(*body, ctx_)) {
      unload_asked_ = (*answer)["done_reason"] == "unload";
      return reply_json(res, *answer);
    }
  run_generation(ep, req, res, *body, b, ctx_, nullptr);
}

ApiContext Server::context_for(const Backend& b) const {
  ApiContext c;
  c.model_id = b.description.id;
  c.n_vocab = b.model->info().n_vocab;
  c.tool_call_format = b.chat_template->tool_call_format();
  c.reasoning_field = opt_.reasoning_field;
  c.test_hooks = opt_.test_hooks;
  c.sampling = b.sampling;
  c.n_ctx = b.n_ctx;
  return c;
}

void Server::run_generation(const Endpoint& ep, const httplib::Request&, httplib::Response& res, const ojson& body,
                            const std::shared_ptr<Backend>& b, const ApiContext& ctx, std::shared_ptr<void> hold) {
  auto fail = [&](const ApiError& e) {
    metrics_.count_rejected(rejection_reason(e));
    reply_error(res, e, ep.family);
  };
  auto parsed = ep.parse(body, ctx);
  if (!parsed.ok()) return fail(ApiError::bad_request(parsed.message()));
  if (!models_) unload_asked_ = parsed->keep_alive && *parsed->keep_alive == 0;
  if (!parsed->enable_thinking && b->thinking_default) parsed->enable_thinking = b->thinking_default;
  std::shared_ptr<ResponseWriter> writer = ep.writer(*parsed, ctx);
  ApiError error;
  std::shared_ptr<Generation> g = Generation::start(*b, std::move(*parsed), limits_, &error, std::move(hold));
  if (!g) return fail(error);

  StreamSettings s;
  s.client_fd = current_client_socket();
  s.shutdown_fd = shutdown_fd_;
  s.ping_interval = opt_.ping_interval;
  s.metrics = &metrics_;
  if (g->request().stream) return stream_generation(res, std::move(g), std::move(writer), s);
  switch (wait_for_answer(*g, s)) {
    case WaitOutcome::kFinished:
      if (g->error()) return reply_error(res, *g->error(), ep.family);
      return reply_json(res, writer->complete(*g));
    case WaitOutcome::kClientGone:
      res.status = 499;
      return;  // nobody reads it; counted as such
    case WaitOutcome::kShutdown:
      return reply_error(res, {ApiError::Kind::kShuttingDown, "the server is shutting down"}, ep.family);
  }
}

void Server::tokenize(const httplib::Request& req, httplib::Response& res, const Backend& b) {
  auto run = [&]() -> Result<ojson> {
    HYLO_ASSIGN_OR_RETURN(ojson body, parse_body(req.body));
    FieldReader r(body);
    HYLO_ASSIGN_OR_RETURN(auto content, r.string("content"));
    if (!content) return make_error("content is required");
    HYLO_ASSIGN_OR_RETURN(auto parse_special, r.boolean("parse_special"));
    HYLO_ASSIGN_OR_RETURN(auto add_special, r.boolean("add_special"));
    HYLO_ASSIGN_OR_RETURN(auto with_pieces, r.boolean("with_pieces"));
    const tokenizer::Tokenizer& tok = *b.tokenizer;
    std::vector<int32_t> ids;
    if (add_special.value_or(false) && tok.add_bos() && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
    for (int32_t id : tok.encode(*content, parse_special.value_or(true))) ids.push_back(id);
    ojson tokens = ojson::array();
    for (int32_t id : ids) {
      if (with_pieces.value_or(false))
        tokens.push_back({{"id", id}, {"piece", tok.token_to_piece(id)}});
      else
        tokens.push_back(id);
    }
    return ojson{{"tokens", std::move(tokens)}};
  };
  auto out = run();
  if (!out.ok()) return reply_error(res, ApiError::bad_request(out.message()), ApiFamily::kOpenAI);
  reply_json(res, *out);
}

void Server::detokenize(const httplib::Request& req, httplib::Response& res, const Backend& b) {
  auto run = [&]() -> Result<ojson> {
    HYLO_ASSIGN_OR_RETURN(ojson body, parse_body(req.body));
    HYLO_ASSIGN_OR_RETURN(const ojson* tokens, FieldReader(body).array("tokens"));
    if (tokens == nullptr) return make_error("tokens is required");
    const tokenizer::Tokenizer& tok = *b.tokenizer;
    std::vector<int32_t> ids;
    for (size_t i = 0; i < tokens->size(); ++i) {
      const ojson& t = (*tokens)[i];
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= tok.n_vocab())
        return make_error("tokens[{}] must be a token id in [0, {})", i, tok.n_vocab());
      ids.push_back(t.get<int32_t>());
    }
    return ojson{{"content", tok.decode(ids)}};
  };
  auto out = run();
  if (!out.ok()) return reply_error(res, ApiError::bad_request(out.message()), ApiFamily::kOpenAI);
  reply_json(res, *out);
}

void Server::apply_template(const httplib::Request& req, httplib::Response& res, const Backend& b,
                            const ApiContext& ctx) {
  auto run = [&]() -> Result<ojson> {
    HYLO_ASSIGN_OR_RETURN(ojson body, parse_body(req.body));
    // The same reading as a chat request, so what comes back is the prompt a chat would get.
    HYLO_ASSIGN_OR_RETURN(GenerationRequest g, parse_openai_chat(body, ctx));
    if (!g.enable_thinking && b.thinking_default) g.enable_thinking = b.thinking_default;
    auto prompt = render_chat_prompt(b, g);
    if (!prompt.ok()) return make_error("the chat template could not render the messages: {}", prompt.message());
    return ojson{{"prompt", *prompt}};
  };
  auto out = run();
  if (!out.ok()) return reply_error(res, ApiError::bad_request(out.message()), ApiFamily::kOpenAI);
  reply_json(res, *out);
}

void Server::props(const httplib::Request&, httplib::Response& res, const Backend& bk) {
  const Backend* b = &bk;
  // Without an API key nobody is authenticated: the file's place on disk is not theirs to see.
  const std::string& model_path = opt_.api_key.empty() ? b->description.id : b->description.path;
  const runtime::SamplingParams& s = b->sampling;
  ojson props{
      {"default_generation_settings",
       {{"n_ctx", b->n_ctx},
        {"params", {{"temperature", s.temperature}, {"top_k", s.top_k}, {"top_p", s.top_p}, {"min_p", s.min_p}}}}},
      {"total_slots", b->n_slots},
      {"model_path", model_path},
      {"model_alias", b->description.id},
      {"chat_template", b->chat_template->source()},
      {"build_info", "hylo " HYLO_VERSION}};
  const ojson settings = runtime_settings(*b);
  for (auto it = settings.begin(); it != settings.end(); ++it) props[it.key()] = *it;
  reply_json(res, props);
}

}  // namespace hylo::server
