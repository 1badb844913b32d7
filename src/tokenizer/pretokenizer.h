// Pre-tokenization of the Qwen2 / Qwen3.5 byte-level BPE tokenizers: NFC normalisation and the
// regex split into words, with HF tokenizers (Oniguruma) semantics. No vocabulary knowledge.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hylo::tokenizer {

enum class PreTokenizerKind {
  kQwen2,   // tokenizer.ggml.pre = "qwen2" (Qwen2, Qwen3, Qwen3-Next, Qwen3-Coder)
  kQwen35,  // "qwen35": the same split with combining marks (\p{M}) counted as letters
};

// Maps a `tokenizer.ggml.pre` value to a kind; an error names the unsupported value.
Result<PreTokenizerKind> pre_tokenizer_kind(std::string_view name);

// Composes `text` to Unicode NFC. Invalid UTF-8 is returned unchanged.
std::string nfc_normalize(std::string_view text);
// True when `text` may change under NFC (cheap check: it has a code point >= U+0300).
bool may_need_nfc(std::string_view text);

class PreTokenizer {
 public:
  static Result<PreTokenizer> create(PreTokenizerKind kind);

  // Appends the pre-tokens of `text` (valid UTF-8, already normalised) to `pieces`; they are
  // views into `text` and cover it completely, in order. Thread-safe.
  void split(std::string_view text, std::vector<std::string_view>* pieces) const;

  PreTokenizerKind kind() const { return kind_; }

 private:
  struct Regex;
  PreTokenizerKind kind_ = PreTokenizerKind::kQwen2;
  std::shared_ptr<const Regex> regex_;
};

}  // namespace hylo::tokenizer
