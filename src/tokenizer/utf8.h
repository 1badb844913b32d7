// Small strict UTF-8 helpers shared by the tokenizer and the chat layer (templates, output
// parsing). Strict means RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hylo::tokenizer {

// Length of the sequence announced by a lead byte: 1-4, or 0 for a byte that cannot start one.
inline int utf8_sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;  // continuation byte or overlong 2-byte lead
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  if (lead < 0xF5) return 4;
  return 0;
}

// Decodes the code point at s[pos]. On success stores it in *cp, advances pos and returns true;
// on an invalid or truncated sequence returns false and leaves pos unchanged.
inline bool utf8_decode(std::string_view s, size_t& pos, uint32_t* cp) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + pos;
  const size_t left = s.size() - pos;
  const int n = utf8_sequence_length(p[0]);
  if (n == 0 || static_cast<size_t>(n) > left) return false;
  if (n == 1) {
    *cp = p[0];
    pos += 1;
    return true;
  }
  uint32_t c = p[0] & (0x7F >> n);
  for (int i = 1; i < n; ++i) {
    if ((p[i] & 0xC0) != 0x80) return false;
    c = (c << 6) | (p[i] & 0x3F);
  }
  // Reject overlongs (3- and 4-byte forms), surrogates and values above U+10FFFF.
  if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
  *cp = c;
  pos += n;
  return true;
}

inline void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

inline bool utf8_is_valid(std::string_view s) {
  size_t pos = 0;
  uint32_t cp;
  while (pos < s.size()) {
    if (static_cast<uint8_t>(s[pos]) < 0x80) {
      ++pos;
    } else if (!utf8_decode(s, pos, &cp)) {
      return false;
    }
  }
  return true;
}

// Number of bytes at the end of `s` that form the valid start of a UTF-8 sequence which more
// bytes could still complete (0-3). Streaming code holds these back until the next chunk.
inline size_t utf8_incomplete_tail(std::string_view s) {
  const size_t n = s.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto lead = static_cast<uint8_t>(s[n - back]);
    if ((lead & 0xC0) == 0x80) continue;  // continuation byte: the lead is further back
    const int len = utf8_sequence_length(lead);
    if (len == 0 || len <= static_cast<int>(back)) return 0;  // complete, ASCII or invalid
    // The byte after the lead has a narrower range for some leads (no overlongs, surrogates,
    // or values above U+10FFFF); the others only need to be continuation bytes.
    if (back >= 2) {
      const auto c1 = static_cast<uint8_t>(s[n - back + 1]);
      const uint8_t lo = lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80;
      const uint8_t hi = lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF;
      if (c1 < lo || c1 > hi) return 0;
    }
    return back;
  }
  return 0;
}

// Length of the invalid stretch at s[pos] that counts as one error: the lead byte plus the
// continuation bytes that still fit it (the "maximal subpart" of Unicode ch. 3), at least 1.
inline size_t utf8_invalid_length(std::string_view s, size_t pos) {
  const auto lead = static_cast<uint8_t>(s[pos]);
  const int len = utf8_sequence_length(lead);
  size_t i = 1;
  while (static_cast<int>(i) < len && pos + i < s.size()) {
    const auto c = static_cast<uint8_t>(s[pos + i]);
    const uint8_t lo = i > 1 ? 0x80 : lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80;
    const uint8_t hi = i > 1 ? 0xBF : lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF;
    if (c < lo || c > hi) break;
    ++i;
  }
  return i;
}

// Replaces each invalid stretch with U+FFFD (as Python's errors="replace"), so the result is
// always valid UTF-8.
inline std::string utf8_sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  uint32_t cp;
  while (pos < s.size()) {
    const size_t start = pos;
    if (static_cast<uint8_t>(s[pos]) < 0x80) {
      out += s[pos++];
    } else if (utf8_decode(s, pos, &cp)) {
      out.append(s.substr(start, pos - start));
    } else {
      out += "\xEF\xBF\xBD";
      pos += utf8_invalid_length(s, pos);
    }
  }
  return out;
}

// Number of code points (invalid bytes count as one each).
inline size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (size_t pos = 0; pos < s.size(); ++n) {
    uint32_t cp;
    if (static_cast<uint8_t>(s[pos]) < 0x80 || !utf8_decode(s, pos, &cp)) ++pos;
  }
  return n;
}

}  // namespace hylo::tokenizer
