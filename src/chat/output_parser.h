// Streaming parser of model output for the Qwen family: splits generated text into reasoning
// (<think>...</think>), content and tool calls (Hermes JSON or XML form), as an API client
// expects them. Text only; token handling is the tokenizer's (StreamDecoder).
#pragma once

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "chat/chat_template.h"
#include "chat/tool_call_reader.h"
#include "chat/tool_calls.h"

namespace hylo::chat {

struct OutputParserOptions {
  // The template family's call format (ChatTemplate::tool_call_format). Either body form is
  // accepted inside <tool_call>...</tool_call>; with kXml a <function=...> block without the
  // <tool_call> opener is a call too (Qwen3-Coder writes that).
  ToolCallFormat format = ToolCallFormat::kHermesJson;
  // The prompt ended inside an opened <think> (prompt_opens_thinking): output starts as reasoning.
  bool thinking_open = false;
  bool parse_reasoning = true;   // false: <think> blocks stay in the content
  bool parse_tool_calls = true;  // false: tool-call markup stays in the content
  nlohmann::ordered_json tools;  // the request's tools: schemas for XML value coercion
  std::string id_prefix;         // tool call ids are id_prefix + index; empty: "call_" + random
};

struct OutputEvent {
  // kToolCallBegin and kToolCallArguments report a call while it is generated (see OutputParser);
  // kToolCall reports it complete, streamed or not.
  enum class Kind { kReasoning, kContent, kToolCall, kToolCallBegin, kToolCallArguments };
  Kind kind = Kind::kContent;
  std::string text;    // kReasoning, kContent: text to append; kToolCallArguments: arguments text to append
  ToolCall tool_call;  // kToolCall: the call; kToolCallBegin: its id and name; kToolCallArguments: its id
  int index = 0;       // kToolCall*: the call's place in ParsedOutput::tool_calls
};

struct ParsedOutput {
  std::string reasoning;
  std::string content;
  // In output order. A call whose body could not be parsed has `error` set; its raw text is
  // also part of `content`.
  std::vector<ToolCall> tool_calls;
};

// Feed generated text with push() as it arrives and call finish() once at the end. Events come
// in output order; consecutive text of one kind is merged within a call. Each tool call is
// reported once complete (kToolCall: id, name, whole arguments) when its closing tag is seen (or
// at finish() when the output stops after a complete call). Before that, a call whose name is
// known early (tool_call_reader.h says when) is reported as it is generated: kToolCallBegin with
// its id and name, then kToolCallArguments pieces; the pieces of a call that completes add up to
// exactly its arguments (the last piece may come with kToolCall). A call that turns out
// malformed after it began is reported as any malformed call (an error entry and its text as
// content): what already went out cannot be taken back. The parser holds back only what it
// must: a possible tag start ("<tool_c"), whitespace that may precede a tag or end the
// reasoning (it is trimmed there), and an incomplete UTF-8 sequence; in arguments, what the
// readers hold back. Whitespace around reasoning and around tool calls is dropped.
// At finish(): output that stops inside the reasoning is all reasoning; an unfinished tag or
// an unfinished call that does not parse stays content (with no error entry, even if it began).
class OutputParser {
 public:
  explicit OutputParser(OutputParserOptions options);

  std::vector<OutputEvent> push(std::string_view delta);
  std::vector<OutputEvent> finish();

  // Everything reported so far.
  const ParsedOutput& result() const { return result_; }

 private:
  enum class State { kStart, kReasoning, kAfterThink, kContent, kToolCall, kBareFunction, kAfterCall, kDone };

  bool step();  // processes pending_ as far as possible; false when it must wait for more
  void emit_text(OutputEvent::Kind kind, std::string_view text);
  void emit_arguments(std::string_view text);
  // Feeds the call's body known so far (a prefix of the final body) to its reader.
  void read_call(std::string_view body);
  // The body is complete: the reader's result, or the Hermes parse when no reader was chosen.
  Result<ToolCall> finish_call(std::string_view body);
  void emit_call(std::string_view raw, Result<ToolCall> call, bool report_error);
  std::string next_id();

  OutputParserOptions opt_;
  ToolSchemas schemas_;
  State state_ = State::kStart;
  bool reasoning_started_ = false;
  std::string pending_;
  std::vector<OutputEvent> events_;
  ParsedOutput result_;
  int n_calls_ = 0;
  std::mt19937_64 rng_;
  // The call being read (states kToolCall and kBareFunction): its reader, once the body's form
  // is known, how much of the body it was given, and what streamed (after kToolCallBegin).
  std::variant<std::monostate, JsonCallReader, XmlCallReader> reader_;
  size_t fed_ = 0;
  bool call_begun_ = false;
  std::string call_id_, call_sent_;
};

// The whole output at once.
ParsedOutput parse_output(std::string_view text, const OutputParserOptions& options);

}  // namespace hylo::chat
