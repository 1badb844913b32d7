// Import of a Hugging Face tokenizer directory (tokenizer.json + tokenizer_config.json) into the
// GGUF vocabulary form, and the writer side of tokenizer.ggml.* metadata. Qwen byte-level BPE only.
#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "tokenizer/tokenizer.h"

namespace hylo::gguf {
class Writer;
}

namespace hylo::tokenizer {

// The GGUF vocabulary form (tokens, types, merges, special ids, template). An empty
// chat_template means none; bos/eos/pad of -1 mean absent (the key is then not written).
using HfTokenizerData = Vocab;

// Reads `dir`/tokenizer.json and (optionally) `dir`/tokenizer_config.json the way llama.cpp's
// converter does for Qwen2/Qwen3 BPE vocabularies:
// - ids 0..n_vocab-1; ids with no token become "[PAD<id>]" (UNUSED), so the table matches the
//   model's embedding rows. n_vocab = 0 means max id + 1;
// - added tokens are CONTROL when marked special or shaped like "<|...|>" (also "<pad>",
//   "<mask>"), USER_DEFINED otherwise; all other tokens NORMAL;
// - merges as "A B"; eos / pad / bos from the config's eos_token / pad_token / bos_token,
//   falling back to <|im_end|> / <|endoftext|> / <|endoftext|>; add_bos_token; chat_template
//   (a string, or the "default" entry of a list; else a chat_template.jinja file next to it);
// - pre = "qwen2", or "qwen35" when the split regex counts \p{M} as letters.
Result<HfTokenizerData> import_hf_tokenizer(const std::string& dir, int32_t n_vocab = 0);

// Writes tokenizer.ggml.{model, pre, tokens, token_type, merges, eos_token_id, padding_token_id,
// bos_token_id, add_bos_token} and tokenizer.chat_template (when present).
void add_tokenizer_metadata(gguf::Writer& writer, const HfTokenizerData& data);

}  // namespace hylo::tokenizer
