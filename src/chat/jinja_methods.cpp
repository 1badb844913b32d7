// Attribute and item access as jinja2's immutable sandbox resolves them, with the Python str,
// dict and list methods templates call (mutating ones are refused), plus iteration, len(),
// `in` and slicing.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "chat/jinja_builtins.h"
#include "chat/pystr.h"
#include "tokenizer/utf8.h"

namespace hylo::chat::jinja {
namespace {

// jinja2's object_type_repr, used in "'dict object' has no attribute 'x'".
std::string object_repr(const Value& v) {
  if (v.is_none()) return "None";
  return fmt::format("{} object", v.type_name());
}

Value missing_attr(const Value& obj, const std::string& name) {
  return Value::undefined(fmt::format("'{}' has no attribute '{}'", object_repr(obj), name));
}

// Positional-or-keyword argument `i` / `name`, or nullptr.
const Value* arg(const CallArgs& a, size_t i, const char* name) {
  if (i < a.args.size()) return &a.args[i];
  for (const auto& [k, v] : a.kwargs)
    if (k == name) return &v;
  return nullptr;
}

std::string str_arg(const CallArgs& a, size_t i, const char* name, const char* method) {
  const Value* v = arg(a, i, name);
  if (v == nullptr) fail(fmt::format("{}() missing argument '{}'", method, name));
  if (!v->is_string()) fail(fmt::format("{}() argument '{}' must be str, not {}", method, name, v->type_name()));
  return v->str();
}

std::optional<std::string> opt_str_arg(const CallArgs& a, size_t i, const char* name, const char* method) {
  const Value* v = arg(a, i, name);
  if (v == nullptr || v->is_none()) return std::nullopt;
  if (!v->is_string())
    fail(fmt::format("{}() argument '{}' must be str or None, not {}", method, name, v->type_name()));
  return v->str();
}

int64_t int_arg(const CallArgs& a, size_t i, const char* name, int64_t dflt) {
  const Value* v = arg(a, i, name);
  if (v == nullptr || v->is_none()) return dflt;
  if (!v->is_int() && !v->is_bool()) fail(fmt::format("argument '{}' must be int, not {}", name, v->type_name()));
  return v->as_int();
}

Value str_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.emplace_back(std::move(p));
  return Value::list(std::move(items));
}

// Python's str.format with positional ({}, {0}) and keyword ({name}) fields, no format specs.
std::string str_format(const std::string& fmt_str, const CallArgs& a) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt_str.size(); ++i) {
    const char c = fmt_str[i];
    if (c == '{' && i + 1 < fmt_str.size() && fmt_str[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt_str.size() && fmt_str[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      const size_t close = fmt_str.find('}', i);
      if (close == std::string::npos) fail("Single '{' encountered in format string");
      const std::string field = fmt_str.substr(i + 1, close - i - 1);
      if (field.find_first_of(":!.[") != std::string::npos) fail("format specs in str.format() are not supported");
      const Value* v = nullptr;
      if (field.empty()) {
        v = auto_index < a.args.size() ? &a.args[auto_index] : nullptr;
        ++auto_index;
      } else if (std::all_of(field.begin(), field.end(), ::isdigit)) {
        const size_t idx = std::stoul(field);
        v = idx < a.args.size() ? &a.args[idx] : nullptr;
      } else {
        for (const auto& [k, val] : a.kwargs)
          if (k == field) v = &val;
      }
      if (v == nullptr) fail(fmt::format("str.format(): no argument for field '{}'", field));
      out += py_str(*v);
      i = close;
    } else if (c == '}') {
      fail("Single '}' encountered in format string");
    } else {
      out += c;
    }
  }
  return out;
}

bool prefix_match(const std::string& s, const Value& probe, bool suffix, const char* method) {
  auto one = [&](const Value& p) {
    if (!p.is_string()) fail(fmt::format("{} first arg must be str or a tuple of str, not {}", method, p.type_name()));
    return suffix ? s.ends_with(p.str()) : s.starts_with(p.str());
  };
  if (probe.is_list()) {
    for (const Value& p : probe.list_ref().items)
      if (one(p)) return true;
    return false;
  }
  return one(probe);
}

Value string_method(const std::string& s, const std::string& name, CallArgs& a) {
  using namespace pystr;
  if (name == "startswith" || name == "endswith") {
    const Value* p = arg(a, 0, "prefix");
    if (p == nullptr) fail(name + "() takes at least 1 argument (0 given)");
    if (a.args.size() > 1) {  // start/end bounds: slice the code points first
      const auto cps = code_points(s);
      const int64_t n = static_cast<int64_t>(cps.size());
      auto clamp = [n](int64_t v) { return v < 0 ? std::max<int64_t>(0, v + n) : std::min(v, n); };
      const int64_t b = clamp(int_arg(a, 1, "start", 0)), e = clamp(int_arg(a, 2, "end", n));
      return Value(prefix_match(from_code_points(cps, b, std::max(b, e)), *p, name == "endswith", name.c_str()));
    }
    return Value(prefix_match(s, *p, name == "endswith", name.c_str()));
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return Value(strip(s, opt_str_arg(a, 0, "chars", name.c_str()), name != "rstrip", name != "lstrip"));
  if (name == "split" || name == "rsplit") {
    const auto sep = opt_str_arg(a, 0, "sep", name.c_str());
    if (sep && sep->empty()) fail("empty separator");
    const int64_t maxsplit = int_arg(a, 1, "maxsplit", -1);
    return str_list(name == "split" ? split(s, sep, maxsplit) : rsplit(s, sep, maxsplit));
  }
  if (name == "splitlines") return str_list(splitlines(s));
  if (name == "upper") return Value(upper(s));
  if (name == "lower") return Value(lower(s));
  if (name == "title") return Value(title(s));
  if (name == "capitalize") return Value(capitalize(s));
  if (name == "replace")
    return Value(
        replace(s, str_arg(a, 0, "old", "replace"), str_arg(a, 1, "new", "replace"), int_arg(a, 2, "count", -1)));
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    const int64_t at = pystr::find(s, str_arg(a, 0, "sub", name.c_str()), name[0] == 'r');
    if (at < 0 && (name == "index" || name == "rindex")) fail("substring not found");
    return Value(at);
  }
  if (name == "count") return Value(pystr::count(s, str_arg(a, 0, "sub", "count")));
  if (name == "join") {
    const Value* it = arg(a, 0, "iterable");
    if (it == nullptr) fail("join() takes exactly one argument (0 given)");
    std::string out;
    bool first = true;
    for (const Value& v : iterate(*it)) {
      if (!v.is_string()) fail(fmt::format("sequence item: expected str instance, {} found", v.type_name()));
      if (!first) out += s;
      first = false;
      out += v.str();
    }
    return Value(std::move(out));
  }
  if (name == "format") return Value(str_format(s, a));
  if (name == "removeprefix" || name == "removesuffix") {
    const std::string p = str_arg(a, 0, "prefix", name.c_str());
    if (name == "removeprefix") return Value(s.starts_with(p) ? s.substr(p.size()) : s);
    return Value(!p.empty() && s.ends_with(p) ? s.substr(0, s.size() - p.size()) : s);
  }
  if (name == "partition" || name == "rpartition") {
    const std::string sep = str_arg(a, 0, "sep", name.c_str());
    if (sep.empty()) fail("empty separator");
    const size_t at = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (at == std::string::npos)
      return name == "partition" ? Value::list({Value(s), Value(""), Value("")}, true)
                                 : Value::list({Value(""), Value(""), Value(s)}, true);
    return Value::list({Value(s.substr(0, at)), Value(sep), Value(s.substr(at + sep.size()))}, true);
  }
  if (name == "center" || name == "ljust" || name == "rjust" || name == "zfill") {
    const int64_t width = int_arg(a, 0, "width", 0);
    const std::string fill = name == "zfill" ? "0" : opt_str_arg(a, 1, "fillchar", name.c_str()).value_or(" ");
    const int64_t len = static_cast<int64_t>(tokenizer::utf8_length(s));
    if (width <= len) return Value(s);
    if (width > (1 << 24)) fail("width too large");
    const int64_t pad = width - len;
    auto rep = [&](int64_t n) {
      std::string r;
      for (int64_t i = 0; i < n; ++i) r += fill;
      return r;
    };
    if (name == "ljust") return Value(s + rep(pad));
    if (name == "rjust") return Value(rep(pad) + s);
    if (name == "zfill") {
      if (!s.empty() && (s[0] == '-' || s[0] == '+')) return Value(s.substr(0, 1) + rep(pad) + s.substr(1));
      return Value(rep(pad) + s);
    }
    const int64_t left = pad / 2 + (pad & width & 1);  // CPython's centring rule
    return Value(rep(left) + s + rep(pad - left));
  }
  auto all_cps = [&](auto pred) {
    const auto cps = code_points(s);
    return Value(!cps.empty() && std::all_of(cps.begin(), cps.end(), pred));
  };
  if (name == "isspace") return all_cps([](uint32_t c) { return is_space(c); });
  if (name == "isdigit" || name == "isdecimal" || name == "isnumeric") return all_cps(is_decimal);
  if (name == "isalpha") return all_cps(is_alpha);
  if (name == "isalnum") return all_cps([](uint32_t c) { return is_alpha(c) || is_decimal(c); });
  if (name == "islower" || name == "isupper") {
    bool cased = false, ok = true;
    for (uint32_t c : code_points(s)) {
      const std::string ch = from_code_points({c}, 0, 1);
      const std::string lo = lower(ch), up = upper(ch);
      if (lo == up) continue;
      cased = true;
      if (name == "islower" ? ch != lo : ch != up) ok = false;
    }
    return Value(cased && ok);
  }
  fail(fmt::format("'str' object has no attribute '{}'", name));
}

const std::set<std::string, std::less<>> kStrMethods = {
    "startswith", "endswith", "strip",   "lstrip",     "rstrip",       "split",        "rsplit",    "splitlines",
    "upper",      "lower",    "title",   "capitalize", "replace",      "find",         "rfind",     "index",
    "rindex",     "count",    "join",    "format",     "removeprefix", "removesuffix", "partition", "rpartition",
    "center",     "ljust",    "rjust",   "zfill",      "isspace",      "isdigit",      "isdecimal", "isnumeric",
    "isalpha",    "isalnum",  "islower", "isupper"};
const std::set<std::string, std::less<>> kDictMethods = {"items", "keys", "values", "get", "copy"};
const std::set<std::string, std::less<>> kDictMutators = {"pop", "popitem", "setdefault", "update", "clear"};
const std::set<std::string, std::less<>> kListMethods = {"index", "count", "copy"};
const std::set<std::string, std::less<>> kListMutators = {"append", "extend",  "insert", "pop",
                                                          "remove", "reverse", "sort",   "clear"};

Value unsafe_method(const Value& obj, const std::string& name) {
  const std::string type = obj.type_name();
  return Value::function(name, [type, name](CallArgs&) -> Value {
    fail(fmt::format("access to attribute '{}' of '{}' object is unsafe (templates cannot modify values)", name, type));
  });
}

Value dict_method(const Value& obj, const std::string& name) {
  return Value::function(name, [obj, name](CallArgs& a) -> Value {
    const Dict& d = obj.dict_ref();
    if (name == "items") {
      std::vector<Value> items;
      for (const auto& [k, v] : d.items) items.push_back(Value::list({Value(k), v}, true));
      return Value::list(std::move(items));
    }
    if (name == "keys" || name == "values") {
      std::vector<Value> items;
      for (const auto& [k, v] : d.items) items.push_back(name == "keys" ? Value(k) : v);
      return Value::list(std::move(items));
    }
    if (name == "copy") {
      Value c = Value::dict();
      c.dict_ref() = d;
      return c;
    }
    const Value* key = arg(a, 0, "key");  // get(key, default=None)
    if (key == nullptr) fail("get expected at least 1 argument, got 0");
    const Value* dflt = arg(a, 1, "default");
    if (key->is_string())
      if (const Value* v = d.find(key->str())) return *v;
    return dflt != nullptr ? *dflt : Value::none();
  });
}

Value list_method(const Value& obj, const std::string& name) {
  return Value::function(name, [obj, name](CallArgs& a) -> Value {
    const auto& items = obj.list_ref().items;
    if (name == "copy") return Value::list(items, obj.list_ref().tuple);
    const Value* x = arg(a, 0, "value");
    if (x == nullptr) fail(fmt::format("{}() takes exactly one argument (0 given)", name));
    int64_t n = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!py_equal(items[i], *x)) continue;
      if (name == "index") return Value(static_cast<int64_t>(i));
      ++n;
    }
    if (name == "index") fail(fmt::format("{} is not in list", py_repr(*x)));
    return Value(n);
  });
}

}  // namespace

