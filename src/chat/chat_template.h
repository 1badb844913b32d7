// Chat prompts from a model's own template (tokenizer.chat_template), rendered exactly as HF
// transformers' apply_chat_template(tokenize=False) renders them with Python jinja2:
// ImmutableSandboxedEnvironment(trim_blocks, lstrip_blocks, loopcontrols), tojson =
// json.dumps(ensure_ascii=False) keeping key order, raise_exception(), strftime_now(), and
// Python's str() / Unicode-whitespace strip() where values are printed.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "chat/template.h"
#include "tokenizer/tokenizer.h"

namespace hylo::chat {

// The tokenizer's special-token strings the template may reference (bos_token, eos_token,
// pad_token, additional_special_tokens). Empty strings / lists are not passed.
struct SpecialTokens {
  std::string bos, eos, pad;
  std::vector<std::string> additional;
};

// The special tokens a GGUF vocabulary defines, as HF would pass them: eos and pad by their text;
// bos only when the vocabulary adds it (Qwen's HF config has no bos_token although the GGUF
// names one).
SpecialTokens special_tokens_of(const tokenizer::Tokenizer& tok);

// How a template family writes tool calls (and how the model answers with them).
enum class ToolCallFormat {
  kHermesJson,  // <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>  (Qwen3, Qwen3-Next)
  kXml,         // <tool_call>\n<function=NAME>\n<parameter=ARG>\nvalue\n</parameter>\n...  (Qwen3-Coder, 3.5)
};

// Tool-call format of a template, from its text: XML when it writes "<function=", else JSON.
ToolCallFormat detect_tool_call_format(std::string_view template_source);

// True when a rendered prompt ends with an opened <think> block (the generation prompt of
// thinking models), so that the model's output starts inside the reasoning.
bool prompt_opens_thinking(std::string_view prompt);

// Messages and tools are OpenAI-style JSON arrays, passed to the template unchanged. Use
// ordered_json so that objects keep their key order (tojson prints them in that order, as
// Python does); a nlohmann::json argument converts implicitly, with sorted keys.
// `tools` null = no tools (the template sees tools = None); `enable_thinking` nullopt = not
// passed (not the same as false for these templates). `extra_context` members (a JSON object)
// are added to / override the template variables.
class ChatTemplate {
 public:
  static Result<ChatTemplate> parse(std::string source);

  Result<std::string> render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                             bool add_generation_prompt, std::optional<bool> enable_thinking,
                             const SpecialTokens& special, const nlohmann::ordered_json& extra_context = {}) const;

  const std::string& source() const { return source_; }
  ToolCallFormat tool_call_format() const { return format_; }

 private:
  std::string source_;
  Template template_;
  ToolCallFormat format_ = ToolCallFormat::kHermesJson;
};

// Parse + render in one call (parses every time; keep a ChatTemplate to render repeatedly).
Result<std::string> render_chat(const std::string& template_source, const nlohmann::ordered_json& messages,
                                const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                std::optional<bool> enable_thinking, const SpecialTokens& special,
                                const nlohmann::ordered_json& extra_context = {});

// The fallback for GGUFs without tokenizer.chat_template: plain ChatML, every message as
// "<|im_start|>{role}\n{content}<|im_end|>\n" (content parts: their text joined; no tool
// definitions, no reasoning handling), then "<|im_start|>assistant\n" when a generation prompt
// is asked for. Callers should say when they use it; it is right for Qwen-family models only.
const std::string& chatml_fallback_template();

}  // namespace hylo::chat
