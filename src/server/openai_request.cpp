// OpenAI requests (chat completions, completions) read into GenerationRequest, with errors that
// name the offending field.
#include <cmath>
#include <limits>

#include "runtime/engine.h"
#include "server/json_fields.h"
#include "server/openai_api.h"
#include "server/structured_output.h"

namespace hylo::server {

namespace {

constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();

// Text of a message's "content": a string, or text parts joined by newlines.
Result<std::string> content_text(const ojson& m, const std::string& path, bool may_be_null) {
  auto it = m.find("content");
  if (it == m.end() || it->is_null()) {
    if (may_be_null) return std::string();
    return make_error("{}content is required", path);
  }
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array()) return make_error("{}content must be a string or an array of parts", path);
  std::string text;
  for (size_t j = 0; j < it->size(); ++j) {
    const ojson& part = (*it)[j];
    const std::string p = fmt::format("{}content[{}]", path, j);
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      return make_error("{} must be an object with a \"type\"", p);
    const std::string type = part["type"].get<std::string>();
    if (type != "text") return make_error("{}: \"{}\" parts are not supported (this model reads text only)", p, type);
    if (!part.contains("text") || !part["text"].is_string()) return make_error("{}.text must be a string", p);
    if (!text.empty()) text += "\n";
    text += part["text"].get<std::string>();
  }
  return text;
}

Result<ojson> normalize_tool_calls(const ojson& calls, const std::string& path, chat::ToolCallFormat format) {
  if (!calls.is_array()) return make_error("{} must be an array", path);
  ojson out = ojson::array();
  for (size_t j = 0; j < calls.size(); ++j) {
    const ojson& c = calls[j];
    const std::string p = fmt::format("{}[{}]", path, j);
    if (!c.is_object()) return make_error("{} must be an object", p);
    FieldReader r(c, p + ".");
    HYLO_ASSIGN_OR_RETURN(auto id, r.string("id"));
    HYLO_ASSIGN_OR_RETURN(auto fn, r.object("function"));
    if (fn == nullptr) return make_error("{}.function must be an object", p);
    FieldReader f(*fn, p + ".function.");
    HYLO_ASSIGN_OR_RETURN(auto name, f.string("name"));
    if (!name || name->empty()) return make_error("{}.function.name must be a non-empty string", p);
    ojson args = ojson::object();
    if (const ojson* a = f.get("arguments")) {
      if (a->is_string()) {
        // Hermes templates print the text as it is; the XML form needs the object.
        args = *a;
        if (format == chat::ToolCallFormat::kXml) {
          args = ojson::parse(a->get<std::string>(), nullptr, /*allow_exceptions=*/false);
          if (!args.is_object()) return make_error("{}.function.arguments must be a JSON object (as text)", p);
        }
      } else if (a->is_object()) {
        args = *a;
      } else {
        return make_error("{}.function.arguments must be a string holding a JSON object", p);
      }
    }
    ojson call = {{"type", "function"}, {"function", {{"name", *name}, {"arguments", std::move(args)}}}};
    if (id) call["id"] = *id;
    out.push_back(std::move(call));
  }
  return out;
}

}  // namespace

Result<ojson> normalize_openai_messages(const ojson& messages, chat::ToolCallFormat format) {
  if (!messages.is_array() || messages.empty()) return make_error("messages must be a non-empty array");
  ojson out = ojson::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const ojson& m = messages[i];
    const std::string path = fmt::format("messages[{}].", i);
    if (!m.is_object()) return make_error("messages[{}] must be an object", i);
    FieldReader r(m, path);
    HYLO_ASSIGN_OR_RETURN(auto role, r.string("role"));
    if (!role) return make_error("{}role is required", path);
    if (*role == "developer") *role = "system";
    if (*role != "system" && *role != "user" && *role != "assistant" && *role != "tool")
      return make_error("{}role must be one of system, developer, user, assistant, tool", path);
    const bool assistant = *role == "assistant";
    HYLO_ASSIGN_OR_RETURN(auto content, content_text(m, path, assistant));
    ojson msg = {{"role", *role}, {"content", content}};
    HYLO_ASSIGN_OR_RETURN(auto name, r.string("name"));
    if (name) msg["name"] = *name;
    if (assistant) {
      HYLO_ASSIGN_OR_RETURN(auto reasoning, r.string("reasoning_content"));
      if (!reasoning) {
        HYLO_ASSIGN_OR_RETURN(auto alt, r.string("reasoning"));
        reasoning = alt;
      }
      if (reasoning && !reasoning->empty()) msg["reasoning_content"] = *reasoning;
      if (const ojson* calls = r.get("tool_calls")) {
        HYLO_ASSIGN_OR_RETURN(auto tc, normalize_tool_calls(*calls, path + "tool_calls", format));
        if (!tc.empty()) msg["tool_calls"] = std::move(tc);
      }
    }
    if (*role == "tool") {
      HYLO_ASSIGN_OR_RETURN(auto id, r.string("tool_call_id"));
      if (id) msg["tool_call_id"] = *id;
    }
    out.push_back(std::move(msg));
  }
  return out;
}

