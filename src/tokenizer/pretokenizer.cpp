// Qwen pre-tokenizer: NFC with utf8proc, regex split with PCRE2 (JIT, Unicode properties).
#include "tokenizer/pretokenizer.h"

#include <pcre2.h>
#include <utf8proc.h>

#include <cstdlib>

#include "base/log.h"
#include "tokenizer/utf8.h"

namespace hylo::tokenizer {
namespace {

// The split patterns of the Qwen tokenizer.json files:
//   qwen2:  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//           \s*[\r\n]+|\s+(?!\S)|\s+
//   qwen35: the same with [\p{L}\p{M}] for letter runs and \p{M} excluded from punctuation runs.
// HF tokenizers runs them with Oniguruma, whose Unicode \s is U+0009-U+000D, U+0085 and the Z
// categories (U+FEFF is not whitespace). PCRE2's \s differs at the edges, so the class is
// spelled out: WS below.
#define HYLO_WS R"(\t-\r\x{85}\p{Z})"
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^)" HYLO_WS R"(\p{L}\p{N}]+[\r\n]*|)"
    R"([)" HYLO_WS R"(]*[\r\n]+|[)" HYLO_WS R"(]+(?![^)" HYLO_WS R"(])|[)" HYLO_WS R"(]+)";
constexpr const char* kQwen35Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^)" HYLO_WS R"(\p{L}\p{M}\p{N}]+[\r\n]*|)"
    R"([)" HYLO_WS R"(]*[\r\n]+|[)" HYLO_WS R"(]+(?![^)" HYLO_WS R"(])|[)" HYLO_WS R"(]+)";
#undef HYLO_WS

}  // namespace

struct PreTokenizer::Regex {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Regex() { pcre2_code_free(code); }
};

Result<PreTokenizerKind> pre_tokenizer_kind(std::string_view name) {
  if (name == "qwen2") return PreTokenizerKind::kQwen2;
  if (name == "qwen35") return PreTokenizerKind::kQwen35;
  return make_error("[tokenizer] unsupported pre-tokenizer tokenizer.ggml.pre = '{}' (supported: qwen2, qwen35)", name);
}

bool may_need_nfc(std::string_view text) {
  // Every code point below U+0300 is NFC-stable and never composes with a preceding one; their
  // UTF-8 lead bytes are below 0xCC (continuation bytes are below 0xC0).
  for (char c : text)
    if (static_cast<uint8_t>(c) >= 0xCC) return true;
  return false;
}

std::string nfc_normalize(std::string_view text) {
  if (!may_need_nfc(text)) return std::string(text);
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), static_cast<utf8proc_ssize_t>(text.size()),
                   &out, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (n < 0) return std::string(text);  // invalid UTF-8: callers only pass valid text
  std::string result(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

Result<PreTokenizer> PreTokenizer::create(PreTokenizerKind kind) {
  const char* pattern = kind == PreTokenizerKind::kQwen35 ? kQwen35Pattern : kQwen2Pattern;
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  auto regex = std::make_shared<Regex>();
  regex->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err,
                              &err_offset, nullptr);
  if (regex->code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    return make_error("[tokenizer] pre-tokenizer regex does not compile at offset {}: {}", err_offset,
                      reinterpret_cast<const char*>(msg));
  }
  // JIT is an optimisation only: without it (unsupported CPU, no executable memory) the
  // interpreter gives the same matches.
  regex->jit = pcre2_jit_compile(regex->code, PCRE2_JIT_COMPLETE) == 0;
  if (!regex->jit) log_warn("[tokenizer] PCRE2 JIT unavailable; pre-tokenizer runs interpreted");
  PreTokenizer p;
  p.kind_ = kind;
  p.regex_ = std::move(regex);
  return p;
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>* pieces) const {
  if (text.empty()) return;
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const size_t len = text.size();
  size_t pos = 0;
  while (pos < len) {
    int rc = regex_->jit ? pcre2_jit_match(regex_->code, subject, len, pos, 0, md, nullptr)
                         : pcre2_match(regex_->code, subject, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    // The interpreter keeps its backtracking state on the heap, so it also covers inputs that
    // exhaust the JIT's machine stack.
    if (regex_->jit && rc < 0 && rc != PCRE2_ERROR_NOMATCH)
      rc = pcre2_match(regex_->code, subject, len, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) {
      if (rc != PCRE2_ERROR_NOMATCH) log_warn("[tokenizer] pre-tokenizer regex failed ({}); keeping text whole", rc);
      pieces->push_back(text.substr(pos));
      break;
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t start = ov[0], end = ov[1];
    // The pattern covers every code point, so gaps and empty matches cannot occur; handle them
    // anyway so that no input byte is ever dropped.
    if (start > pos) pieces->push_back(text.substr(pos, start - pos));
    if (end <= start) {
      size_t next = start;
      uint32_t cp;
      if (!utf8_decode(text, next, &cp)) next = start + 1;
      end = next;
    }
    pieces->push_back(text.substr(start, end - start));
    pos = end;
  }
  pcre2_match_data_free(md);
}

}  // namespace hylo::tokenizer
