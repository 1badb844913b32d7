// Tool calls in generated text: the two Qwen body formats (Hermes JSON and the XML
// <function=...> form) parsed into a name and JSON arguments, with XML parameter values coerced
// by the tools' JSON schemas. The body parsers are the readers of tool_call_reader.h fed at once;
// the streaming state machine lives in output_parser.h.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/result.h"

namespace hylo::chat {

struct ToolCall {
  std::string id;  // "call_..." (unique within one output)
  std::string name;
  // A JSON object as text, keys in the order the model wrote them: a Hermes object as written
  // (spaces included), XML parameters as nlohmann's dump() writes them (no spaces).
  std::string arguments;
  std::string error;  // non-empty when the call could not be parsed (its raw text stays content)
};

// Parameter schemas of the request's tools (OpenAI "tools" array), by function name.
class ToolSchemas {
 public:
  ToolSchemas() = default;
  explicit ToolSchemas(const nlohmann::ordered_json& tools);
  // The JSON schema of `param` of function `name`, or nullptr.
  const nlohmann::ordered_json* parameter(const std::string& name, const std::string& param) const;

 private:
  std::map<std::string, nlohmann::ordered_json, std::less<>> properties_;
};

// Body of <tool_call>...</tool_call> in Hermes form: {"name": ..., "arguments": {...}}.
// "arguments" may also be a JSON string holding the object (normalized by dump()), or missing
// ({}); "parameters" is read when there is no "arguments". The first of a repeated member counts.
// An object is kept as written, so that it equals what streamed (tool_call_reader.h).
Result<ToolCall> parse_json_tool_call(std::string_view body);

// "<function=NAME>\n<parameter=K>\nV\n</parameter>...</function>" (the closing tags may be
// missing at the end of the text). Values lose the one newline the template puts on each side
// and are converted by the parameter's schema type: integer, number, boolean, null, object and
// array values are parsed as JSON (kept as strings when that fails); everything else, and
// parameters without a schema, stay strings. The arguments are written as they stream
// (XmlCallReader): a parameter given twice appears twice, and JSON readers keep the last.
Result<ToolCall> parse_xml_tool_call(std::string_view body, const ToolSchemas& schemas);

// Coerces one XML parameter value by its schema (nullptr: no schema -> string).
nlohmann::ordered_json coerce_parameter(const std::string& value, const nlohmann::ordered_json* schema);

// True when coerce_parameter returns the value as a string whatever the value is, so that it can
// stream before its end is seen.
bool parameter_always_string(const nlohmann::ordered_json* schema);

}  // namespace hylo::chat
