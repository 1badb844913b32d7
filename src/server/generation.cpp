#include "server/generation.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "base/log.h"
#include "runtime/grammar_filter.h"
#include "runtime/json_schema.h"
#include "server/structured_output.h"
#include "server/token_filters.h"
#include "server/tool_call_filter.h"

namespace hylo::server {

// Engine-thread events for one request, handed to the HTTP thread. The callbacks hold it by
// shared_ptr, so it outlives a handler that returned early (client gone).
struct Generation::Channel {
  struct Event {
    enum class Kind { kPrefill, kToken, kPromptTokens, kEmbedding, kDone };
    Event(Kind k, int c) : kind(k), choice(c) {}
    Kind kind;
    int choice = 0;
    int32_t done = 0, total = 0;
    runtime::TokenEvent token;
    std::vector<runtime::TokenEvent> prompt_tokens;
    std::vector<float> embedding;
    runtime::RequestResult result;
  };

  Channel() : efd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~Channel() {
    if (efd >= 0) close(efd);
  }
  void push(Event e) {
    {
      std::lock_guard<std::mutex> lock(mu);
      events.push_back(std::move(e));
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(efd, &one, sizeof one);
  }
  std::vector<Event> take() {
    std::lock_guard<std::mutex> lock(mu);
    std::vector<Event> out;
    out.swap(events);
    return out;
  }

  std::mutex mu;
  std::vector<Event> events;
  int efd;
};

runtime::SamplingParams SamplingOverrides::apply(const runtime::SamplingParams& defaults, int index) const {
  runtime::SamplingParams p = defaults;
  if (temperature) p.temperature = *temperature;
  if (top_p) p.top_p = *top_p;
  if (min_p) p.min_p = *min_p;
  if (repeat_penalty) p.repeat_penalty = *repeat_penalty;
  if (presence_penalty) p.presence_penalty = *presence_penalty;
  if (frequency_penalty) p.frequency_penalty = *frequency_penalty;
  if (top_k) p.top_k = *top_k;
  if (repeat_last_n) p.repeat_last_n = *repeat_last_n;
  for (const auto& [id, bias] : logit_bias) p.logit_bias[id] = bias;
  if (seed) {
    p.seed = *seed + static_cast<uint64_t>(index);
    p.random_seed = false;
  } else {
    p.random_seed = true;
  }
  return p;
}

std::shared_ptr<Generation> Generation::start(const Backend& backend, GenerationRequest request,
                                              const GenerationLimits& limits, ApiError* error,
                                              std::shared_ptr<void> hold) {
  std::shared_ptr<Generation> g(new Generation());
  g->hold_ = std::move(hold);
  g->req_ = std::move(request);
  g->engine_ = backend.engine;
  g->tokenizer_ = backend.tokenizer;
  std::optional<ApiError> e = g->prepare(backend);
  if (!e) e = g->submit(backend, limits);
  if (e) {
    *error = std::move(*e);
    return nullptr;
  }
  return g;
}

Result<std::string> render_chat_prompt(const Backend& b, const GenerationRequest& req) {
  const nlohmann::ordered_json& messages = req.messages;
  const bool prefill = messages.is_array() && messages.size() > 1 && messages.back().value("role", "") == "assistant" &&
                       !messages.back().contains("tool_calls") && messages.back()["content"].is_string();
  if (!prefill)
    return b.chat_template->render(messages, req.tools, /*add_generation_prompt=*/true, req.enable_thinking, b.special);
  nlohmann::ordered_json before = messages;
  before.erase(before.size() - 1);
  HYLO_ASSIGN_OR_RETURN(std::string text, b.chat_template->render(before, req.tools, /*add_generation_prompt=*/true,
                                                                  req.enable_thinking, b.special));
  return text + messages.back()["content"].get<std::string>();
}

namespace {

// The fill-in-the-middle prompt as llama-server builds it for Qwen-style vocabularies: other files
// as repository context (<|repo_name|>, <|file_sep|> name), then <|fim_prefix|> prefix
// <|fim_suffix|> suffix <|fim_middle|> and the start of the answer. Client text is never read
// as special tokens.
Result<std::vector<int32_t>> fim_prompt(const tokenizer::Tokenizer& tok, const FimInput& f) {
  const auto pre = tok.find_token("<|fim_prefix|>"), suf = tok.find_token("<|fim_suffix|>"),
             mid = tok.find_token("<|fim_middle|>");
  if (!pre || !suf || !mid)
    return make_error(
        "this model's vocabulary has no fill-in-the-middle tokens (<|fim_prefix|>, <|fim_suffix|>, "
        "<|fim_middle|>); use a code model that has them, such as Qwen3-Coder");
  std::vector<int32_t> ids;
  auto text = [&](const std::string& t) {
    const std::vector<int32_t> enc = tok.encode(t, /*parse_special=*/false);
    ids.insert(ids.end(), enc.begin(), enc.end());
  };
  if (tok.add_bos() && tok.bos_id() >= 0) ids.push_back(tok.bos_id());
  if (!f.extra.empty()) {
    const auto repo = tok.find_token("<|repo_name|>"), sep = tok.find_token("<|file_sep|>");
    if (repo) {
      ids.push_back(*repo);
      text("myproject\n");
    }
    for (const auto& [name, body] : f.extra) {
      if (sep) {
        ids.push_back(*sep);
        text(name + "\n");
      }
      text(body);
    }
    if (sep) {
      ids.push_back(*sep);
      text("filename\n");
    }
  }
  ids.push_back(*pre);
  text(f.prefix);
  ids.push_back(*suf);
  text(f.suffix);
  ids.push_back(*mid);
  text(f.middle);
  return ids;
}

}  // namespace

std::optional<ApiError> Generation::prepare(const Backend& b) {
  const tokenizer::Tokenizer& tok = *b.tokenizer;
  if (req_.fim) {
    auto ids = fim_prompt(tok, *req_.fim);
    if (!ids.ok()) return ApiError::bad_request(ids.message());
    prompt_tokens_.push_back(std::move(*ids));
    prompt_texts_.push_back(req_.fim->prefix);
  } else if (req_.is_chat()) {
    auto text = render_chat_prompt(b, req_);
    if (!text.ok()) {
      std::string m = text.message();
      if (m.rfind("[chat] ", 0) == 0) m = m.substr(7);
      return ApiError::bad_request("the chat template could not render the messages: " + m);
    }
    thinking_open_ = chat::prompt_opens_thinking(*text);
    prompt_tokens_.push_back(req_.context_prefix);
    const std::vector<int32_t> ids = tok.encode(*text, /*parse_special=*/true);
    prompt_tokens_.back().insert(prompt_tokens_.back().end(), ids.begin(), ids.end());
    prompt_texts_.push_back(std::move(*text));
  } else {
    for (size_t i = 0; i < req_.prompts.size(); ++i) {
      const PromptInput& p = req_.prompts[i];
      std::vector<int32_t> ids = req_.context_prefix;
      if (p.is_tokens) {
        ids.insert(ids.end(), p.tokens.begin(), p.tokens.end());
        prompt_texts_.push_back(tok.decode(p.tokens));
      } else {
        const std::vector<int32_t> enc = tok.encode(p.text, /*parse_special=*/true);
        ids.insert(ids.end(), enc.begin(), enc.end());
        prompt_texts_.push_back(p.text);
      }
      prompt_tokens_.push_back(std::move(ids));
    }
  }
  for (const auto& ids : prompt_tokens_)  // ids from the client (token prompts, Ollama's context)
    for (int32_t t : ids)
      if (t < 0 || t >= tok.n_vocab())
        return ApiError::bad_request(
            fmt::format("prompt token {} is outside the vocabulary [0, {})", t, tok.n_vocab()));

  // Ollama's num_ctx may ask for less than the slot holds, never more.
  n_ctx_ = b.n_ctx;
  if (req_.num_ctx && *req_.num_ctx > 0) n_ctx_ = std::min(n_ctx_, *req_.num_ctx);
  for (const auto& ids : prompt_tokens_) {
    if (ids.empty()) return ApiError::bad_request("the prompt is empty");
    const auto n = static_cast<int32_t>(ids.size());
    if (n >= n_ctx_) return ApiError::context_exceeded(n, n_ctx_);
  }
  return std::nullopt;
}

Result<std::vector<ToolSpec>> Generation::required_tool_specs(chat::ToolCallFormat format) const {
  std::vector<ToolSpec> specs;
  for (const std::string& name : req_.required_tools) {
    ToolSpec spec{name, {}, {}, nullptr};
    for (const auto& t : req_.tools) {
      if (t["function"]["name"] != name) continue;
      const auto& fn = t["function"];
      if (!fn.contains("parameters") || !fn["parameters"].is_object()) continue;
      const auto& params = fn["parameters"];
      HYLO_ASSIGN_OR_RETURN(spec.arguments,
                            compile_json_schema(params, fmt::format("the parameters of tool '{}'", name)));
      const bool xml = format == chat::ToolCallFormat::kXml;
      if (params.contains("properties") && params["properties"].is_object()) {
        for (const auto& [key, value] : params["properties"].items()) {
          spec.parameters.push_back(key);
          if (!xml) continue;
          const std::string field = fmt::format("the parameters of tool '{}'", name);
          auto gbnf = runtime::xml_parameter_gbnf(value, params, "#/properties/" + key, "\n</parameter>\n");
          if (!gbnf.ok()) {
            std::string m = gbnf.message();
            if (m.rfind("[json_schema] ", 0) == 0) m = m.substr(14);
            return make_error("{}: {}", field, m);
          }
          std::shared_ptr<const runtime::Grammar> g;
          if (!gbnf->empty()) {
            auto parsed = runtime::Grammar::parse(*gbnf);
            if (!parsed.ok()) return make_error("{}: {}", field, parsed.message());
            g = *parsed;
          }
          spec.values.push_back(std::move(g));
        }
      }
      if (params.contains("required") && params["required"].is_array())
        for (const auto& r : params["required"]) {
          if (!r.is_string()) continue;
          spec.required.push_back(r.get<std::string>());
          if (std::find(spec.parameters.begin(), spec.parameters.end(), spec.required.back()) == spec.parameters.end())
            spec.parameters.push_back(spec.required.back());
        }
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

std::optional<ApiError> Generation::submit(const Backend& b, const GenerationLimits& limits) {
  channel_ = std::make_shared<Channel>();
  if (channel_->efd < 0) return ApiError::internal("cannot create an event descriptor");
  const bool parse = req_.is_chat();
  const bool call_tool = !req_.required_tools.empty() && parse;
  std::shared_ptr<const TokenTrie> trie = req_.json_mode || req_.grammar || call_tool ? b.token_trie() : nullptr;
  std::vector<ToolSpec> tool_specs;
  if (call_tool) {
    auto specs = required_tool_specs(b.chat_template->tool_call_format());
    if (!specs.ok()) return ApiError::bad_request(specs.message());
    tool_specs = std::move(*specs);
  }
  std::vector<int32_t> forced;
  if (!req_.forced_output.empty() && limits.test_hooks) forced = b.tokenizer->encode(req_.forced_output, true);

  int index = 0;
  for (size_t p = 0; p < prompt_tokens_.size(); ++p) {
    const auto n_prompt = static_cast<int32_t>(prompt_tokens_[p].size());
    int32_t max_tokens = req_.max_tokens.value_or(-1);
    if (limits.max_tokens_cap > 0)
      max_tokens = max_tokens < 0 ? limits.max_tokens_cap : std::min(max_tokens, limits.max_tokens_cap);
    if (n_ctx_ < b.n_ctx) {  // a smaller context than the slot's: stop where it would end
      const int32_t room = n_ctx_ - n_prompt;
      max_tokens = max_tokens < 0 ? room : std::min(max_tokens, room);
    }
    for (int j = 0; j < req_.n; ++j, ++index) {
      Choice c;
      c.index = index;
      c.prompt_index = static_cast<int>(p);
      choices_.push_back(std::move(c));
      if (parse) {
        chat::OutputParserOptions po;
        po.format = b.chat_template->tool_call_format();
        po.thinking_open = thinking_open_;
        po.parse_reasoning = req_.parse_reasoning;
        po.parse_tool_calls = req_.parse_tool_calls && req_.tools.is_array() && !req_.tools.empty();
        po.tools = req_.tools;
        parsers_.push_back(std::make_unique<chat::OutputParser>(po));
      } else {
        parsers_.push_back(nullptr);
      }

      auto r = std::make_shared<runtime::Request>();
      r->prompt = prompt_tokens_[p];
      r->sampling = req_.sampling.apply(b.sampling, index);
      r->max_tokens = max_tokens;
      r->stop = req_.stop;
      r->ignore_eos = req_.ignore_eos;
      r->n_probs = req_.logprobs ? req_.top_logprobs : 0;
      r->prompt_logprobs = req_.prompt_logprobs;
      if (req_.embed) {
        r->pooling = limits.pooling;
        r->max_tokens = 0;
        r->on_embedding = [ch = channel_, index](const std::vector<float>& v) {
          Channel::Event e(Channel::Event::Kind::kEmbedding, index);
          e.embedding = v;
          ch->push(std::move(e));
        };
      }
      if (req_.n_draft) r->n_draft = *req_.n_draft;
      if (!forced.empty())
        r->filter = std::make_shared<ForcedOutputFilter>(forced, b.tokenizer->eos_id());
      else if (call_tool)  // tool_choice wins over response_format
        r->filter = std::make_shared<ToolCallFilter>(trie, b.chat_template->tool_call_format(), tool_specs,
                                                     ToolCallFilter::markup_of(*b.tokenizer), thinking_open_);
      else if (req_.grammar)
        r->filter = std::make_shared<runtime::GrammarFilter>(trie, req_.grammar, /*wait_for_think_end=*/thinking_open_);
      else if (trie)
        r->filter = std::make_shared<JsonFilter>(trie, /*wait_for_think_end=*/thinking_open_);
      std::shared_ptr<Channel> ch = channel_;
      r->on_prefill = [ch, index](int32_t done, int32_t total) {
        Channel::Event e(Channel::Event::Kind::kPrefill, index);
        e.done = done;
        e.total = total;
        ch->push(std::move(e));
      };
      r->on_token = [ch, index](const runtime::TokenEvent& t) {
        Channel::Event e(Channel::Event::Kind::kToken, index);
        e.token = t;
        ch->push(std::move(e));
      };
      if (req_.prompt_logprobs)
        r->on_prompt_tokens = [ch, index](const std::vector<runtime::TokenEvent>& events) {
          Channel::Event e(Channel::Event::Kind::kPromptTokens, index);
          e.prompt_tokens = events;
          ch->push(std::move(e));
        };
      r->on_done = [ch, index](const runtime::RequestResult& res) {
        Channel::Event e(Channel::Event::Kind::kDone, index);
        e.result = res;
        ch->push(std::move(e));
      };
      const runtime::SubmitError se = b.engine->submit(r);
      if (se.kind != runtime::SubmitError::kNone) {
        cancel();  // the choices already queued
        return from_submit_error(se);
      }
      requests_.push_back(std::move(r));
    }
  }
  return std::nullopt;
}

Generation::~Generation() { cancel(); }

void Generation::cancel() {
  bool any = false;
  for (size_t i = 0; i < requests_.size(); ++i) {
    if (choices_[i].done) continue;
    requests_[i]->cancelled.store(true);
    any = true;
  }
  if (any && engine_ != nullptr) engine_->poke();
}

bool Generation::finished() const {
  for (const Choice& c : choices_)
    if (!c.done) return false;
  return true;
}

Generation::Wake Generation::wait(int client_fd, int shutdown_fd, int timeout_ms) {
  pollfd fds[3];
  nfds_t n = 0;
  fds[n++] = {channel_->efd, POLLIN, 0};
  const nfds_t client_at = client_fd >= 0 ? n : 3;
  if (client_fd >= 0) fds[n++] = {client_fd, POLLRDHUP, 0};
  const nfds_t shutdown_at = shutdown_fd >= 0 ? n : 3;
  if (shutdown_fd >= 0) fds[n++] = {shutdown_fd, POLLIN, 0};
  int rc;
  do {
    rc = poll(fds, n, timeout_ms);
  } while (rc < 0 && errno == EINTR);
  if (rc <= 0) return Wake::kTimeout;
  if (client_at < 3 && (fds[client_at].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) return Wake::kClientGone;
  if (shutdown_at < 3 && (fds[shutdown_at].revents & POLLIN) != 0) return Wake::kShutdown;
  uint64_t count;
  [[maybe_unused]] ssize_t r = read(channel_->efd, &count, sizeof count);
  return Wake::kEvents;
}

void Generation::add_text(int index, const std::string& text, Update* u) {
  Choice& c = choices_[static_cast<size_t>(index)];
  if (!parsers_[static_cast<size_t>(index)]) {
    c.content += text;
    u->content += text;
    return;
  }
  add_events(c, parsers_[static_cast<size_t>(index)]->push(text), u);
}

void Generation::add_events(Choice& c, std::vector<chat::OutputEvent> events, Update* u) {
  for (chat::OutputEvent& ev : events) {
    switch (ev.kind) {
      case chat::OutputEvent::Kind::kReasoning:
        c.reasoning += ev.text;
        u->reasoning += ev.text;
        break;
      case chat::OutputEvent::Kind::kContent:
        c.content += ev.text;
        u->content += ev.text;
        break;
      case chat::OutputEvent::Kind::kToolCall:
        c.tool_calls.push_back(ev.tool_call);
        u->tool_calls.push_back(std::move(ev.tool_call));
        break;
      case chat::OutputEvent::Kind::kToolCallBegin:
        u->tool_call_deltas.push_back(
            {.call = ev.index, .id = ev.tool_call.id, .first = true, .name = ev.tool_call.name, .arguments = ""});
        break;
      case chat::OutputEvent::Kind::kToolCallArguments:
        u->tool_call_deltas.push_back(
            {.call = ev.index, .id = ev.tool_call.id, .first = false, .name = "", .arguments = ev.text});
        break;
    }
  }
}

void Generation::finish_choice(Choice& c, const runtime::RequestResult& r, std::vector<Update>* out) {
  Update tail;
  tail.index = c.index;
  if (auto& parser = parsers_[static_cast<size_t>(c.index)]) add_events(c, parser->finish(), &tail);
  if (!tail.reasoning.empty() || !tail.content.empty() || !tail.tool_calls.empty() || !tail.tool_call_deltas.empty())
    out->push_back(std::move(tail));
  c.done = true;
  c.result = r;
  // The access log's line for the generation (the HTTP line says only the route and status).
  log_info(
      "[server] generated: prompt {} tokens ({} cached), {} tokens out, queue {:.3f} s, prefill {:.3f} s, "
      "decode {:.3f} s, {}",
      r.n_prompt, r.n_cached, r.n_generated, r.queue_seconds, r.prefill_seconds, r.decode_seconds,
      runtime::finish_reason_name(r.reason));
  switch (r.reason) {
    case runtime::FinishReason::kStop:
      c.finish_reason = c.tool_calls.empty() ? "stop" : "tool_calls";
      break;
    case runtime::FinishReason::kLength:
    case runtime::FinishReason::kContext:
      c.finish_reason = "length";
      break;
    case runtime::FinishReason::kCancelled:
      c.finish_reason = "cancelled";
      if (!error_) error_ = ApiError{ApiError::Kind::kShuttingDown, "the request was cancelled"};
      break;
    case runtime::FinishReason::kError:
      c.finish_reason = "error";
      if (!error_) {
        ApiError e = ApiError::internal(r.error.empty() ? "generation failed" : r.error);
        if (r.error.find("shutting down") != std::string::npos) e.kind = ApiError::Kind::kShuttingDown;
        error_ = std::move(e);
      }
      break;
  }
  Update fin;
  fin.kind = Update::Kind::kFinish;
  fin.index = c.index;
  fin.finish_reason = c.finish_reason;
  out->push_back(std::move(fin));
}

void Generation::drain(std::vector<Update>* out) {
  for (Channel::Event& e : channel_->take()) {
    Choice& c = choices_[static_cast<size_t>(e.choice)];
    if (c.done) continue;
    switch (e.kind) {
      case Channel::Event::Kind::kPrefill: {
        Update u;
        u.kind = Update::Kind::kPrefill;
        u.index = e.choice;
        u.prefill_done = e.done;
        u.prefill_total = e.total;
        out->push_back(std::move(u));
        break;
      }
      case Channel::Event::Kind::kToken: {
        Update u;
        u.index = e.choice;
        if (e.token.token >= 0) {
          any_token_ = true;
          c.tokens.push_back(e.token.token);
          if (req_.logprobs) {
            TokenLogprob lp;
            lp.piece = tokenizer_->token_to_piece(e.token.token);
            lp.logprob = e.token.logprob;
            for (const runtime::TokenProb& t : e.token.top)
              lp.top.emplace_back(tokenizer_->token_to_piece(t.id), t.logprob);
            c.logprobs.push_back(lp);
            u.logprobs.push_back(std::move(lp));
          }
        }
        if (!e.token.text.empty()) add_text(e.choice, e.token.text, &u);
        if (!u.reasoning.empty() || !u.content.empty() || !u.tool_calls.empty() || !u.tool_call_deltas.empty() ||
            !u.logprobs.empty())
          out->push_back(std::move(u));
        break;
      }
      case Channel::Event::Kind::kPromptTokens: {
        Update u;
        u.index = e.choice;
        auto piece_of = [&](int32_t id, float logprob, const std::vector<runtime::TokenProb>& top) {
          TokenLogprob lp;
          lp.piece = tokenizer_->token_to_piece(id);
          lp.logprob = logprob;
          for (const runtime::TokenProb& t : top) lp.top.emplace_back(tokenizer_->token_to_piece(t.id), t.logprob);
          return lp;
        };
        if (c.prompt_logprobs.empty()) {  // the first prompt token: nothing to score it against
          TokenLogprob first = piece_of(prompt_tokens_[static_cast<size_t>(c.prompt_index)][0], 0, {});
          first.has_logprob = false;
          u.prompt_logprobs.push_back(std::move(first));
        }
        for (const runtime::TokenEvent& t : e.prompt_tokens)
          u.prompt_logprobs.push_back(piece_of(t.token, t.logprob, t.top));
        c.prompt_logprobs.insert(c.prompt_logprobs.end(), u.prompt_logprobs.begin(), u.prompt_logprobs.end());
        out->push_back(std::move(u));
        break;
      }
      case Channel::Event::Kind::kEmbedding:
        c.embedding = std::move(e.embedding);
        break;
      case Channel::Event::Kind::kDone:
        finish_choice(c, e.result, out);
        break;
    }
  }
}

Usage Generation::usage() const {
  Usage u;
  std::vector<bool> counted(prompt_tokens_.size(), false);
  for (const Choice& c : choices_) {
    if (!counted[static_cast<size_t>(c.prompt_index)]) {
      counted[static_cast<size_t>(c.prompt_index)] = true;
      u.prompt_tokens += static_cast<int64_t>(prompt_tokens_[static_cast<size_t>(c.prompt_index)].size());
      u.cached_tokens += c.result.n_cached;
    }
    u.completion_tokens += c.result.n_generated;
    u.drafted_tokens += c.result.n_drafted;
    u.accepted_tokens += c.result.n_accepted;
    u.prefill_seconds = std::max(u.prefill_seconds, c.result.prefill_seconds);
    u.decode_seconds = std::max(u.decode_seconds, c.result.decode_seconds);
  }
  u.total_seconds = timer_.seconds();
  return u;
}

}  // namespace hylo::server
