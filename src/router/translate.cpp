#include "router/translate.h"

#include <fmt/format.h>

#include <chrono>
#include <ctime>

namespace hylo::router {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string rfc3339_now() {
  const auto t = std::chrono::system_clock::now();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09d}Z", buf, ns % 1000000000);
}

std::string line(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace) + "\n"; }

// Ollama reports "stop" when the model called tools.
std::string ollama_done_reason(const std::string& openai) {
  if (openai == "length") return "length";
  return "stop";
}

// Ollama's tool-call arguments are an object; OpenAI's a JSON string.
ojson arguments_object(const std::string& s) {
  ojson a = ojson::parse(s, nullptr, /*allow_exceptions=*/false);
  return a.is_object() ? a : ojson::object();
}

ojson ollama_tool_calls(const ojson& openai_calls) {
  ojson out = ojson::array();
  for (const ojson& c : openai_calls) {
    if (!c.is_object() || !c.contains("function")) continue;
    const ojson& f = c["function"];
    const std::string args =
        f.contains("arguments") && f["arguments"].is_string() ? f["arguments"].get<std::string>() : std::string("{}");
    out.push_back({{"function", {{"name", f.value("name", "")}, {"arguments", arguments_object(args)}}}});
  }
  return out;
}

std::string reasoning_of(const ojson& m) {
  for (const char* k : {"reasoning_content", "reasoning"})
    if (m.contains(k) && m[k].is_string()) return m[k].get<std::string>();
  return "";
}

// Ollama options → OpenAI sampling fields (the common ones; top_k and min_p are understood by
// llama-server, vLLM and hylo).
Status copy_options(const ojson& ollama, ojson* out) {
  if (!ollama.contains("options")) return ok_status();
  const ojson& o = ollama["options"];
  if (!o.is_object()) return make_error("options must be an object");
  static const std::pair<const char*, const char*> kSame[] = {{"temperature", "temperature"},
                                                              {"top_p", "top_p"},
                                                              {"top_k", "top_k"},
                                                              {"min_p", "min_p"},
                                                              {"seed", "seed"},
                                                              {"stop", "stop"},
                                                              {"presence_penalty", "presence_penalty"},
                                                              {"frequency_penalty", "frequency_penalty"}};
  for (const auto& [from, to] : kSame)
    if (o.contains(from)) (*out)[to] = o[from];
  if (o.contains("num_predict") && o["num_predict"].is_number_integer() && o["num_predict"].get<int64_t>() > 0)
    (*out)["max_tokens"] = o["num_predict"];
  return ok_status();
}

void copy_format(const ojson& ollama, ojson* out) {
  if (!ollama.contains("format")) return;
  const ojson& f = ollama["format"];
  if (f.is_string() && f.get<std::string>() == "json")
    (*out)["response_format"] = {{"type", "json_object"}};
  else if (f.is_object())
    (*out)["response_format"] = {{"type", "json_schema"}, {"json_schema", {{"name", "answer"}, {"schema", f}}}};
}

