// Schema-constrained generation on a random-weight fixture model (which never writes valid JSON
// by itself): 20 schemas, 10 sampled generations each, every output checked by a small JSON
// Schema validator written here from the specification, independent of the grammar compiler.
#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>
#include <regex>

#include "common/fixtures.h"
#include "models/model.h"
#include "runtime/engine.h"
#include "runtime/grammar_filter.h"
#include "runtime/json_schema.h"
#include "tokenizer/tokenizer.h"

namespace hylo::runtime {
namespace {

using ojson = nlohmann::ordered_json;

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return n;
}

// JSON Schema validation (draft 2020-12 semantics) for the keywords the schemas below use.
bool valid(const ojson& s, const ojson& v, const ojson& root, std::string* why) {
  auto fail = [&](const std::string& m) {
    *why = m + " at " + v.dump();
    return false;
  };
  if (s.is_boolean()) return s.get<bool>() || fail("false schema");
  if (s.contains("$ref")) {
    const std::string ref = s["$ref"].get<std::string>();
    const std::string name = ref.substr(ref.rfind('/') + 1);
    return valid(ref.find("$defs") != std::string::npos ? root["$defs"][name] : root["definitions"][name], v, root, why);
  }
  if (s.contains("const") && v != s["const"]) return fail("const");
  if (s.contains("enum") && std::find(s["enum"].begin(), s["enum"].end(), v) == s["enum"].end()) return fail("enum");
  if (s.contains("anyOf")) {
    bool any = false;
    for (const ojson& sub : s["anyOf"]) any = any || valid(sub, v, root, why);
    if (!any) return fail("anyOf");
  }
  if (s.contains("oneOf")) {
    int n = 0;
    for (const ojson& sub : s["oneOf"]) n += valid(sub, v, root, why);
    if (n != 1) return fail("oneOf matched " + std::to_string(n));
  }
  if (s.contains("type")) {
    std::vector<std::string> types;
    if (s["type"].is_string())
      types.push_back(s["type"]);
    else
      for (const auto& t : s["type"]) types.push_back(t);
    bool ok = false;
    for (const std::string& t : types) {
      ok = ok || (t == "object" && v.is_object()) || (t == "array" && v.is_array()) || (t == "string" && v.is_string()) ||
           (t == "number" && v.is_number()) || (t == "boolean" && v.is_boolean()) || (t == "null" && v.is_null()) ||
           (t == "integer" && (v.is_number_integer() || (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()))));
    }
    if (!ok) return fail("type");
  }
  if (v.is_object()) {
    if (s.contains("required"))
      for (const auto& r : s["required"])
        if (!v.contains(r.get<std::string>())) return fail("required " + r.get<std::string>());
    for (const auto& [k, sub] : v.items()) {
      if (s.contains("properties") && s["properties"].contains(k)) {
        if (!valid(s["properties"][k], sub, root, why)) return false;
      } else if (s.contains("additionalProperties")) {
        if (!valid(s["additionalProperties"], sub, root, why)) return false;
      }
    }
  }
  if (v.is_array()) {
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) return fail("minItems");
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>()) return fail("maxItems");
    if (s.contains("items"))
      for (const ojson& item : v)
        if (!valid(s["items"], item, root, why)) return false;
  }
  if (v.is_string()) {
    const std::string str = v.get<std::string>();
    if (s.contains("minLength") && code_points(str) < s["minLength"].get<size_t>()) return fail("minLength");
    if (s.contains("maxLength") && code_points(str) > s["maxLength"].get<size_t>()) return fail("maxLength");
    if (s.contains("format")) {
      static const std::regex date(R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))");
      static const std::regex time(R"(([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d))");
      static const std::regex uuid(R"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})");
      const std::string f = s["format"];
      const size_t t = str.find('T');
      const bool ok = f == "date"        ? std::regex_match(str, date)
                      : f == "time"      ? std::regex_match(str, time)
                      : f == "uuid"      ? std::regex_match(str, uuid)
                      : f == "date-time" ? t != std::string::npos && std::regex_match(str.substr(0, t), date) &&
                                               std::regex_match(str.substr(t + 1), time)
                                         : false;
      if (!ok) return fail("format " + f);
    }
  }
  return true;
}

