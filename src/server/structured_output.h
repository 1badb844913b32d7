// The structured-output fields of requests, whichever API asked: OpenAI response_format,
// llama-server's grammar and json_schema, Ollama's format. Schemas and grammars are compiled
// here, so a bad one is a 400 before anything runs; the runtime enforces the result.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "runtime/grammar.h"
#include "server/json_fields.h"
#include "server/request.h"

namespace hylo::server {

// response_format, grammar, json_schema (OpenAI chat and completions, llama-server's /completion).
Status read_structured_output(const FieldReader& r, GenerationRequest* g);
// Ollama's format: "json", or a JSON schema.
Status read_ollama_format(const ojson& format, GenerationRequest* g);
// A JSON schema as a grammar; `field` names it in errors ("response_format.json_schema.schema").
Result<std::shared_ptr<const runtime::Grammar>> compile_json_schema(const ojson& schema, const std::string& field);

}  // namespace hylo::server
