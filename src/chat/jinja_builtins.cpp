// Jinja filters, tests and global functions with jinja2 3.1 semantics (tojson as HF
// transformers defines it for chat templates: json.dumps, ensure_ascii=False, no HTML escaping).
#include "chat/jinja_builtins.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <unordered_map>

#include "chat/pystr.h"

namespace hylo::chat::jinja {
namespace {

const Value* arg(const CallArgs& a, size_t i, const char* name) {
  if (i < a.args.size()) return &a.args[i];
  for (const auto& [k, v] : a.kwargs)
    if (k == name) return &v;
  return nullptr;
}

bool bool_arg(const CallArgs& a, size_t i, const char* name, bool dflt) {
  const Value* v = arg(a, i, name);
  return v == nullptr ? dflt : v->truthy();
}

int64_t int_arg(const CallArgs& a, size_t i, const char* name, int64_t dflt) {
  const Value* v = arg(a, i, name);
  if (v == nullptr || v->is_none()) return dflt;
  if (!v->is_int() && !v->is_bool())
    fail(fmt::format("argument '{}' must be an integer, not {}", name, v->type_name()));
  return v->as_int();
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Attribute lookup by a dotted path ("a.b", "0") as jinja2's make_attrgetter does.
Value attr_path(Interpreter& interp, const Value& v, const std::string& path) {
  Value cur = v;
  for (const std::string& part : pystr::split(path, std::string("."))) {
    const bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    cur = numeric ? get_item(interp, cur, Value(static_cast<int64_t>(std::stoll(part))))
                  : get_item(interp, cur, Value(part));
  }
  return cur;
}

// Sort key: strings compare case-insensitively unless asked otherwise.
Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(pystr::lower(v.str()));
  return v;
}

std::vector<Value> sorted(Interpreter& interp, std::vector<Value> items, bool reverse, bool case_sensitive,
                          const Value* attribute) {
  std::vector<std::pair<Value, Value>> keyed;
  for (Value& v : items) {
    Value k = attribute && !attribute->is_none() ? attr_path(interp, v, py_str(*attribute)) : v;
    keyed.emplace_back(sort_key(k, case_sensitive), std::move(v));
  }
  std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& a, const auto& b) {
    return reverse ? py_less(b.first, a.first) : py_less(a.first, b.first);
  });
  std::vector<Value> out;
  for (auto& kv : keyed) out.push_back(std::move(kv.second));
  return out;
}

