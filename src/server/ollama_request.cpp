// Ollama requests (/api/chat, /api/generate) read into GenerationRequest, with errors that name
// the offending field. Unknown options (num_gpu, mirostat, ...) are ignored, as Ollama does.
#include <limits>

#include "server/json_fields.h"
#include "server/ollama_api.h"
#include "server/structured_output.h"
#include "server/openai_api.h"

namespace hylo::server {

namespace {

constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();

Status read_options(const FieldReader& top, const ApiContext& ctx, GenerationRequest* g) {
  HYLO_ASSIGN_OR_RETURN(const ojson* options, top.object("options"));
  if (options == nullptr) return ok_status();
  FieldReader r(*options, "options.");
  HYLO_ASSIGN_OR_RETURN(auto num_ctx, r.integer("num_ctx", 1, kMaxInt32));
  HYLO_ASSIGN_OR_RETURN(auto num_predict, r.integer("num_predict", -2, kMaxInt32));
  HYLO_ASSIGN_OR_RETURN(auto temperature, r.number("temperature", 0, 100));
  HYLO_ASSIGN_OR_RETURN(auto top_k, r.integer("top_k", -1, kMaxInt32));
  HYLO_ASSIGN_OR_RETURN(auto top_p, r.number("top_p", 0, 1));
  HYLO_ASSIGN_OR_RETURN(auto min_p, r.number("min_p", 0, 1));
  HYLO_ASSIGN_OR_RETURN(auto repeat_penalty, r.number("repeat_penalty", 0, 100));
  HYLO_ASSIGN_OR_RETURN(auto repeat_last_n, r.integer("repeat_last_n", -1, kMaxInt32));
  HYLO_ASSIGN_OR_RETURN(auto presence, r.number("presence_penalty", -100, 100));
  HYLO_ASSIGN_OR_RETURN(auto frequency, r.number("frequency_penalty", -100, 100));
  HYLO_ASSIGN_OR_RETURN(auto seed,
                        r.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()));
  HYLO_ASSIGN_OR_RETURN(g->stop, r.string_or_list("stop", 16));
  if (num_ctx) g->num_ctx = static_cast<int32_t>(*num_ctx);
  if (num_predict && *num_predict >= 0) g->max_tokens = static_cast<int32_t>(*num_predict);  // -1, -2: no limit
  SamplingOverrides& s = g->sampling;
  if (temperature) s.temperature = static_cast<float>(*temperature);
  if (top_k) s.top_k = static_cast<int32_t>(std::min<int64_t>(std::max<int64_t>(*top_k, 0), ctx.n_vocab));
  if (top_p) {
    if (*top_p == 0)
      s.temperature = 0;
    else
      s.top_p = static_cast<float>(*top_p);
  }
  if (min_p) s.min_p = static_cast<float>(*min_p);
  if (repeat_penalty) {
    if (*repeat_penalty <= 0) return make_error("options.repeat_penalty must be greater than 0");
    s.repeat_penalty = static_cast<float>(*repeat_penalty);
  }
  if (repeat_last_n) s.repeat_last_n = static_cast<int32_t>(*repeat_last_n);
  if (presence) s.presence_penalty = static_cast<float>(*presence);
  if (frequency) s.frequency_penalty = static_cast<float>(*frequency);
  if (seed) s.seed = static_cast<uint64_t>(*seed);
  return ok_status();
}

// model, stream (Ollama streams unless told not to), format, think, options.
Status read_common(const FieldReader& r, const ApiContext& ctx, GenerationRequest* g) {
  HYLO_ASSIGN_OR_RETURN(auto model, r.string("model"));
  g->model = model.value_or("");
  HYLO_ASSIGN_OR_RETURN(auto stream, r.boolean("stream"));
  g->stream = stream.value_or(true);
  if (const ojson* format = r.get("format")) HYLO_TRY(read_ollama_format(*format, g));
  if (const ojson* think = r.get("think")) {
    // true/false, or a level ("high", "medium", "low") for models that have them: thinking on.
    if (think->is_boolean())
      g->enable_thinking = think->get<bool>();
    else if (think->is_string() && (*think == "high" || *think == "medium" || *think == "low"))
      g->enable_thinking = true;
    else
      return make_error("think must be a boolean or one of high, medium, low");
  }
  if ((g->json_mode || g->grammar) && !g->enable_thinking) g->enable_thinking = false;
  HYLO_ASSIGN_OR_RETURN(auto forced, r.string("test_forced_output"));
  if (forced) {
    if (!ctx.test_hooks) return make_error("test_forced_output needs the server's --test-hooks flag");
    g->forced_output = *forced;
  }
  return read_options(r, ctx, g);
}

Status no_images(const FieldReader& r, const std::string& field) {
  HYLO_ASSIGN_OR_RETURN(const ojson* images, r.array("images"));
  if (images != nullptr && !images->empty())
    return make_error("{}: images are not supported (this model reads text only)", field);
  return ok_status();
}

// Ollama messages in the OpenAI form the chat template reads.
Result<ojson> ollama_messages(const ojson& messages, chat::ToolCallFormat format) {
  ojson out = ojson::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const ojson& m = messages[i];
    const std::string path = fmt::format("messages[{}].", i);
    if (!m.is_object()) return make_error("messages[{}] must be an object", i);
    FieldReader r(m, path);
    HYLO_TRY(no_images(r, path + "images"));
    ojson msg = m;
    msg.erase("images");
    if (const ojson* content = r.get("content"); content != nullptr && !content->is_string())
      return make_error("{}content must be a string", path);
    if (!msg.contains("content") || msg["content"].is_null()) msg["content"] = "";
    HYLO_ASSIGN_OR_RETURN(auto thinking, r.string("thinking"));
    msg.erase("thinking");
    if (thinking && !thinking->empty()) msg["reasoning_content"] = *thinking;
    HYLO_ASSIGN_OR_RETURN(auto tool_name, r.string("tool_name"));
    msg.erase("tool_name");
    if (tool_name) msg["name"] = *tool_name;
    if (const ojson* calls = r.get("tool_calls")) {
      if (!calls->is_array()) return make_error("{}tool_calls must be an array", path);
      ojson oc = ojson::array();
      for (size_t j = 0; j < calls->size(); ++j) {
        const ojson& c = (*calls)[j];
        if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
          return make_error("{}tool_calls[{}].function must be an object", path, j);
        ojson fn = c["function"];
        fn.erase("index");
        oc.push_back({{"type", "function"}, {"function", std::move(fn)}});
      }
      msg["tool_calls"] = std::move(oc);
    }
    out.push_back(std::move(msg));
  }
  // The same checks and shapes as OpenAI messages from here on.
  return normalize_openai_messages(out, format);
}

}  // namespace

