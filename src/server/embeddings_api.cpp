// Embedding requests and answers for both API families (see embeddings_api.h).
#include "server/embeddings_api.h"

#include "server/json_fields.h"
#include "server/ollama_api.h"

namespace hylo::server {

namespace {

// Inputs as prompts: strings, or token ids checked against the vocabulary.
Status read_inputs(const ojson* input, const ApiContext& ctx, bool allow_tokens, GenerationRequest* g) {
  const char* shape = allow_tokens ? "input must be a string, an array of strings, an array of token ids or an "
                                     "array of such arrays"
                                   : "input must be a string or an array of strings";
  if (input == nullptr) return make_error("input is required");
  auto tokens = [&](const ojson& a) -> Result<PromptInput> {
    PromptInput p;
    p.is_tokens = true;
    for (const auto& t : a) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= ctx.n_vocab)
        return make_error("input token ids must be integers in [0, {})", ctx.n_vocab);
      p.tokens.push_back(t.get<int32_t>());
    }
    return p;
  };
  if (input->is_string()) {
    g->prompts.push_back({input->get<std::string>(), {}, false});
  } else if (input->is_array() && !input->empty()) {
    if (allow_tokens && (*input)[0].is_number()) {
      HYLO_ASSIGN_OR_RETURN(PromptInput p, tokens(*input));
      g->prompts.push_back(std::move(p));
    } else {
      for (const auto& item : *input) {
        if (item.is_string()) {
          g->prompts.push_back({item.get<std::string>(), {}, false});
        } else if (allow_tokens && item.is_array()) {
          HYLO_ASSIGN_OR_RETURN(PromptInput p, tokens(item));
          g->prompts.push_back(std::move(p));
        } else {
          return make_error("{}", shape);
        }
      }
    }
  } else {
    return make_error("{}", shape);
  }
  // Each input holds a slot while it is prefilled; the same bound as a request's choices.
  if (g->prompts.size() > static_cast<size_t>(ctx.max_choices))
    return make_error("input may hold at most {} items", ctx.max_choices);
  for (size_t i = 0; i < g->prompts.size(); ++i)
    if (!g->prompts[i].is_tokens && g->prompts[i].text.empty()) return make_error("input[{}] is empty", i);
  g->embed = true;
  g->parse_reasoning = false;
  g->parse_tool_calls = false;
  g->sampling.temperature = 0;
  return ok_status();
}

ojson vector_json(const std::vector<float>& v) {
  ojson out = ojson::array();
  for (float x : v) out.push_back(x);
  return out;
}

// Embeddings are answered whole; the streaming hooks are never used (stream is always false).
class EmbeddingsWriter : public ResponseWriter {
 public:
  const char* stream_content_type() const override { return "application/json"; }
  std::string stream_begin(const Generation&) override { return ""; }
  std::string stream_update(const Generation&, const Update&) override { return ""; }
  std::string stream_end(const Generation&) override { return ""; }
  std::string stream_error(const ApiError&) override { return ""; }
  std::string keepalive() override { return ""; }
};

class OpenAIEmbeddingsWriter : public EmbeddingsWriter {
 public:
  explicit OpenAIEmbeddingsWriter(const ApiContext& ctx) : model_(ctx.model_id) {}
  ojson complete(const Generation& g) override {
    ojson data = ojson::array();
    for (const Choice& c : g.choices())
      data.push_back({{"object", "embedding"}, {"index", c.index}, {"embedding", vector_json(c.embedding)}});
    const Usage u = g.usage();
    return {{"object", "list"},
            {"data", std::move(data)},
            {"model", model_},
            {"usage", {{"prompt_tokens", u.prompt_tokens}, {"total_tokens", u.prompt_tokens}}}};
  }

 private:
  std::string model_;
};

class OllamaEmbedWriter : public EmbeddingsWriter {
 public:
  explicit OllamaEmbedWriter(const ApiContext& ctx) : model_(ctx.model_id) {}
  ojson complete(const Generation& g) override {
    ojson embeddings = ojson::array();
    for (const Choice& c : g.choices()) embeddings.push_back(vector_json(c.embedding));
    const Usage u = g.usage();
    return {{"model", model_},
            {"embeddings", std::move(embeddings)},
            {"total_duration", static_cast<int64_t>(u.total_seconds * 1e9)},
            {"load_duration", 0},
            {"prompt_eval_count", u.prompt_tokens}};
  }

 private:
  std::string model_;
};

class OllamaLegacyWriter : public EmbeddingsWriter {
 public:
  ojson complete(const Generation& g) override { return {{"embedding", vector_json(g.choices().front().embedding)}}; }
};

}  // namespace

Result<GenerationRequest> parse_openai_embeddings(const ojson& body, const ApiContext& ctx) {
  GenerationRequest g;
  FieldReader r(body);
  HYLO_ASSIGN_OR_RETURN(auto model, r.string("model"));
  g.model = model.value_or("");
  HYLO_ASSIGN_OR_RETURN(auto format, r.string("encoding_format"));
  if (format && *format != "float") return make_error("encoding_format must be \"float\" (base64 is not supported)");
  HYLO_ASSIGN_OR_RETURN(auto dimensions, r.integer("dimensions", 1, 1 << 20));
  if (dimensions) return make_error("dimensions is not supported (the model's embedding size is fixed)");
  HYLO_TRY(read_inputs(r.get("input"), ctx, /*allow_tokens=*/true, &g));
  return g;
}

Result<GenerationRequest> parse_ollama_embed(const ojson& body, const ApiContext& ctx) {
  GenerationRequest g;
  FieldReader r(body);
  HYLO_ASSIGN_OR_RETURN(auto model, r.string("model"));
  g.model = model.value_or("");
  HYLO_ASSIGN_OR_RETURN(g.keep_alive, ollama_keep_alive(body));
  HYLO_TRY(read_inputs(r.get("input"), ctx, /*allow_tokens=*/false, &g));
  return g;
}

Result<GenerationRequest> parse_ollama_embeddings_legacy(const ojson& body, const ApiContext& ctx) {
  GenerationRequest g;
  FieldReader r(body);
  HYLO_ASSIGN_OR_RETURN(auto model, r.string("model"));
  g.model = model.value_or("");
  HYLO_ASSIGN_OR_RETURN(g.keep_alive, ollama_keep_alive(body));
  HYLO_ASSIGN_OR_RETURN(auto prompt, r.string("prompt"));
  if (!prompt) return make_error("prompt is required (a string)");
  const ojson input = *prompt;
  HYLO_TRY(read_inputs(&input, ctx, /*allow_tokens=*/false, &g));
  return g;
}

std::shared_ptr<ResponseWriter> ollama_embeddings_legacy_writer(const GenerationRequest&, const ApiContext&) {
  return std::make_shared<OllamaLegacyWriter>();
}

std::shared_ptr<ResponseWriter> openai_embeddings_writer(const GenerationRequest&, const ApiContext& ctx) {
  return std::make_shared<OpenAIEmbeddingsWriter>(ctx);
}

std::shared_ptr<ResponseWriter> ollama_embed_writer(const GenerationRequest&, const ApiContext& ctx) {
  return std::make_shared<OllamaEmbedWriter>(ctx);
}

}  // namespace hylo::server