Value get_attr(Interpreter&, const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined:
      fail(obj.undefined_hint());
    case Value::Kind::kDict:
      if (kDictMethods.count(name)) return dict_method(obj, name);
      if (kDictMutators.count(name)) return unsafe_method(obj, name);
      if (const Value* v = obj.dict_ref().find(name)) return *v;
      return missing_attr(obj, name);
    case Value::Kind::kString:
      if (kStrMethods.count(name)) {
        const std::string s = obj.str();
        return Value::function(name, [s, name](CallArgs& a) { return string_method(s, name, a); });
      }
      return missing_attr(obj, name);
    case Value::Kind::kList:
      if (kListMethods.count(name)) return list_method(obj, name);
      if (kListMutators.count(name)) return unsafe_method(obj, name);
      return missing_attr(obj, name);
    case Value::Kind::kObject:
      if (const Value* v = obj.object_ref().attrs.find(name)) return *v;
      return missing_attr(obj, name);
    default:
      return missing_attr(obj, name);
  }
}

Value get_item(Interpreter& interp, const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail(obj.undefined_hint());
  if (key.is_undefined()) fail(key.undefined_hint());
  auto missing = [&]() {
    return Value::undefined(key.is_string() ? fmt::format("'{}' has no attribute '{}'", object_repr(obj), key.str())
                                            : fmt::format("{} has no element {}", object_repr(obj), py_repr(key)));
  };
  auto index = [&](int64_t n) -> std::optional<size_t> {
    int64_t i = key.as_int();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return std::nullopt;
    return static_cast<size_t>(i);
  };
  const bool int_key = key.is_int() || key.is_bool();
  switch (obj.kind()) {
    case Value::Kind::kDict:
      if (key.is_string()) {
        if (const Value* v = obj.dict_ref().find(key.str())) return *v;
        return get_attr(interp, obj, key.str());  // jinja2 falls back to attributes (methods)
      }
      return missing();
    case Value::Kind::kList:
      if (int_key) {
        if (auto i = index(static_cast<int64_t>(obj.list_ref().items.size()))) return obj.list_ref().items[*i];
        return missing();
      }
      if (key.is_string()) return get_attr(interp, obj, key.str());
      return missing();
    case Value::Kind::kString:
      if (int_key) {
        const auto cps = pystr::code_points(obj.str());
        if (auto i = index(static_cast<int64_t>(cps.size()))) return Value(pystr::from_code_points(cps, *i, *i + 1));
        return missing();
      }
      if (key.is_string()) return get_attr(interp, obj, key.str());
      return missing();
    case Value::Kind::kObject:
      if (key.is_string()) return get_attr(interp, obj, key.str());
      return missing();
    default:
      return missing();
  }
}

