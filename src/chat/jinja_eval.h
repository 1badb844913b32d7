// Jinja interpreter: walks the syntax tree with jinja2's scoping rules (a fresh scope per loop
// iteration and per macro call, namespace objects for state that must survive them) and the
// limits that keep a hostile template from running away.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_ast.h"

namespace hylo::chat::jinja {

struct RenderLimits {
  size_t max_output_bytes = size_t{256} << 20;  // any single string, the output included
  int max_call_depth = 100;                     // nested macro calls
  int64_t max_steps = 50'000'000;               // statements + loop iterations + calls
  size_t max_stack_bytes = 512 << 10;           // C++ stack used by nested evaluation
};

struct Scope {
  std::vector<std::pair<std::string, Value>> vars;
  std::shared_ptr<Scope> parent;
  const Value* lookup(const std::string& name) const;
  void set(const std::string& name, Value v);
};

class Interpreter {
 public:
  explicit Interpreter(const RenderLimits& limits) : limits_(limits) {}

  // Renders `body` with `globals` as the template's top-level variables.
  std::string render(const Body& body, std::shared_ptr<Scope> globals);

  // Throws if a string of `n` bytes would exceed the output limit.
  void check_size(size_t n) const;
  // Counts one unit of work; throws past the step limit.
  void step();
  // Throws when nested evaluation has used more than the allowed stack (macros calling macros
  // inside deep expressions), long before the thread's real stack runs out.
  void check_stack() const;

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec_body(const Body& body, const std::shared_ptr<Scope>& scope, std::string& out);
  Flow exec(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out);
  void exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out);
  void exec_set(const Stmt& s, const std::shared_ptr<Scope>& scope, Value value);
  Value define_macro(const Stmt& s, const std::shared_ptr<Scope>& scope);

  Value eval(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_inner(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_binary(const std::string& op, const Value& a, const Value& b);
  bool eval_compare(const std::string& op, const Value& a, const Value& b);
  CallArgs eval_args(const Expr& e, size_t first, const std::shared_ptr<Scope>& scope);
  void append(std::string& out, std::string_view text) const;

  RenderLimits limits_;
  int64_t steps_ = 0;
  int depth_ = 0;
  uintptr_t stack_base_ = 0;
};

}  // namespace hylo::chat::jinja
