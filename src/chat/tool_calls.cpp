// Tool-call bodies: Hermes JSON and Qwen XML, schema-driven coercion of XML parameter values.
#include "chat/tool_calls.h"

#include <algorithm>
#include <vector>

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

Result<ToolCall> parse_json_tool_call(std::string_view body) {
  const std::string_view text = trim_ws(body);
  ojson j;
  try {
    j = ojson::parse(text);
  } catch (const ojson::exception& e) {
    return make_error("[chat] tool call is not valid JSON: {}", e.what());
  }
  if (!j.is_object()) return make_error("[chat] tool call must be a JSON object, got {}", j.type_name());
  if (!j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty())
    return make_error("[chat] tool call has no \"name\" string");
  ToolCall call;
  call.name = j["name"].get<std::string>();
  ojson args = ojson::object();
  for (const char* key : {"arguments", "parameters"}) {
    if (!j.contains(key)) continue;
    args = j[key];
    break;
  }
  if (args.is_string()) {  // arguments given as a JSON string
    auto inner = parse_json(args.get<std::string>());
    if (!inner) return make_error("[chat] tool call \"{}\": arguments string is not valid JSON", call.name);
    args = *inner;
  }
  if (args.is_null()) args = ojson::object();
  if (!args.is_object())
    return make_error("[chat] tool call \"{}\": arguments must be a JSON object, got {}", call.name, args.type_name());
  call.arguments = args.dump(-1, ' ', false, ojson::error_handler_t::replace);
  return call;
}

Result<ToolCall> parse_xml_tool_call(std::string_view body, const ToolSchemas& schemas) {
  constexpr std::string_view kFunction = "<function=", kParam = "<parameter=", kParamEnd = "</parameter>",
                             kFunctionEnd = "</function>";
  const size_t start = body.find(kFunction);
  if (start == std::string_view::npos) return make_error("[chat] tool call has no <function=...> tag");
  const size_t name_end = body.find('>', start);
  if (name_end == std::string_view::npos) return make_error("[chat] unterminated <function= tag in tool call");
  ToolCall call;
  call.name = std::string(trim_ws(body.substr(start + kFunction.size(), name_end - start - kFunction.size())));
  if (call.name.empty()) return make_error("[chat] tool call has an empty function name");
  std::string_view rest = body.substr(name_end + 1);
  if (const size_t fend = rest.find(kFunctionEnd); fend != std::string_view::npos) rest = rest.substr(0, fend);

  ojson args = ojson::object();
  size_t pos = 0;
  while ((pos = rest.find(kParam, pos)) != std::string_view::npos) {
    const size_t key_end = rest.find('>', pos);
    if (key_end == std::string_view::npos)
      return make_error("[chat] tool call \"{}\": unterminated <parameter= tag", call.name);
    const std::string key(trim_ws(rest.substr(pos + kParam.size(), key_end - pos - kParam.size())));
    if (key.empty()) return make_error("[chat] tool call \"{}\": empty parameter name", call.name);
    size_t value_end = rest.find(kParamEnd, key_end);
    size_t next = value_end == std::string_view::npos ? std::string_view::npos : value_end + kParamEnd.size();
    if (value_end == std::string_view::npos) {  // unclosed: runs to the next parameter or the end
      value_end = std::min(rest.find(kParam, key_end), rest.size());
      next = value_end;
    }
    std::string_view value = rest.substr(key_end + 1, value_end - key_end - 1);
    if (value.starts_with('\n')) value.remove_prefix(1);
    if (value.ends_with('\n')) value.remove_suffix(1);
    args[key] = coerce_parameter(std::string(value), schemas.parameter(call.name, key));
    pos = next;
  }
  call.arguments = args.dump(-1, ' ', false, ojson::error_handler_t::replace);
  return call;
}

}  // namespace hylo::chat
