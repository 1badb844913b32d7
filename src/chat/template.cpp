// Template: lexer + parser + interpreter behind a Result-returning interface.
#include "chat/template.h"

#include "chat/jinja_lexer.h"
#include "chat/jinja_parser.h"

namespace hylo::chat {

Result<Template> Template::parse(std::string_view source) {
  try {
    Template t;
    t.body_ = std::make_shared<const jinja::Body>(jinja::parse(jinja::lex(source)));
    return t;
  } catch (const jinja::TemplateError& e) {
    return make_error("[chat] template syntax error at line {}: {}", e.line, e.message);
  }
}

Result<std::string> Template::render(const nlohmann::ordered_json& context, const jinja::RenderLimits& limits) const {
  if (!context.is_null() && !context.is_object()) return make_error("[chat] template context must be a JSON object");
  try {
    auto globals = std::make_shared<jinja::Scope>();
    if (context.is_object())
      for (auto it = context.begin(); it != context.end(); ++it) globals->set(it.key(), jinja::from_json(it.value()));
    jinja::Interpreter interp(limits);
    return interp.render(*body_, globals);
  } catch (const jinja::TemplateError& e) {
    return make_error("[chat] template error at line {}: {}", e.line, e.message);
  } catch (const std::bad_alloc&) {
    return make_error("[chat] template rendering ran out of memory");
  }
}

}  // namespace hylo::chat