Status validate_tools(const ojson& tools, const std::string& field) {
  if (!tools.is_array()) return make_error("{} must be an array", field);
  for (size_t i = 0; i < tools.size(); ++i) {
    const ojson& t = tools[i];
    const std::string p = fmt::format("{}[{}]", field, i);
    if (!t.is_object()) return make_error("{} must be an object", p);
    FieldReader r(t, p + ".");
    HYLO_ASSIGN_OR_RETURN(auto type, r.string("type"));
    if (type && *type != "function") return make_error("{}.type must be \"function\"", p);
    HYLO_ASSIGN_OR_RETURN(auto fn, r.object("function"));
    if (fn == nullptr) return make_error("{}.function must be an object", p);
    FieldReader f(*fn, p + ".function.");
    HYLO_ASSIGN_OR_RETURN(auto name, f.string("name"));
    if (!name || name->empty()) return make_error("{}.function.name must be a non-empty string", p);
    HYLO_ASSIGN_OR_RETURN(auto description, f.string("description"));
    HYLO_ASSIGN_OR_RETURN(auto parameters, f.object("parameters"));
    (void)description;
    (void)parameters;
  }
  return ok_status();
}

namespace {

// Sampling, length, stop, n, logprobs and streaming fields common to both endpoints.
Status read_common(const FieldReader& r, const ApiContext& ctx, GenerationRequest* g) {
  HYLO_ASSIGN_OR_RETURN(auto model, r.string("model"));
  g->model = model.value_or("");
  HYLO_ASSIGN_OR_RETURN(auto temperature, r.number("temperature", 0, 2));
  HYLO_ASSIGN_OR_RETURN(auto top_p, r.number("top_p", 0, 1));
  HYLO_ASSIGN_OR_RETURN(auto top_k, r.integer("top_k", -1, kMaxInt32));
  HYLO_ASSIGN_OR_RETURN(auto min_p, r.number("min_p", 0, 1));
  HYLO_ASSIGN_OR_RETURN(auto presence, r.number("presence_penalty", -2, 2));
  HYLO_ASSIGN_OR_RETURN(auto frequency, r.number("frequency_penalty", -2, 2));
  HYLO_ASSIGN_OR_RETURN(auto repetition, r.number("repetition_penalty", 0, 10));
  HYLO_ASSIGN_OR_RETURN(auto repeat, r.number("repeat_penalty", 0, 10));
  HYLO_ASSIGN_OR_RETURN(auto repeat_last_n, r.integer("repeat_last_n", -1, kMaxInt32));
  HYLO_ASSIGN_OR_RETURN(auto seed,
                        r.integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()));
  SamplingOverrides& s = g->sampling;
  if (temperature) s.temperature = static_cast<float>(*temperature);
  if (top_p) {
    if (*top_p == 0)
      s.temperature = 0;  // nothing but the most likely token
    else
      s.top_p = static_cast<float>(*top_p);
  }
  if (top_k) s.top_k = static_cast<int32_t>(std::min<int64_t>(std::max<int64_t>(*top_k, 0), ctx.n_vocab));
  if (min_p) s.min_p = static_cast<float>(*min_p);
  if (presence) s.presence_penalty = static_cast<float>(*presence);
  if (frequency) s.frequency_penalty = static_cast<float>(*frequency);
  if (!repetition) repetition = repeat;
  if (repetition) {
    if (*repetition <= 0)
      return make_error("{} must be greater than 0",
                        r.has("repetition_penalty") ? "repetition_penalty" : "repeat_penalty");
    s.repeat_penalty = static_cast<float>(*repetition);
  }
  if (repeat_last_n) s.repeat_last_n = static_cast<int32_t>(*repeat_last_n);
  if (seed) s.seed = static_cast<uint64_t>(*seed);
  HYLO_ASSIGN_OR_RETURN(auto n_draft, r.integer("speculative.n_max", 0, runtime::kMaxDraft));
  if (n_draft) g->n_draft = static_cast<int>(*n_draft);
  HYLO_ASSIGN_OR_RETURN(auto bias, r.object("logit_bias"));
  if (bias != nullptr) {
    if (bias->size() > 1024) return make_error("logit_bias may hold at most 1024 tokens");
    for (const auto& [key, value] : bias->items()) {
      char* end = nullptr;
      const long long id = std::strtoll(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || id < 0 || id >= ctx.n_vocab)
        return make_error("logit_bias keys must be token ids in [0, {}), not \"{}\"", ctx.n_vocab, key);
      if (!value.is_number() || !std::isfinite(value.get<double>()) || std::fabs(value.get<double>()) > 100)
        return make_error("logit_bias[\"{}\"] must be a number between -100 and 100", key);
      s.logit_bias[static_cast<int32_t>(id)] = value.get<float>();
    }
  }