// select / reject / selectattr / rejectattr: `args` after the value hold [attr,] [test, test args...].
Value select_items(Interpreter& interp, const Value& seq, CallArgs& a, bool by_attr, bool keep_if) {
  size_t next = 0;
  std::string attribute;
  if (by_attr) {
    if (a.args.empty()) fail("selectattr/rejectattr need an attribute name");
    attribute = py_str(a.args[next++]);
  }
  std::string test;
  CallArgs test_args;
  if (next < a.args.size()) {
    test = py_str(a.args[next++]);
    test_args.args.assign(a.args.begin() + static_cast<ptrdiff_t>(next), a.args.end());
  }
  std::vector<Value> out;
  for (const Value& item : iterate(seq)) {
    interp.step();
    const Value probe = by_attr ? attr_path(interp, item, attribute) : item;
    CallArgs ta = test_args;
    const bool pass = test.empty() ? probe.truthy() : apply_test(interp, test, probe, ta);
    if (pass == keep_if) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value to_int(const Value& v, const Value& dflt, int64_t base) {
  if (v.is_int() || v.is_bool()) return Value(v.as_int());
  if (v.is_float()) {
    const double d = v.as_double();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return dflt;
    return Value(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    const std::string s = pystr::strip(v.str(), std::nullopt);
    try {
      size_t used = 0;
      const int64_t i = std::stoll(s, &used, static_cast<int>(base));
      if (used == s.size()) return Value(i);
    } catch (...) {
    }
    try {
      size_t used = 0;
      const double d = std::stod(s, &used);
      if (used == s.size() && std::isfinite(d) && std::fabs(d) < 9.2e18) return Value(static_cast<int64_t>(d));
    } catch (...) {
    }
  }
  return dflt;
}

Value to_float(const Value& v, const Value& dflt) {
  if (v.is_number()) return Value(v.as_double());
  if (v.is_string()) {
    const std::string s = pystr::strip(v.str(), std::nullopt);
    try {
      size_t used = 0;
      const double d = std::stod(s, &used);
      if (used == s.size()) return Value(d);
    } catch (...) {
    }
  }
  return dflt;
}

using Filter = std::function<Value(Interpreter&, const Value&, CallArgs&)>;

const std::unordered_map<std::string, Filter>& filters() {
  static const std::unordered_map<std::string, Filter> table = [] {
    std::unordered_map<std::string, Filter> f;
    f["tojson"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      JsonOptions o;
      o.ensure_ascii = bool_arg(a, 0, "ensure_ascii", false);
      if (const Value* ind = arg(a, 1, "indent"); ind != nullptr && !ind->is_none()) {
        if (ind->is_string()) {
          o.indent_str = ind->str();
          o.indent = o.indent_str.empty() ? 0 : -1;
        } else {
          o.indent = static_cast<int>(std::clamp<int64_t>(int_arg(a, 1, "indent", 0), 0, 64));
        }
        o.item_sep.assign(1, ',');
      }
      if (const Value* sep = arg(a, 2, "separators"); sep != nullptr && !sep->is_none()) {
        const auto parts = iterate(*sep);
        if (parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string())
          fail("tojson: separators must be a pair of strings");
        o.item_sep = parts[0].str();
        o.key_sep = parts[1].str();
      }
      o.sort_keys = bool_arg(a, 3, "sort_keys", false);
      std::string s = to_json(v, o);
      in.check_size(s.size());
      return Value(std::move(s));
    };
    f["string"] = [](Interpreter&, const Value& v, CallArgs&) { return Value(py_str(v)); };
    f["safe"] = [](Interpreter&, const Value& v, CallArgs&) { return v; };
    f["escape"] = f["e"] =
        f["forceescape"] = [](Interpreter&, const Value& v, CallArgs&) { return Value(html_escape(py_str(v))); };
    f["length"] = f["count"] = [](Interpreter&, const Value& v, CallArgs&) { return Value(py_len(v)); };
    f["trim"] = [](Interpreter&, const Value& v, CallArgs& a) {
      const Value* chars = arg(a, 0, "chars");
      std::optional<std::string> set;
      if (chars != nullptr && !chars->is_none()) set = py_str(*chars);
      return Value(pystr::strip(py_str(v), set));
    };
    f["upper"] = [](Interpreter&, const Value& v, CallArgs&) { return Value(pystr::upper(py_str(v))); };
    f["lower"] = [](Interpreter&, const Value& v, CallArgs&) { return Value(pystr::lower(py_str(v))); };
    f["capitalize"] = [](Interpreter&, const Value& v, CallArgs&) { return Value(pystr::capitalize(py_str(v))); };
    // Not str.title(): jinja2 upper-cases the first character of each word, words starting
    // after whitespace or one of - ( { [ <.
    f["title"] = [](Interpreter&, const Value& v, CallArgs&) {
      const std::vector<uint32_t> cps = pystr::code_points(py_str(v));
      auto is_sep = [](uint32_t c) {
        return pystr::is_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
      };
      std::string out;
      for (size_t i = 0; i < cps.size();) {
        size_t j = i;
        while (j < cps.size() && is_sep(cps[j]) == is_sep(cps[i])) ++j;
        if (is_sep(cps[i])) {
          out += pystr::from_code_points(cps, i, j);
        } else {
          out += pystr::upper(pystr::from_code_points(cps, i, i + 1)) +
                 pystr::lower(pystr::from_code_points(cps, i + 1, j));
        }
        i = j;
      }
      return Value(std::move(out));
    };
    f["replace"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      const Value* old = arg(a, 0, "old");
      const Value* with = arg(a, 1, "new");
      if (old == nullptr || with == nullptr) fail("replace filter needs 'old' and 'new'");
      std::string s = pystr::replace(py_str(v), py_str(*old), py_str(*with), int_arg(a, 2, "count", -1));
      in.check_size(s.size());
      return Value(std::move(s));
    };
    f["join"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      const Value* sep = arg(a, 0, "d");
      const Value* attribute = arg(a, 1, "attribute");
      std::string out;
      bool first = true;
      for (const Value& item : iterate(v)) {
        if (!first && sep != nullptr) out += py_str(*sep);
        first = false;
        out += py_str(attribute && !attribute->is_none() ? attr_path(in, item, py_str(*attribute)) : item);
        in.check_size(out.size());
      }
      return Value(std::move(out));
    };
    f["default"] = f["d"] = [](Interpreter&, const Value& v, CallArgs& a) {
      const Value* dflt = arg(a, 0, "default_value");
      const bool boolean = bool_arg(a, 1, "boolean", false);
      if (v.is_undefined() || (boolean && !v.truthy())) return dflt != nullptr ? *dflt : Value("");
      return v;
    };
    f["first"] = [](Interpreter&, const Value& v, CallArgs&) {
      auto items = iterate(v);
      return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
    };
    f["last"] = [](Interpreter&, const Value& v, CallArgs&) {
      auto items = iterate(v);
      return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
    };
    f["list"] = [](Interpreter&, const Value& v, CallArgs&) { return Value::list(iterate(v)); };
    f["items"] = [](Interpreter&, const Value& v, CallArgs&) {
      if (v.is_undefined()) return Value::list();
      if (!v.is_dict()) fail("Can only get item pairs from a mapping.");
      std::vector<Value> items;
      for (const auto& [k, val] : v.dict_ref().items) items.push_back(Value::list({Value(k), val}, true));
      return Value::list(std::move(items));
    };
    f["dictsort"] = [](Interpreter&, const Value& v, CallArgs& a) {
      if (!v.is_dict()) fail("dictsort filter needs a mapping");
      const bool case_sensitive = bool_arg(a, 0, "case_sensitive", false);
      const Value* by = arg(a, 1, "by");
      const bool by_value = by != nullptr && py_str(*by) == "value";
      const bool reverse = bool_arg(a, 2, "reverse", false);
      std::vector<Value> items;
      for (const auto& [k, val] : v.dict_ref().items) items.push_back(Value::list({Value(k), val}, true));
      std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
        const Value kx = sort_key(x.list_ref().items[by_value ? 1 : 0], case_sensitive);
        const Value ky = sort_key(y.list_ref().items[by_value ? 1 : 0], case_sensitive);
        return reverse ? py_less(ky, kx) : py_less(kx, ky);
      });
      return Value::list(std::move(items));
    };
    f["sort"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      return Value::list(sorted(in, iterate(v), bool_arg(a, 0, "reverse", false),
                                bool_arg(a, 1, "case_sensitive", false), arg(a, 2, "attribute")));
    };
    f["unique"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      const bool cs = bool_arg(a, 0, "case_sensitive", false);
      const Value* attribute = arg(a, 1, "attribute");
      std::vector<Value> out, seen;
      for (const Value& item : iterate(v)) {
        const Value k =
            sort_key(attribute && !attribute->is_none() ? attr_path(in, item, py_str(*attribute)) : item, cs);
        if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return py_equal(s, k); })) {
          seen.push_back(k);
          out.push_back(item);
        }
      }
      return Value::list(std::move(out));
    };
    auto extreme = [](bool want_max) {
      return [want_max](Interpreter& in, const Value& v, CallArgs& a) {
        auto items = sorted(in, iterate(v), false, bool_arg(a, 0, "case_sensitive", false), arg(a, 1, "attribute"));
        if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
        return want_max ? items.back() : items.front();
      };
    };
    f["min"] = extreme(false);
    f["max"] = extreme(true);
    f["sum"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      const Value* attribute = arg(a, 0, "attribute");
      const Value* start = arg(a, 1, "start");
      Value total = start != nullptr ? *start : Value(0);
      for (const Value& item : iterate(v)) {
        const Value x = attribute && !attribute->is_none() ? attr_path(in, item, py_str(*attribute)) : item;
        if (!x.is_number() || !total.is_number()) fail("sum filter: items must be numbers");
        total = (x.is_float() || total.is_float()) ? Value(total.as_double() + x.as_double())
                                                   : Value(total.as_int() + x.as_int());
      }
      return total;
    };
    f["reverse"] = [](Interpreter&, const Value& v, CallArgs&) {
      if (v.is_string()) {
        auto cps = pystr::code_points(v.str());
        std::reverse(cps.begin(), cps.end());
        return Value(pystr::from_code_points(cps, 0, cps.size()));
      }
      auto items = iterate(v);
      std::reverse(items.begin(), items.end());
      return Value::list(std::move(items));
    };
    f["map"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      std::vector<Value> out;
      const Value* attribute = nullptr;
      const Value* dflt = nullptr;
      for (const auto& [k, val] : a.kwargs) {
        if (k == "attribute") attribute = &val;
        if (k == "default") dflt = &val;
      }
      for (const Value& item : iterate(v)) {
        in.step();
        if (attribute != nullptr) {
          Value x = attr_path(in, item, py_str(*attribute));
          out.push_back(x.is_undefined() && dflt != nullptr ? *dflt : x);
        } else {
          if (a.args.empty()) fail("map filter needs a filter name or attribute=");
          CallArgs rest;
          rest.args.assign(a.args.begin() + 1, a.args.end());
          out.push_back(apply_filter(in, py_str(a.args[0]), item, rest));
        }
      }
      return Value::list(std::move(out));
    };
    f["select"] = [](Interpreter& in, const Value& v, CallArgs& a) { return select_items(in, v, a, false, true); };
    f["reject"] = [](Interpreter& in, const Value& v, CallArgs& a) { return select_items(in, v, a, false, false); };
    f["selectattr"] = [](Interpreter& in, const Value& v, CallArgs& a) { return select_items(in, v, a, true, true); };
    f["rejectattr"] = [](Interpreter& in, const Value& v, CallArgs& a) { return select_items(in, v, a, true, false); };
    f["attr"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      const Value* name = arg(a, 0, "name");
      if (name == nullptr) fail("attr filter needs a name");
      return get_attr(in, v, py_str(*name));
    };
    f["int"] = [](Interpreter&, const Value& v, CallArgs& a) {
      const Value* dflt = arg(a, 0, "default");
      return to_int(v, dflt != nullptr ? *dflt : Value(0), int_arg(a, 1, "base", 10));
    };
    f["float"] = [](Interpreter&, const Value& v, CallArgs& a) {
      const Value* dflt = arg(a, 0, "default");
      return to_float(v, dflt != nullptr ? *dflt : Value(0.0));
    };
    f["abs"] = [](Interpreter&, const Value& v, CallArgs&) {
      if (!v.is_number()) fail(fmt::format("bad operand type for abs(): '{}'", v.type_name()));
      if (v.is_float()) return Value(std::fabs(v.as_double()));
      if (v.as_int() == INT64_MIN) fail("integer overflow");
      return Value(static_cast<int64_t>(std::llabs(v.as_int())));
    };
    f["round"] = [](Interpreter&, const Value& v, CallArgs& a) {
      if (!v.is_number()) fail("round filter needs a number");
      const int64_t precision = std::clamp<int64_t>(int_arg(a, 0, "precision", 0), -300, 300);
      const Value* method = arg(a, 1, "method");
      const std::string m = method != nullptr ? py_str(*method) : "common";
      if (m != "common" && m != "ceil" && m != "floor") fail("method must be common, ceil or floor");
      const double x = v.as_double(), scale = std::pow(10.0, static_cast<double>(precision));
      if (m == "ceil") return Value(std::ceil(x * scale) / scale);
      if (m == "floor") return Value(std::floor(x * scale) / scale);
      // Python's round(): the correctly rounded decimal of the exact binary value, ties to even
      // (what printf does); an int stays an int.
      if (!v.is_float() && precision >= 0) return Value(v.as_int());
      if (precision < 0) return Value(std::nearbyint(x * scale) / scale);
      char buf[512];
      std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(precision), x);
      return Value(std::strtod(buf, nullptr));
    };
    f["indent"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      const Value* width = arg(a, 0, "width");
      std::string pad =
          width != nullptr && width->is_string()
              ? width->str()
              : std::string(static_cast<size_t>(std::clamp<int64_t>(int_arg(a, 0, "width", 4), 0, 256)), ' ');
      const bool first = bool_arg(a, 1, "first", false), blank = bool_arg(a, 2, "blank", false);
      const std::vector<std::string> lines = pystr::splitlines(py_str(v) + "\n");
      std::string out;
      for (size_t i = 0; i < lines.size(); ++i) {
        if (i > 0) out += "\n";
        if (i > 0 && (blank || !lines[i].empty())) out += pad;
        out += lines[i];
      }
      if (first) out = pad + out;
      in.check_size(out.size());
      return Value(std::move(out));
    };
    f["center"] = [](Interpreter& in, const Value& v, CallArgs& a) {
      CallArgs width;
      width.args.push_back(Value(int_arg(a, 0, "width", 80)));
      Value method = get_attr(in, Value(py_str(v)), "center");
      return method.function_ref().call(width);
    };
    f["truncate"] = [](Interpreter&, const Value& v, CallArgs& a) {
      const std::string s = py_str(v);
      const int64_t length = int_arg(a, 0, "length", 255);
      const bool killwords = bool_arg(a, 1, "killwords", false);
      const Value* end_v = arg(a, 2, "end");
      const std::string end = end_v != nullptr ? py_str(*end_v) : "...";
      const int64_t leeway = int_arg(a, 3, "leeway", 5);
      const int64_t end_len = py_len(Value(end));
      if (length < end_len) fail(fmt::format("expected length >= {}, got {}", end_len, length));
      if (py_len(Value(s)) <= length + leeway) return Value(s);
      const Value head = get_slice(Value(s), Value(0), Value(length - end_len), Value::none());
      if (killwords) return Value(head.str() + end);
      return Value(pystr::rsplit(head.str(), std::string(" "), 1).front() + end);
    };
    f["wordcount"] = [](Interpreter&, const Value& v, CallArgs&) {
      int64_t n = 0;
      bool in_word = false;
      for (uint32_t c : pystr::code_points(py_str(v))) {
        const bool w = pystr::is_alpha(c) || pystr::is_decimal(c) || c == '_';
        if (w && !in_word) ++n;
        in_word = w;
      }
      return Value(n);
    };
    f["format"] = [](Interpreter&, const Value& v, CallArgs& a) {
      if (!a.kwargs.empty()) fail("format filter with keyword arguments is not supported");
      return Value(percent_format(py_str(v), a.args));
    };
    f["batch"] = [](Interpreter&, const Value& v, CallArgs& a) {
      const int64_t size = int_arg(a, 0, "linecount", 1);
      if (size <= 0) fail("batch size must be positive");
      const Value* fill = arg(a, 1, "fill_with");
      std::vector<Value> out, cur;
      for (const Value& item : iterate(v)) {
        cur.push_back(item);
        if (static_cast<int64_t>(cur.size()) == size) out.push_back(Value::list(std::exchange(cur, {})));
      }
      if (!cur.empty()) {
        while (fill != nullptr && !fill->is_none() && static_cast<int64_t>(cur.size()) < size) cur.push_back(*fill);
        out.push_back(Value::list(std::move(cur)));
      }
      return Value::list(std::move(out));
    };
    return f;
  }();
  return table;
}

