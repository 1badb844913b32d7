// Jinja interpreter: statements, expressions, scopes, macros, loops and Python arithmetic.
#include "chat/jinja_eval.h"

#include <fmt/format.h>

#include <cmath>

#include "chat/jinja_builtins.h"

namespace hylo::chat::jinja {

const Value* Scope::lookup(const std::string& name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent.get())
    for (const auto& [k, v] : s->vars)
      if (k == name) return &v;
  return nullptr;
}

void Scope::set(const std::string& name, Value v) {
  for (auto& [k, old] : vars)
    if (k == name) {
      old = std::move(v);
      return;
    }
  vars.emplace_back(name, std::move(v));
}

void Interpreter::check_size(size_t n) const {
  if (n > limits_.max_output_bytes) fail(fmt::format("output exceeds the limit of {} bytes", limits_.max_output_bytes));
}

void Interpreter::step() {
  if (++steps_ > limits_.max_steps) fail(fmt::format("template exceeded {} steps", limits_.max_steps));
}

void Interpreter::check_stack() const {
  char marker;
  const auto here = reinterpret_cast<uintptr_t>(&marker);
  const uintptr_t used = here > stack_base_ ? here - stack_base_ : stack_base_ - here;
  if (used > limits_.max_stack_bytes) fail("template nesting too deep (evaluation stack limit)");
}

void Interpreter::append(std::string& out, std::string_view text) const {
  check_size(out.size() + text.size());
  out.append(text);
}

std::string Interpreter::render(const Body& body, std::shared_ptr<Scope> globals) {
  char marker;
  stack_base_ = reinterpret_cast<uintptr_t>(&marker);
  add_global_functions(*globals);
  std::string out;
  exec_body(body, globals, out);
  return out;
}

