// Jinja templates for chat prompts: parse once, render many times. Implements the subset of
// Jinja that chat templates use, with the semantics of Python jinja2 in the environment HF
// transformers uses (see docs in chat_template.h). Not an HTML template engine.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/result.h"
#include "chat/jinja_eval.h"

namespace hylo::chat {

class Template {
 public:
  // Syntax errors name the line: "[chat] template syntax error at line 12: ...".
  static Result<Template> parse(std::string_view source);

  // `context` is a JSON object whose members become the template's variables (keys keep their
  // order, as Python dicts do). Runtime errors name the line; a raise_exception(msg) call
  // gives an error whose message contains msg. Thread-safe.
  Result<std::string> render(const nlohmann::ordered_json& context, const jinja::RenderLimits& limits = {}) const;

 private:
  std::shared_ptr<const jinja::Body> body_;
};

}  // namespace hylo::chat