using Test = std::function<bool(Interpreter&, const Value&, CallArgs&)>;

const std::unordered_map<std::string, Test>& tests() {
  static const std::unordered_map<std::string, Test> table = [] {
    std::unordered_map<std::string, Test> t;
    using K = Value::Kind;
    auto other = [](const CallArgs& a, const char* what) -> const Value& {
      if (a.args.empty()) fail(fmt::format("test '{}' needs an argument", what));
      return a.args[0];
    };
    t["defined"] = [](Interpreter&, const Value& v, CallArgs&) { return !v.is_undefined(); };
    t["undefined"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_undefined(); };
    t["none"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_none(); };
    t["boolean"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_bool(); };
    t["true"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); };
    t["false"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); };
    t["integer"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_int(); };
    t["float"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_float(); };
    t["number"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_number(); };
    t["string"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_string(); };
    t["mapping"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_dict(); };
    // jinja2: anything with len() and __getitem__ (so dicts and Undefined count too).
    t["sequence"] = [](Interpreter&, const Value& v, CallArgs&) {
      const K k = v.kind();
      return k == K::kString || k == K::kList || k == K::kDict || k == K::kUndefined;
    };
    t["iterable"] = [](Interpreter&, const Value& v, CallArgs&) {
      const K k = v.kind();
      return k == K::kString || k == K::kList || k == K::kDict || k == K::kUndefined;
    };
    t["callable"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_function() || v.is_undefined(); };
    t["escaped"] = [](Interpreter&, const Value&, CallArgs&) { return false; };
    t["sameas"] = [other](Interpreter&, const Value& v, CallArgs& a) {
      const Value& o = other(a, "sameas");
      if (v.kind() != o.kind()) return false;
      if (v.is_none() || v.is_undefined()) return true;
      if (v.is_bool()) return v.as_bool() == o.as_bool();
      if (v.is_list() || v.is_dict() || v.is_object() || v.is_function()) return py_equal(v, o);
      return py_equal(v, o);
    };
    t["eq"] = t["equalto"] =
        t["=="] = [other](Interpreter&, const Value& v, CallArgs& a) { return py_equal(v, other(a, "eq")); };
    t["ne"] = t["!="] = [other](Interpreter&, const Value& v, CallArgs& a) { return !py_equal(v, other(a, "ne")); };
    t["lt"] = t["lessthan"] =
        t["<"] = [other](Interpreter&, const Value& v, CallArgs& a) { return py_less(v, other(a, "lt")); };
    t["gt"] = t["greaterthan"] =
        t[">"] = [other](Interpreter&, const Value& v, CallArgs& a) { return py_less(other(a, "gt"), v); };
    t["le"] = t["<="] = [other](Interpreter&, const Value& v, CallArgs& a) { return !py_less(other(a, "le"), v); };
    t["ge"] = t[">="] = [other](Interpreter&, const Value& v, CallArgs& a) { return !py_less(v, other(a, "ge")); };
    t["in"] = [other](Interpreter&, const Value& v, CallArgs& a) { return py_contains(other(a, "in"), v); };
    t["odd"] = [](Interpreter&, const Value& v, CallArgs&) {
      if (!v.is_int() && !v.is_bool()) fail("odd test needs an integer");
      return v.as_int() % 2 != 0;
    };
    t["even"] = [](Interpreter&, const Value& v, CallArgs&) {
      if (!v.is_int() && !v.is_bool()) fail("even test needs an integer");
      return v.as_int() % 2 == 0;
    };
    t["divisibleby"] = [other](Interpreter&, const Value& v, CallArgs& a) {
      const Value& d = other(a, "divisibleby");
      if (!v.is_number() || !d.is_number()) fail("divisibleby needs numbers");
      if (d.as_double() == 0) fail("integer division or modulo by zero");
      return std::fmod(v.as_double(), d.as_double()) == 0;
    };
    t["lower"] = [](Interpreter&, const Value& v, CallArgs&) {
      const std::string s = py_str(v);
      return pystr::lower(s) == s && pystr::upper(s) != s;
    };
    t["upper"] = [](Interpreter&, const Value& v, CallArgs&) {
      const std::string s = py_str(v);
      return pystr::upper(s) == s && pystr::lower(s) != s;
    };
    t["filter"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_string() && filters().count(v.str()); };
    t["test"] = [](Interpreter&, const Value& v, CallArgs&) { return v.is_string() && tests().count(v.str()); };
    return t;
  }();
  return table;
}

}  // namespace

