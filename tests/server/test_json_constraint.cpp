// JSON mode: the byte-level JSON state machine, and the token filter on a small synthetic
// vocabulary driven like the engine drives it (random logits, every budget): the output must
// always be one complete JSON object. Also the forced-output test hook and the tool_choice filter.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>

#include "server/token_filters.h"
#include "runtime/json_schema.h"
#include "server/tool_call_filter.h"

namespace hylo::server {
namespace {

bool accepts(const std::string& text, JsonState* out = nullptr) {
  JsonState s;
  const bool ok = s.push(text);
  if (out) *out = s;
  return ok;
}

TEST(JsonState, AcceptsValidDocuments) {
  for (const char* doc : {
           R"({})",
           R"({"a": 1})",
           R"({"a": [1, -2.5e+3, 0.25, 1E9, true, false, null, {"b": "x\u00e9\n\"q\""}], "c": {}})",
           "{\n  \"k\" : [ ] ,\n\t\"é\": \"ü\"\n}",
           R"({"nested": {"deeper": {"deepest": [[[]]]}}})",
       }) {
    JsonState s;
    EXPECT_TRUE(s.push(std::string(doc))) << doc;
    EXPECT_TRUE(s.done()) << doc;
    EXPECT_EQ(s.completion_length(), 0) << doc;
  }
}

TEST(JsonState, RejectsInvalidText) {
  for (const char* doc : {
           "[1]",          // the top level is an object
           " {}",          // nothing before it
           R"({"a" 1})",   // missing colon
           R"({"a":01})",  // leading zero
           R"({"a":tru })",
           R"({"a":1,})",
           R"({,})",
           R"({"a":"\x"})",
           R"({"a":"\u12G4"})",
           R"({"a":1.})",
           R"({"a":-})",
           R"({"a":[1}})",
           R"({}x)",  // nothing after the object
           R"({"a":1]})",
       }) {
    EXPECT_FALSE(accepts(doc)) << doc;
  }
  EXPECT_FALSE(accepts(std::string("{\"a\":\"") + '\x01' + "\"}"));  // control byte in a string
}

TEST(JsonState, CompletionLengthIsTheShortestClose) {
  struct Case {
    const char* prefix;
    int length;
  } cases[] = {
      {"", 2},              // {}
      {"{", 1},             // }
      {R"({"ab)", 4},       // ":0}
      {R"({"a")", 3},       // :0}
      {R"({"a":)", 2},      // 0}
      {R"({"a":[)", 2},     // ]}
      {R"({"a":[1,)", 3},   // 0]}
      {R"({"a":"x)", 2},    // "}
      {R"({"a":"\)", 3},    // n"}
      {R"({"a":"\u1)", 5},  // 234"}
      {R"({"a":tr)", 3},    // ue}
      {R"({"a":12)", 1},    // }
      {R"({"a":1e)", 2},    // 0}
      {R"({"a":1,)", 5},    // "":0}
  };
  for (const Case& c : cases) {
    JsonState s;
    ASSERT_TRUE(s.push(std::string(c.prefix))) << c.prefix;
    EXPECT_EQ(s.completion_length(), c.length) << c.prefix;
  }
}

TEST(JsonState, NumbersStayWithinADouble) {
  EXPECT_TRUE(accepts(R"({"a":12345678901234567890.12345678901234567890e-99})"));
  EXPECT_FALSE(accepts(R"({"a":123456789012345678901})"));
  EXPECT_FALSE(accepts(R"({"a":1.123456789012345678901})"));
  EXPECT_FALSE(accepts(R"({"a":1e100})"));
}

TEST(JsonState, NestingAndWhitespaceAreBounded) {
  EXPECT_TRUE(accepts("{\"a\":" + std::string(JsonState::kMaxDepth - 1, '[')));
  EXPECT_FALSE(accepts("{\"a\":" + std::string(JsonState::kMaxDepth, '[')));
  std::string spaces = "{";
  spaces.append(JsonState::kMaxWhitespace, ' ');
  EXPECT_TRUE(accepts(spaces));
  EXPECT_FALSE(accepts(spaces + " "));
}

