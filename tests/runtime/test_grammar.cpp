// GBNF parsing (with errors that point at the text), the byte-level matcher (UTF-8, repetition,
// classes), JSON Schema compiled to grammars, and the grammar token filter on a small synthetic
// vocabulary driven like the engine drives it: random logits, every budget.
#include <gtest/gtest.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <random>

#include "runtime/grammar.h"
#include "runtime/grammar_filter.h"
#include "runtime/json_schema.h"

namespace hylo::runtime {
namespace {

std::shared_ptr<const Grammar> parse(const std::string& text) {
  auto g = Grammar::parse(text);
  EXPECT_TRUE(g.ok()) << g.message() << "\n" << text;
  return g.ok() ? *g : nullptr;
}

// Whether the grammar accepts exactly `text`.
bool accepts(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  GrammarMatcher m(g);
  return m.accepting(m.push(m.initial(), text));
}

// Whether `text` can still be completed.
bool prefix_ok(const std::shared_ptr<const Grammar>& g, const std::string& text) {
  GrammarMatcher m(g);
  return !m.push(m.initial(), text).dead();
}

TEST(Grammar, LiteralsAlternationGroupsAndRepetition) {
  auto g = parse(R"(
# a comment
root ::= greeting (" " name)+ "!"?   # trailing comment
greeting ::= "hi" | "hello"
name ::= [A-Z] [a-z]*
)");
  ASSERT_TRUE(g);
  EXPECT_TRUE(accepts(g, "hi Ann"));
  EXPECT_TRUE(accepts(g, "hello Bob Carla!"));
  EXPECT_FALSE(accepts(g, "hi"));
  EXPECT_FALSE(accepts(g, "hi ann"));
  EXPECT_FALSE(accepts(g, "hey Ann"));
  EXPECT_TRUE(prefix_ok(g, "hello Bo"));
  EXPECT_FALSE(prefix_ok(g, "hello Bo!x"));
}

TEST(Grammar, BoundedRepetition) {
  auto g = parse(R"(root ::= "a"{2,4} "b"{3} ("c" "d"){0,} "e"{1,})");
  ASSERT_TRUE(g);
  EXPECT_TRUE(accepts(g, "aabbbe"));
  EXPECT_TRUE(accepts(g, "aaaabbbcdcdeee"));
  EXPECT_FALSE(accepts(g, "abbbe"));
  EXPECT_FALSE(accepts(g, "aaaaabbbe"));
  EXPECT_FALSE(accepts(g, "aabbe"));
  EXPECT_FALSE(accepts(g, "aabbbcde" "x"));
  EXPECT_FALSE(accepts(g, "aabbb"));
}

TEST(Grammar, ClassesEscapesAndUtf8) {
  auto g = parse(R"(root ::= [^"\\\x00-\x1F]* "\"" [a-cx-z0-9\-]+ "\u00e9" "\n" . [é-ë])");
  ASSERT_TRUE(g);
  EXPECT_TRUE(accepts(g, "héllo\"a-9é\nzê"));
  EXPECT_TRUE(accepts(g, "\"b\xc3\xa9\n\xe4\xb8\xad\xc3\xab"));  // '.' takes a three-byte character
  EXPECT_FALSE(accepts(g, "\"d\xc3\xa9\nzê"));                   // d is outside [a-cx-z]
  EXPECT_FALSE(accepts(g, "\"b\xc3\xa9\nz\xc3\xac"));            // ì is outside [é-ë]
  EXPECT_FALSE(prefix_ok(g, "a\\"));                              // backslash excluded
  EXPECT_TRUE(prefix_ok(g, "\"a\xc3"));                           // half of é: still possible
  EXPECT_FALSE(prefix_ok(g, "\"a\xc4"));                          // no é-class character starts so
  // Overlong forms of ASCII are not characters: "\xc1\xbb" would otherwise read as '{'.
  auto brace = parse(R"(root ::= "{")");
  EXPECT_FALSE(prefix_ok(brace, "\xc1"));
  EXPECT_FALSE(prefix_ok(brace, "\xe0\x81"));
  EXPECT_FALSE(accepts(brace, "\xc1\xbb"));
}

TEST(Grammar, MultiLineRulesAndNestedGroups) {
  auto g = parse(R"(root ::=
  "{" ws (
    pair
    ("," ws pair)*
  )? "}"
pair ::= [a-z]+ ":" [0-9]+
  | "x"
ws ::= [ ]*
)");
  ASSERT_TRUE(g);
  EXPECT_TRUE(accepts(g, "{ a:1,b:22}"));
  EXPECT_TRUE(accepts(g, "{x, x}"));
  EXPECT_TRUE(accepts(g, "{}"));
  EXPECT_FALSE(accepts(g, "{a:}"));
}

TEST(Grammar, ErrorsNameLineAndColumn) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"root ::= \"abc", "1:10: unterminated string literal"},
      {"root ::= foo\n", "1:10: rule 'foo' is used but not defined"},
      {"root ::= \"a\"\nx ::= [b-a]", "2:10: character range ends before it starts"},
      {"root ::= \"a\" )", "1:14: unexpected ')'"},
      {"root ::= ( \"a\"", "1:15: expected ')'"},
      {"root ::= * \"a\"", "1:10: '*' has nothing to repeat"},
      {"root ::= \"\\q\"", "1:11: unknown escape"},
      {"root ::= \"a\"{3,1}", "1:13: repetition {3,1}: max < min"},
      {"root = \"a\"", "1:6: expected '::='"},
      {"start ::= \"a\"", "no rule 'root'"},
      {"root ::= root \"a\" | \"b\"", "left recursion (root -> root)"},
      {"root ::= x\nx ::= (\"a\"?)* \"b\"", "left recursion"},
      {"root ::= \"a\"\nroot ::= \"b\"", "2:1: rule 'root' is defined twice"},
  };
  for (const Case& c : cases) {
    auto g = Grammar::parse(c.text);
    ASSERT_FALSE(g.ok()) << c.text;
    EXPECT_NE(g.message().find(c.expect), std::string::npos) << c.text << " -> " << g.message();
  }
}

