// OutputParser: reasoning split, both tool-call formats, missing opener, malformed calls,
// schema coercion, and the same result for every way of splitting the stream.
#include <gtest/gtest.h>

#include "chat/output_parser.h"
#include "tokenizer/utf8.h"

namespace hylo::chat {
namespace {

using ojson = nlohmann::ordered_json;

OutputParserOptions options(ToolCallFormat format = ToolCallFormat::kHermesJson, bool thinking_open = false) {
  OutputParserOptions o;
  o.format = format;
  o.thinking_open = thinking_open;
  o.id_prefix = "call_";
  return o;
}

// Feeds `chunks`, checks that every event is well-formed and that events add up to result().
ParsedOutput feed(const std::vector<std::string>& chunks, const OutputParserOptions& o) {
  OutputParser parser(o);
  ParsedOutput from_events;
  auto take = [&](const std::vector<OutputEvent>& events) {
    for (const OutputEvent& e : events) {
      switch (e.kind) {
        case OutputEvent::Kind::kReasoning:
          EXPECT_FALSE(e.text.empty());
          EXPECT_TRUE(tokenizer::utf8_is_valid(e.text));
          from_events.reasoning += e.text;
          break;
        case OutputEvent::Kind::kContent:
          EXPECT_FALSE(e.text.empty());
          EXPECT_TRUE(tokenizer::utf8_is_valid(e.text));
          from_events.content += e.text;
          break;
        case OutputEvent::Kind::kToolCall:
          from_events.tool_calls.push_back(e.tool_call);
          break;
      }
    }
  };
  for (const std::string& c : chunks) take(parser.push(c));
  take(parser.finish());
  EXPECT_EQ(from_events.reasoning, parser.result().reasoning);
  EXPECT_EQ(from_events.content, parser.result().content);
  EXPECT_EQ(from_events.tool_calls.size(), parser.result().tool_calls.size());
  return parser.result();
}

void expect_same(const ParsedOutput& a, const ParsedOutput& b, const std::string& how) {
  EXPECT_EQ(a.reasoning, b.reasoning) << how;
  EXPECT_EQ(a.content, b.content) << how;
  ASSERT_EQ(a.tool_calls.size(), b.tool_calls.size()) << how;
  for (size_t i = 0; i < a.tool_calls.size(); ++i) {
    EXPECT_EQ(a.tool_calls[i].id, b.tool_calls[i].id) << how;
    EXPECT_EQ(a.tool_calls[i].name, b.tool_calls[i].name) << how;
    EXPECT_EQ(a.tool_calls[i].arguments, b.tool_calls[i].arguments) << how;
    EXPECT_EQ(a.tool_calls[i].error.empty(), b.tool_calls[i].error.empty()) << how;
  }
}

// Parses `text` in one push, split in two at every byte, and one byte at a time; all must agree.
ParsedOutput parse_every_split(const std::string& text, const OutputParserOptions& o) {
  const ParsedOutput whole = feed({text}, o);
  for (size_t k = 0; k <= text.size(); ++k)
    expect_same(whole, feed({text.substr(0, k), text.substr(k)}, o), "split at byte " + std::to_string(k));
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  expect_same(whole, feed(bytes, o), "byte by byte");
  return whole;
}

TEST(OutputParser, ReasoningSplit) {
  auto r = parse_every_split("<think>\nLet me add 2 and 2.\n</think>\n\nThe answer is 4.", options());
  EXPECT_EQ(r.reasoning, "Let me add 2 and 2.");
  EXPECT_EQ(r.content, "The answer is 4.");
  EXPECT_TRUE(r.tool_calls.empty());

  r = parse_every_split("Just an answer, no <thinking> here.\n", options());
  EXPECT_EQ(r.reasoning, "");
  EXPECT_EQ(r.content, "Just an answer, no <thinking> here.\n");

  r = parse_every_split("<think>\n\n</think>\n\nEmpty reasoning.", options());
  EXPECT_EQ(r.reasoning, "");
  EXPECT_EQ(r.content, "Empty reasoning.");
}

TEST(OutputParser, ThinkingOpenedByTemplate) {
  auto r = parse_every_split("The user wants a haiku.\nFive, seven, five.\n</think>\n\nAn old silent pond",
                             options({}, true));
  EXPECT_EQ(r.reasoning, "The user wants a haiku.\nFive, seven, five.");
  EXPECT_EQ(r.content, "An old silent pond");
  // A model that repeats the opener.
  r = parse_every_split("<think>\nhm\n</think>\n\nok", options({}, true));
  EXPECT_EQ(r.reasoning, "hm");
  EXPECT_EQ(r.content, "ok");
}

TEST(OutputParser, StopInsideReasoning) {
  auto r = parse_every_split("Still weighing the options, maybe </thi", options({}, true));
  EXPECT_EQ(r.reasoning, "Still weighing the options, maybe </thi");
  EXPECT_EQ(r.content, "");
  r = parse_every_split("<think>\nhalf a thought\n", options());
  EXPECT_EQ(r.reasoning, "half a thought");
  EXPECT_EQ(r.content, "");
}

TEST(OutputParser, HermesJsonToolCalls) {
  const std::string text =
      "I'll check both.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Madrid\", \"days\": 2}}\n"
      "</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": \"{\\\"tz\\\": \\\"Europe/Madrid\\\"}\"}\n"
      "</tool_call>";
  auto r = parse_every_split(text, options());
  EXPECT_EQ(r.content, "I'll check both.");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].id, "call_0");
  EXPECT_EQ(r.tool_calls[0].name, "get_weather");
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"city": "Madrid", "days": 2})");  // as written
  EXPECT_EQ(r.tool_calls[1].id, "call_1");
  EXPECT_EQ(r.tool_calls[1].name, "get_time");
  EXPECT_EQ(r.tool_calls[1].arguments, R"({"tz":"Europe/Madrid"})");
  EXPECT_TRUE(r.tool_calls[0].error.empty());
}

