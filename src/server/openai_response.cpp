// OpenAI answers: chat.completion / text_completion objects, their streamed chunks as server-sent
// events ("data: {...}", ": ping" comments, "data: [DONE]"), and the model list.
#include <algorithm>
#include <chrono>
#include <map>
#include <random>

#include "server/json_fields.h"
#include "server/openai_api.h"

namespace hylo::server {

namespace {

std::string random_id(const char* prefix) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += kChars[rng() % (sizeof kChars - 1)];
  return id;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string sse(const ojson& j) { return "data: " + dump_json(j) + "\n\n"; }

ojson bytes_of(const std::string& s) {
  ojson b = ojson::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// Chat logprobs: {"content":[{"token","logprob","bytes","top_logprobs":[...]}]}.
ojson chat_logprobs(const std::vector<TokenLogprob>& lps) {
  ojson content = ojson::array();
  for (const TokenLogprob& lp : lps) {
    ojson top = ojson::array();
    for (const auto& [piece, logprob] : lp.top)
      top.push_back({{"token", piece}, {"logprob", logprob}, {"bytes", bytes_of(piece)}});
    content.push_back({{"token", lp.piece},
                       {"logprob", lp.logprob},
                       {"bytes", bytes_of(lp.piece)},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}};
}

// Completions (legacy) logprobs: parallel arrays; text_offset counts from `offset`.
ojson completion_logprobs(const std::vector<TokenLogprob>& lps, size_t offset) {
  ojson tokens = ojson::array(), token_logprobs = ojson::array(), top = ojson::array(), offsets = ojson::array();
  for (const TokenLogprob& lp : lps) {
    tokens.push_back(lp.piece);
    if (!lp.has_logprob) {  // the prompt's first token
      token_logprobs.push_back(nullptr);
      top.push_back(nullptr);
      offsets.push_back(offset);
      offset += lp.piece.size();
      continue;
    }
    token_logprobs.push_back(lp.logprob);
    ojson alts = ojson::object();
    for (const auto& [piece, logprob] : lp.top) alts[piece] = logprob;
    top.push_back(std::move(alts));
    offsets.push_back(offset);
    offset += lp.piece.size();
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(token_logprobs)},
          {"top_logprobs", std::move(top)},
          {"text_offset", std::move(offsets)}};
}

ojson tool_call_json(const chat::ToolCall& c) {
  return {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}};
}

ojson usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

// hylo's extension, as llama-server reports it: where the time went.
ojson timings_json(const Usage& u) {
  const double prefilled = static_cast<double>(u.prompt_tokens - u.cached_tokens);
  ojson t = {{"cache_n", u.cached_tokens},
             {"prompt_n", u.prompt_tokens - u.cached_tokens},
             {"prompt_ms", u.prefill_seconds * 1e3},
             {"prompt_per_second", u.prefill_seconds > 0 ? prefilled / u.prefill_seconds : 0.0},
             {"predicted_n", u.completion_tokens},
             {"predicted_ms", u.decode_seconds * 1e3},
             {"predicted_per_second",
              u.decode_seconds > 0 ? static_cast<double>(u.completion_tokens) / u.decode_seconds : 0.0}};
  if (u.drafted_tokens > 0) {  // llama-server's names
    t["draft_n"] = u.drafted_tokens;
    t["draft_n_accepted"] = u.accepted_tokens;
    t["draft_acceptance_rate"] = static_cast<double>(u.accepted_tokens) / static_cast<double>(u.drafted_tokens);
  }
  return t;
}

// What the chat and completion writers share: ids, the chunk envelope, the stream's end.
class OpenAIWriter : public ResponseWriter {
 public:
  OpenAIWriter(const GenerationRequest& req, const ApiContext& ctx, const char* id_prefix, const char* object)
      : id_(random_id(id_prefix)),
        object_(object),
        model_(ctx.model_id),
        created_(unix_now()),
        include_usage_(req.stream && req.include_usage),
        logprobs_(req.logprobs) {}

  const char* stream_content_type() const override { return "text/event-stream"; }
  std::string keepalive() override { return ": ping\n\n"; }
  std::string stream_end(const Generation& g) override {
    std::string out;
    if (include_usage_) {
      ojson c = envelope(std::string(object_) + ".chunk", ojson::array());
      c["usage"] = usage_json(g.usage());
      c["timings"] = timings_json(g.usage());
      out += sse(c);
    }
    return out + "data: [DONE]\n\n";
  }
  std::string stream_error(const ApiError& e) override { return sse(error_body(e, ApiFamily::kOpenAI)); }

 protected:
  ojson envelope(const std::string& object, ojson choices) const {
    ojson j = {{"id", id_},
               {"object", object},
               {"created", created_},
               {"model", model_},
               {"system_fingerprint", "hylo-" HYLO_VERSION},
               {"choices", std::move(choices)}};
    return j;
  }
  // One streamed chunk holding one choice.
  std::string chunk(ojson choice) const {
    ojson c = envelope(std::string(object_) + ".chunk", ojson::array({std::move(choice)}));
    if (include_usage_) c["usage"] = nullptr;
    return sse(c);
  }
  // Prefill progress of long prompts, as SSE comments (clients skip them).
  static std::string progress(const Update& u) {
    if (u.prefill_done >= u.prefill_total) return "";
    return fmt::format(": prefill {}/{}\n\n", u.prefill_done, u.prefill_total);
  }