Interpreter::Flow Interpreter::exec_body(const Body& body, const std::shared_ptr<Scope>& scope, std::string& out) {
  for (const StmtPtr& s : body) {
    const Flow f = exec(*s, scope, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
  step();
  check_stack();
  try {
    switch (s.kind) {
      case StmtKind::kText:
        append(out, s.text);
        break;
      case StmtKind::kOutput:
        append(out, py_str(eval(*s.expr, scope)));
        break;
      case StmtKind::kIf:
        for (size_t i = 0; i < s.conds.size(); ++i)
          if (eval(*s.conds[i], scope).truthy()) return exec_body(s.bodies[i], scope, out);
        return exec_body(s.else_body, scope, out);
      case StmtKind::kFor:
        exec_for(s, scope, out);
        break;
      case StmtKind::kSet:
        exec_set(s, scope, eval(*s.expr, scope));
        break;
      case StmtKind::kSetBlock: {
        std::string captured;
        exec_body(s.body, scope, captured);
        Value v(std::move(captured));
        if (s.expr) {
          CallArgs args = eval_args(*s.expr, 1, scope);
          v = apply_filter(*this, s.expr->name, v, args);
        }
        exec_set(s, scope, std::move(v));
        break;
      }
      case StmtKind::kMacro:
        scope->set(s.name, define_macro(s, scope));
        break;
      case StmtKind::kFilterBlock: {
        std::string captured;
        exec_body(s.body, scope, captured);
        // The chain is nested filters whose innermost operand is the block's text.
        std::vector<const Expr*> chain;
        for (const Expr* f = s.expr.get(); f != nullptr; f = f->children[0].get()) chain.push_back(f);
        Value v(std::move(captured));
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
          CallArgs args = eval_args(**it, 1, scope);
          v = apply_filter(*this, (*it)->name, v, args);
        }
        append(out, py_str(v));
        break;
      }
      case StmtKind::kWith: {
        auto inner = std::make_shared<Scope>();
        inner->parent = scope;
        for (size_t i = 0; i < s.targets.size(); ++i) inner->set(s.targets[i], eval(*s.values[i], scope));
        return exec_body(s.body, inner, out);
      }
      case StmtKind::kScope: {
        auto inner = std::make_shared<Scope>();
        inner->parent = scope;
        exec_body(s.body, inner, out);
        break;
      }
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
    }
  } catch (TemplateError& e) {
    if (e.line == 0) e.line = s.line;
    throw;
  }
  return Flow::kNormal;
}

void Interpreter::exec_set(const Stmt& s, const std::shared_ptr<Scope>& scope, Value value) {
  if (!s.text.empty()) {  // {% set ns.attr = value %}
    const Value* ns = scope->lookup(s.targets[0]);
    if (ns == nullptr || !ns->is_object() || ns->object_ref().kind != Object::Kind::kNamespace)
      fail(fmt::format("cannot assign attribute '{}' on '{}': not a namespace object", s.text, s.targets[0]));
    ns->object_ref().attrs.set(s.text, std::move(value));
    return;
  }
  if (s.targets.size() == 1) {
    scope->set(s.targets[0], std::move(value));
    return;
  }
  std::vector<Value> items = iterate(value);
  if (items.size() != s.targets.size())
    fail(fmt::format("cannot unpack {} values into {} names", items.size(), s.targets.size()));
  for (size_t i = 0; i < items.size(); ++i) scope->set(s.targets[i], std::move(items[i]));
}

void Interpreter::exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope, std::string& out) {
  const Value seq = eval(*s.expr, scope);
  if (seq.is_none() || seq.is_number() || seq.is_function() || seq.is_object())
    fail(fmt::format("'{}' object is not iterable", seq.type_name()));
  std::vector<Value> items = iterate(seq);

  auto bind = [&](Scope& iter_scope, const Value& item) {
    if (s.targets.size() == 1) {
      iter_scope.set(s.targets[0], item);
      return;
    }
    std::vector<Value> parts = iterate(item);
    if (parts.size() != s.targets.size())
      fail(fmt::format("cannot unpack {} values into {} loop variables", parts.size(), s.targets.size()));
    for (size_t k = 0; k < parts.size(); ++k) iter_scope.set(s.targets[k], std::move(parts[k]));
  };

  if (s.filter) {  // "for x in xs if cond": the loop only sees the items that pass
    std::vector<Value> kept;
    for (Value& item : items) {
      step();
      auto probe = std::make_shared<Scope>();
      probe->parent = scope;
      bind(*probe, item);
      if (eval(*s.filter, probe).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    exec_body(s.else_body, scope, out);
    return;
  }
  const int64_t depth = 1;  // only recursive loops (not supported) go deeper
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    step();
    auto iter_scope = std::make_shared<Scope>();
    iter_scope->parent = scope;
    bind(*iter_scope, items[i]);
    auto loop = std::make_shared<Object>();
    loop->kind = Object::Kind::kLoop;
    Dict& a = loop->attrs;
    a.items.reserve(12);
    a.items.emplace_back("index", Value(i + 1));
    a.items.emplace_back("index0", Value(i));
    a.items.emplace_back("revindex", Value(n - i));
    a.items.emplace_back("revindex0", Value(n - i - 1));
    a.items.emplace_back("first", Value(i == 0));
    a.items.emplace_back("last", Value(i == n - 1));
    a.items.emplace_back("length", Value(n));
    a.items.emplace_back("depth", Value(depth));
    a.items.emplace_back("depth0", Value(depth - 1));
    if (i > 0) a.items.emplace_back("previtem", items[i - 1]);
    if (i + 1 < n) a.items.emplace_back("nextitem", items[i + 1]);
    a.items.emplace_back("cycle", Value::function("cycle", [i](CallArgs& args) {
                           if (args.args.empty()) fail("no items for cycling given");
                           return args.args[static_cast<size_t>(i) % args.args.size()];
                         }));
    iter_scope->set("loop", Value(std::move(loop)));
    if (exec_body(s.body, iter_scope, out) == Flow::kBreak) break;
  }
}

Value Interpreter::define_macro(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  // Free names in the body resolve, at call time, in the scope where the macro was defined
  // (for top-level macros: the template's globals), never in the caller's locals.
  std::weak_ptr<Scope> defining = scope;
  return Value::function(s.name, [this, &s, defining](CallArgs& args) -> Value {
    auto parent = defining.lock();
    if (!parent) fail(fmt::format("macro '{}' called after its scope ended", s.name));
    if (++depth_ > limits_.max_call_depth) {
      --depth_;
      fail(fmt::format("macro calls nested too deep (more than {})", limits_.max_call_depth));
    }
    struct Unwind {
      int& d;
      ~Unwind() { --d; }
    } unwind{depth_};
    step();
    auto local = std::make_shared<Scope>();
    local->parent = parent;
    std::vector<Value> extra;
    for (size_t i = 0; i < s.targets.size(); ++i) {
      if (i < args.args.size()) {
        local->set(s.targets[i], args.args[i]);
        continue;
      }
      bool found = false;
      for (auto& [k, v] : args.kwargs)
        if (k == s.targets[i]) {
          local->set(k, v);
          found = true;
        }
      if (found) continue;
      if (s.values[i]) {
        local->set(s.targets[i], eval(*s.values[i], local));
      } else {
        local->set(s.targets[i], Value::undefined(fmt::format("parameter '{}' was not provided", s.targets[i])));
      }
    }
    for (size_t i = s.targets.size(); i < args.args.size(); ++i) extra.push_back(args.args[i]);
    local->set("varargs", Value::list(std::move(extra), /*tuple=*/true));
    Value kwargs = Value::dict();
    for (auto& [k, v] : args.kwargs) {
      bool is_param = false;
      for (const auto& t : s.targets) is_param = is_param || t == k;
      if (!is_param) kwargs.dict_ref().set(k, v);
    }
    local->set("kwargs", kwargs);
    std::string out;
    exec_body(s.body, local, out);
    return Value(std::move(out));
  });
}

CallArgs Interpreter::eval_args(const Expr& e, size_t first, const std::shared_ptr<Scope>& scope) {
  CallArgs args;
  for (size_t i = first; i < e.children.size(); ++i) args.args.push_back(eval(*e.children[i], scope));
  for (const auto& [k, v] : e.kwargs) args.kwargs.emplace_back(k, eval(*v, scope));
  return args;
}

Value Interpreter::eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
  check_stack();
  try {
    return eval_inner(e, scope);
  } catch (TemplateError& err) {
    if (err.line == 0) err.line = e.line;
    throw;
  }
}