Result<GenerationRequest> parse_ollama_chat(const ojson& body, const ApiContext& ctx) {
  GenerationRequest g;
  FieldReader r(body);
  HYLO_ASSIGN_OR_RETURN(const ojson* messages, r.array("messages"));
  if (messages == nullptr || messages->empty()) return make_error("messages must be a non-empty array");
  HYLO_ASSIGN_OR_RETURN(g.messages, ollama_messages(*messages, ctx.tool_call_format));
  HYLO_TRY(read_common(r, ctx, &g));
  if (const ojson* tools = r.get("tools")) {
    HYLO_TRY(validate_tools(*tools, "tools"));
    if (!tools->empty()) g.tools = *tools;
  }
  return g;
}

Result<GenerationRequest> parse_ollama_generate(const ojson& body, const ApiContext& ctx) {
  GenerationRequest g;
  FieldReader r(body);
  HYLO_ASSIGN_OR_RETURN(auto prompt, r.string("prompt"));
  HYLO_ASSIGN_OR_RETURN(auto system, r.string("system"));
  HYLO_ASSIGN_OR_RETURN(auto raw, r.boolean("raw"));
  HYLO_ASSIGN_OR_RETURN(auto tmpl, r.string("template"));
  HYLO_ASSIGN_OR_RETURN(auto suffix, r.string("suffix"));
  HYLO_TRY(no_images(r, "images"));
  if (tmpl && !tmpl->empty()) return make_error("template is not supported (the model's chat template is used)");
  if (suffix && !suffix->empty()) return make_error("suffix is not supported");
  HYLO_ASSIGN_OR_RETURN(const ojson* context, r.array("context"));
  if (context != nullptr) {
    for (size_t i = 0; i < context->size(); ++i) {
      const ojson& t = (*context)[i];
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= ctx.n_vocab)
        return make_error("context[{}] must be a token id in [0, {})", i, ctx.n_vocab);
      g.context_prefix.push_back(t.get<int32_t>());
    }
  }
  HYLO_TRY(read_common(r, ctx, &g));
  if (raw.value_or(false)) {
    g.prompts.push_back({prompt.value_or(""), {}, false});
    g.parse_reasoning = false;
    g.parse_tool_calls = false;
  } else {
    g.messages = ojson::array();
    if (system && !system->empty()) g.messages.push_back({{"role", "system"}, {"content", *system}});
    g.messages.push_back({{"role", "user"}, {"content", prompt.value_or("")}});
    g.parse_tool_calls = false;
  }
  return g;
}

std::optional<ojson> ollama_load_only(const ojson& body, bool chat, const ApiContext& ctx) {
  const char* key = chat ? "messages" : "prompt";
  auto it = body.find(key);
  const bool empty = it == body.end() || it->is_null() || (it->is_array() && it->empty()) ||
                     (it->is_string() && it->get<std::string>().empty());
  if (!empty) return std::nullopt;
  if (!chat && body.contains("context") && body["context"].is_array() && !body["context"].empty()) return std::nullopt;
  ojson j = {{"model", ctx.model_id}, {"created_at", rfc3339_now()}};
  if (chat)
    j["message"] = {{"role", "assistant"}, {"content", ""}};
  else
    j["response"] = "";
  j["done"] = true;
  // keep_alive 0 asks Ollama to unload the model; hylo keeps it, but answers the same way.
  auto keep = body.find("keep_alive");
  const bool unload = keep != body.end() && keep->is_number() && keep->get<double>() == 0;
  j["done_reason"] = unload ? "unload" : "load";
  return j;
}

}  // namespace hylo::server