// Ollama messages → OpenAI: tool-call arguments become strings with ids, tool results point
// back at them, images become image_url parts, thinking becomes reasoning_content.
Result<ojson> openai_messages(const ojson& messages) {
  if (!messages.is_array()) return make_error("messages must be an array");
  ojson out = ojson::array();
  std::vector<std::string> pending_ids;  // tool calls not yet answered, in order
  int next_id = 0;
  for (const ojson& m : messages) {
    if (!m.is_object()) return make_error("each message must be an object");
    ojson o = {{"role", m.value("role", "user")}};
    const std::string role = o["role"];
    std::string content = m.contains("content") && m["content"].is_string() ? m["content"].get<std::string>() : "";
    if (m.contains("images") && m["images"].is_array() && !m["images"].empty()) {
      ojson parts = ojson::array();
      if (!content.empty()) parts.push_back({{"type", "text"}, {"text", content}});
      for (const ojson& img : m["images"])
        if (img.is_string())
          parts.push_back(
              {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64," + img.get<std::string>()}}}});
      o["content"] = std::move(parts);
    } else {
      o["content"] = content;
    }
    if (m.contains("thinking") && m["thinking"].is_string()) o["reasoning_content"] = m["thinking"];
    if (role == "assistant" && m.contains("tool_calls") && m["tool_calls"].is_array()) {
      ojson calls = ojson::array();
      for (const ojson& c : m["tool_calls"]) {
        if (!c.is_object() || !c.contains("function")) return make_error("tool_calls entries need a function");
        const ojson& f = c["function"];
        std::string id =
            c.contains("id") && c["id"].is_string() ? c["id"].get<std::string>() : fmt::format("call_{}", next_id++);
        ojson args = f.contains("arguments") ? f["arguments"] : ojson::object();
        calls.push_back({{"id", id},
                         {"type", "function"},
                         {"function",
                          {{"name", f.value("name", "")},
                           {"arguments", args.is_string() ? args.get<std::string>() : args.dump()}}}});
        pending_ids.push_back(id);
      }
      o["tool_calls"] = std::move(calls);
    }
    if (role == "tool") {
      if (!pending_ids.empty()) {
        o["tool_call_id"] = pending_ids.front();
        pending_ids.erase(pending_ids.begin());
      } else {
        o["tool_call_id"] = fmt::format("call_{}", next_id++);
      }
      if (m.contains("tool_name") && m["tool_name"].is_string()) o["name"] = m["tool_name"];
    }
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace

Result<OpenAIRequest> ollama_to_openai(const ojson& in, bool chat, const std::string& model) {
  if (!in.is_object()) return make_error("the request body must be a JSON object");
  OpenAIRequest r;
  ojson& b = r.body;
  b["model"] = model;
  const bool raw = !chat && in.value("raw", false);
  if (chat) {
    r.path = "/chat/completions";
    if (!in.contains("messages")) return make_error("messages is required");
    HYLO_ASSIGN_OR_RETURN(b["messages"], openai_messages(in["messages"]));
    if (in.contains("tools")) b["tools"] = in["tools"];
  } else if (raw) {
    r.path = "/completions";
    b["prompt"] = in.value("prompt", "");
  } else {
    // /api/generate without raw: the prompt is a user turn under the model's template.
    r.path = "/chat/completions";
    ojson msgs = ojson::array();
    if (in.contains("system") && in["system"].is_string())
      msgs.push_back({{"role", "system"}, {"content", in["system"]}});
    ojson user = {{"role", "user"}, {"content", in.value("prompt", "")}};
    if (in.contains("images")) {
      ojson wrapped = ojson::array({{{"role", "user"}, {"content", in.value("prompt", "")}, {"images", in["images"]}}});
      HYLO_ASSIGN_OR_RETURN(ojson conv, openai_messages(wrapped));
      user = conv[0];
    }
    msgs.push_back(std::move(user));
    b["messages"] = std::move(msgs);
  }
  const bool stream = in.value("stream", true);  // Ollama streams unless told not to
  b["stream"] = stream;
  if (stream) b["stream_options"] = {{"include_usage", true}};
  HYLO_TRY(copy_options(in, &b));
  copy_format(in, &b);
  if (in.contains("think") && in["think"].is_boolean())
    b["chat_template_kwargs"] = {{"enable_thinking", in["think"].get<bool>()}};
  return r;
}

ojson openai_to_ollama_answer(const ojson& a, bool chat, const std::string& model, double seconds) {
  ojson out = {{"model", model}, {"created_at", rfc3339_now()}};
  ojson choice =
      a.contains("choices") && a["choices"].is_array() && !a["choices"].empty() ? a["choices"][0] : ojson::object();
  const std::string finish = choice.contains("finish_reason") && choice["finish_reason"].is_string()
                                 ? choice["finish_reason"].get<std::string>()
                                 : "stop";
  const bool was_chat = choice.contains("message");
  std::string content, reasoning;
  ojson calls = ojson::array();
  if (was_chat) {
    const ojson& m = choice["message"];
    if (m.contains("content") && m["content"].is_string()) content = m["content"].get<std::string>();
    reasoning = reasoning_of(m);
    if (m.contains("tool_calls") && m["tool_calls"].is_array()) calls = ollama_tool_calls(m["tool_calls"]);
  } else if (choice.contains("text") && choice["text"].is_string()) {
    content = choice["text"].get<std::string>();
  }
  if (chat) {
    ojson msg = {{"role", "assistant"}, {"content", content}};
    if (!reasoning.empty()) msg["thinking"] = reasoning;
    if (!calls.empty()) msg["tool_calls"] = calls;
    out["message"] = std::move(msg);
  } else {
    out["response"] = content;
    if (!reasoning.empty()) out["thinking"] = reasoning;
  }
  out["done"] = true;
  out["done_reason"] = ollama_done_reason(finish);
  out["total_duration"] = static_cast<int64_t>(seconds * 1e9);
  out["load_duration"] = 0;
  const ojson usage = a.contains("usage") && a["usage"].is_object() ? a["usage"] : ojson::object();
  out["prompt_eval_count"] = usage.value("prompt_tokens", 0);
  out["prompt_eval_duration"] = 0;
  out["eval_count"] = usage.value("completion_tokens", 0);
  out["eval_duration"] = 0;
  return out;
}

std::string error_message_of(const std::string& body) {
  const ojson j = ojson::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("error")) {
    const ojson& e = j["error"];
    if (e.is_string()) return e.get<std::string>();
    if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
  }
  std::string text = body.substr(0, 300);
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

SseToNdjson::SseToNdjson(bool chat, std::string model)
    : chat_(chat), model_(std::move(model)), started_(now_seconds()) {}

ojson SseToNdjson::head() const { return {{"model", model_}, {"created_at", rfc3339_now()}}; }

std::string SseToNdjson::feed(std::string_view bytes) {
  std::string out;
  lines_.feed(bytes, [&](std::string_view l) {
    if (l.substr(0, 5) != "data:") return;  // comments (": ping"), event names, blank separators
    std::string_view data = l.substr(5);
    if (!data.empty() && data.front() == ' ') data.remove_prefix(1);
    out += on_data(data);
  });
  return out;
}

std::string SseToNdjson::on_data(std::string_view data) {
  if (complete_ || failed_) return "";
  if (data == "[DONE]") {
    done_seen_ = true;
    return closing_line();
  }
  const ojson j = ojson::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return "";
  if (j.contains("error")) {
    failed_ = true;
    return line({{"error", error_message_of(std::string(data))}});
  }
  if (j.contains("usage") && j["usage"].is_object()) {
    prompt_tokens_ = j["usage"].value("prompt_tokens", prompt_tokens_);
    completion_tokens_ = j["usage"].value("completion_tokens", completion_tokens_);
  }
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return "";
  const ojson& c = j["choices"][0];
  if (c.contains("finish_reason") && c["finish_reason"].is_string())
    finish_reason_ = c["finish_reason"].get<std::string>();
  std::string content, reasoning;
  if (c.contains("delta") && c["delta"].is_object()) {
    const ojson& d = c["delta"];
    if (d.contains("content") && d["content"].is_string()) content = d["content"].get<std::string>();
    reasoning = reasoning_of(d);
    if (d.contains("tool_calls") && d["tool_calls"].is_array()) {
      for (const ojson& tc : d["tool_calls"]) {
        const int index = tc.value("index", 0);
        PartialCall& p = calls_[index];
        if (tc.contains("function") && tc["function"].is_object()) {
          const ojson& f = tc["function"];
          if (f.contains("name") && f["name"].is_string()) p.name += f["name"].get<std::string>();
          if (f.contains("arguments") && f["arguments"].is_string()) p.arguments += f["arguments"].get<std::string>();
        }
      }
    }
  } else if (c.contains("text") && c["text"].is_string()) {
    content = c["text"].get<std::string>();
  }
  if (content.empty() && reasoning.empty()) return "";
  ojson l = head();
  if (chat_) {
    ojson msg = {{"role", "assistant"}, {"content", content}};
    if (!reasoning.empty()) msg["thinking"] = reasoning;
    l["message"] = std::move(msg);
  } else {
    l["response"] = content;
    if (!reasoning.empty()) l["thinking"] = reasoning;
  }
  l["done"] = false;
  return line(l);
}

std::string SseToNdjson::closing_line() {
  std::string out;
  if (!calls_.empty()) {
    ojson calls = ojson::array();
    for (const auto& [index, p] : calls_)
      calls.push_back({{"function", {{"name", p.name}, {"arguments", arguments_object(p.arguments)}}}});
    calls_.clear();
    ojson l = head();
    l["message"] = {{"role", "assistant"}, {"content", ""}, {"tool_calls", std::move(calls)}};
    l["done"] = false;
    out += line(l);
  }
  ojson l = head();
  if (chat_)
    l["message"] = {{"role", "assistant"}, {"content", ""}};
  else
    l["response"] = "";
  l["done"] = true;
  l["done_reason"] = ollama_done_reason(finish_reason_);
  l["total_duration"] = static_cast<int64_t>((now_seconds() - started_) * 1e9);
  l["load_duration"] = 0;
  l["prompt_eval_count"] = prompt_tokens_;
  l["prompt_eval_duration"] = 0;
  l["eval_count"] = completion_tokens_;
  l["eval_duration"] = 0;
  complete_ = true;
  return out + line(l);
}

std::string SseToNdjson::finish() {
  if (complete_ || failed_) return "";
  // Some servers close without [DONE] after the finish reason and usage: that answer is whole.
  if (!finish_reason_.empty()) return closing_line();
  return "";
}

void StreamEndScanner::feed(std::string_view bytes) {
  lines_.feed(bytes, [&](std::string_view l) {
    if (sse_) {
      if (l == "data: [DONE]" || l == "data:[DONE]") complete_ = true;
      return;
    }
    if (l.find("\"done\"") == std::string_view::npos) return;
    const ojson j = ojson::parse(l, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("done", false)) complete_ = true;
  });
}

}  // namespace hylo::router
