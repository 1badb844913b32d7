// OutputParser: reasoning split, both tool-call formats, missing opener, malformed calls,
// schema coercion, and the same result for every way of splitting the stream.
#include <gtest/gtest.h>

#include <map>
#include <random>

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

// What the events said about tool calls while they were generated, by call index.
struct Streamed {
  std::map<int, std::string> ids, names, arguments;
};

// Feeds `chunks`, checks that every event is well-formed and that events add up to result():
// a call begins at most once, outside any other call, its pieces follow, and the pieces of a call
// that completes add up to its arguments.
ParsedOutput feed(const std::vector<std::string>& chunks, const OutputParserOptions& o, Streamed* streamed = nullptr) {
  OutputParser parser(o);
  ParsedOutput from_events;
  Streamed s;
  int open = -1;  // the call that began and has not completed
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
        case OutputEvent::Kind::kToolCallBegin:
          EXPECT_EQ(open, -1) << "a call began inside another";
          EXPECT_EQ(e.index, static_cast<int>(from_events.tool_calls.size()));
          EXPECT_FALSE(e.tool_call.id.empty());
          EXPECT_FALSE(e.tool_call.name.empty());
          open = e.index;
          s.ids[e.index] = e.tool_call.id;
          s.names[e.index] = e.tool_call.name;
          s.arguments[e.index] = "";
          break;
        case OutputEvent::Kind::kToolCallArguments:
          EXPECT_EQ(e.index, open);
          EXPECT_EQ(e.tool_call.id, s.ids[e.index]);
          EXPECT_FALSE(e.text.empty());
          EXPECT_TRUE(tokenizer::utf8_is_valid(e.text));
          s.arguments[e.index] += e.text;
          break;
        case OutputEvent::Kind::kToolCall:
          EXPECT_EQ(e.index, static_cast<int>(from_events.tool_calls.size()));
          EXPECT_TRUE(open == -1 || open == e.index) << "call " << e.index << " completed inside call " << open;
          if (open == e.index) {
            EXPECT_EQ(e.tool_call.id, s.ids[e.index]);
            if (e.tool_call.error.empty()) {
              EXPECT_EQ(e.tool_call.name, s.names[e.index]);
              EXPECT_EQ(e.tool_call.arguments, s.arguments[e.index]);
            }
            open = -1;
          }
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
  if (streamed) *streamed = s;
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

void expect_same(const Streamed& a, const Streamed& b, const std::string& how) {
  EXPECT_EQ(a.ids, b.ids) << how;
  EXPECT_EQ(a.names, b.names) << how;
  EXPECT_EQ(a.arguments, b.arguments) << how;
}

// Parses `text` in one push, split in two at every byte, and one byte at a time; all must agree
// (the streamed calls too).
ParsedOutput parse_every_split(const std::string& text, const OutputParserOptions& o, Streamed* streamed = nullptr) {
  Streamed s0, s;
  const ParsedOutput whole = feed({text}, o, &s0);
  for (size_t k = 0; k <= text.size(); ++k) {
    const std::string how = "split at byte " + std::to_string(k);
    expect_same(whole, feed({text.substr(0, k), text.substr(k)}, o, &s), how);
    expect_same(s0, s, how);
  }
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  expect_same(whole, feed(bytes, o, &s), "byte by byte");
  expect_same(s0, s, "byte by byte");
  if (streamed) *streamed = s0;
  return whole;
}

// Parses `text` cut into random pieces, `rounds` times (a fixed seed); all must agree with one push.
void parse_random_splits(const std::string& text, const OutputParserOptions& o, int rounds = 40) {
  Streamed s0, s;
  const ParsedOutput whole = feed({text}, o, &s0);
  std::mt19937 rng(1234);
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::string> chunks;
    for (size_t at = 0; at < text.size();) {
      const size_t n = std::min(text.size() - at, static_cast<size_t>(1 + rng() % 9));
      chunks.push_back(text.substr(at, n));
      at += n;
    }
    const std::string how = "random split round " + std::to_string(round);
    expect_same(whole, feed(chunks, o, &s), how);
    expect_same(s0, s, how);
  }
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

// ---- Tool calls streamed while they are generated ----

using TimedEvents = std::vector<std::pair<size_t, OutputEvent>>;

// The events of `text` fed one byte at a time, each with the number of bytes fed when it came.
TimedEvents events_by_byte(const std::string& text, const OutputParserOptions& o) {
  OutputParser parser(o);
  TimedEvents out;
  for (size_t i = 0; i < text.size(); ++i)
    for (OutputEvent& e : parser.push(text.substr(i, 1))) out.emplace_back(i + 1, std::move(e));
  for (OutputEvent& e : parser.finish()) out.emplace_back(text.size(), std::move(e));
  return out;
}

// Bytes fed when call `index` began (npos: it never did).
size_t begun_at(const TimedEvents& events, int index) {
  for (const auto& [fed, e] : events)
    if (e.kind == OutputEvent::Kind::kToolCallBegin && e.index == index) return fed;
  return std::string::npos;
}

// The arguments of call `index` that streamed once `fed` bytes were in.
std::string streamed_by(const TimedEvents& events, int index, size_t fed) {
  std::string args;
  for (const auto& [at, e] : events)
    if (at <= fed && e.kind == OutputEvent::Kind::kToolCallArguments && e.index == index) args += e.text;
  return args;
}

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

TEST(OutputParser, HermesArgumentsStreamAsWritten) {
  const std::string args0 =
      R"({"city": "Ma\"drid\\", "note": "{braces} [and] \u00e9 é 😀", "nested": {"days": [1, 2, {"x": null}]},)"
      R"( "ok": true})";
  const std::string text = "Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": " + args0 +
                           "}\n</tool_call>\n<tool_call>\n{\"name\": \"ping\", \"arguments\": {}}\n</tool_call>";
  Streamed st;
  auto r = parse_every_split(text, options(), &st);
  parse_random_splits(text, options());
  EXPECT_EQ(r.content, "Checking.");
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].arguments, args0);
  EXPECT_EQ(r.tool_calls[1].arguments, "{}");
  EXPECT_EQ(st.names, (std::map<int, std::string>{{0, "get_weather"}, {1, "ping"}}));
  EXPECT_EQ(st.ids, (std::map<int, std::string>{{0, "call_0"}, {1, "call_1"}}));
  EXPECT_EQ(st.arguments[0], args0);
  EXPECT_EQ(st.arguments[1], "{}");

  // It begins with the arguments' "{" and streams them as they come: all before </tool_call>,
  // a string cut at a quote as it stands, never half a character.
  const TimedEvents events = events_by_byte(text, options());
  const size_t args_at = text.find(args0);
  EXPECT_EQ(begun_at(events, 0), args_at + 1);
  EXPECT_EQ(streamed_by(events, 0, text.find("</tool_call>")), args0);
  EXPECT_EQ(streamed_by(events, 0, text.find("drid")), R"({"city": "Ma\")");
  const size_t emoji = text.find("😀");
  EXPECT_EQ(streamed_by(events, 0, emoji + 2), text.substr(args_at, emoji - args_at));
  EXPECT_EQ(begun_at(events, 1), text.rfind("{}") + 1);
}

