// Byte-level BPE tokenizer of the Qwen family, built from GGUF metadata (tokenizer.ggml.*):
// text -> ids with HF tokenizers semantics, ids -> text. Knows nothing about models.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "tokenizer/pretokenizer.h"

namespace hylo::gguf {
class File;
}

namespace hylo::tokenizer {

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // <|im_start|>, <|endoftext|>, ...: matched only with parse_special, hidden on request
  kUserDefined = 4,  // <think>, <tool_call>, ...: always matched as a whole, always shown
  kUnused = 5,       // [PAD151669] rows: never produced by encode, decode to nothing
  kByte = 6,
};

// The vocabulary in GGUF form (what tokenizer.ggml.* holds).
struct Vocab {
  std::string model = "gpt2";  // tokenizer.ggml.model
  std::string pre = "qwen2";   // tokenizer.ggml.pre
  std::vector<std::string> tokens;
  std::vector<int32_t> token_types;
  std::vector<std::string> merges;  // "A B"
  int32_t bos_id = -1, eos_id = -1, pad_id = -1;
  bool add_bos = false;
  std::string chat_template;
};

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* and tokenizer.chat_template; only metadata is touched.
  static Result<Tokenizer> from_gguf(const gguf::File& file);
  // Opens the GGUF file and reads its tokenizer (tensor data is mapped, never read).
  static Result<Tokenizer> from_gguf_file(const std::string& path);
  // Validates `vocab` (types, merges, special ids) and builds the lookup tables.
  static Result<Tokenizer> from_vocab(Vocab vocab);

  // Text -> ids (no BOS/EOS added). HF tokenizers semantics: added tokens are split off first,
  // longest match at the leftmost position (CONTROL ones only when `parse_special`; USER_DEFINED
  // ones such as <think> always); the rest is NFC-normalised, split by the pre-tokenizer regex,
  // byte-mapped and merged by rank. Bytes that are not valid UTF-8 become one byte token each,
  // so any byte string round-trips through decode(). Thread-safe.
  std::vector<int32_t> encode(std::string_view text, bool parse_special) const;

  // Ids -> the exact bytes they stand for (not necessarily valid UTF-8 when a multi-byte
  // character is cut; see StreamDecoder). CONTROL tokens are omitted unless `show_special`;
  // UNUSED rows and out-of-range ids produce nothing.
  std::string decode(std::span<const int32_t> ids, bool show_special = true) const;
  // Raw bytes of one token (special tokens as their text); "" for unused / invalid ids.
  std::string token_to_piece(int32_t id) const;
  // The token as stored in the vocabulary (byte-level form for normal tokens, e.g. "Ġthe").
  const std::string& token_text(int32_t id) const;
  TokenType token_type(int32_t id) const;

  int32_t n_vocab() const;
  int32_t bos_id() const;  // -1 when the vocabulary has none
  int32_t eos_id() const;
  int32_t pad_id() const;
  bool add_bos() const;
  // End-of-generation: <|im_end|>, <|endoftext|>, the FIM pad / repo / file-separator tokens and
  // the eos id (llama.cpp's EOG set).
  bool is_eog(int32_t id) const;
  const std::vector<int32_t>& eog_ids() const;
  // Added tokens matched as a whole by encode (CONTROL, USER_DEFINED, UNKNOWN).
  bool is_special(int32_t id) const;
  // Tokens that decode(..., show_special = false) hides (CONTROL, UNKNOWN).
  bool is_control(int32_t id) const;
  const std::string& chat_template() const;
  PreTokenizerKind pre_tokenizer() const;
  // The id of the token whose decoded text is exactly `text` (added tokens first).
  std::optional<int32_t> find_token(std::string_view text) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;  // immutable after loading, shared by copies
};

}  // namespace hylo::tokenizer