std::string percent_format(const std::string& f, const std::vector<Value>& args) {
  std::string out;
  size_t k = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') {
      out += f[i];
      continue;
    }
    // %[flags][width][.precision]type, as C's printf reads it (Python's rules for these).
    size_t j = i + 1;
    while (j < f.size() && std::strchr("-+ #0", f[j]) != nullptr) ++j;
    while (j < f.size() && std::isdigit(static_cast<unsigned char>(f[j]))) ++j;
    if (j < f.size() && f[j] == '.') {
      ++j;
      while (j < f.size() && std::isdigit(static_cast<unsigned char>(f[j]))) ++j;
    }
    if (j >= f.size()) fail("incomplete format");
    const char type = f[j];
    const std::string spec = f.substr(i, j - i);  // "%-5.2" without the type
    i = j;
    if (type == '%') {
      out += '%';
      continue;
    }
    if (k >= args.size()) fail("not enough arguments for format string");
    const Value& v = args[k++];
    char buf[512];
    if (type == 's' || type == 'r') {
      const std::string text = type == 's' ? py_str(v) : py_repr(v);
      const std::string pad_spec = spec + "s";
      if (spec == "%") {
        out += text;
      } else {
        std::snprintf(buf, sizeof(buf), pad_spec.c_str(), text.c_str());
        out += buf;
      }
    } else if (std::strchr("diouxXc", type) != nullptr) {
      if (!v.is_number()) fail(fmt::format("%{} format: a number is required, not {}", type, v.type_name()));
      const long long n = v.is_float() ? static_cast<long long>(v.as_double()) : static_cast<long long>(v.as_int());
      std::snprintf(buf, sizeof(buf), (spec + "ll" + (type == 'i' || type == 'u' ? 'd' : type)).c_str(), n);
      out += buf;
    } else if (std::strchr("eEfFgG", type) != nullptr) {
      if (!v.is_number()) fail(fmt::format("%{} format: a number is required, not {}", type, v.type_name()));
      std::snprintf(buf, sizeof(buf), (spec + type).c_str(), v.as_double());
      out += buf;
    } else {
      fail(fmt::format("unsupported format character '{}'", type));
    }
  }
  if (k < args.size()) fail("not all arguments converted during string formatting");
  return out;
}