TEST(OutputParser, HermesCallsThatCannotStream) {
  // "name" after "arguments", arguments as a JSON string, "parameters": reported whole at the end.
  for (const std::string body :
       {R"({"arguments": {"a": 1}, "name": "f"})", R"({"name": "f", "arguments": "{\"a\": 1}"})",
        R"({"name": "f", "parameters": {"a": 1}})", R"({"name": "f", "arguments": null})"}) {
    Streamed st;
    auto r = parse_every_split("<tool_call>\n" + body + "\n</tool_call>", options(), &st);
    EXPECT_TRUE(st.names.empty()) << body;
    ASSERT_EQ(r.tool_calls.size(), 1u) << body;
    EXPECT_EQ(r.tool_calls[0].name, "f");
    EXPECT_TRUE(r.tool_calls[0].error.empty()) << r.tool_calls[0].error;
    const ojson expected = body.find("null") != std::string::npos ? ojson::object() : ojson({{"a", 1}});
    EXPECT_EQ(ojson::parse(r.tool_calls[0].arguments), expected) << body;
  }
  // The first of a repeated member counts, as it streamed.
  Streamed st;
  auto r = parse_every_split(
      "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}, \"arguments\": {\"b\": 2}, \"name\": "
      "\"g\"}\n</tool_call>",
      options(), &st);
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].name, "f");
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"a": 1})");
  EXPECT_EQ(st.arguments[0], R"({"a": 1})");
}

