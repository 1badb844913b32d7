// `hylo template`: renders a conversation with the model's chat template (or a given one) and
// prints exactly the prompt, nothing added.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "apps/command.h"
#include "base/log.h"
#include "chat/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace hylo::apps {
namespace {

struct TemplateOptions {
  std::string model, template_file, messages_file, tools_file, thinking;
  bool no_generation_prompt = false;
};

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "hylo template: %s\n", msg.c_str());
  return kExitError;
}

int run_template(const TemplateOptions& o) {
  if (o.model.empty() && o.template_file.empty()) {
    std::fprintf(stderr, "hylo template: -m MODEL or --chat-template FILE is required\n");
    return kExitUsage;
  }
  std::string source;
  chat::SpecialTokens special;
  if (!o.model.empty()) {
    auto tok = tokenizer::Tokenizer::from_gguf_file(o.model);
    if (!tok.ok()) return fail(tok.message());
    special = chat::special_tokens_of(*tok);
    source = tok->chat_template();
  }
  if (!o.template_file.empty() && !read_file(o.template_file, &source)) return fail("cannot read " + o.template_file);
  if (source.empty()) {
    log_warn("[chat] the model has no chat template; using the ChatML fallback");
    source = chat::chatml_fallback_template();
  }

  nlohmann::ordered_json messages, tools;
  std::string text;
  if (!read_file(o.messages_file, &text)) return fail("cannot read " + o.messages_file);
  try {
    messages = nlohmann::ordered_json::parse(text);
    if (!o.tools_file.empty()) {
      if (!read_file(o.tools_file, &text)) return fail("cannot read " + o.tools_file);
      tools = nlohmann::ordered_json::parse(text);
    }
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("invalid JSON: ") + e.what());
  }
  // Also accept a request-shaped object {"messages": [...], "tools": [...]}.
  if (messages.is_object() && messages.contains("messages")) {
    if (tools.is_null() && messages.contains("tools")) tools = messages["tools"];
    messages = nlohmann::ordered_json(messages["messages"]);
  }
  std::optional<bool> thinking;
  if (o.thinking == "on") thinking = true;
  if (o.thinking == "off") thinking = false;

  auto prompt = chat::render_chat(source, messages, tools, !o.no_generation_prompt, thinking, special);
  if (!prompt.ok()) return fail(prompt.message());
  std::fwrite(prompt->data(), 1, prompt->size(), stdout);
  return kExitOk;
}

CommandRegistrar reg(
    "template", "Render a conversation with the model's chat template; print the prompt exactly", 42,
    [](CLI::App& app) -> std::function<int()> {
      auto o = std::make_shared<TemplateOptions>();
      app.add_option("-m,--model", o->model, "GGUF model (only its metadata is read)");
      app.add_option("--chat-template", o->template_file, "Jinja template file to use instead of the model's");
      app.add_option("--messages", o->messages_file, "JSON array of OpenAI-style messages")->required();
      app.add_option("--tools", o->tools_file, "JSON array of OpenAI-style tools");
      app.add_flag("--no-generation-prompt", o->no_generation_prompt, "Do not append the assistant generation prompt");
      app.add_option("--thinking", o->thinking, "Pass enable_thinking (default: not passed)")
          ->check(CLI::IsMember({"on", "off"}));
      return [o] { return run_template(*o); };
    });

}  // namespace
}  // namespace hylo::apps
