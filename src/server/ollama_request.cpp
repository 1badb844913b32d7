// Ollama requests (/api/chat, /api/generate) read into GenerationRequest, with errors that name
// the offending field. Unknown options (num_gpu, mirostat, ...) are ignored, as Ollama does.
#include <cctype>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "server/json_fields.h"
#include "server/ollama_api.h"
#include "server/openai_api.h"
#include "server/structured_output.h"

namespace hylo::server {

namespace {

constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();

Status read_options(const FieldReader& top, const ApiContext& ctx, GenerationRequest* g) {
  HYLO_ASSIGN_OR_RETURN(const ojson* options, top.object("options"));
  if (options == nullptr) return ok_status();
  FieldReader r(*options, "options.");
  HYLO_ASSIGN_OR_RETURN(auto num_ctx, r.integer("num_ctx", 1, kMaxInt32));
  HYLO_ASSIGN_OR_RETURN(auto num_predict, r.integer("num_predict", -2, kMaxInt32));
  HYLO_ASSIGN_OR_RETURN(LlamaSamplingFields f, read_llama_sampling(r, ctx.n_vocab, &g->sampling));
  HYLO_ASSIGN_OR_RETURN(g->stop, r.string_or_list("stop", 16));
  if (num_ctx) g->num_ctx = static_cast<int32_t>(*num_ctx);
  if (num_predict && *num_predict >= 0) g->max_tokens = static_cast<int32_t>(*num_predict);  // -1, -2: no limit
  if (f.top_p) {
    if (*f.top_p == 0)
      g->sampling.temperature = 0;
    else
      g->sampling.top_p = static_cast<float>(*f.top_p);
  }
  if (f.seed) g->sampling.seed = static_cast<uint64_t>(*f.seed);
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
  HYLO_ASSIGN_OR_RETURN(g->keep_alive, ollama_keep_alive(r.object_json()));
  HYLO_ASSIGN_OR_RETURN(auto forced, r.string("test_forced_output"));
  if (forced) {
    if (!ctx.test_hooks) return make_error("test_forced_output needs the server's --test-hooks flag");
    g->forced_output = *forced;
  }
  return read_options(r, ctx, g);
}

// Go's time.ParseDuration units, as Ollama reads keep_alive strings.
Result<double> parse_duration(const std::string& text) {
  static const std::pair<const char*, double> kUnits[] = {{"ns", 1e-9}, {"us", 1e-6}, {"µs", 1e-6}, {"ms", 1e-3},
                                                          {"s", 1},     {"m", 60},    {"h", 3600}};
  const auto invalid = [&] {
    return make_error("keep_alive must be a number of seconds or a duration such as \"5m\" or \"0\", not \"{}\"",
                      text.substr(0, 64));
  };
  std::string_view s = text;
  double sign = 1;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    sign = s[0] == '-' ? -1 : 1;
    s.remove_prefix(1);
  }
  if (s == "0") return 0.0;
  if (s.empty()) return invalid();
  double total = 0;
  while (!s.empty()) {
    size_t n = 0;
    while (n < s.size() && (std::isdigit(static_cast<unsigned char>(s[n])) || s[n] == '.')) ++n;
    if (n == 0 || n > 30) return invalid();
    const double value = std::strtod(std::string(s.substr(0, n)).c_str(), nullptr);
    s.remove_prefix(n);
    double unit = 0;
    for (const auto& [name, seconds] : kUnits) {
      const std::string_view u = name;
      // The longest unit that matches: "ms" before "m", "ns" before "s".
      if (s.substr(0, u.size()) == u && (u.size() == 2 || s.substr(0, 2) != "ms")) {
        unit = seconds;
        s.remove_prefix(u.size());
        break;
      }
    }
    if (unit == 0) return invalid();
    total += value * unit;
  }
  return sign * total;
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
  if (suffix && !suffix->empty()) {  // fill in the middle between prompt and suffix
    g.fim = FimInput{prompt.value_or(""), *suffix, "", {}};
    g.parse_reasoning = false;
    g.parse_tool_calls = false;
  } else if (raw.value_or(false)) {
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

Result<std::optional<double>> ollama_keep_alive(const ojson& body) {
  auto it = body.find("keep_alive");
  if (it == body.end() || it->is_null()) return std::optional<double>();
  if (it->is_number()) return std::optional<double>(it->get<double>());
  if (!it->is_string()) return make_error("keep_alive must be a number of seconds or a duration string");
  HYLO_ASSIGN_OR_RETURN(double seconds, parse_duration(it->get<std::string>()));
  return std::optional<double>(seconds);
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
  // keep_alive 0 unloads the model in Ollama; hylo lists it as unloaded (see Server::generate).
  auto keep = ollama_keep_alive(body);
  j["done_reason"] = keep.ok() && *keep && **keep == 0 ? "unload" : "load";
  return j;
}

}  // namespace hylo::server
