// GPT-2 byte-level mapping: every byte value gets a printable code point so that BPE vocabularies
// can be stored as text (space = U+0120 'Ġ'). Pure tables, no vocabulary knowledge.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hylo::tokenizer {

// Code point that byte `b` is stored as in the vocabulary.
uint32_t byte_to_codepoint(uint8_t b);

// Inverse of byte_to_codepoint; -1 for code points that are not in the table.
int codepoint_to_byte(uint32_t cp);

// Raw bytes -> the vocabulary's text form ("hi there" -> "hiĠthere").
std::string byte_level_encode(std::string_view bytes);

// Vocabulary text -> raw bytes. Returns false (and leaves a partial result) if `text` holds a
// code point outside the table or is not valid UTF-8.
bool byte_level_decode(std::string_view text, std::string* bytes);

}  // namespace hylo::tokenizer
