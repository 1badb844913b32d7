#include "server/structured_output.h"

#include "runtime/json_schema.h"

namespace hylo::server {

namespace {

constexpr size_t kMaxGrammarBytes = 256 * 1024;

std::string strip_tag(std::string m, std::string_view tag) {
  if (m.rfind(tag, 0) == 0) m = m.substr(tag.size());
  return m;
}

Result<std::shared_ptr<const runtime::Grammar>> compile_gbnf(const std::string& text, const std::string& field) {
  if (text.size() > kMaxGrammarBytes)
    return make_error("{} is {} bytes; at most {} are accepted", field, text.size(), kMaxGrammarBytes);
  auto g = runtime::Grammar::parse(text);
  if (!g.ok()) return make_error("{}: {}", field, strip_tag(g.message(), "[grammar] "));
  return std::move(*g);
}

}  // namespace

Result<std::shared_ptr<const runtime::Grammar>> compile_json_schema(const ojson& schema, const std::string& field) {
  auto gbnf = runtime::json_schema_to_gbnf(schema);
  if (!gbnf.ok()) return make_error("{}: {}", field, strip_tag(gbnf.message(), "[json_schema] "));
  auto g = runtime::Grammar::parse(*gbnf);
  if (!g.ok()) return make_error("{}: the schema's grammar failed: {}", field, g.message());
  return std::move(*g);
}

Status read_structured_output(const FieldReader& r, GenerationRequest* g) {
  HYLO_ASSIGN_OR_RETURN(auto grammar, r.string("grammar"));
  const ojson* schema = r.get("json_schema");
  if (schema != nullptr && !schema->is_object() && !schema->is_boolean())
    return make_error("json_schema must be a JSON schema object");
  if (grammar && schema != nullptr) return make_error("give grammar or json_schema, not both");
  if (grammar && !grammar->empty()) {
    HYLO_ASSIGN_OR_RETURN(g->grammar, compile_gbnf(*grammar, "grammar"));
  }
  if (schema != nullptr) {
    HYLO_ASSIGN_OR_RETURN(g->grammar, compile_json_schema(*schema, "json_schema"));
  }

  HYLO_ASSIGN_OR_RETURN(auto response_format, r.object("response_format"));
  if (response_format == nullptr) return ok_status();
  const FieldReader rf(*response_format, "response_format.");
  HYLO_ASSIGN_OR_RETURN(auto type, rf.string("type"));
  if (!type || (*type != "text" && *type != "json_object" && *type != "json_schema"))
    return make_error("response_format.type must be one of text, json_object, json_schema");
  if (*type == "text") return ok_status();
  if (g->grammar) return make_error("give response_format or {}, not both", grammar ? "grammar" : "json_schema");
  // llama-server also takes the schema as response_format.schema.
  const ojson* inner_schema = rf.get("schema");
  std::string field = "response_format.schema";
  if (*type == "json_schema") {
    HYLO_ASSIGN_OR_RETURN(auto js, rf.object("json_schema"));
    if (js != nullptr && inner_schema == nullptr) {
      inner_schema = FieldReader(*js).get("schema");
      field = "response_format.json_schema.schema";
    }
    if (inner_schema == nullptr)
      return make_error("response_format.json_schema.schema is required with type json_schema");
  }
  if (inner_schema != nullptr) {
    if (!inner_schema->is_object() && !inner_schema->is_boolean())
      return make_error("{} must be a JSON schema object", field);
    HYLO_ASSIGN_OR_RETURN(g->grammar, compile_json_schema(*inner_schema, field));
  } else {
    g->json_mode = true;
  }
  return ok_status();
}

Status read_ollama_format(const ojson& format, GenerationRequest* g) {
  if (format.is_string()) {
    const std::string f = format.get<std::string>();
    if (f != "" && f != "json") return make_error("format must be \"json\" or a JSON schema object");
    g->json_mode = f == "json";
    return ok_status();
  }
  if (!format.is_object()) return make_error("format must be \"json\" or a JSON schema object");
  HYLO_ASSIGN_OR_RETURN(g->grammar, compile_json_schema(format, "format"));
  return ok_status();
}

}  // namespace hylo::server
