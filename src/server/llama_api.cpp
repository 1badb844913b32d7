// llama-server's native /completion and /infill requests and answers, and /slots. Field names
// and answer shapes follow llama-server's README; values hylo does not have are left out rather
// than invented.
#include "server/llama_api.h"

#include <algorithm>
#include <limits>

#include "server/json_fields.h"

namespace hylo::server {

namespace {

constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();

std::string sse(const ojson& j) { return "data: " + dump_json(j) + "\n\n"; }

// The sampling and length fields /completion and /infill share.
Status read_native(const FieldReader& r, const ApiContext& ctx, GenerationRequest* g) {
  HYLO_ASSIGN_OR_RETURN(LlamaSamplingFields f, read_llama_sampling(r, ctx.n_vocab, &g->sampling));
  HYLO_ASSIGN_OR_RETURN(auto n_predict, r.integer("n_predict", -2, kMaxInt32));
  HYLO_ASSIGN_OR_RETURN(auto stream, r.boolean("stream"));
  HYLO_ASSIGN_OR_RETURN(auto cache_prompt, r.boolean("cache_prompt"));
  HYLO_ASSIGN_OR_RETURN(auto n_probs, r.integer("n_probs", 0, 20));
  HYLO_ASSIGN_OR_RETURN(auto ignore_eos, r.boolean("ignore_eos"));
  HYLO_ASSIGN_OR_RETURN(g->stop, r.string_or_list("stop", 16));
  (void)cache_prompt;  // prompts are always reused from a slot's cache where they match
  if (f.top_p) g->sampling.top_p = static_cast<float>(*f.top_p);
  if (f.seed && *f.seed >= 0) g->sampling.seed = static_cast<uint64_t>(*f.seed);  // -1: a random seed, as llama-server
  if (n_predict && *n_predict >= 0) g->max_tokens = static_cast<int32_t>(*n_predict);  // -1, -2: no limit
  g->stream = stream.value_or(false);
  g->ignore_eos = ignore_eos.value_or(false);
  if (n_probs && *n_probs > 0) {
    g->logprobs = true;
    g->top_logprobs = static_cast<int>(*n_probs);
  }
  HYLO_ASSIGN_OR_RETURN(auto forced, r.string("test_forced_output"));
  if (forced) {
    if (!ctx.test_hooks) return make_error("test_forced_output needs the server's --test-hooks flag");
    g->forced_output = *forced;
  }
  g->parse_reasoning = false;
  g->parse_tool_calls = false;
  return ok_status();
}

ojson bytes_of(const std::string& s) {
  ojson b = ojson::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// llama-server's completion_probabilities: one entry per generated token.
ojson probabilities(const std::vector<TokenLogprob>& lps) {
  ojson out = ojson::array();
  for (const TokenLogprob& lp : lps) {
    ojson top = ojson::array();
    for (const auto& [piece, logprob] : lp.top)
      top.push_back({{"token", piece}, {"logprob", logprob}, {"bytes", bytes_of(piece)}});
    out.push_back({{"token", lp.piece},
                   {"logprob", lp.logprob},
                   {"bytes", bytes_of(lp.piece)},
                   {"top_logprobs", std::move(top)}});
  }
  return out;
}

ojson timings(const Usage& u) {
  const auto prompt_n = u.prompt_tokens - u.cached_tokens;
  const double prompt_ms = u.prefill_seconds * 1e3, predicted_ms = u.decode_seconds * 1e3;
  return {
      {"cache_n", u.cached_tokens},
      {"prompt_n", prompt_n},
      {"prompt_ms", prompt_ms},
      {"prompt_per_token_ms", prompt_n > 0 ? prompt_ms / static_cast<double>(prompt_n) : 0.0},
      {"prompt_per_second", prompt_ms > 0 ? static_cast<double>(prompt_n) * 1e3 / prompt_ms : 0.0},
      {"predicted_n", u.completion_tokens},
      {"predicted_ms", predicted_ms},
      {"predicted_per_token_ms",
       u.completion_tokens > 0 ? predicted_ms / static_cast<double>(u.completion_tokens) : 0.0},
      {"predicted_per_second", predicted_ms > 0 ? static_cast<double>(u.completion_tokens) * 1e3 / predicted_ms : 0.0}};
}

class CompletionWriter : public ResponseWriter {
 public:
  CompletionWriter(const GenerationRequest& req, const ApiContext& ctx)
      : model_(ctx.model_id), n_probs_(req.logprobs ? req.top_logprobs : 0), return_tokens_(req.return_tokens) {
    const runtime::SamplingParams p = req.sampling.apply(ctx.sampling, 0);
    settings_ = {{"n_predict", req.max_tokens.value_or(-1)},
                 {"seed", req.sampling.seed ? ojson(*req.sampling.seed) : ojson(-1)},
                 {"temperature", p.temperature},
                 {"top_k", p.top_k},
                 {"top_p", p.top_p},
                 {"min_p", p.min_p},
                 {"repeat_penalty", p.repeat_penalty},
                 {"repeat_last_n", p.repeat_last_n},
                 {"presence_penalty", p.presence_penalty},
                 {"frequency_penalty", p.frequency_penalty},
                 {"stop", req.stop},
                 {"n_probs", n_probs_},
                 {"ignore_eos", req.ignore_eos},
                 {"stream", req.stream},
                 {"cache_prompt", true}};
  }

  const char* stream_content_type() const override { return "text/event-stream"; }
  std::string keepalive() override { return ": ping\n\n"; }
  std::string stream_begin(const Generation&) override { return ""; }
  std::string stream_end(const Generation&) override { return ""; }  // llama-server sends no [DONE] here
  std::string stream_error(const ApiError& e) override { return sse(error_body(e, ApiFamily::kOpenAI)); }

  std::string stream_update(const Generation& g, const Update& u) override {
    if (u.kind == Update::Kind::kPrefill) return "";
    if (u.kind == Update::Kind::kFinish) {
      ojson j = final_fields(g, g.choices()[static_cast<size_t>(u.index)]);
      j["content"] = "";
      return sse(j);
    }
    if (u.content.empty() && u.logprobs.empty()) return "";
    ojson j = {{"index", u.index}, {"content", u.content},  {"tokens", ojson::array()}, {"stop", false},
               {"id_slot", -1},    {"tokens_predicted", 0}, {"tokens_evaluated", 0}};
    if (n_probs_ > 0) j["completion_probabilities"] = probabilities(u.logprobs);
    return sse(j);
  }

  // One prompt: its result; several: an array of results in prompt order (as llama-server).
  ojson complete(const Generation& g) override {
    ojson all = ojson::array();
    for (const Choice& c : g.choices()) {
      ojson j = final_fields(g, c);
      j["content"] = c.content;
      if (n_probs_ > 0) j["completion_probabilities"] = probabilities(c.logprobs);
      all.push_back(std::move(j));
    }
    return all.size() == 1 ? std::move(all[0]) : all;
  }

 private:
  // The fields of the last stream event and of the whole answer.
  ojson final_fields(const Generation& g, const Choice& c) const {
    const Usage u = g.usage();
    std::string stop_type = "none";
    if (c.finish_reason == "length")
      stop_type = "limit";
    else if (c.finish_reason == "stop")
      stop_type = c.result.stop_matched.empty() ? "eos" : "word";
    ojson tokens = ojson::array();
    if (return_tokens_)
      for (int32_t t : c.tokens) tokens.push_back(t);
    return {{"index", c.index},
            {"content", ""},
            {"tokens", std::move(tokens)},
            {"id_slot", c.result.slot},
            {"stop", true},
            {"model", model_},
            {"tokens_predicted", c.result.n_generated},
            {"tokens_evaluated", c.result.n_prompt},
            {"generation_settings", settings_},
            {"prompt", g.prompt_texts()[static_cast<size_t>(c.prompt_index)]},
            {"has_new_line", c.content.find('\n') != std::string::npos},
            {"truncated", false},
            {"stop_type", stop_type},
            {"stopping_word", c.result.stop_matched},
            {"tokens_cached", c.result.n_cached + c.result.n_generated},
            {"timings", timings(u)}};
  }

  std::string model_;
  int n_probs_;
  bool return_tokens_;
  ojson settings_;
};

}  // namespace

Result<GenerationRequest> parse_llama_completion(const ojson& body, const ApiContext& ctx) {
  GenerationRequest g;
  FieldReader r(body);
  const ojson* prompt = r.get("prompt");
  if (prompt == nullptr) return make_error("prompt is required");
  HYLO_TRY(read_prompts(*prompt, ctx.n_vocab, ctx.max_choices, &g.prompts));  // several: one answer each
  HYLO_TRY(read_native(r, ctx, &g));
  HYLO_ASSIGN_OR_RETURN(auto return_tokens, r.boolean("return_tokens"));
  g.return_tokens = return_tokens.value_or(false);
  return g;
}

Result<GenerationRequest> parse_llama_infill(const ojson& body, const ApiContext& ctx) {
  GenerationRequest g;
  FieldReader r(body);
  HYLO_ASSIGN_OR_RETURN(auto prefix, r.string("input_prefix"));
  HYLO_ASSIGN_OR_RETURN(auto suffix, r.string("input_suffix"));
  HYLO_ASSIGN_OR_RETURN(auto middle, r.string("prompt"));
  if (!prefix && !suffix) return make_error("input_prefix or input_suffix is required");
  FimInput fim{prefix.value_or(""), suffix.value_or(""), middle.value_or(""), {}};
  HYLO_ASSIGN_OR_RETURN(const ojson* extra, r.array("input_extra"));
  if (extra != nullptr) {
    for (size_t i = 0; i < extra->size(); ++i) {
      const ojson& chunk = (*extra)[i];
      if (!chunk.is_object()) return make_error("input_extra[{}] must be an object with filename and text", i);
      FieldReader c(chunk, fmt::format("input_extra[{}].", i));
      HYLO_ASSIGN_OR_RETURN(auto filename, c.string("filename"));
      HYLO_ASSIGN_OR_RETURN(auto text, c.string("text"));
      if (!text) return make_error("input_extra[{}].text is required", i);
      fim.extra.emplace_back(filename.value_or("tmp"), *text);
    }
  }
  g.fim = std::move(fim);
  HYLO_TRY(read_native(r, ctx, &g));
  HYLO_ASSIGN_OR_RETURN(auto return_tokens, r.boolean("return_tokens"));
  g.return_tokens = return_tokens.value_or(false);
  return g;
}

std::shared_ptr<ResponseWriter> llama_completion_writer(const GenerationRequest& req, const ApiContext& ctx) {
  return std::make_shared<CompletionWriter>(req, ctx);
}

ojson llama_slots(const std::vector<runtime::SlotState>& slots, const ApiContext& ctx) {
  ojson out = ojson::array();
  for (const runtime::SlotState& s : slots) {
    const int32_t remain = s.busy && s.max_tokens >= 0 ? s.max_tokens - s.n_decoded : -1;
    out.push_back({{"id", s.id},
                   {"id_task", -1},
                   {"n_ctx", ctx.n_ctx},
                   {"speculative", false},
                   {"is_processing", s.busy},
                   {"n_past", s.n_cached},
                   {"n_prompt_tokens", s.n_prompt},
                   {"next_token",
                    {{"has_next_token", s.busy},
                     {"has_new_line", false},
                     {"n_remain", remain},
                     {"n_decoded", s.n_decoded},
                     {"stopping_word", ""}}}});
  }
  return out;
}

}  // namespace hylo::server