// A vocabulary with single bytes (so any JSON can be written) and multi-byte pieces that cross
// token boundaries in every way, plus an end-of-generation token, </think>, and a special token.
struct Vocab {
  std::vector<std::string> pieces;
  std::vector<bool> include;
  int32_t eog = -1, think_end = -1, special = -1, tool_open = -1, tool_close = -1;
};

Vocab make_vocab() {
  Vocab v;
  auto add = [&](std::string p, bool inc = true) {
    v.pieces.push_back(std::move(p));
    v.include.push_back(inc);
    return static_cast<int32_t>(v.pieces.size() - 1);
  };
  for (int c = 1; c < 128; ++c) add(std::string(1, static_cast<char>(c)));
  for (const char* p :
       {"{\"",   "\":", "\",",      "\"}",  "true",  "false", "null", "123",  "0.5",   "e-7",     "}]",
        "[{",    "{}",  "[]",       "\\\"", "\\u00", "e9",    "abc",  " the", "\":\"", "\"a\":1", "\n  ",
        "},{\"", "é",   "\xe2\x82", "\xac", "}}}",   "]]]",   "\":[", "-0",   "\\n",   "nul",     "l,"})
    add(p);
  add("");  // an unused row: never allowed
  v.eog = add("<|im_end|>", false);
  v.think_end = add("</think>", false);
  v.special = add("<|im_start|>", false);
  v.tool_open = add("<tool_call>", false);
  v.tool_close = add("</tool_call>", false);
  return v;
}

std::shared_ptr<const TokenTrie> make_trie(const Vocab& v) {
  return std::make_shared<TokenTrie>(v.pieces, v.include, std::vector<int32_t>{v.eog}, v.think_end);
}

// Runs the filter like the engine: random logits, mask, argmax (or a draw), accept; stops at the
// end-of-generation token or after `budget` tokens.
std::string generate(const Vocab& v, runtime::TokenFilter& f, int budget, std::mt19937& rng, bool greedy,
                     bool* ended_by_eog) {
  const auto n = static_cast<int64_t>(v.pieces.size());
  std::vector<float> logits(static_cast<size_t>(n));
  std::normal_distribution<float> noise(0.0f, 2.0f);
  std::string text;
  *ended_by_eog = false;
  for (int produced = 0; produced < budget; ++produced) {
    for (float& l : logits) l = noise(rng);
    f.mask(logits.data(), n, budget - produced);
    int32_t pick = -1;
    if (greedy) {
      pick = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    } else {
      std::vector<int32_t> finite;
      for (int64_t i = 0; i < n; ++i)
        if (std::isfinite(logits[i])) finite.push_back(static_cast<int32_t>(i));
      pick = finite[rng() % finite.size()];
    }
    EXPECT_TRUE(std::isfinite(logits[pick]));
    if (pick == v.eog) {
      *ended_by_eog = true;
      break;
    }
    text += v.pieces[pick];
    f.accept(pick);
  }
  return text;
}

TEST(JsonFilter, EveryBudgetEndsWithOneObject) {
  const Vocab v = make_vocab();
  auto trie = make_trie(v);
  std::mt19937 rng(7);
  for (int budget = 2; budget <= 80; budget += (budget < 20 ? 1 : 7)) {
    for (int trial = 0; trial < 12; ++trial) {
      JsonFilter f(trie, /*wait_for_think_end=*/false);
      bool eog = false;
      const std::string text = generate(v, f, budget, rng, trial % 2 == 0, &eog);
      // Bytes of UTF-8 characters may come out cut (the engine's stream decoder turns those into
      // U+FFFD); here they stand in for any character.
      std::string ascii = text;
      for (char& ch : ascii)
        if (static_cast<unsigned char>(ch) >= 0x80) ch = 'x';
      const auto j = nlohmann::json::parse(ascii, nullptr, /*allow_exceptions=*/false);
      ASSERT_TRUE(j.is_object()) << "budget " << budget << ": " << ascii;
      EXPECT_TRUE(f.state().done());
      // Past the object only the end token may follow.
      std::vector<float> logits(v.pieces.size(), 0.0f);
      f.mask(logits.data(), static_cast<int64_t>(logits.size()), 5);
      for (size_t i = 0; i < logits.size(); ++i)
        EXPECT_EQ(std::isfinite(logits[i]), static_cast<int32_t>(i) == v.eog) << i;
    }
  }
}

