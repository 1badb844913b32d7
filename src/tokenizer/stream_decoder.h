// Incremental detokenizer for streaming output: turns generated ids into text pieces that never
// end inside a UTF-8 sequence.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace hylo::tokenizer {

// Byte-level tokens can end in the middle of a multi-byte character (an emoji is often two or
// three tokens). push() returns only complete characters and keeps the started sequence for the
// next call. Output is always valid UTF-8: bytes that can never form a character become U+FFFD.
// One decoder per sequence; keeps a pointer to the tokenizer, which must outlive it.
class StreamDecoder {
 public:
  // show_special = false hides CONTROL tokens (<|im_end|>, ...), as Tokenizer::decode does.
  explicit StreamDecoder(const Tokenizer& tokenizer, bool show_special = true)
      : tokenizer_(&tokenizer), show_special_(show_special) {}

  // Text completed by token `id` (possibly empty).
  std::string push(int32_t id);
  // Whatever is still held back, with an unfinished sequence replaced by U+FFFD; resets.
  std::string flush();
  // Bytes currently held back (0-3).
  size_t pending_bytes() const { return pending_.size(); }
  void reset() { pending_.clear(); }

 private:
  const Tokenizer* tokenizer_;
  bool show_special_;
  std::string pending_;
};

}  // namespace hylo::tokenizer
