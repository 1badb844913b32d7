// Tool-call bodies read while they are generated: the function name as soon as it is known, then
// the arguments JSON in pieces, for streamed answers. The whole-body parsers of tool_calls.h are
// these readers fed all at once, so the pieces always add up to the final call's arguments.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/result.h"
#include "chat/tool_calls.h"

namespace hylo::chat {

// Length of the longest suffix of `s` that is a proper prefix of `tag` (a tag more text may complete).
size_t partial_tag_at_end(std::string_view s, std::string_view tag);

// Both readers: push() the body as it grows (never a closing </tool_call>), take() the arguments
// text produced since the last take(), and finish() once the body is complete. begun() turns true
// when the name is known and the arguments stream; from then on everything take() returns is a
// prefix of the arguments of a successful finish(). A call that turns out malformed fails at
// finish() even though its first pieces went out.

// Hermes body: {"name": "NAME", "arguments": {...}}. It streams when the first "name" member (a
// non-empty string) comes before the first "arguments" member and that member's value is an
// object: the object's text as the model writes it, whole UTF-8 characters only. Otherwise
// (arguments first, arguments as a JSON string, "parameters") the call is only read at finish().
class JsonCallReader {
 public:
  void push(std::string_view text);
  std::string take();
  Result<ToolCall> finish();  // the id is left empty
  bool begun() const { return begun_; }
  const std::string& name() const { return name_; }

 private:
  // Members of the top-level object, as byte ranges of body_ (the first of each key counts).
  enum class Scan { kObject, kKey, kKeyText, kColon, kValue, kAfterValue, kEnd };
  struct Span {
    size_t begin = std::string::npos, end = std::string::npos;
    bool found() const { return end != std::string::npos; }
  };
  void scan();
  void value_started();
  void value_ended(size_t end);

  std::string body_;
  size_t pos_ = 0;  // body_ is scanned up to here
  Scan scan_ = Scan::kObject;
  size_t key_begin_ = 0, key_end_ = 0, value_begin_ = std::string::npos;
  std::string key_;
  char value_type_ = 0;  // '"' string, '{' object or array, 's' scalar
  int depth_ = 0;
  bool in_string_ = false, escaped_ = false;
  Span name_span_, arguments_span_, parameters_span_;
  bool arguments_seen_ = false;  // the first "arguments" member has started
  bool begun_ = false;
  std::string name_;
  size_t taken_ = 0;  // body_ offset up to which the arguments were taken
};

// Qwen XML body: <function=NAME>\n<parameter=K>\nV\n</parameter>...</function>. It begins at
// <function=NAME>; each parameter adds `{"K":` (`,"K":` after the first) and its value: a value
// the schema makes a string whatever it holds (string types, no schema, see
// parameter_always_string) streams as a JSON string while it arrives, holding back what may be
// the newline before </parameter> or a partial tag; any other value is added whole at its
// closing tag, coerced by coerce_parameter. </function> (or the end of the body) adds `}`, `{}`
// when there were no parameters. The text is what nlohmann's dump() writes (no spaces, invalid
// UTF-8 replaced); a repeated parameter appears twice (JSON readers keep the last).
// Values end at </parameter>; one without it ends at the next <parameter= or at </function>.
class XmlCallReader {
 public:
  explicit XmlCallReader(ToolSchemas schemas) : schemas_(std::move(schemas)) {}
  void push(std::string_view text);
  std::string take();
  Result<ToolCall> finish();  // the id is left empty
  bool begun() const { return !name_.empty(); }
  const std::string& name() const { return name_; }

 private:
  enum class State { kFunction, kName, kBetween, kKey, kValue, kDone, kFailed };
  bool step(bool at_end);
  void stream_value();
  void open_value(const std::string& key);
  void close_value(std::string_view rest);
  void close_object();
  void fail(std::string message);

  ToolSchemas schemas_;
  State state_ = State::kFunction;
  std::string buf_;  // text not consumed yet
  std::string name_, error_;
  const nlohmann::ordered_json* schema_ = nullptr;  // of the value being read
  bool string_value_ = false;                       // it streams as a JSON string
  bool value_lead_done_ = false;                    // its leading newline is dropped (or was not there)
  int n_parameters_ = 0;
  std::string arguments_;  // produced so far
  size_t taken_ = 0;
};

}  // namespace hylo::chat