TEST(JsonFilter, SpecialAndEmptyTokensAreNeverAllowedInside) {
  const Vocab v = make_vocab();
  JsonFilter f(make_trie(v), false);
  std::vector<float> logits(v.pieces.size(), 0.0f);
  f.mask(logits.data(), static_cast<int64_t>(logits.size()), 100);
  EXPECT_FALSE(std::isfinite(logits[v.eog]));  // not before the object is complete
  EXPECT_FALSE(std::isfinite(logits[v.special]));
  EXPECT_FALSE(std::isfinite(logits[v.eog - 1]));  // the empty row
  EXPECT_TRUE(std::isfinite(logits['{' - 1]));     // single bytes start at id 0 = '\x01'
  EXPECT_FALSE(std::isfinite(logits['[' - 1]));
}

TEST(JsonFilter, WaitsForTheEndOfReasoning) {
  const Vocab v = make_vocab();
  JsonFilter f(make_trie(v), /*wait_for_think_end=*/true);
  std::vector<float> logits(v.pieces.size(), 1.0f);
  f.mask(logits.data(), static_cast<int64_t>(logits.size()), 50);
  for (float l : logits) EXPECT_EQ(l, 1.0f);  // reasoning is free text
  f.accept('x' - 1);
  f.accept(v.think_end);
  f.mask(logits.data(), static_cast<int64_t>(logits.size()), 50);
  EXPECT_FALSE(std::isfinite(logits['x' - 1]));
  EXPECT_TRUE(std::isfinite(logits['{' - 1]));
}

TEST(ForcedOutputFilter, AllowsOnlyTheNextToken) {
  ForcedOutputFilter f({5, 9}, 2);
  std::vector<float> logits(12, 0.5f);
  f.mask(logits.data(), 12, 10);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(std::isfinite(logits[i]), i == 5);
  f.accept(5);
  std::fill(logits.begin(), logits.end(), 0.5f);
  f.mask(logits.data(), 12, 10);
  EXPECT_TRUE(std::isfinite(logits[9]));
  f.accept(9);
  std::fill(logits.begin(), logits.end(), 0.5f);
  f.mask(logits.data(), 12, 10);
  EXPECT_TRUE(std::isfinite(logits[2]));
  EXPECT_FALSE(std::isfinite(logits[9]));
}

}  // namespace
}  // namespace hylo::server