Value Interpreter::eval_inner(const Expr& e, const std::shared_ptr<Scope>& scope) {
  switch (e.kind) {
    case ExprKind::kLiteral:
      return e.literal;
    case ExprKind::kName: {
      const Value* v = scope->lookup(e.name);
      return v != nullptr ? *v : Value::undefined(fmt::format("'{}' is undefined", e.name));
    }
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      for (const auto& c : e.children) items.push_back(eval(*c, scope));
      return Value::list(std::move(items), e.kind == ExprKind::kTuple);
    }
    case ExprKind::kDict: {
      Value d = Value::dict();
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        Value k = eval(*e.children[i], scope);
        if (!k.is_string()) fail(fmt::format("dict keys must be strings here, got '{}'", k.type_name()));
        d.dict_ref().set(k.str(), eval(*e.children[i + 1], scope));
      }
      return d;
    }
    case ExprKind::kGetAttr:
      return get_attr(*this, eval(*e.children[0], scope), e.name);
    case ExprKind::kGetItem:
      return get_item(*this, eval(*e.children[0], scope), eval(*e.children[1], scope));
    case ExprKind::kSlice: {
      Value obj = eval(*e.children[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i) parts[i] = e.children[i + 1] ? eval(*e.children[i + 1], scope) : Value::none();
      return get_slice(obj, parts[0], parts[1], parts[2]);
    }
    case ExprKind::kCall: {
      Value callee = eval(*e.children[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      if (callee.is_undefined()) fail(callee.undefined_hint());
      if (!callee.is_function()) fail(fmt::format("'{}' object is not callable", callee.type_name()));
      step();
      return callee.function_ref().call(args);
    }
    case ExprKind::kFilter: {
      Value v = eval(*e.children[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      return apply_filter(*this, e.name, v, args);
    }
    case ExprKind::kTest: {
      Value v = eval(*e.children[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      return Value(apply_test(*this, e.name, v, args) != e.negated);
    }
    case ExprKind::kUnary: {
      Value v = eval(*e.children[0], scope);
      if (e.name == "not") return Value(!v.truthy());
      if (v.is_undefined()) fail(v.undefined_hint());
      if (!v.is_number()) fail(fmt::format("bad operand type for unary {}: '{}'", e.name, v.type_name()));
      if (e.name == "+") return v.is_float() ? v : Value(v.as_int());
      if (v.is_float()) return Value(-v.as_double());
      if (v.as_int() == INT64_MIN) fail("integer overflow");
      return Value(-v.as_int());
    }
    case ExprKind::kBinary: {
      Value a = eval(*e.children[0], scope);
      if (e.name == "and") return a.truthy() ? eval(*e.children[1], scope) : a;
      if (e.name == "or") return a.truthy() ? a : eval(*e.children[1], scope);
      return eval_binary(e.name, a, eval(*e.children[1], scope));
    }
    case ExprKind::kConcat: {
      std::string s;
      for (const auto& c : e.children) {
        s += py_str(eval(*c, scope));
        check_size(s.size());
      }
      return Value(std::move(s));
    }
    case ExprKind::kCompare: {
      Value left = eval(*e.children[0], scope);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.children[i + 1], scope);
        if (!eval_compare(e.ops[i], left, right)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case ExprKind::kCond: {
      if (eval(*e.children[1], scope).truthy()) return eval(*e.children[0], scope);
      if (e.children[2]) return eval(*e.children[2], scope);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
  }
  return Value();
}

bool Interpreter::eval_compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return py_equal(a, b);
  if (op == "!=") return !py_equal(a, b);
  if (op == "in") return py_contains(b, a);
  if (op == "notin") return !py_contains(b, a);
  if (a.is_undefined()) fail(a.undefined_hint());
  if (b.is_undefined()) fail(b.undefined_hint());
  if (op == "<") return py_less(a, b);
  if (op == ">") return py_less(b, a);
  if (op == "<=") return !py_less(b, a);
  return !py_less(a, b);  // >=
}

namespace {

[[noreturn]] void bad_operands(const std::string& op, const Value& a, const Value& b) {
  fail(fmt::format("unsupported operand type(s) for {}: '{}' and '{}'", op, a.type_name(), b.type_name()));
}

// Python ints do not overflow; ours fail loudly instead of wrapping.
Value int_op(const std::string& op, int64_t a, int64_t b) {
  int64_t r = 0;
  const bool overflow = op == "+"   ? __builtin_add_overflow(a, b, &r)
                        : op == "-" ? __builtin_sub_overflow(a, b, &r)
                                    : __builtin_mul_overflow(a, b, &r);
  if (overflow) fail("integer overflow");
  return Value(r);
}

}  // namespace

Value Interpreter::eval_binary(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail(a.undefined_hint());
  if (b.is_undefined()) fail(b.undefined_hint());
  const bool ints = (a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool());
  if (a.is_number() && b.is_number()) {
    const double x = a.as_double(), y = b.as_double();
    if (op == "+" || op == "-" || op == "*") {
      if (ints) return int_op(op, a.as_int(), b.as_int());
      return Value(op == "+" ? x + y : op == "-" ? x - y : x * y);
    }
    if (op == "/") {
      if (y == 0) fail("division by zero");
      return Value(x / y);
    }
    if (op == "//" || op == "%") {
      if (y == 0) fail(op == "//" ? "integer division or modulo by zero" : "modulo by zero");
      if (ints) {
        const int64_t p = a.as_int(), q = b.as_int();
        if (p == INT64_MIN && q == -1) fail("integer overflow");
        int64_t div = p / q, mod = p % q;
        if (mod != 0 && ((mod < 0) != (q < 0))) {  // Python floors toward negative infinity
          --div;
          mod += q;
        }
        return op == "//" ? Value(div) : Value(mod);
      }
      const double mod = std::fmod(x, y);
      const double fixed = (mod != 0 && ((mod < 0) != (y < 0))) ? mod + y : mod;
      return op == "//" ? Value(std::floor(x / y)) : Value(fixed);
    }
    if (op == "**") {
      if (ints && b.as_int() >= 0) {
        int64_t result = 1, base = a.as_int();
        for (int64_t e = b.as_int(); e > 0; --e) {
          if (__builtin_mul_overflow(result, base, &result)) fail("integer overflow");
          if (result == 0 || result == 1) break;
        }
        return Value(result);
      }
      return Value(std::pow(x, y));
    }
  }
  if (op == "+") {
    if (a.is_string() && b.is_string()) {
      check_size(a.str().size() + b.str().size());
      return Value(a.str() + b.str());
    }
    if (a.is_list() && b.is_list() && a.list_ref().tuple == b.list_ref().tuple) {
      std::vector<Value> items = a.list_ref().items;
      items.insert(items.end(), b.list_ref().items.begin(), b.list_ref().items.end());
      return Value::list(std::move(items), a.list_ref().tuple);
    }
    if (a.is_string()) fail(fmt::format("can only concatenate str (not \"{}\") to str", b.type_name()));
  }
  if (op == "*") {
    const Value* seq = a.is_string() || a.is_list() ? &a : b.is_string() || b.is_list() ? &b : nullptr;
    const Value* count = seq == &a ? &b : &a;
    if (seq != nullptr && (count->is_int() || count->is_bool())) {
      const int64_t n = std::max<int64_t>(0, count->as_int());
      if (seq->is_string()) {
        check_size(seq->str().size() * static_cast<size_t>(std::min<int64_t>(n, 1 << 30)));
        std::string s;
        for (int64_t i = 0; i < n; ++i) s += seq->str();
        return Value(std::move(s));
      }
      check_size(seq->list_ref().items.size() * static_cast<size_t>(std::min<int64_t>(n, 1 << 30)) * 16);
      std::vector<Value> items;
      for (int64_t i = 0; i < n; ++i)
        items.insert(items.end(), seq->list_ref().items.begin(), seq->list_ref().items.end());
      return Value::list(std::move(items), seq->list_ref().tuple);
    }
  }
  if (op == "%" && a.is_string()) {
    std::string s =
        percent_format(a.str(), b.is_list() && b.list_ref().tuple ? b.list_ref().items : std::vector<Value>{b});
    check_size(s.size());
    return Value(std::move(s));
  }
  bad_operands(op, a, b);
}

}  // namespace hylo::chat::jinja