TEST(OutputParser, XmlArgumentsStream) {
  OutputParserOptions o = options(ToolCallFormat::kXml);
  o.tools = weather_tools();
  const std::string note = "She said \"hi\\\" \ttab é 😀\n\x01 </para <b> </function\n";
  const std::string text = "<tool_call>\n<function=configure>\n<parameter=note>\n" + note +
                           "\n</parameter>\n<parameter=count>\n 12 \n</parameter>\n<parameter=options>\n"
                           "{\"deep\": [1, 2]}\n</parameter>\n<parameter=maybe>\nnull\n</parameter>\n"
                           "<parameter=text>\nfree\ntext\n</parameter>\n</function>\n</tool_call>\n"
                           "<function=ping>\n</function>";
  const ojson expected = {
      {"note", note}, {"count", 12}, {"options", {{"deep", {1, 2}}}}, {"maybe", nullptr}, {"text", "free\ntext"}};
  Streamed st;
  auto r = parse_every_split(text, o, &st);
  parse_random_splits(text, o);
  ASSERT_EQ(r.tool_calls.size(), 2u);
  EXPECT_EQ(r.tool_calls[0].arguments, dump(expected));  // as dump() writes it
  EXPECT_EQ(r.tool_calls[1].name, "ping");
  EXPECT_EQ(r.tool_calls[1].arguments, "{}");
  EXPECT_EQ(st.arguments[0], dump(expected));
  EXPECT_EQ(st.arguments[1], "{}");
  EXPECT_EQ(r.content, "");

  const TimedEvents events = events_by_byte(text, o);
  const std::string function = "<function=configure>";
  EXPECT_EQ(begun_at(events, 0), text.find(function) + function.size());
  EXPECT_EQ(streamed_by(events, 0, begun_at(events, 0)), "");
  // A string value streams as it arrives, less the newline that may close it.
  const std::string note_json = dump(ojson(note));
  EXPECT_EQ(streamed_by(events, 0, text.find("</parameter>")),
            "{\"note\":" + note_json.substr(0, note_json.size() - 1));
  const std::string before_emoji = dump(ojson(note.substr(0, note.find("😀"))));
  EXPECT_EQ(streamed_by(events, 0, text.find("😀") + 3), "{\"note\":" + before_emoji.substr(0, before_emoji.size() - 1));
  // Other values go out whole at their closing tag.
  EXPECT_TRUE(streamed_by(events, 0, text.find(" 12 ") + 4).ends_with(",\"count\":"));
  EXPECT_TRUE(streamed_by(events, 0, text.find("null") + 4).ends_with(",\"maybe\":"));
  EXPECT_EQ(streamed_by(events, 0, text.find("</function>")), dump(expected).substr(0, dump(expected).size() - 1));
  EXPECT_EQ(begun_at(events, 1), text.find("<function=ping>") + 15);
}

TEST(OutputParser, XmlValuesAsDumpWritesThem) {
  // Invalid UTF-8 is replaced as dump() replaces it, whatever the pieces.
  for (const std::string value : {"a\xff b", "\xe2\x82 x", "x\xe2\x82", "\xf0\x9f\x98", "ok \xc3\xa9\xc3",
                                  "\xed\xa0\x80 surrogate", "\xc0\xaf overlong", "\xe2\x82\xe2\x82\xac"}) {
    auto r = parse_every_split("<function=f>\n<parameter=v>\n" + value + "\n</parameter>\n</function>",
                               options(ToolCallFormat::kXml));
    ASSERT_EQ(r.tool_calls.size(), 1u);
    EXPECT_EQ(r.tool_calls[0].arguments, dump({{"v", value}}));
  }
  // A value without </parameter> ends at the next parameter or </function>; one that holds a
  // <parameter= tag ends at its own </parameter>.
  auto r =
      parse_every_split("<function=f>\n<parameter=a>\nx\n<parameter=b>\ny\n</function>", options(ToolCallFormat::kXml));
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"a":"x","b":"y"})");
  r = parse_every_split("<function=f>\n<parameter=a>\nuse <parameter=x> tags\n</parameter>\n</function>",
                        options(ToolCallFormat::kXml));
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"a":"use <parameter=x> tags"})");
  // A repeated parameter appears twice; JSON readers keep the last.
  r = parse_every_split("<function=f>\n<parameter=a>\n1\n</parameter>\n<parameter=a>\n2\n</parameter>\n</function>",
                        options(ToolCallFormat::kXml));
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_EQ(r.tool_calls[0].arguments, R"({"a":"1","a":"2"})");
  EXPECT_EQ(ojson::parse(r.tool_calls[0].arguments)["a"], "2");
}