const char* const kSchemas[] = {
    R"({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["age", "name"]})",
    R"({"type": "object", "properties": {"color": {"enum": ["red", "green", "blue"]}}, "required": ["color"]})",
    R"({"type": "object", "properties": {"user": {"type": "object", "properties": {"id": {"type": "integer"},
        "admin": {"type": "boolean"}}, "required": ["id", "admin"]}}, "required": ["user"]})",
    R"({"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}},
        "required": ["xs"]})",
    R"({"type": "object", "properties": {"v": {"anyOf": [{"type": "string", "maxLength": 4}, {"type": "number"}]}}, "required": ["v"]})",
    R"({"type": "object", "properties": {"shape": {"oneOf": [
        {"type": "object", "properties": {"kind": {"const": "circle"}, "r": {"type": "number"}}, "required": ["kind", "r"]},
        {"type": "object", "properties": {"kind": {"const": "square"}, "side": {"type": "number"}}, "required": ["kind", "side"]}]}},
        "required": ["shape"]})",
    R"({"$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}, "required": ["x", "y"]}},
        "type": "object", "properties": {"from": {"$ref": "#/$defs/point"}, "to": {"$ref": "#/$defs/point"}}, "required": ["from", "to"]})",
    R"({"type": "object", "additionalProperties": {"type": "number"}})",
    R"({"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"], "additionalProperties": true})",
    R"({"type": "object", "properties": {"version": {"const": 2}, "ok": {"const": true}}, "required": ["version", "ok"]})",
    R"({"type": "object", "properties": {"note": {"type": ["string", "null"]}, "flag": {"type": "boolean"}}, "required": ["note", "flag"]})",
    R"({"type": "object", "properties": {"code": {"type": "string", "minLength": 3, "maxLength": 5}}, "required": ["code"]})",
    R"({"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}, "required": ["at"]})",
    R"({"type": "object", "properties": {"id": {"type": "string", "format": "uuid"}}, "required": ["id"]})",
    R"({"type": "object", "properties": {"day": {"type": "string", "format": "date"}, "time": {"type": "string", "format": "time"}},
        "required": ["day"]})",
    R"({"type": "object", "properties": {"items": {"type": "array", "maxItems": 2, "items": {"type": "object",
        "properties": {"sku": {"type": "string", "maxLength": 6}, "qty": {"type": "integer"}}, "required": ["sku", "qty"]}}},
        "required": ["items"]})",
    R"({"definitions": {"tree": {"type": "object", "properties": {"v": {"type": "integer"},
        "kids": {"type": "array", "maxItems": 2, "items": {"$ref": "#/definitions/tree"}}}, "required": ["v"]}},
        "$ref": "#/definitions/tree"})",
    R"({"type": "object", "properties": {"a": {"type": "string", "maxLength": 3}, "b": {"type": "number"}, "c": {"type": "null"}}})",
    R"({"type": "object", "properties": {"score": {"type": "number"}, "tags": {"type": "array", "items": {"type": "string", "maxLength": 5}, "maxItems": 3}},
        "required": ["score", "tags"], "additionalProperties": false})",
    R"({"type": "array", "items": {"enum": ["x", 1, null, false]}, "minItems": 2, "maxItems": 4})",
};

class StructuredOutput : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = test::fixture_model("qwen3moe-tiny");
    ASSERT_FALSE(path.empty());
    auto model = models::load_model(path);
    ASSERT_TRUE(model.ok()) << model.message();
    model_ = std::move(*model);
    auto tok = tokenizer::Tokenizer::from_gguf(model_->file());
    ASSERT_TRUE(tok.ok()) << tok.message();
    tok_ = std::move(*tok);
    trie_ = TokenTrie::from_tokenizer(tok_);
    pool_ = std::make_unique<ThreadPool>(2);
    EngineOptions o;
    o.n_slots = 10;
    o.n_ctx = 192;
    engine_ = std::make_unique<Engine>(*model_, tok_, *pool_, o);
  }

  std::unique_ptr<models::Model> model_;
  tokenizer::Tokenizer tok_;
  std::shared_ptr<const TokenTrie> trie_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(StructuredOutput, EveryGenerationIsValidAgainstItsSchema) {
  constexpr int kPerSchema = 10;
  constexpr int32_t kMaxTokens = 64;  // above the shortest valid answer of every schema
  int n_valid = 0, n_total = 0, n_stopped = 0;
  for (size_t si = 0; si < std::size(kSchemas); ++si) {
    const ojson schema = ojson::parse(kSchemas[si]);
    auto gbnf = json_schema_to_gbnf(schema);
    ASSERT_TRUE(gbnf.ok()) << si << ": " << gbnf.message();
    auto grammar = Grammar::parse(*gbnf);
    ASSERT_TRUE(grammar.ok()) << si << ": " << grammar.message() << "\n" << *gbnf;
    std::vector<std::string> texts(kPerSchema);
    std::vector<std::promise<RequestResult>> done(kPerSchema);
    for (int k = 0; k < kPerSchema; ++k) {
      auto r = std::make_shared<Request>();
      r->prompt = tok_.encode("Answer in JSON:", false);
      r->max_tokens = kMaxTokens;
      r->sampling.temperature = 1.0f;
      r->sampling.seed = 1000 * si + static_cast<uint64_t>(k);
      r->filter = std::make_shared<GrammarFilter>(trie_, *grammar);
      r->on_token = [&texts, k](const TokenEvent& e) { texts[static_cast<size_t>(k)] += e.text; };
      r->on_done = [&done, k](const RequestResult& res) { done[static_cast<size_t>(k)].set_value(res); };
      ASSERT_EQ(engine_->submit(r).kind, SubmitError::kNone);
    }
    for (int k = 0; k < kPerSchema; ++k) {
      const RequestResult res = done[static_cast<size_t>(k)].get_future().get();
      const std::string& text = texts[static_cast<size_t>(k)];
      ++n_total;
      // Ended by the end token once complete, or completed by the last token max_tokens allowed.
      n_stopped += res.reason == FinishReason::kStop;
      EXPECT_TRUE(res.reason == FinishReason::kStop || (res.reason == FinishReason::kLength && res.n_generated == kMaxTokens))
          << finish_reason_name(res.reason);
      ojson value;
      try {
        value = ojson::parse(text);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "schema " << si << " sample " << k << ": not JSON (" << e.what() << "): " << text;
        continue;
      }
      std::string why;
      if (valid(schema, value, schema, &why))
        ++n_valid;
      else
        ADD_FAILURE() << "schema " << si << " sample " << k << ": " << why << "\n" << text;
    }
  }
  EXPECT_EQ(n_valid, n_total);
  EXPECT_EQ(n_total, 200);
  EXPECT_GT(n_stopped, n_total / 2);
}

}  // namespace
}  // namespace hylo::runtime
