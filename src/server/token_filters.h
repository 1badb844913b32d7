// Per-request token filters for the engine (runtime::TokenFilter): JSON mode, which keeps the
// output a valid JSON object and closes it before the token budget runs out, and the forced
// output of the --test-hooks request field. Not a general grammar engine.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "runtime/token_trie.h"
#include "tokenizer/tokenizer.h"

namespace hylo::server {

using TokenTrie = runtime::TokenTrie;

// A JSON object being written, byte by byte (RFC 8259; a pushdown automaton with the container
// stack in a bit mask, so states copy cheaply). Trivially copyable.
struct JsonState {
  enum class Mode : uint8_t {
    kStart,        // before the top-level object: '{' comes first
    kValue,        // after ':' or an array's ',': a value
    kArrayFirst,   // after '[': a value or ']'
    kObjectFirst,  // after '{': a key or '}'
    kKey,          // after an object's ',': a key
    kColon,        // after a key
    kAfterValue,   // ',' or the container's closer
    kString,
    kEscape,
    kUnicode,
    kNumMinus,
    kNumZero,
    kNumInt,
    kNumDot,
    kNumFrac,
    kNumExp,
    kNumExpSign,
    kNumExpDigits,
    kLiteral,
    kDone,  // the top-level object is closed
    kInvalid,
  };
  static constexpr int kMaxDepth = 64;
  static constexpr int kMaxWhitespace = 40;     // consecutive whitespace bytes between tokens of JSON
  static constexpr int kMaxNumberDigits = 20;   // in the integer part, and in the fraction
  static constexpr int kMaxExponentDigits = 2;  // so that every number fits a double

  uint64_t arrays = 0;  // bit d: the container at depth d + 1 is an array (else an object)
  uint8_t depth = 0;
  Mode mode = Mode::kStart;
  uint8_t aux = 0;      // kLiteral: bytes matched; kUnicode: hex digits; numbers: digits in this part
  uint8_t literal = 0;  // kLiteral: 0 true, 1 false, 2 null
  uint8_t whitespace = 0;
  bool key = false;  // kString/kEscape/kUnicode: the string is an object key

  // Feeds one byte; false (and mode kInvalid) when the text can no longer be valid JSON.
  bool push(uint8_t c);
  bool push(const std::string& bytes);
  // Bytes needed at least to finish the document from here (each can be written as one token).
  int completion_length() const;
  bool done() const { return mode == Mode::kDone; }
};

// JSON mode: every token keeps the output a prefix of one JSON object, and once the budget
// (max_tokens, the context) would not leave room to close it, only tokens that still can are
// allowed. After the object: only an end-of-generation token. With `wait_for_think_end`, the
// constraint starts after the model's </think> (thinking models reason freely first).
class JsonFilter : public runtime::TokenFilter {
 public:
  JsonFilter(std::shared_ptr<const TokenTrie> trie, bool wait_for_think_end);
  // Constrains the rest of a document already begun (`start`: the state after its first bytes).
  JsonFilter(std::shared_ptr<const TokenTrie> trie, const JsonState& start);
  void mask(float* logits, int64_t n_vocab, int32_t tokens_left) override;
  void accept(int32_t token) override;
  const JsonState& state() const { return state_; }
  bool broken() const { return broken_; }

 private:
  // Marks the tokens of `trie` reachable from `from` whose completion fits `budget`; records the
  // smallest completion length seen in *min_completion.
  void walk(const TokenTrie::Trie& trie, const JsonState& from, int budget, int* min_completion);

  std::shared_ptr<const TokenTrie> trie_;
  JsonState state_;
  bool active_;
  bool broken_ = false;  // an unexpected token came through (e.g. a forced one): stop constraining
  std::vector<uint8_t> allowed_;
  struct Frame {
    uint32_t node;
    JsonState state;
  };
  std::vector<Frame> stack_;
};

// Test hook: the output is exactly these tokens, then end of generation.
class ForcedOutputFilter : public runtime::TokenFilter {
 public:
  ForcedOutputFilter(std::vector<int32_t> tokens, int32_t eog_id) : tokens_(std::move(tokens)), eog_(eog_id) {}
  void mask(float* logits, int64_t n_vocab, int32_t tokens_left) override;
  void accept(int32_t) override { ++pos_; }

 private:
  std::vector<int32_t> tokens_;
  int32_t eog_;
  size_t pos_ = 0;
};

}  // namespace hylo::server
