// tool_choice "required" or a named function, enforced while generating: after the reasoning (if
// the prompt opened it) the output is one call to one of the allowed functions, in the chat
// template's format.
//   Hermes JSON (Qwen3, Qwen3-Next): `<tool_call>\n{"name": "NAME", "arguments": ` is forced,
//     the arguments follow the function's parameters schema (a grammar), then `\n</tool_call>`
//     and the end.
//   XML (Qwen3-Coder): `<tool_call>\n<function=NAME>\n` is forced, then `<parameter=P>\n`
//     openings (P one of the function's parameters not written yet) with values each closed by
//     `\n</parameter>\n` (free text for strings, else JSON following the parameter's schema), then `</function>\n</tool_call>` (offered only once every
//     required parameter is written) and the end. Values are closed by force when the budget
//     would not leave room for the closing tags.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chat/chat_template.h"
#include "runtime/grammar_filter.h"
#include "server/token_filters.h"

namespace hylo::server {

struct ToolSpec {
  std::string name;
  std::vector<std::string> parameters;  // the names in its JSON schema's "properties"
  std::vector<std::string> required = {};  // those the schema requires
  // Hermes: the arguments object (the parameters schema compiled; null: any object).
  std::shared_ptr<const runtime::Grammar> arguments = nullptr;
  // XML: per parameter, the grammar of its value and closing (null or absent: free text).
  std::vector<std::shared_ptr<const runtime::Grammar>> values = {};
};

class ToolCallFilter : public runtime::TokenFilter {
 public:
  // markup: tokens the trie leaves out (special ones) that the forced text may use, as
  // (bytes, id), e.g. ("<tool_call>", 151657).
  ToolCallFilter(std::shared_ptr<const TokenTrie> trie, chat::ToolCallFormat format, std::vector<ToolSpec> tools,
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
    kForced,     // one of forced_ (what it is for: purpose_)
    kArguments,  // Hermes: the arguments object (JSON mode)
    kValue,      // XML: a parameter's value, free text up to its closing tag
    kTypedValue, // XML: a parameter's value and closing tag, following its schema
    kEnd,        // only the end of generation
    kFree,       // after an unexpected token: no constraint
  };
  enum class Purpose { kOpen, kHermesClose, kXmlNext, kXmlParamClose };

  void force(Purpose purpose, std::vector<std::string> texts);
  void forced_complete(size_t which);
  // kXmlNext: only the call's closing from now on when the budget has no room for a parameter
  // (when no required one is missing: else the request runs out, and says so).
  void narrow_for_budget(int32_t tokens_left);
  // XML: tokens the required parameters not written yet need at least (opening, a value token,
  // closing each).
  int32_t required_reserve() const;
  // Allows, for each text, the longest tokens that spell a prefix of what is left of it.
  void allow_forced(const std::vector<std::string>& texts, std::vector<uint8_t>* allowed) const;
  // Tokens a forced text takes when written longest token first.
  int32_t forced_tokens(std::string_view text) const;
  // Longest token (id, bytes) spelling a prefix of text; (-1, 0) when none.
  std::pair<int32_t, size_t> longest_prefix_token(std::string_view text) const;

  std::shared_ptr<const TokenTrie> trie_;
  chat::ToolCallFormat format_;
  std::vector<ToolSpec> tools_;
  std::vector<std::pair<std::string, int32_t>> markup_;
  Stage stage_;
  Purpose purpose_ = Purpose::kOpen;
  std::vector<std::string> forced_;  // the texts one of which is being written
  std::string written_;              // of the forced text, or of the value
  std::optional<size_t> tool_;       // index of the chosen tool
  std::optional<std::string> chosen_;
  std::unique_ptr<runtime::GrammarFilter> arguments_;  // Hermes arguments, or an XML typed value
  std::vector<std::string> written_params_;  // XML: parameters written so far
  std::vector<std::string> next_params_;     // XML: the parameter each of forced_ opens ("" for the closing)
  int32_t reserve_call_close_ = 0;   // tokens of the call's closing (+ the end token)
  int32_t reserve_param_close_ = 0;  // XML: tokens of a value's closing
  std::vector<uint8_t> allowed_;
};

}  // namespace hylo::server
