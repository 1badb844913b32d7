// Ollama answers: chat/generate objects and their NDJSON stream lines (durations in
// nanoseconds), and the model endpoints describing the one loaded model.
#include <chrono>
#include <ctime>

#include "gguf/gguf.h"
#include "server/json_fields.h"
#include "server/ollama_api.h"

namespace hylo::server {

namespace {

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09d}Z", buf, ns % 1000000000);
}

std::string line(const ojson& j) { return dump_json(j) + "\n"; }

int64_t nanos(double seconds) { return static_cast<int64_t>(seconds * 1e9); }

// Ollama reports "stop" when the model called tools.
std::string done_reason(const Generation& g) {
  for (const Choice& c : g.choices())
    if (c.finish_reason == "length") return "length";
  return "stop";
}

ojson tool_calls_json(const std::vector<chat::ToolCall>& calls) {
  ojson out = ojson::array();
  for (const chat::ToolCall& c : calls) {
    ojson args = ojson::parse(c.arguments, nullptr, /*allow_exceptions=*/false);
    if (!args.is_object()) args = ojson::object();
    out.push_back({{"function", {{"name", c.name}, {"arguments", std::move(args)}}}});
  }
  return out;
}

class OllamaWriter : public ResponseWriter {
 public:
  explicit OllamaWriter(const ApiContext& ctx) : model_(ctx.model_id) {}

  const char* stream_content_type() const override { return "application/x-ndjson"; }
  std::string keepalive() override { return ""; }  // NDJSON has no comments
  std::string stream_begin(const Generation&) override { return ""; }
  std::string stream_error(const ApiError& e) override { return line(error_body(e, ApiFamily::kOllama)); }

  std::string stream_update(const Generation& g, const Update& u) override {
    if (u.kind != Update::Kind::kDelta || (u.content.empty() && u.reasoning.empty() && u.tool_calls.empty())) return "";
    ojson j = head();
    body(&j, u.content, u.reasoning, u.tool_calls, g);
    j["done"] = false;
    return line(j);
  }
  std::string stream_end(const Generation& g) override {
    ojson j = head();
    body(&j, "", "", {}, g);
    finish(&j, g);
    return line(j);
  }
  ojson complete(const Generation& g) override {
    const Choice& c = g.choices().front();
    ojson j = head();
    body(&j, c.content, c.reasoning, c.tool_calls, g);
    finish(&j, g);
    return j;
  }

 protected:
  ojson head() const { return {{"model", model_}, {"created_at", rfc3339_now()}}; }
  // The endpoint's output fields (message for chat, response for generate).
  virtual void body(ojson* j, const std::string& content, const std::string& thinking,
                    const std::vector<chat::ToolCall>& calls, const Generation& g) const = 0;
  virtual void finish(ojson* j, const Generation& g) const {
    const Usage u = g.usage();
    (*j)["done"] = true;
    (*j)["done_reason"] = done_reason(g);
    (*j)["total_duration"] = nanos(u.total_seconds);
    (*j)["load_duration"] = 0;
    (*j)["prompt_eval_count"] = u.prompt_tokens;
    (*j)["prompt_cached_count"] = u.cached_tokens;  // hylo's: of those, reused from the cache
    (*j)["prompt_eval_duration"] = nanos(u.prefill_seconds);
    (*j)["eval_count"] = u.completion_tokens;
    (*j)["eval_duration"] = nanos(u.decode_seconds);
  }

  std::string model_;
};

class OllamaChatWriter : public OllamaWriter {
 public:
  using OllamaWriter::OllamaWriter;

 protected:
  void body(ojson* j, const std::string& content, const std::string& thinking, const std::vector<chat::ToolCall>& calls,
            const Generation&) const override {
    ojson m = {{"role", "assistant"}, {"content", content}};
    if (!thinking.empty()) m["thinking"] = thinking;
    if (!calls.empty()) m["tool_calls"] = tool_calls_json(calls);
    (*j)["message"] = std::move(m);
  }
};

class OllamaGenerateWriter : public OllamaWriter {
 public:
  using OllamaWriter::OllamaWriter;

 protected:
  void body(ojson* j, const std::string& content, const std::string& thinking, const std::vector<chat::ToolCall>&,
            const Generation&) const override {
    (*j)["response"] = content;
    if (!thinking.empty()) (*j)["thinking"] = thinking;
  }
  void finish(ojson* j, const Generation& g) const override {
    OllamaWriter::finish(j, g);
    // The tokens so far, for a later request's "context" (prompt + answer).
    std::vector<int32_t> context = g.prompt_tokens().front();
    const auto& gen = g.choices().front().tokens;
    context.insert(context.end(), gen.begin(), gen.end());
    (*j)["context"] = context;
  }
};

std::string parameter_size(uint64_t n) {
  if (n >= 1000000000ull) return fmt::format("{:.1f}B", static_cast<double>(n) / 1e9);
  if (n >= 1000000ull) return fmt::format("{:.1f}M", static_cast<double>(n) / 1e6);
  return fmt::format("{:.1f}K", static_cast<double>(n) / 1e3);
}

