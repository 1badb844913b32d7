// Jinja lexer, following jinja2's lexer rules for the tags, whitespace control and literals.
#include "chat/jinja_lexer.h"

#include <fmt/format.h>

#include <cstring>

#include "chat/jinja_value.h"
#include "chat/pystr.h"
#include "tokenizer/utf8.h"

namespace hylo::chat::jinja {
namespace {

[[noreturn]] void fail_at(int line, std::string message) { throw TemplateError{std::move(message), line}; }

bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Python's str.rstrip() (Unicode whitespace).
std::string_view rstrip_ws(std::string_view s) {
  const std::vector<uint32_t> cps = pystr::code_points(s);
  size_t keep = s.size();
  for (size_t i = cps.size(); i > 0 && pystr::is_space(cps[i - 1]); --i) {
    std::string enc;
    tokenizer::utf8_append(enc, cps[i - 1]);
    keep -= enc.size();
  }
  return s.substr(0, keep);
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) {
    // jinja2 splits on \r\n, \r and \n, rejoins with \n and drops one trailing newline.
    src_.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_ += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src_ += source[i];
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const size_t tag = find_tag(pos_);
      if (tag == std::string::npos) {
        emit_data(std::string_view(src_).substr(pos_), line_);
        advance_to(src_.size());
        break;
      }
      const char kind = src_[tag + 1];
      const char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      std::string_view text = std::string_view(src_).substr(pos_, tag - pos_);
      const int text_line = line_;
      if (sign == '-') {
        text = rstrip_ws(text);
      } else if (sign != '+' && kind != '{') {
        // lstrip_blocks: drop spaces and tabs between the line start and a block/comment tag.
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_starting_) && text.find_first_not_of(" \t", l_pos) == std::string_view::npos)
          text = text.substr(0, l_pos);
      }
      emit_data(text, text_line);
      advance_to(tag + 2 + (sign ? 1 : 0));
      if (kind == '#') {
        comment();
      } else if (kind == '%' && raw_block()) {
        continue;
      } else {
        tag_contents(kind);
      }
    }
    tokens_.push_back(Token{TokenKind::kEof, "", line_});
    return std::move(tokens_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1))
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    return std::string::npos;
  }

  void advance_to(size_t p) {
    for (size_t i = pos_; i < p; ++i)
      if (src_[i] == '\n') ++line_;
    if (p > pos_) line_starting_ = src_[p - 1] == '\n';
    pos_ = p;
  }

  void emit_data(std::string_view text, int line) {
    if (!text.empty()) tokens_.push_back(Token{TokenKind::kData, std::string(text), line});
  }

  // After a tag end: "-" strips all following whitespace, plain ends of blocks and comments
  // (trim_blocks) eat one newline, "+" keeps everything.
  void after_tag_end(size_t end, char sign, bool is_block) {
    advance_to(end);
    if (sign == '-') {
      size_t p = pos_;
      while (p < src_.size()) {
        size_t q = p;
        uint32_t cp;
        if (!tokenizer::utf8_decode(src_, q, &cp) || !pystr::is_space(cp)) break;
        p = q;
      }
      advance_to(p);
    } else if (sign != '+' && is_block && pos_ < src_.size() && src_[pos_] == '\n') {
      advance_to(pos_ + 1);
    }
  }

  void comment() {
    const int start_line = line_;
    const size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) fail_at(start_line, "missing end of comment tag");
    const char sign = end > pos_ && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
    after_tag_end(end + 2, sign, true);
  }

  // {% raw %}...{% endraw %}: the content is data, verbatim.
  bool raw_block() {
    size_t p = pos_;
    while (p < src_.size() && (src_[p] == ' ' || src_[p] == '\t' || src_[p] == '\n')) ++p;
    if (src_.compare(p, 3, "raw") != 0 || (p + 3 < src_.size() && is_ident(src_[p + 3]))) return false;
    p += 3;
    while (p < src_.size() && (src_[p] == ' ' || src_[p] == '\t' || src_[p] == '\n')) ++p;
    char sign = 0;
    if (p < src_.size() && src_[p] == '-') sign = src_[p++];
    if (src_.compare(p, 2, "%}") != 0) return false;
    const int start_line = line_;
    advance_to(p + 2);
    if (sign == '-') after_tag_end(pos_, '-', true);
    // Find {%[-+]? endraw [-+]?%}
    for (size_t t = src_.find("{%", pos_); t != std::string::npos; t = src_.find("{%", t + 2)) {
      size_t q = t + 2;
      const char open_sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q++] : 0;
      while (q < src_.size() && (src_[q] == ' ' || src_[q] == '\t' || src_[q] == '\n')) ++q;
      if (src_.compare(q, 6, "endraw") != 0) continue;
      q += 6;
      while (q < src_.size() && (src_[q] == ' ' || src_[q] == '\t' || src_[q] == '\n')) ++q;
      const char close_sign = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q++] : 0;
      if (src_.compare(q, 2, "%}") != 0) continue;
      std::string_view text = std::string_view(src_).substr(pos_, t - pos_);
      if (open_sign == '-') {
        text = rstrip_ws(text);
      } else if (open_sign != '+') {
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_starting_) && text.find_first_not_of(" \t", l_pos) == std::string_view::npos)
          text = text.substr(0, l_pos);
      }
      emit_data(text, line_);
      after_tag_end(q + 2, close_sign, true);
      return true;
    }
    fail_at(start_line, "missing {% endraw %}");
  }

  void tag_contents(char kind) {
    const int start_line = line_;
    tokens_.push_back(Token{kind == '{' ? TokenKind::kVarBegin : TokenKind::kBlockBegin, "", start_line});
    std::string balance;  // open brackets; tag ends are only recognised outside them
    while (true) {
      skip_space();
      if (pos_ >= src_.size())
        fail_at(start_line, fmt::format("unexpected end of template, expected '{}'", kind == '{' ? "}}" : "%}"));
      if (balance.empty()) {
        const char* end = kind == '{' ? "}}" : "%}";
        const char c = src_[pos_];
        if ((c == '-' || c == '+') && src_.compare(pos_ + 1, 2, end) == 0 && !(kind == '{' && c == '+')) {
          tokens_.push_back(Token{kind == '{' ? TokenKind::kVarEnd : TokenKind::kBlockEnd, "", line_});
          after_tag_end(pos_ + 3, c, kind == '%');
          return;
        }
        if (src_.compare(pos_, 2, end) == 0) {
          tokens_.push_back(Token{kind == '{' ? TokenKind::kVarEnd : TokenKind::kBlockEnd, "", line_});
          after_tag_end(pos_ + 2, 0, kind == '%');
          return;
        }
      }
      lex_token(balance);
    }
  }

  void skip_space() {
    while (pos_ < src_.size()) {
      size_t q = pos_;
      uint32_t cp;
      if (!tokenizer::utf8_decode(src_, q, &cp) || !pystr::is_space(cp)) return;
      advance_to(q);
    }
  }

  void lex_token(std::string& balance) {
    const char c = src_[pos_];
    const int line = line_;
    if (is_digit(c)) return lex_number();
    if (is_ident_start(c)) {
      size_t e = pos_;
      while (e < src_.size() && is_ident(src_[e])) ++e;
      tokens_.push_back(Token{TokenKind::kName, src_.substr(pos_, e - pos_), line});
      advance_to(e);
      return;
    }
    if (c == '\'' || c == '"') return lex_string();
    static const char* kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "/", "*", "%", "~", "[",
                                 "]",  "(",  ")",  "{",  "}",  "<",  ">", "=", ".", ":", "|", ",", ";"};
    for (const char* op : kOps) {
      const size_t n = std::strlen(op);
      if (src_.compare(pos_, n, op) != 0) continue;
      if (n == 1 && (c == '(' || c == '[' || c == '{')) balance += c;
      if (n == 1 && (c == ')' || c == ']' || c == '}')) {
        const char open = c == ')' ? '(' : c == ']' ? '[' : '{';
        if (balance.empty() || balance.back() != open) fail_at(line, fmt::format("unexpected '{}'", c));
        balance.pop_back();
      }
      tokens_.push_back(Token{TokenKind::kOp, op, line});
      advance_to(pos_ + n);
      return;
    }
    size_t q = pos_;
    uint32_t cp = static_cast<uint8_t>(c);
    tokenizer::utf8_decode(src_, q, &cp);
    fail_at(line, fmt::format("unexpected character '{}' (U+{:04X}) in tag",
                              src_.substr(pos_, std::max<size_t>(q - pos_, 1)), cp));
  }

  void lex_number() {
    const int line = line_;
    size_t e = pos_;
    auto digits = [&](size_t p) {
      // \d+ with single underscores between digits
      while (p < src_.size() && (is_digit(src_[p]) || (src_[p] == '_' && p + 1 < src_.size() && is_digit(src_[p + 1]))))
        ++p;
      return p;
    };
    const bool after_dot = pos_ > 0 && src_[pos_ - 1] == '.';
    if (src_[pos_] == '0' && pos_ + 1 < src_.size() && std::strchr("xXoObB", src_[pos_ + 1]) != nullptr) {
      const int base = std::strchr("xX", src_[pos_ + 1]) ? 16 : std::strchr("oO", src_[pos_ + 1]) ? 8 : 2;
      e = pos_ + 2;
      std::string num;
      while (e < src_.size() && (std::isxdigit(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) {
        if (src_[e] != '_') num += src_[e];
        ++e;
      }
      Token t{TokenKind::kInt, src_.substr(pos_, e - pos_), line};
      try {
        t.int_value = std::stoll(num, nullptr, base);
      } catch (...) {
        fail_at(line, fmt::format("invalid integer literal '{}'", t.text));
      }
      tokens_.push_back(std::move(t));
      advance_to(e);
      return;
    }
    e = digits(pos_);
    bool is_float = false;
    if (!after_dot && e + 1 < src_.size() && src_[e] == '.' && is_digit(src_[e + 1])) {
      e = digits(e + 1);
      is_float = true;
    }
    if (!after_dot && e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t q = e + 1;
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
      if (q < src_.size() && is_digit(src_[q])) {
        e = digits(q);
        is_float = true;
      }
    }
    std::string text = src_.substr(pos_, e - pos_), clean;
    for (char ch : text)
      if (ch != '_') clean += ch;
    Token t{is_float ? TokenKind::kFloat : TokenKind::kInt, text, line};
    try {
      if (is_float) {
        t.float_value = std::stod(clean);
      } else {
        t.int_value = std::stoll(clean);
      }
    } catch (...) {
      fail_at(line, fmt::format("number literal '{}' out of range", text));
    }
    tokens_.push_back(std::move(t));
    advance_to(e);
  }

  // Python string literal with unicode-escape decoding (what jinja2 applies).
  void lex_string() {
    const int line = line_;
    const char quote = src_[pos_];
    size_t p = pos_ + 1;
    std::string value;
    while (true) {
      if (p >= src_.size()) fail_at(line, "unterminated string literal");
      const char c = src_[p];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) fail_at(line, "unterminated string literal");
      const char e = src_[p + 1];
      p += 2;
      auto hex = [&](int n) {
        if (p + n > src_.size()) fail_at(line, "truncated \\x/\\u escape in string literal");
        uint32_t v = 0;
        for (int i = 0; i < n; ++i) {
          const char h = src_[p + i];
          if (!std::isxdigit(static_cast<unsigned char>(h)))
            fail_at(line, "truncated \\x/\\u escape in string literal");
          v = v * 16 + static_cast<uint32_t>(
                           std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
        }
        p += n;
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) fail_at(line, "invalid code point escape in string literal");
        tokenizer::utf8_append(value, v);
      };
      switch (e) {
        case '\n':
          break;  // line continuation
        case '\\':
          value += '\\';
          break;
        case '\'':
          value += '\'';
          break;
        case '"':
          value += '"';
          break;
        case 'a':
          value += '\a';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'n':
          value += '\n';
          break;
        case 'r':
          value += '\r';
          break;
        case 't':
          value += '\t';
          break;
        case 'v':
          value += '\v';
          break;
        case 'x':
          hex(2);
          break;
        case 'u':
          hex(4);
          break;
        case 'U':
          hex(8);
          break;
        case 'N':
          fail_at(line, "\\N{...} escapes are not supported");
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = static_cast<uint32_t>(e - '0');
            for (int i = 0; i < 2 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7'; ++i)
              v = v * 8 + static_cast<uint32_t>(src_[p++] - '0');
            tokenizer::utf8_append(value, v);
          } else {
            value += '\\';
            value += e;
          }
      }
    }
    tokens_.push_back(Token{TokenKind::kString, std::move(value), line});
    advance_to(p + 1);
  }

  std::string src_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> lex(std::string_view source) {
  if (!tokenizer::utf8_is_valid(source)) throw TemplateError{"template source is not valid UTF-8", 0};
  return Lexer(source).run();
}

}  // namespace hylo::chat::jinja