TEST(Grammar, CompletionBytesIsTheShortestFinish) {
  auto g = parse(R"(root ::= "ab" x "c"
x ::= "long" | [0-9]+ | "é")");
  ASSERT_TRUE(g);
  GrammarMatcher m(g);
  auto s = m.initial();
  EXPECT_EQ(m.completion_bytes(s), 4);  // ab0c
  s = m.push(s, "ab");
  EXPECT_EQ(m.completion_bytes(s), 2);
  s = m.push(s, "\xc3");
  EXPECT_EQ(m.completion_bytes(s), 2);  // the rest of é, then c
  s = m.push(s, "\xa9");
  EXPECT_EQ(m.completion_bytes(s), 1);
  s = m.push(s, "c");
  EXPECT_TRUE(m.accepting(s));
  EXPECT_FALSE(m.can_continue(s));
}

// ---------------------------------------------------------------------------------------------
// JSON Schema

std::shared_ptr<const Grammar> schema_grammar(const char* schema) {
  auto gbnf = json_schema_to_gbnf(nlohmann::ordered_json::parse(schema));
  EXPECT_TRUE(gbnf.ok()) << gbnf.message();
  if (!gbnf.ok()) return nullptr;
  return parse(*gbnf);
}

TEST(JsonSchema, ObjectsRequiredOptionalAndAdditional) {
  auto g = schema_grammar(R"({"type": "object", "properties": {"name": {"type": "string"},
      "age": {"type": "integer"}, "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2}},
      "required": ["age"]})");
  ASSERT_TRUE(g);
  EXPECT_TRUE(accepts(g, R"({"age": 3})"));
  EXPECT_TRUE(accepts(g, R"({"name": "x", "age": -3, "tags": ["a","b"]})"));
  EXPECT_TRUE(accepts(g, R"({"age":0,"tags":[]})"));
  EXPECT_FALSE(accepts(g, R"({"name": "x"})"));                  // age is required
  EXPECT_FALSE(accepts(g, R"({"age": 1.5})"));                   // not an integer
  EXPECT_FALSE(accepts(g, R"({"age": 1, "tags": ["a","b","a"]})"));  // maxItems
  EXPECT_FALSE(accepts(g, R"({"age": 1, "other": 1})"));         // no additional properties
  EXPECT_FALSE(accepts(g, R"({})"));

  auto open = schema_grammar(R"({"properties": {"a": {"const": 1}}, "additionalProperties": {"type": "boolean"}})");
  ASSERT_TRUE(open);
  EXPECT_TRUE(accepts(open, R"({"a": 1, "b": true, "ab": false})"));
  EXPECT_TRUE(accepts(open, R"({"zz": true})"));
  EXPECT_FALSE(accepts(open, R"({"a": 1, "a": true})"));  // an additional key may not repeat a declared one
  EXPECT_FALSE(accepts(open, R"({"b": 1})"));
}

TEST(JsonSchema, RefsAnyOfFormatsAndLengths) {
  auto g = schema_grammar(R"({"$defs": {"node": {"type": "object", "properties": {
      "v": {"anyOf": [{"type": "null"}, {"type": "string", "format": "date"}]},
      "next": {"$ref": "#/$defs/node"}}, "required": ["v"]}},
      "type": "object", "properties": {"head": {"$ref": "#/$defs/node"},
      "id": {"type": "string", "format": "uuid"}, "code": {"type": "string", "minLength": 2, "maxLength": 3}},
      "required": ["head", "code"]})");
  ASSERT_TRUE(g);
  EXPECT_TRUE(accepts(g, R"({"head": {"v": null, "next": {"v": "2024-02-29"}}, "code": "ab"})"));
  EXPECT_TRUE(accepts(g, R"({"head":{"v":null},"id":"123e4567-e89b-12d3-a456-426614174000","code":"a\nb"})"));
  EXPECT_FALSE(accepts(g, R"({"head": {"v": "2024-13-01"}, "code": "ab"})"));
  EXPECT_FALSE(accepts(g, R"({"head": {"v": null}, "code": "abcd"})"));
  EXPECT_FALSE(accepts(g, R"({"head": {"v": null}, "code": "a"})"));
}