  std::string id_;
  const char* object_;
  std::string model_;
  int64_t created_;
  bool include_usage_;
  bool logprobs_;
};

class ChatWriter : public OpenAIWriter {
 public:
  ChatWriter(const GenerationRequest& req, const ApiContext& ctx)
      : OpenAIWriter(req, ctx, "chatcmpl-", "chat.completion"), reasoning_field_(ctx.reasoning_field) {}

  std::string stream_begin(const Generation& g) override {
    calls_sent_.assign(g.choices().size(), 0);
    streamed_calls_.assign(g.choices().size(), {});
    std::string out;
    for (const Choice& c : g.choices())
      out += chunk({{"index", c.index},
                    {"delta", {{"role", "assistant"}, {"content", ""}}},
                    {"logprobs", nullptr},
                    {"finish_reason", nullptr}});
    return out;
  }

  std::string stream_update(const Generation&, const Update& u) override {
    if (u.kind == Update::Kind::kPrefill) return progress(u);
    if (u.kind == Update::Kind::kFinish)
      return chunk(
          {{"index", u.index}, {"delta", ojson::object()}, {"logprobs", nullptr}, {"finish_reason", u.finish_reason}});
    ojson delta = ojson::object();
    if (!u.reasoning.empty()) delta[reasoning_field_] = u.reasoning;
    if (!u.content.empty()) delta["content"] = u.content;
    std::string out;
    if (!delta.empty() || !u.logprobs.empty())
      out = chunk({{"index", u.index},
                   {"delta", std::move(delta)},
                   {"logprobs", logprobs_ ? chat_logprobs(u.logprobs) : ojson(nullptr)},
                   {"finish_reason", nullptr}});
    for (const ToolCallDelta& d : u.tool_call_deltas) out += tool_call_delta(u.index, d);
    // A call that streamed is complete already; one that never began goes out whole.
    for (const chat::ToolCall& c : u.tool_calls)
      if (!streamed_calls_[static_cast<size_t>(u.index)].contains(c.id)) out += tool_call_chunks(u.index, c);
    return out;
  }

  ojson complete(const Generation& g) override {
    ojson choices = ojson::array();
    for (const Choice& c : g.choices()) {
      ojson message = {{"role", "assistant"}};
      message["content"] = c.content.empty() && !c.tool_calls.empty() ? ojson(nullptr) : ojson(c.content);
      if (!c.reasoning.empty()) message[reasoning_field_] = c.reasoning;
      if (!c.tool_calls.empty()) {
        ojson calls = ojson::array();
        for (const chat::ToolCall& call : c.tool_calls) calls.push_back(tool_call_json(call));
        message["tool_calls"] = std::move(calls);
      }
      choices.push_back({{"index", c.index},
                         {"message", std::move(message)},
                         {"logprobs", logprobs_ ? chat_logprobs(c.logprobs) : ojson(nullptr)},
                         {"finish_reason", c.finish_reason}});
    }
    ojson j = envelope("chat.completion", std::move(choices));
    j["usage"] = usage_json(g.usage());
    j["timings"] = timings_json(g.usage());
    return j;
  }

 private:
  std::string call_chunk(int choice, ojson call) const {
    return chunk({{"index", choice},
                  {"delta", {{"tool_calls", ojson::array({std::move(call)})}}},
                  {"logprobs", nullptr},
                  {"finish_reason", nullptr}});
  }

  // A call as OpenAI streams one: a first delta with index, id, type and name (arguments ""),
  // then pieces of its arguments that the client appends, as the model writes them.
  std::string tool_call_delta(int choice, const ToolCallDelta& d) {
    std::map<std::string, int>& streamed = streamed_calls_[static_cast<size_t>(choice)];
    if (d.first) {
      const int index = calls_sent_[static_cast<size_t>(choice)]++;
      streamed[d.id] = index;
      return call_chunk(
          choice,
          {{"index", index}, {"id", d.id}, {"type", "function"}, {"function", {{"name", d.name}, {"arguments", ""}}}});
    }
    auto it = streamed.find(d.id);
    if (it == streamed.end() || d.arguments.empty()) return "";
    return call_chunk(choice, {{"index", it->second}, {"function", {{"arguments", d.arguments}}}});
  }

  // A call that did not stream (its name came late, or it is an error entry), sent whole in the
  // same form: the first delta, then the arguments in pieces.
  std::string tool_call_chunks(int choice, const chat::ToolCall& c) {
    constexpr size_t kPieceBytes = 32;
    const int index = calls_sent_[static_cast<size_t>(choice)]++;
    std::string out = call_chunk(
        choice,
        {{"index", index}, {"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", ""}}}});
    const std::string& args = c.arguments;
    for (size_t at = 0; at < args.size();) {
      size_t end = std::min(args.size(), at + kPieceBytes);
      // Never inside a UTF-8 character: back up over continuation bytes.
      while (end < args.size() && end > at + 1 && (static_cast<unsigned char>(args[end]) & 0xC0) == 0x80) --end;
      out += call_chunk(choice, {{"index", index}, {"function", {{"arguments", args.substr(at, end - at)}}}});
      at = end;
    }
    return out;
  }

