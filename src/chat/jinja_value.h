// Values of the Jinja template engine: Python-like (None, bool, int, float, str, list, dict,
// Undefined, namespace objects, callables) with the Python semantics that leak into rendered
// prompts (str(), repr(), json.dumps, truthiness, equality). Not a general Python emulation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace hylo::chat::jinja {

class Value;

// Raised inside the engine for any template error; render() turns it into hylo::Error. Never
// crosses the chat layer's boundary.
struct TemplateError {
  std::string message;
  int line = 0;  // 0 = not known yet; filled in by the statement being executed
};
[[noreturn]] void fail(std::string message);

struct List {
  std::vector<Value> items;
  bool tuple = false;  // printed as (a, b) by str()
};

// Insertion-ordered mapping with string keys (JSON objects keep their order, as Python dicts do).
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  void set(std::string key, Value v);
};

// Attribute bags: namespace() objects (mutable through {% set ns.x = ... %}) and loop objects.
struct Object {
  enum class Kind { kNamespace, kLoop } kind = Kind::kNamespace;
  Dict attrs;
};

struct CallArgs {
  std::vector<Value> args;
  std::vector<std::pair<std::string, Value>> kwargs;
};
struct Function {
  std::string name;
  std::function<Value(CallArgs&)> call;
};

// An undefined name or attribute. `hint` says what was missing, for error messages.
struct Undefined {
  std::string hint;
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kObject, kFunction };

  Value() : v_(Undefined{}) {}
  static Value undefined(std::string hint) { return Value(Undefined{std::move(hint)}); }
  static Value none() { return Value(nullptr); }
  Value(bool b) : v_(b) {}                                  // NOLINT
  Value(int64_t i) : v_(i) {}                               // NOLINT
  Value(int i) : v_(static_cast<int64_t>(i)) {}             // NOLINT
  Value(double f) : v_(f) {}                                // NOLINT
  Value(std::string s) : v_(std::move(s)) {}                // NOLINT
  Value(const char* s) : v_(std::string(s)) {}              // NOLINT
  Value(std::shared_ptr<List> l) : v_(std::move(l)) {}      // NOLINT
  Value(std::shared_ptr<Dict> d) : v_(std::move(d)) {}      // NOLINT
  Value(std::shared_ptr<Object> o) : v_(std::move(o)) {}    // NOLINT
  Value(std::shared_ptr<Function> f) : v_(std::move(f)) {}  // NOLINT
  static Value list(std::vector<Value> items = {}, bool tuple = false);
  static Value dict();
  static Value function(std::string name, std::function<Value(CallArgs&)> fn);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::kUndefined; }
  bool is_none() const { return kind() == Kind::kNone; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_float() const { return kind() == Kind::kFloat; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }  // Python: bool is an int
  bool is_string() const { return kind() == Kind::kString; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_dict() const { return kind() == Kind::kDict; }
  bool is_object() const { return kind() == Kind::kObject; }
  bool is_function() const { return kind() == Kind::kFunction; }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const;    // int or bool
  double as_double() const;  // any number
  const std::string& str() const { return std::get<std::string>(v_); }
  List& list_ref() const { return *std::get<std::shared_ptr<List>>(v_); }
  Dict& dict_ref() const { return *std::get<std::shared_ptr<Dict>>(v_); }
  Object& object_ref() const { return *std::get<std::shared_ptr<Object>>(v_); }
  Function& function_ref() const { return *std::get<std::shared_ptr<Function>>(v_); }
  const std::string& undefined_hint() const { return std::get<Undefined>(v_).hint; }

  bool truthy() const;
  // Python type name, for error messages ('str', 'int', 'dict', 'NoneType', ...).
  std::string type_name() const;

 private:
  explicit Value(Undefined u) : v_(std::move(u)) {}
  explicit Value(std::nullptr_t) : v_(nullptr) {}
  std::variant<Undefined, std::nullptr_t, bool, int64_t, double, std::string, std::shared_ptr<List>,
               std::shared_ptr<Dict>, std::shared_ptr<Object>, std::shared_ptr<Function>>
      v_;
};

// JSON (messages, tools) -> Value; object key order is kept.
Value from_json(const nlohmann::ordered_json& j);

// Python semantics.
bool py_equal(const Value& a, const Value& b);
// a < b, or a TemplateError for unorderable types.
bool py_less(const Value& a, const Value& b);
std::string py_str(const Value& v);   // str(v); Undefined -> ""
std::string py_repr(const Value& v);  // repr(v)
std::string py_float_repr(double d);  // repr(float): "1.0", "1e+16", "0.1"

struct JsonOptions {
  bool ensure_ascii = false;
  int indent = -1;         // < 0: single line
  std::string indent_str;  // used instead of `indent` spaces when non-empty
  std::string item_sep = ", ", key_sep = ": ";
  bool sort_keys = false;
};
// json.dumps(v, ...) as Python writes it.
std::string to_json(const Value& v, const JsonOptions& opts = {});

}  // namespace hylo::chat::jinja
