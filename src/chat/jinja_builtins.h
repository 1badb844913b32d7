// Jinja built-ins: filters, tests, attribute / item access (with Python's str, dict and list
// methods), iteration, and the global functions HF chat templates may call.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "chat/jinja_eval.h"
#include "chat/jinja_value.h"

namespace hylo::chat::jinja {

// Unknown names are TemplateErrors ("no filter named 'x'").
Value apply_filter(Interpreter& interp, const std::string& name, const Value& value, CallArgs& args);
bool apply_test(Interpreter& interp, const std::string& name, const Value& value, CallArgs& args);

// x.name (methods become bound functions) and x[key], as jinja2's sandbox resolves them.
Value get_attr(Interpreter& interp, const Value& obj, const std::string& name);
Value get_item(Interpreter& interp, const Value& obj, const Value& key);
// x[start:stop:step] on strings (by code point), lists and tuples.
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// The elements a for loop visits: list items, dict keys, string characters; Undefined is empty.
std::vector<Value> iterate(const Value& v);
// len(); Undefined has length 0.
int64_t py_len(const Value& v);
// `needle in haystack`.
bool py_contains(const Value& haystack, const Value& needle);

// printf-style formatting (str % args and the `format` filter).
std::string percent_format(const std::string& format, const std::vector<Value>& args);

// range, namespace, dict, raise_exception, strftime_now.
void add_global_functions(Scope& globals);

}  // namespace hylo::chat::jinja