Value apply_filter(Interpreter& interp, const std::string& name, const Value& value, CallArgs& args) {
  auto it = filters().find(name);
  if (it == filters().end()) fail(fmt::format("no filter named '{}'", name));
  interp.step();
  return it->second(interp, value, args);
}

bool apply_test(Interpreter& interp, const std::string& name, const Value& value, CallArgs& args) {
  auto it = tests().find(name);
  if (it == tests().end()) fail(fmt::format("no test named '{}'", name));
  return it->second(interp, value, args);
}

void add_global_functions(Scope& globals) {
  auto define = [&](const char* name, std::function<Value(CallArgs&)> fn) {
    if (globals.lookup(name) == nullptr) globals.set(name, Value::function(name, std::move(fn)));
  };
  define("raise_exception", [](CallArgs& a) -> Value {
    fail(a.args.empty() ? std::string("raise_exception() called") : py_str(a.args[0]));
  });
  define("range", [](CallArgs& a) {
    for (const Value& v : a.args)
      if (!v.is_int() && !v.is_bool())
        fail(fmt::format("'{}' object cannot be interpreted as an integer", v.type_name()));
    if (a.args.empty() || a.args.size() > 3) fail("range expected 1 to 3 arguments");
    int64_t start = 0, stop, step = 1;
    if (a.args.size() == 1) {
      stop = a.args[0].as_int();
    } else {
      start = a.args[0].as_int();
      stop = a.args[1].as_int();
      if (a.args.size() == 3) step = a.args[2].as_int();
    }
    if (step == 0) fail("range() arg 3 must not be zero");
    // jinja2's sandbox refuses ranges longer than 100000 (MAX_RANGE).
    const double len = std::ceil((static_cast<double>(stop) - static_cast<double>(start)) / static_cast<double>(step));
    if (len > 100000) fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    std::vector<Value> items;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) items.emplace_back(i);
    return Value::list(std::move(items));
  });
  define("namespace", [](CallArgs& a) {
    auto ns = std::make_shared<Object>();
    ns->kind = Object::Kind::kNamespace;
    for (const Value& v : a.args) {
      if (!v.is_dict()) fail("namespace() positional arguments must be mappings");
      for (const auto& [k, val] : v.dict_ref().items) ns->attrs.set(k, val);
    }
    for (const auto& [k, v] : a.kwargs) ns->attrs.set(k, v);
    return Value(std::move(ns));
  });
  define("dict", [](CallArgs& a) {
    Value d = Value::dict();
    for (const Value& v : a.args) {
      if (!v.is_dict()) fail("dict() positional argument must be a mapping");
      for (const auto& [k, val] : v.dict_ref().items) d.dict_ref().set(k, val);
    }
    for (const auto& [k, v] : a.kwargs) d.dict_ref().set(k, v);
    return d;
  });
  define("strftime_now", [](CallArgs& a) {
    if (a.args.empty() || !a.args[0].is_string()) fail("strftime_now() needs a format string");
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[256];
    const size_t n = std::strftime(buf, sizeof(buf), a.args[0].str().c_str(), &tm);
    return Value(std::string(buf, n));
  });
}

}  // namespace hylo::chat::jinja