TEST(OutputParser, ReasoningThenToolCall) {
  auto r = parse_every_split(
      "<think>\nI need the weather.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n"
      "</tool_call>",
      options());
  EXPECT_EQ(r.reasoning, "I need the weather.");
  EXPECT_EQ(r.content, "");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].arguments, "{}");
}

ojson weather_tools() {
  return ojson::parse(R"([{"type": "function", "function": {"name": "configure", "parameters": {"type": "object",
    "properties": {"count": {"type": "integer"}, "ratio": {"type": "number"}, "dry_run": {"type": "boolean"},
                   "options": {"type": "object"}, "tags": {"type": "array"}, "note": {"type": "string"},
                   "maybe": {"type": ["string", "null"]}, "limit": {"type": ["integer", "null"]},
                   "broken": {"type": "integer"}}}}}])");
}

TEST(OutputParser, XmlToolCallWithSchemaCoercion) {
  OutputParserOptions o = options(ToolCallFormat::kXml);
  o.tools = weather_tools();
  const std::string text =
      "Configuring now.\n<tool_call>\n<function=configure>\n<parameter=count>\n5\n</parameter>\n"
      "<parameter=ratio>\n2.50\n</parameter>\n<parameter=dry_run>\nTrue\n</parameter>\n"
      "<parameter=options>\n{\"deep\": {\"x\": [1, 2]}}\n</parameter>\n<parameter=tags>\n[\"a\", \"b\"]\n</parameter>\n"
      "<parameter=note>\n42\n</parameter>\n<parameter=maybe>\nnull\n</parameter>\n<parameter=limit>\n7.0\n</"
      "parameter>\n"
      "<parameter=broken>\nmany\n</parameter>\n<parameter=unknown>\n{\"kept\": \"as text\"}\n</parameter>\n"
      "<parameter=text>\nline one\n\nline two\n</parameter>\n</function>\n</tool_call>";
  auto r = parse_every_split(text, o);
  EXPECT_EQ(r.content, "Configuring now.");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].name, "configure");
  EXPECT_EQ(ojson::parse(r.tool_calls[0].arguments), ojson::parse(R"({"count": 5, "ratio": 2.5, "dry_run": true,
      "options": {"deep": {"x": [1, 2]}}, "tags": ["a", "b"], "note": "42", "maybe": null, "limit": 7,
      "broken": "many", "unknown": "{\"kept\": \"as text\"}", "text": "line one\n\nline two"})"));
  // Keys keep the model's order.
  EXPECT_TRUE(r.tool_calls[0].arguments.starts_with(R"({"count":5,"ratio":2.5)"));
}

TEST(OutputParser, MissingToolCallOpener) {
  OutputParserOptions o = options(ToolCallFormat::kXml);
  o.tools = weather_tools();
  auto r = parse_every_split(
      "Let me look that up.\n<function=configure>\n<parameter=count>\n3\n</parameter>\n</function>\n</tool_call>\n"
      "<function=configure>\n<parameter=count>\n4\n</parameter>\n</function>",
      o);
  EXPECT_EQ(r.content, "Let me look that up.");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"count":3})");
  EXPECT_EQ(r.tool_calls[1].arguments, R"({"count":4})");
  // The Hermes family does not treat a bare <function= as a call.
  r = parse_every_split("<function=configure>\n</function>", options(ToolCallFormat::kHermesJson));
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(r.content, "<function=configure>\n</function>");
}