  std::string reasoning_field_;
  std::vector<int> calls_sent_;                             // per choice: index of the next streamed tool call
  std::vector<std::map<std::string, int>> streamed_calls_;  // per choice: calls that began streaming, by id
};

class CompletionWriter : public OpenAIWriter {
 public:
  CompletionWriter(const GenerationRequest& req, const ApiContext& ctx)
      : OpenAIWriter(req, ctx, "cmpl-", "text_completion"), echo_(req.echo) {}

  std::string stream_begin(const Generation& g) override {
    offsets_.assign(g.choices().size(), 0);
    prompt_offsets_.assign(g.choices().size(), 0);
    if (!echo_) return "";
    std::string out;
    for (const Choice& c : g.choices()) {
      const std::string& prompt = g.prompt_texts()[static_cast<size_t>(c.prompt_index)];
      offsets_[static_cast<size_t>(c.index)] = prompt.size();
      out += chunk({{"index", c.index}, {"text", prompt}, {"logprobs", nullptr}, {"finish_reason", nullptr}});
    }
    return out;
  }

  std::string stream_update(const Generation&, const Update& u) override {
    if (u.kind == Update::Kind::kPrefill) return progress(u);
    if (u.kind == Update::Kind::kFinish)
      return chunk({{"index", u.index}, {"text", ""}, {"logprobs", nullptr}, {"finish_reason", u.finish_reason}});
    if (!u.prompt_logprobs.empty()) {  // scored prompt tokens: the echoed text's logprobs
      size_t& at = prompt_offsets_[static_cast<size_t>(u.index)];
      ojson lp = completion_logprobs(u.prompt_logprobs, at);
      for (const TokenLogprob& t : u.prompt_logprobs) at += t.piece.size();
      return chunk({{"index", u.index}, {"text", ""}, {"logprobs", std::move(lp)}, {"finish_reason", nullptr}});
    }
    size_t& offset = offsets_[static_cast<size_t>(u.index)];
    ojson lp = logprobs_ ? completion_logprobs(u.logprobs, offset) : ojson(nullptr);
    for (const TokenLogprob& t : u.logprobs) offset += t.piece.size();
    return chunk({{"index", u.index}, {"text", u.content}, {"logprobs", std::move(lp)}, {"finish_reason", nullptr}});
  }

  ojson complete(const Generation& g) override {
    ojson choices = ojson::array();
    for (const Choice& c : g.choices()) {
      const std::string prefix = echo_ ? g.prompt_texts()[static_cast<size_t>(c.prompt_index)] : "";
      ojson lp = nullptr;
      if (logprobs_ && !c.prompt_logprobs.empty()) {  // scored: the prompt's tokens, then the output's
        std::vector<TokenLogprob> all = c.prompt_logprobs;
        all.insert(all.end(), c.logprobs.begin(), c.logprobs.end());
        lp = completion_logprobs(all, 0);
      } else if (logprobs_) {
        lp = completion_logprobs(c.logprobs, prefix.size());
      }
      choices.push_back({{"index", c.index},
                         {"text", prefix + c.content},
                         {"logprobs", std::move(lp)},
                         {"finish_reason", c.finish_reason}});
    }
    ojson j = envelope("text_completion", std::move(choices));
    j["usage"] = usage_json(g.usage());
    j["timings"] = timings_json(g.usage());
    return j;
  }

 private:
  bool echo_;
  std::vector<size_t> offsets_;         // per choice: text offset of the next logprob token
  std::vector<size_t> prompt_offsets_;  // per choice: text offset of the next scored prompt token
};

}  // namespace

std::shared_ptr<ResponseWriter> openai_chat_writer(const GenerationRequest& req, const ApiContext& ctx) {
  return std::make_shared<ChatWriter>(req, ctx);
}

std::shared_ptr<ResponseWriter> openai_completion_writer(const GenerationRequest& req, const ApiContext& ctx) {
  return std::make_shared<CompletionWriter>(req, ctx);
}

ojson openai_models(const ModelDescription& d, int32_t n_ctx, int n_slots) {
  ojson meta = {{"vocab_type", 2},  // byte-level BPE, as llama-server numbers it
                {"n_vocab", d.n_vocab}, {"n_ctx_train", d.n_ctx_train}, {"n_ctx", n_ctx},
                {"n_embd", d.n_embd},   {"n_params", d.n_params},       {"size", d.size_bytes},
                {"n_slots", n_slots},   {"architecture", d.arch}};
  return {{"object", "list"},
          {"data", ojson::array({{{"id", d.id},
                                  {"object", "model"},
                                  {"created", d.modified_unix},
                                  {"owned_by", "hylo"},
                                  {"meta", std::move(meta)}}})}};
}

}  // namespace hylo::server
