// Jinja lexer: template source -> tokens, with the whitespace rules of the environment that HF
// transformers uses for chat templates (trim_blocks, lstrip_blocks, "-"/"+" markers, newline
// normalisation, one trailing newline dropped).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hylo::chat::jinja {

enum class TokenKind {
  kData,        // literal template text (whitespace control already applied)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,  // text holds the decoded value
  kInt,
  kFloat,
  kOp,  // operators and punctuation: + - * / // % ** ~ == != < <= > >= = . : | , ( ) [ ] { }
  kEof,
};

struct Token {
  TokenKind kind = TokenKind::kEof;
  std::string text;
  int line = 1;
  int64_t int_value = 0;
  double float_value = 0;
};

// Throws TemplateError (with the line) on a lexical error.
std::vector<Token> lex(std::string_view source);

}  // namespace hylo::chat::jinja