namespace hylo::server {
namespace {

std::vector<std::pair<std::string, int32_t>> markup(const Vocab& v) {
  return {{"<tool_call>", v.tool_open}, {"</tool_call>", v.tool_close}};
}

// tool_choice required: whatever the logits, the output is one Hermes call to one of the tools
// with a JSON object as arguments, closed, and then the end of generation, once the budget
// holds the shortest such call.
TEST(ToolCallFilter, HermesOutputIsOneCompleteCall) {
  const Vocab v = make_vocab();
  auto trie = make_trie(v);
  const std::vector<ToolSpec> tools = {{"get_weather", {"city"}}, {"get_time", {}}};
  const std::string open = "<tool_call>\n{\"name\": \"";
  std::mt19937 rng(11);
  for (int budget = 64; budget <= 160; budget += 8) {  // the opening alone is ~35 tokens here
    for (int trial = 0; trial < 8; ++trial) {
      ToolCallFilter f(trie, chat::ToolCallFormat::kHermesJson, tools, markup(v), /*wait_for_think_end=*/false);
      bool eog = false;
      const std::string text = generate(v, f, budget, rng, trial % 2 == 0, &eog);
      ASSERT_TRUE(eog) << "budget " << budget << ": " << text;
      ASSERT_EQ(text.rfind(open, 0), 0u) << text;
      const std::string suffix = "\n</tool_call>";
      ASSERT_GT(text.size(), open.size() + suffix.size());
      ASSERT_EQ(text.substr(text.size() - suffix.size()), suffix) << text;
      std::string body = text.substr(open.size() - 10, text.size() - (open.size() - 10) - suffix.size());
      for (char& ch : body)
        if (static_cast<unsigned char>(ch) >= 0x80) ch = 'x';
      const auto call = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
      ASSERT_TRUE(call.is_object()) << body;
      ASSERT_TRUE(f.chosen().has_value());
      EXPECT_EQ(call["name"], *f.chosen());
      EXPECT_TRUE(*f.chosen() == "get_weather" || *f.chosen() == "get_time");
      EXPECT_TRUE(call["arguments"].is_object()) << body;
    }
  }
}

TEST(ToolCallFilter, NamedFunctionAndXmlOpening) {
  const Vocab v = make_vocab();
  auto trie = make_trie(v);
  std::mt19937 rng(5);
  ToolCallFilter named(trie, chat::ToolCallFormat::kHermesJson, {{"get_time", {}}}, markup(v), false);
  bool eog = false;
  std::string text = generate(v, named, 60, rng, true, &eog);
  EXPECT_EQ(text.rfind("<tool_call>\n{\"name\": \"get_time\", \"arguments\": {", 0), 0u) << text;
  EXPECT_EQ(named.chosen(), "get_time");
}

// Qwen3-Coder's XML form: whatever the logits, one complete call: the opening, parameters of the
// chosen function each closed, the closing tags, then the end of generation.
TEST(ToolCallFilter, XmlOutputIsOneCompleteCall) {
  const Vocab v = make_vocab();
  auto trie = make_trie(v);
  const std::vector<ToolSpec> tools = {{"get_weather", {"city", "unit"}}, {"get_time", {}}};
  const std::regex call(
      "<tool_call>\n<function=(get_weather|get_time)>\n"
      "(<parameter=(city|unit)>\n[^]*?\n</parameter>\n)*</function>\n</tool_call>");
  std::mt19937 rng(3);
  for (int budget = 40; budget <= 160; budget += 8) {
    for (int trial = 0; trial < 8; ++trial) {
      ToolCallFilter f(trie, chat::ToolCallFormat::kXml, tools, markup(v), false);
      bool eog = false;
      const std::string text = generate(v, f, budget, rng, trial % 2 == 0, &eog);
      ASSERT_TRUE(eog) << "budget " << budget << ": " << text;
      EXPECT_TRUE(std::regex_match(text, call)) << text;
      if (f.chosen() == "get_time") {
        EXPECT_EQ(text.find("<parameter="), std::string::npos) << text;
      }
    }
  }
}

std::shared_ptr<const runtime::Grammar> grammar_of(const Result<std::string>& gbnf) {
  EXPECT_TRUE(gbnf.ok()) << gbnf.message();
  auto g = runtime::Grammar::parse(*gbnf);
  EXPECT_TRUE(g.ok()) << g.message();
  return *g;
}

// The arguments follow the function's parameters schema, required ones included.
TEST(ToolCallFilter, HermesArgumentsFollowTheSchema) {
  const Vocab v = make_vocab();
  auto trie = make_trie(v);
  const auto schema = nlohmann::ordered_json::parse(
      R"({"type": "object", "properties": {"city": {"type": "string", "maxLength": 6}, "unit": {"enum": ["C", "F"]}},
          "required": ["unit", "city"]})");
  ToolSpec tool{"get_weather", {"city", "unit"}, {"unit", "city"}, grammar_of(runtime::json_schema_to_gbnf(schema))};
  const std::string open = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": ";
  std::mt19937 rng(2);
  for (int budget = 100; budget <= 180; budget += 16) {
    for (int trial = 0; trial < 6; ++trial) {
      ToolCallFilter f(trie, chat::ToolCallFormat::kHermesJson, {tool}, markup(v), false);
      bool eog = false;
      const std::string text = generate(v, f, budget, rng, trial % 2 == 0, &eog);
      ASSERT_TRUE(eog) << "budget " << budget << ": " << text;
      ASSERT_EQ(text.rfind(open, 0), 0u) << text;
      const std::string body = text.substr(open.size(), text.size() - open.size() - 14);
      const auto args = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
      ASSERT_TRUE(args.is_object()) << text;
      EXPECT_TRUE(args["unit"] == "C" || args["unit"] == "F") << text;
      ASSERT_TRUE(args["city"].is_string()) << text;
    }
  }
}

// XML: required parameters are always written, each parameter at most once, and values of
// non-string parameters follow their schema (strings stay free text).
TEST(ToolCallFilter, XmlRequiredParametersAndTypedValues) {
  const Vocab v = make_vocab();
  auto trie = make_trie(v);
  const auto schema = nlohmann::ordered_json::parse(
      R"({"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]},
          "days": {"type": "integer"}}, "required": ["city", "days"]})");
  ToolSpec tool{"get_weather", {"city", "unit", "days"}, {"city", "days"}, nullptr, {}};
  for (const char* p : {"city", "unit", "days"}) {
    auto gbnf = runtime::xml_parameter_gbnf(schema["properties"][p], schema, "#", "\n</parameter>\n");
    ASSERT_TRUE(gbnf.ok()) << gbnf.message();
    tool.values.push_back(gbnf->empty() ? nullptr : grammar_of(gbnf));
  }
  EXPECT_EQ(tool.values[0], nullptr);  // a string: free text
  std::mt19937 rng(9);
  for (int budget = 150; budget <= 230; budget += 16) {
    for (int trial = 0; trial < 6; ++trial) {
      ToolCallFilter f(trie, chat::ToolCallFormat::kXml, {tool}, markup(v), false);
      bool eog = false;
      const std::string text = generate(v, f, budget, rng, trial % 2 == 0, &eog);
      ASSERT_TRUE(eog) << "budget " << budget << ": " << text;
      EXPECT_NE(text.find("<parameter=city>\n"), std::string::npos) << text;
      const size_t days = text.find("<parameter=days>\n");
      ASSERT_NE(days, std::string::npos) << text;
      EXPECT_TRUE(std::regex_search(text.substr(days), std::regex("^<parameter=days>\n-?[0-9]+\n</parameter>\n"))) << text;
      const size_t unit = text.find("<parameter=unit>\n");
      if (unit != std::string::npos) {
        EXPECT_TRUE(std::regex_search(text.substr(unit), std::regex("^<parameter=unit>\n[CF]\n</parameter>\n"))) << text;
      }
      for (const char* p : {"<parameter=city>", "<parameter=unit>", "<parameter=days>"}) {
        const size_t first = text.find(p);
        EXPECT_TRUE(first == std::string::npos || text.find(p, first + 1) == std::string::npos) << text;
      }
    }
  }
}

TEST(ToolCallFilter, WaitsForTheEndOfReasoning) {
  const Vocab v = make_vocab();
  ToolCallFilter f(make_trie(v), chat::ToolCallFormat::kHermesJson, {{"f", {}}}, markup(v),
                   /*wait_for_think_end=*/true);
  std::vector<float> logits(v.pieces.size(), 1.0f);
  f.mask(logits.data(), static_cast<int64_t>(logits.size()), 50);
  for (float l : logits) EXPECT_EQ(l, 1.0f);  // reasoning is free text
  f.accept(v.think_end);
  f.mask(logits.data(), static_cast<int64_t>(logits.size()), 50);
  for (size_t i = 0; i < logits.size(); ++i)  // only the <tool_call> token opens the call
    EXPECT_EQ(std::isfinite(logits[i]), static_cast<int32_t>(i) == v.tool_open) << i;
}

}  // namespace
}  // namespace hylo::server