TEST(JsonSchema, UnsupportedKeywordsAreNamed) {
  for (const auto& [schema, keyword] : std::vector<std::pair<const char*, const char*>>{
           {R"({"type": "string", "pattern": "^a$"})", "'pattern'"},
           {R"({"type": "integer", "minimum": 3})", "'minimum'"},
           {R"({"properties": {"x": {"type": "number", "multipleOf": 2}}})", "#/properties/x: unsupported keyword 'multipleOf'"},
           {R"({"type": "string", "format": "email"})", "'format'"},
           {R"({"$ref": "http://example.com/s.json"})", "'$ref'"},
           {R"({"type": "object", "patternProperties": {}})", "'patternProperties'"},
           {R"({"allOf": [{"type": "string"}, {"maxLength": 2}]})", "'allOf'"},
           {R"({"type": "array", "uniqueItems": true})", "'uniqueItems'"},
       }) {
    auto r = json_schema_to_gbnf(nlohmann::ordered_json::parse(schema));
    ASSERT_FALSE(r.ok()) << schema;
    EXPECT_NE(r.message().find(keyword), std::string::npos) << r.message();
  }
}

// ---------------------------------------------------------------------------------------------
// The filter on a synthetic vocabulary: single bytes, some multi-byte pieces, an end token.

class FilterOnSyntheticVocab : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int c = 0x20; c < 0x7F; ++c) pieces_.push_back(std::string(1, static_cast<char>(c)));
    for (const char* p : {"\n", "{\"", "\":", "\",", "\"}", "true", "null", "12", "ab", " \"", "é", "\xc3", "\xa9"})
      pieces_.push_back(p);
    eog_ = static_cast<int32_t>(pieces_.size());
    pieces_.push_back("<end>");
    std::vector<bool> include(pieces_.size(), true);
    include.back() = false;  // special
    trie_ = std::make_shared<TokenTrie>(pieces_, include, std::vector<int32_t>{eog_}, -1);
  }

  // Generates with random logits until the end token or `max_tokens`; the text and whether it ended.
  std::string generate(const std::shared_ptr<const Grammar>& g, int max_tokens, std::mt19937* rng, bool* ended) {
    GrammarFilter f(trie_, g);
    std::string out;
    std::vector<float> logits(pieces_.size());
    std::normal_distribution<float> noise(0, 2);
    *ended = false;
    for (int i = 0; i < max_tokens; ++i) {
      for (float& l : logits) l = noise(*rng);
      f.mask(logits.data(), static_cast<int64_t>(logits.size()), max_tokens - i);
      int32_t best = -1;
      for (size_t t = 0; t < logits.size(); ++t)
        if (std::isfinite(logits[t]) && (best < 0 || logits[t] > logits[static_cast<size_t>(best)])) best = static_cast<int32_t>(t);
      EXPECT_GE(best, 0);
      if (best == eog_) {
        *ended = true;
        break;
      }
      f.accept(best);
      out += pieces_[static_cast<size_t>(best)];
    }
    return out;
  }

  std::vector<std::string> pieces_;
  int32_t eog_ = 0;
  std::shared_ptr<TokenTrie> trie_;
};

TEST_F(FilterOnSyntheticVocab, OutputIsASentenceAndEndsOnlyWhenComplete) {
  auto g = schema_grammar(R"({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "array",
      "items": {"type": "number"}, "minItems": 1}, "c": {"enum": [true, null, "x"]}}, "required": ["a", "b"]})");
  ASSERT_TRUE(g);
  std::mt19937 rng(7);
  int ended = 0;
  for (int budget : {40, 60, 120, 400}) {
    for (int run = 0; run < 10; ++run) {
      bool end = false;
      const std::string text = generate(g, budget, &rng, &end);
      // The budget leaves room for the shortest sentence, so it is always complete.
      EXPECT_TRUE(accepts(g, text)) << budget << ": " << text;
      ended += end;
    }
  }
  EXPECT_GT(ended, 0);
}

TEST_F(FilterOnSyntheticVocab, TooSmallABudgetIsCutNotEnded) {
  auto g = parse(R"(root ::= "{\"key\": " [0-9]+ "}")");
  ASSERT_TRUE(g);
  std::mt19937 rng(1);
  bool ended = true;
  const std::string text = generate(g, 5, &rng, &ended);
  EXPECT_FALSE(ended);  // the end token never comes before the grammar is complete
  EXPECT_TRUE(prefix_ok(g, text)) << text;
}

}  // namespace
}  // namespace hylo::runtime
