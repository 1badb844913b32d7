// Jinja parser: tokens -> syntax tree, with jinja2's operator precedence (filters bind tighter
// than arithmetic, the conditional expression loosest).
#pragma once

#include <vector>

#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace hylo::chat::jinja {

// Throws TemplateError (with the line) on a syntax error or an unsupported tag.
Body parse(const std::vector<Token>& tokens);

}  // namespace hylo::chat::jinja
