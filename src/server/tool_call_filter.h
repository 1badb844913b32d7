// tool_choice "required" or a named function, enforced while generating: after the reasoning (if
// the prompt opened it) the output is one call to one of the allowed functions, in the chat
// template's format.
//   Hermes JSON (Qwen3, Qwen3-Next): `<tool_call>\n{"name": "NAME", "arguments": {` is forced,
//     the arguments are constrained as in JSON mode, then `\n</tool_call>` and the end.
//   XML (Qwen3-Coder): `<tool_call>\n<function=NAME>\n` is forced; the parameters are free text.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chat/chat_template.h"
#include "server/token_filters.h"

namespace hylo::server {

class ToolCallFilter : public runtime::TokenFilter {
 public:
  // markup: tokens the trie leaves out (special ones) that the forced text may use, as
  // (bytes, id), e.g. ("<tool_call>", 151657).
  ToolCallFilter(std::shared_ptr<const TokenTrie> trie, chat::ToolCallFormat format, std::vector<std::string> names,
                 std::vector<std::pair<std::string, int32_t>> markup, bool wait_for_think_end);
  // The markup tokens of a tokenizer: <tool_call> and </tool_call> where the vocabulary has them.
  static std::vector<std::pair<std::string, int32_t>> markup_of(const tokenizer::Tokenizer& tok);

  void mask(float* logits, int64_t n_vocab, int32_t tokens_left) override;
  void accept(int32_t token) override;

  // The function chosen once its name is complete.
  const std::optional<std::string>& chosen() const { return chosen_; }

 private:
  enum class Stage {
    kReasoning,  // before </think>: free
    kOpen,       // the forced opening, one of opens_
    kArguments,  // Hermes: the arguments object (JSON mode)
    kClose,      // Hermes: the forced `\n</tool_call>`
    kEnd,        // Hermes: only the end of generation
    kFree,       // XML after the opening, or after an unexpected token: no constraint
  };

  // Allows, for each forced text still possible, the longest tokens that spell a prefix of its rest.
  void allow_forced(const std::vector<std::string>& texts, std::vector<uint8_t>* allowed) const;

  std::shared_ptr<const TokenTrie> trie_;
  chat::ToolCallFormat format_;
  std::vector<std::string> names_;
  std::vector<std::string> opens_;  // per name: the forced opening
  std::vector<std::pair<std::string, int32_t>> markup_;
  Stage stage_;
  std::string written_;  // of the current forced text
  std::optional<std::string> chosen_;
  std::unique_ptr<JsonFilter> arguments_;
  std::vector<uint8_t> allowed_;
};

}  // namespace hylo::server
