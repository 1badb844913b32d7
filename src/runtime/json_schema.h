// JSON Schema (the subset structured-output APIs use) compiled to a GBNF grammar whose sentences
// are JSON texts valid against the schema. A keyword it cannot enforce is an error naming it,
// never ignored. Annotations (title, description, examples, ...) are ignored.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"
#include "runtime/grammar.h"

namespace hylo::runtime {

// Supported: type (one or a list), properties, required, additionalProperties, enum, const,
// items, minItems, maxItems, minLength, maxLength, format (date, time, date-time, uuid), anyOf,
// oneOf (as anyOf), allOf with one schema, $ref to #/$defs/... or #/definitions/..., and true.
// Properties are written in the schema's order; without additionalProperties no others are.
Result<std::string> json_schema_to_gbnf(const nlohmann::ordered_json& schema);

// A parameter value in the XML tool-call form (Qwen3-Coder), where strings are written raw and
// other types as JSON: the grammar of the value for `schema` (a part of `root`) and then
// `suffix`; empty when the value is free text (a string, or a schema without a type).
Result<std::string> xml_parameter_gbnf(const nlohmann::ordered_json& schema, const nlohmann::ordered_json& root,
                                       const std::string& path, const std::string& suffix);

// The grammar of any JSON object (tool arguments without a schema), as text and compiled once.
std::string json_object_gbnf();
std::shared_ptr<const Grammar> json_object_grammar();

}  // namespace hylo::runtime