  HYLO_ASSIGN_OR_RETURN(auto max_tokens, r.integer("max_tokens", 0, kMaxInt32));
  HYLO_ASSIGN_OR_RETURN(auto max_completion, r.integer("max_completion_tokens", 0, kMaxInt32));
  if (max_completion) max_tokens = max_completion;
  HYLO_ASSIGN_OR_RETURN(auto n_predict, r.integer("n_predict", -1, kMaxInt32));  // llama-server's name
  if (n_predict && !max_tokens && *n_predict >= 0) max_tokens = n_predict;
  if (max_tokens) g->max_tokens = static_cast<int32_t>(*max_tokens);
  HYLO_ASSIGN_OR_RETURN(g->stop, r.string_or_list("stop", 16));
  HYLO_ASSIGN_OR_RETURN(auto n, r.integer("n", 1, ctx.max_choices));
  g->n = static_cast<int>(n.value_or(1));
  HYLO_ASSIGN_OR_RETURN(auto stream, r.boolean("stream"));
  g->stream = stream.value_or(false);
  HYLO_ASSIGN_OR_RETURN(auto stream_options, r.object("stream_options"));
  if (stream_options != nullptr) {
    HYLO_ASSIGN_OR_RETURN(auto include_usage, FieldReader(*stream_options, "stream_options.").boolean("include_usage"));
    g->include_usage = include_usage.value_or(false);
  }
  HYLO_TRY(read_structured_output(r, g));
  HYLO_ASSIGN_OR_RETURN(auto forced, r.string("test_forced_output"));
  if (forced) {
    if (!ctx.test_hooks) return make_error("test_forced_output needs the server's --test-hooks flag");
    g->forced_output = *forced;
  }
  return ok_status();
}

}  // namespace