Value get_slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  if (obj.is_undefined()) fail(obj.undefined_hint());
  auto as_index = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) fail(fmt::format("slice {} must be an integer or None", what));
    return v.as_int();
  };
  const int64_t step = as_index(step_v, "step").value_or(1);
  if (step == 0) fail("slice step cannot be zero");
  std::vector<uint32_t> cps;
  const std::vector<Value>* items = nullptr;
  int64_t n;
  if (obj.is_string()) {
    cps = pystr::code_points(obj.str());
    n = static_cast<int64_t>(cps.size());
  } else if (obj.is_list()) {
    items = &obj.list_ref().items;
    n = static_cast<int64_t>(items->size());
  } else {
    fail(fmt::format("'{}' object is not subscriptable", obj.type_name()));
  }
  // CPython's PySlice_AdjustIndices.
  auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t i = *v;
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  const int64_t start = adjust(as_index(start_v, "start"), step < 0 ? n - 1 : 0);
  const int64_t stop = adjust(as_index(stop_v, "stop"), step < 0 ? -1 : n);
  std::vector<int64_t> picks;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) picks.push_back(i);
  if (obj.is_string()) {
    std::string out;
    for (int64_t i : picks) tokenizer::utf8_append(out, cps[i]);
    return Value(std::move(out));
  }
  std::vector<Value> out;
  for (int64_t i : picks) out.push_back((*items)[i]);
  return Value::list(std::move(out), obj.list_ref().tuple);
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kList:
      return v.list_ref().items;
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      for (const auto& kv : v.dict_ref().items) keys.emplace_back(kv.first);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      for (uint32_t cp : pystr::code_points(v.str())) chars.emplace_back(pystr::from_code_points({cp}, 0, 1));
      return chars;
    }
    default:
      fail(fmt::format("'{}' object is not iterable", v.type_name()));
  }
}

int64_t py_len(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return static_cast<int64_t>(tokenizer::utf8_length(v.str()));
    case Value::Kind::kList:
      return static_cast<int64_t>(v.list_ref().items.size());
    case Value::Kind::kDict:
      return static_cast<int64_t>(v.dict_ref().items.size());
    default:
      fail(fmt::format("object of type '{}' has no len()", v.type_name()));
  }
}

bool py_contains(const Value& haystack, const Value& needle) {
  switch (haystack.kind()) {
    case Value::Kind::kUndefined:
      return false;
    case Value::Kind::kString:
      if (!needle.is_string())
        fail(fmt::format("'in <string>' requires string as left operand, not {}", needle.type_name()));
      return haystack.str().find(needle.str()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& v : haystack.list_ref().items)
        if (py_equal(v, needle)) return true;
      return false;
    case Value::Kind::kDict:
      return needle.is_string() && haystack.dict_ref().find(needle.str()) != nullptr;
    default:
      fail(fmt::format("argument of type '{}' is not iterable", haystack.type_name()));
  }
}

}  // namespace hylo::chat::jinja