TEST(OutputParser, XmlBodyInsideHermesFamily) {
  auto r = parse_every_split(
      "<tool_call>\n<function=search>\n<parameter=query>\nqwen tokenizer\n</parameter>\n</function>\n</tool_call>",
      options(ToolCallFormat::kHermesJson));
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].name, "search");
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"query":"qwen tokenizer"})");
}

TEST(OutputParser, MalformedJsonKeepsTextAsContent) {
  const std::string bad = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {city: Paris}}\n</tool_call>";
  auto r = parse_every_split("Checking.\n" + bad + "\nDone.", options());
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_FALSE(r.tool_calls[0].error.empty());
  EXPECT_NE(r.tool_calls[0].error.find("not valid JSON"), std::string::npos) << r.tool_calls[0].error;
  EXPECT_EQ(r.content, "Checking." + bad + "Done.");
  // Valid JSON that is not a call.
  r = parse_every_split("<tool_call>\n[1, 2]\n</tool_call>", options());
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_NE(r.tool_calls[0].error.find("JSON object"), std::string::npos);
  r = parse_every_split("<tool_call>\n{\"arguments\": {}}\n</tool_call>", options());
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_NE(r.tool_calls[0].error.find("name"), std::string::npos);
}

TEST(OutputParser, UnfinishedMarkupAtTheEnd) {
  auto r = parse_every_split("Hello <tool_ca", options());
  EXPECT_EQ(r.content, "Hello <tool_ca");
  EXPECT_TRUE(r.tool_calls.empty());
  r = parse_every_split("Hello <tool_call>\n{\"name\": \"f\", \"argu", options());
  EXPECT_EQ(r.content, "Hello<tool_call>\n{\"name\": \"f\", \"argu");
  EXPECT_TRUE(r.tool_calls.empty());
  // A complete body without the closing tag (generation stopped on a stop string) is a call.
  r = parse_every_split("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n", options());
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"a": 1})");
  r = parse_every_split("<function=configure>\n<parameter=count>\n3", options(ToolCallFormat::kXml));
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(r.content, "<function=configure>\n<parameter=count>\n3");
}

TEST(OutputParser, PlainTextWithAngleBrackets) {
  const std::string text = "if a < b and c <= d then <b>bold</b> <tool> <func <<>>\n";
  auto r = parse_every_split(text, options(ToolCallFormat::kXml));
  EXPECT_EQ(r.content, text);
  EXPECT_EQ(r.reasoning, "");
}

TEST(OutputParser, DisabledParts) {
  OutputParserOptions o = options();
  o.parse_reasoning = false;
  o.parse_tool_calls = false;
  const std::string text = "<think>\nx\n</think>\n\n<tool_call>\n{\"name\": \"f\"}\n</tool_call>  ";
  auto r = parse_every_split(text, o);
  EXPECT_EQ(r.content, text);
  EXPECT_EQ(r.reasoning, "");
  EXPECT_TRUE(r.tool_calls.empty());
}

TEST(OutputParser, MultiByteTextSplitAnywhere) {
  auto r = parse_every_split("<think>\n考えています…🤔\n</think>\n\n答えは 4 です 😀", options());
  EXPECT_EQ(r.reasoning, "考えています…🤔");
  EXPECT_EQ(r.content, "答えは 4 です 😀");
}

TEST(OutputParser, HoldsBackOnlyWhatItMust) {
  OutputParser p(options());
  auto events = p.push("Hello wor");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, "Hello wor");
  events = p.push("ld <tool");  // "<tool" may start a call; the space before it may precede one
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, "ld");
  events = p.push("s>");  // not a tag after all
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, " <tools>");
}

TEST(OutputParser, RandomIdsAreDistinct) {
  OutputParserOptions o;
  auto r =
      parse_output("<tool_call>\n{\"name\": \"a\"}\n</tool_call>\n<tool_call>\n{\"name\": \"b\"}\n</tool_call>", o);
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_TRUE(r.tool_calls[0].id.starts_with("call_"));
  EXPECT_EQ(r.tool_calls[0].id.size(), 29u);
  EXPECT_NE(r.tool_calls[0].id, r.tool_calls[1].id);
}

TEST(ChatTemplateTraits, FamilyAndThinkingPrompt) {
  EXPECT_EQ(detect_tool_call_format("{{ '<tool_call>\\n<function=' + name }}"), ToolCallFormat::kXml);
  EXPECT_EQ(detect_tool_call_format("{{ '<tool_call>\\n{\"name\": \"' }}"), ToolCallFormat::kHermesJson);
  EXPECT_TRUE(prompt_opens_thinking("<|im_start|>assistant\n<think>\n"));
  EXPECT_FALSE(prompt_opens_thinking("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
  EXPECT_FALSE(prompt_opens_thinking("<|im_start|>assistant\n"));
}

}  // namespace
}  // namespace hylo::chat