ojson details(const ModelDescription& d) {
  return {{"parent_model", ""},
          {"format", "gguf"},
          {"family", d.arch},
          {"families", ojson::array({d.arch})},
          {"parameter_size", parameter_size(d.n_params)},
          {"quantization_level", d.quantization}};
}

std::string ollama_name(const ModelDescription& d) { return d.id; }

ojson metadata_value(const gguf::Value& v, bool verbose) {
  switch (v.type) {
    case gguf::ValueType::kString:
      return v.s;
    case gguf::ValueType::kBool:
      return v.i != 0;
    case gguf::ValueType::kF32:
    case gguf::ValueType::kF64:
      return v.f;
    case gguf::ValueType::kU8:
    case gguf::ValueType::kU16:
    case gguf::ValueType::kU32:
    case gguf::ValueType::kU64:
      return v.u;
    case gguf::ValueType::kI8:
    case gguf::ValueType::kI16:
    case gguf::ValueType::kI32:
    case gguf::ValueType::kI64:
      return v.i;
    case gguf::ValueType::kArray: {
      if (!v.array || (!verbose && v.array->size() > 64)) return nullptr;
      const gguf::Array& a = *v.array;
      ojson out = ojson::array();
      for (const auto& s : a.strings) out.push_back(s);
      for (auto x : a.ints) out.push_back(a.elem_type == gguf::ValueType::kBool ? ojson(x != 0) : ojson(x));
      for (auto x : a.uints) out.push_back(x);
      for (auto x : a.floats) out.push_back(x);
      for (const auto& x : a.arrays) out.push_back(metadata_value(x, verbose));
      return out;
    }
  }
  return nullptr;
}

}  // namespace

std::string rfc3339_now() { return rfc3339(std::chrono::system_clock::now()); }
std::string rfc3339_time(std::chrono::system_clock::time_point t) { return rfc3339(t); }

std::shared_ptr<ResponseWriter> ollama_chat_writer(const GenerationRequest&, const ApiContext& ctx) {
  return std::make_shared<OllamaChatWriter>(ctx);
}

std::shared_ptr<ResponseWriter> ollama_generate_writer(const GenerationRequest&, const ApiContext& ctx) {
  return std::make_shared<OllamaGenerateWriter>(ctx);
}

ojson ollama_tags(const ModelDescription& d) {
  return {{"models", ojson::array({{{"name", ollama_name(d)},
                                    {"model", ollama_name(d)},
                                    {"modified_at", rfc3339(std::chrono::system_clock::from_time_t(d.modified_unix))},
                                    {"size", d.size_bytes},
                                    {"digest", d.digest},
                                    {"details", details(d)}}})}};
}

ojson ollama_ps(const ModelDescription& d, int32_t n_ctx, uint64_t cache_bytes, bool loaded) {
  if (!loaded) return {{"models", ojson::array()}};
  // Loaded until the server stops: no expiry in sight.
  const auto expires = std::chrono::system_clock::now() + std::chrono::hours(24 * 365);
  return {{"models", ojson::array({{{"name", ollama_name(d)},
                                    {"model", ollama_name(d)},
                                    {"size", d.size_bytes + cache_bytes},
                                    {"digest", d.digest},
                                    {"details", details(d)},
                                    {"expires_at", rfc3339(expires)},
                                    {"size_vram", 0},
                                    {"context_length", n_ctx}}})}};
}

ojson ollama_show(const Backend& b, bool verbose, bool show_path) {
  const ModelDescription& d = b.description;
  ojson info = ojson::object();
  for (const auto& [key, value] : b.model->file().metadata()) {
    if (key == "tokenizer.chat_template") continue;  // "template" has it
    info[key] = metadata_value(value, verbose);
  }
  info["general.parameter_count"] = d.n_params;
  // What runs (which may differ from the file's metadata): hylo.cache_type_k, hylo.rope_scaling.factor, ...
  const ojson settings = runtime_settings(b);
  for (auto it = settings.begin(); it != settings.end(); ++it) {
    if (it->is_object())
      for (auto sub = it->begin(); sub != it->end(); ++sub) info["hylo." + it.key() + "." + sub.key()] = *sub;
    else
      info["hylo." + it.key()] = *it;
  }
  const runtime::SamplingParams& s = b.sampling;
  const std::string parameters =
      fmt::format("num_ctx {}\ntemperature {}\ntop_k {}\ntop_p {}\nmin_p {}\nrepeat_penalty {}\n", b.n_ctx,
                  s.temperature, s.top_k, s.top_p, s.min_p, s.repeat_penalty);
  const std::string& tmpl = b.chat_template->source();
  ojson caps = ojson::array({"completion"});
  if (tmpl.find("tools") != std::string::npos) caps.push_back("tools");
  if (b.thinking_model || tmpl.find("<think>") != std::string::npos) caps.push_back("thinking");
  return {{"license", ""},
          {"modelfile", fmt::format("# served by hylo\nFROM {}\n", show_path ? d.path : d.id)},
          {"parameters", parameters},
          {"template", tmpl},
          {"details", details(d)},
          {"model_info", std::move(info)},
          {"capabilities", std::move(caps)},
          {"modified_at", rfc3339(std::chrono::system_clock::from_time_t(d.modified_unix))}};
}

ojson ollama_version() { return {{"version", HYLO_VERSION}}; }

}  // namespace hylo::server