Result<GenerationRequest> parse_openai_chat(const ojson& body, const ApiContext& ctx) {
  GenerationRequest g;
  FieldReader r(body);
  HYLO_ASSIGN_OR_RETURN(auto messages, r.array("messages"));
  if (messages == nullptr) return make_error("messages is required");
  HYLO_ASSIGN_OR_RETURN(g.messages, normalize_openai_messages(*messages, ctx.tool_call_format));
  HYLO_TRY(read_common(r, ctx, &g));

  if (const ojson* tools = r.get("tools")) {
    HYLO_TRY(validate_tools(*tools, "tools"));
    if (!tools->empty()) g.tools = *tools;
  }
  if (const ojson* choice = r.get("tool_choice")) {
    if (choice->is_string()) {
      const std::string c = choice->get<std::string>();
      if (c != "none" && c != "auto" && c != "required")
        return make_error("tool_choice must be none, auto, required or a function");
      if (c == "none") {
        g.tools = nullptr;
        g.parse_tool_calls = false;
      } else if (c == "required") {
        if (!g.tools.is_array()) return make_error("tool_choice is \"required\" but the request has no tools");
        for (const auto& t : g.tools) g.required_tools.push_back(t["function"]["name"].get<std::string>());
      }
    } else if (choice->is_object()) {
      const ojson* fn = choice->contains("function") ? &(*choice)["function"] : nullptr;
      if (fn == nullptr || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string())
        return make_error("tool_choice.function.name must be a string");
      bool known = false;
      if (g.tools.is_array())
        for (const auto& t : g.tools) known = known || t["function"]["name"] == (*fn)["name"];
      if (!known) return make_error("tool_choice names a function that is not in tools");
      g.required_tools = {(*fn)["name"].get<std::string>()};
    } else {
      return make_error("tool_choice must be a string or an object");
    }
  }
  HYLO_ASSIGN_OR_RETURN(auto parallel, r.boolean("parallel_tool_calls"));
  (void)parallel;

  HYLO_ASSIGN_OR_RETURN(auto logprobs, r.boolean("logprobs"));
  HYLO_ASSIGN_OR_RETURN(auto top_logprobs, r.integer("top_logprobs", 0, 20));
  g.logprobs = logprobs.value_or(false);
  g.top_logprobs = g.logprobs ? static_cast<int>(top_logprobs.value_or(0)) : 0;

  HYLO_ASSIGN_OR_RETURN(auto kwargs, r.object("chat_template_kwargs"));
  if (kwargs != nullptr) {
    HYLO_ASSIGN_OR_RETURN(auto think, FieldReader(*kwargs, "chat_template_kwargs.").boolean("enable_thinking"));
    g.enable_thinking = think;
  }
  // JSON mode writes the object directly: hybrid templates get an empty reasoning block.
  if ((g.json_mode || g.grammar) && !g.enable_thinking) g.enable_thinking = false;
  return g;
}

Result<GenerationRequest> parse_openai_completion(const ojson& body, const ApiContext& ctx) {
  GenerationRequest g;
  g.parse_reasoning = false;
  g.parse_tool_calls = false;
  FieldReader r(body);
  const ojson* prompt = r.get("prompt");
  if (prompt == nullptr) return make_error("prompt is required");
  HYLO_TRY(read_prompts(*prompt, ctx.n_vocab, ctx.max_choices, &g.prompts));
  HYLO_TRY(read_common(r, ctx, &g));
  if (g.prompts.size() * static_cast<size_t>(g.n) > static_cast<size_t>(ctx.max_choices))
    return make_error("prompts × n must be at most {}", ctx.max_choices);
  HYLO_ASSIGN_OR_RETURN(auto echo, r.boolean("echo"));
  g.echo = echo.value_or(false);
  HYLO_ASSIGN_OR_RETURN(auto logprobs, r.integer("logprobs", 0, 20));
  if (logprobs) {
    g.logprobs = true;
    g.top_logprobs = static_cast<int>(*logprobs);
    // Scoring (max_tokens 0, echo, logprobs): the prompt's own tokens get logprobs too.
    g.prompt_logprobs = g.echo;
  }
  HYLO_ASSIGN_OR_RETURN(auto suffix, r.string("suffix"));
  if (suffix && !suffix->empty()) {  // fill in the middle between prompt and suffix
    if (g.prompts.size() != 1 || g.prompts[0].is_tokens)
      return make_error("suffix needs prompt to be one string (the text before the gap)");
    if (g.echo) return make_error("suffix cannot be combined with echo");
    g.fim = FimInput{g.prompts[0].text, *suffix, "", {}};
    g.prompts.clear();
  }
  HYLO_ASSIGN_OR_RETURN(auto best_of, r.integer("best_of", 1, ctx.max_choices));
  if (best_of && *best_of != g.n) return make_error("best_of is not supported (only best_of = n)");
  return g;
}

}  // namespace hylo::server