TEST(OutputParser, MalformedAfterItBegan) {
  // The pieces went out and cannot be taken back; the result is that of any malformed call.
  const std::string bad = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}, oops}\n</tool_call>";
  Streamed st;
  auto r = parse_every_split(bad, options(), &st);
  EXPECT_EQ(st.names[0], "f");
  EXPECT_EQ(st.arguments[0], R"({"a": 1})");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_NE(r.tool_calls[0].error.find("not valid JSON"), std::string::npos) << r.tool_calls[0].error;
  EXPECT_EQ(r.tool_calls[0].id, st.ids[0]);
  EXPECT_EQ(r.content, bad);

  const std::string bad_xml =
      "<tool_call>\n<function=f>\n<parameter=a>\nx\n</parameter>\n<parameter=>\ny\n</parameter>\n</function>\n"
      "</tool_call>";
  r = parse_every_split(bad_xml, options(ToolCallFormat::kXml), &st);
  EXPECT_EQ(st.arguments[0], R"({"a":"x")");
  ASSERT_EQ(r.tool_calls.size(), 1u);
  EXPECT_NE(r.tool_calls[0].error.find("empty parameter name"), std::string::npos) << r.tool_calls[0].error;
  EXPECT_EQ(r.content, bad_xml);

  // Stopped inside the arguments: text, and no call entry (as before streaming).
  const std::string cut = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": [1, 2";
  r = parse_every_split(cut, options(), &st);
  EXPECT_EQ(st.arguments[0], R"({"a": [1, 2)");
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(r.content, cut);
  const std::string cut_xml = "<function=f>\n<parameter=a>\nsome text";
  r = parse_every_split(cut_xml, options(ToolCallFormat::kXml), &st);
  EXPECT_EQ(st.arguments[0], R"({"a":"some text)");
  EXPECT_TRUE(r.tool_calls.empty());
  EXPECT_EQ(r.content, cut_xml);
}

// Random markup, valid or not, cut at random: the result never depends on the cuts, and what
// streams always adds up to the calls that complete (feed() checks it).
TEST(OutputParser, RandomMarkupStreamsConsistently) {
  const std::vector<std::string> fragments = {"<tool_call>\n{\"name\": \"configure\", \"arguments\": {\"a\": ",
                                              "}}\n</tool_call>",
                                              "<tool_call>",
                                              "</tool_call>",
                                              "<function=configure>\n",
                                              "<function=",
                                              "</function>",
                                              "<parameter=note>\n",
                                              "<parameter=count>\n",
                                              "<parameter=maybe>\n",
                                              "<parameter=",
                                              "\n</parameter>\n",
                                              "</parameter>",
                                              "\n",
                                              " ",
                                              "x",
                                              "\"",
                                              "\\",
                                              "{",
                                              "}",
                                              "[",
                                              "]",
                                              ":",
                                              ",",
                                              "\"name\": \"f\"",
                                              "\"arguments\": ",
                                              "1",
                                              "null",
                                              "é",
                                              "😀",
                                              "<",
                                              "</",
                                              ">",
                                              "<think>",
                                              "</think>"};
  std::mt19937 rng(7);
  for (int n = 0; n < 400; ++n) {
    std::string text;
    for (int i = 1 + static_cast<int>(rng() % 24); i > 0; --i) text += fragments[rng() % fragments.size()];
    for (ToolCallFormat format : {ToolCallFormat::kXml, ToolCallFormat::kHermesJson}) {
      OutputParserOptions o = options(format);
      o.tools = weather_tools();
      SCOPED_TRACE(text);
      parse_random_splits(text, o, 4);
    }
  }
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
