// ChatTemplate: the template variables HF transformers passes, family detection, ChatML fallback.
#include "chat/chat_template.h"

namespace hylo::chat {

SpecialTokens special_tokens_of(const tokenizer::Tokenizer& tok) {
  SpecialTokens s;
  if (tok.add_bos() && tok.bos_id() >= 0) s.bos = tok.token_to_piece(tok.bos_id());
  if (tok.eos_id() >= 0) s.eos = tok.token_to_piece(tok.eos_id());
  if (tok.pad_id() >= 0) s.pad = tok.token_to_piece(tok.pad_id());
  return s;
}

ToolCallFormat detect_tool_call_format(std::string_view source) {
  return source.find("<function=") != std::string_view::npos ? ToolCallFormat::kXml : ToolCallFormat::kHermesJson;
}

bool prompt_opens_thinking(std::string_view prompt) {
  // The generation prompt's last <think> is not closed yet.
  const size_t open = prompt.rfind("<think>");
  if (open == std::string_view::npos) return false;
  return prompt.find("</think>", open) == std::string_view::npos;
}

Result<ChatTemplate> ChatTemplate::parse(std::string source) {
  HYLO_ASSIGN_OR_RETURN(Template t, Template::parse(source));
  ChatTemplate c;
  c.format_ = detect_tool_call_format(source);
  c.source_ = std::move(source);
  c.template_ = std::move(t);
  return c;
}

Result<std::string> ChatTemplate::render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                         bool add_generation_prompt, std::optional<bool> enable_thinking,
                                         const SpecialTokens& special,
                                         const nlohmann::ordered_json& extra_context) const {
  if (!messages.is_array()) return make_error("[chat] messages must be a JSON array");
  if (!tools.is_null() && !tools.is_array()) return make_error("[chat] tools must be a JSON array or null");
  if (!extra_context.is_null() && !extra_context.is_object())
    return make_error("[chat] extra template context must be a JSON object");
  // The variables of apply_chat_template, in its order.
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  ctx["messages"] = messages;
  ctx["tools"] = tools;
  ctx["documents"] = nullptr;
  ctx["add_generation_prompt"] = add_generation_prompt;
  if (!special.bos.empty()) ctx["bos_token"] = special.bos;
  if (!special.eos.empty()) ctx["eos_token"] = special.eos;
  if (!special.pad.empty()) ctx["pad_token"] = special.pad;
  if (!special.additional.empty()) ctx["additional_special_tokens"] = special.additional;
  if (enable_thinking) ctx["enable_thinking"] = *enable_thinking;
  if (extra_context.is_object())
    for (auto it = extra_context.begin(); it != extra_context.end(); ++it) ctx[it.key()] = it.value();
  return template_.render(ctx);
}

Result<std::string> render_chat(const std::string& template_source, const nlohmann::ordered_json& messages,
                                const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                std::optional<bool> enable_thinking, const SpecialTokens& special,
                                const nlohmann::ordered_json& extra_context) {
  HYLO_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::parse(template_source));
  return t.render(messages, tools, add_generation_prompt, enable_thinking, special, extra_context);
}

const std::string& chatml_fallback_template() {
  static const std::string source =
      "{%- for message in messages %}"
      "{{- '<|im_start|>' + message.role + '\\n' }}"
      "{%- if message.content is string %}{{- message.content }}"
      "{%- elif message.content is iterable and message.content is not mapping %}"
      "{%- for part in message.content %}{%- if part.text is defined %}{{- part.text }}{%- endif %}{%- endfor %}"
      "{%- endif %}"
      "{{- '<|im_end|>\\n' }}"
      "{%- endfor %}"
      "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
  return source;
}

}  // namespace hylo::chat
