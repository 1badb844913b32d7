// GPT-2 byte <-> code point table (the `bytes_to_unicode` scheme of byte-level BPE).
#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace hylo::tokenizer {
namespace {

// Printable Latin-1 bytes map to themselves; the other 68 bytes (controls, space, DEL, NBSP,
// soft hyphen...) map to U+0100 + n in byte order.
struct ByteTable {
  std::array<uint32_t, 256> to_cp{};
  static constexpr uint32_t kMaxCp = 0x100 + 68;
  std::array<int16_t, kMaxCp> to_byte{};

  ByteTable() {
    to_byte.fill(-1);
    uint32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_cp[b] = printable ? static_cast<uint32_t>(b) : next++;
      to_byte[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};

const ByteTable& table() {
  static const ByteTable t;
  return t;
}

}  // namespace

uint32_t byte_to_codepoint(uint8_t b) { return table().to_cp[b]; }

int codepoint_to_byte(uint32_t cp) { return cp < ByteTable::kMaxCp ? table().to_byte[cp] : -1; }

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  const ByteTable& t = table();
  for (char c : bytes) utf8_append(out, t.to_cp[static_cast<uint8_t>(c)]);
  return out;
}

bool byte_level_decode(std::string_view text, std::string* bytes) {
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t cp;
    if (!utf8_decode(text, pos, &cp)) return false;
    const int b = codepoint_to_byte(cp);
    if (b < 0) return false;
    *bytes += static_cast<char>(b);
  }
  return true;
}

}  // namespace hylo::tokenizer
