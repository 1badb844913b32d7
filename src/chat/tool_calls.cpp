// Tool-call bodies: schema-driven coercion of XML parameter values; the body parsers are the
// streaming readers (tool_call_reader.cpp) given the whole body.
#include "chat/tool_calls.h"

#include <algorithm>
#include <vector>

#include "chat/tool_call_reader.h"

namespace hylo::chat {
namespace {

using ojson = nlohmann::ordered_json;

std::string_view trim_ws(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// The schema's type names ("type": "integer" or ["integer", "null"]; anyOf/oneOf members too).
std::vector<std::string> schema_types(const ojson& schema) {
  std::vector<std::string> types;
  if (!schema.is_object()) return types;
  if (schema.contains("type")) {
    const ojson& t = schema["type"];
    if (t.is_string()) types.push_back(t.get<std::string>());
    if (t.is_array())
      for (const ojson& x : t)
        if (x.is_string()) types.push_back(x.get<std::string>());
  }
  for (const char* key : {"anyOf", "oneOf"})
    if (schema.contains(key) && schema[key].is_array())
      for (const ojson& alt : schema[key])
        for (std::string& t : schema_types(alt)) types.push_back(std::move(t));
  return types;
}

bool has(const std::vector<std::string>& v, const char* s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::optional<ojson> parse_json(std::string_view text) {
  try {
    return ojson::parse(text);
  } catch (const ojson::exception&) {
    return std::nullopt;
  }
}

}  // namespace

ToolSchemas::ToolSchemas(const ojson& tools) {
  if (!tools.is_array()) return;
  for (const ojson& tool : tools) {
    const ojson* fn = &tool;
    if (tool.is_object() && tool.contains("function") && tool["function"].is_object()) fn = &tool["function"];
    if (!fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string()) continue;
    const ojson* params = fn->contains("parameters") ? &(*fn)["parameters"] : nullptr;
    if (params && params->is_object() && params->contains("properties") && (*params)["properties"].is_object())
      properties_[(*fn)["name"].get<std::string>()] = (*params)["properties"];
  }
}

const ojson* ToolSchemas::parameter(const std::string& name, const std::string& param) const {
  auto it = properties_.find(name);
  if (it == properties_.end() || !it->second.contains(param)) return nullptr;
  return &it->second[param];
}

ojson coerce_parameter(const std::string& value, const ojson* schema) {
  if (schema == nullptr) return value;
  const std::vector<std::string> types = schema_types(*schema);
  const std::string_view t = trim_ws(value);
  if (has(types, "null") && t == "null") return nullptr;
  if (has(types, "string")) return value;  // a string is always acceptable as written
  if (has(types, "boolean")) {
    std::string lower(t);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower == "true") return true;
    if (lower == "false") return false;
  }
  if (has(types, "integer") || has(types, "number")) {
    if (auto j = parse_json(t); j && j->is_number()) {
      // 5.0 for an integer parameter becomes 5; a number keeps the form the model wrote.
      if (has(types, "integer") && !has(types, "number") && j->is_number_float()) {
        const double d = j->get<double>();
        if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
      }
      return *j;
    }
  }
  if (has(types, "object") || has(types, "array")) {
    if (auto j = parse_json(t); j && (j->is_object() || j->is_array())) return *j;
  }
  return value;
}

bool parameter_always_string(const ojson* schema) {
  if (schema == nullptr) return true;
  const std::vector<std::string> types = schema_types(*schema);
  if (has(types, "null")) return false;  // "null" would become null
  if (has(types, "string")) return true;
  // Without a type coerce_parameter recognises, every value stays text.
  return !has(types, "boolean") && !has(types, "integer") && !has(types, "number") && !has(types, "object") &&
         !has(types, "array");
}

Result<ToolCall> parse_json_tool_call(std::string_view body) {
  JsonCallReader reader;
  reader.push(body);
  return reader.finish();
}

Result<ToolCall> parse_xml_tool_call(std::string_view body, const ToolSchemas& schemas) {
  XmlCallReader reader(schemas);
  reader.push(body);
  return reader.finish();
}

}  // namespace hylo::chat
