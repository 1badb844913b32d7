// OutputParser: the streaming state machine over <think>, <tool_call> and <function= markup.
#include "chat/output_parser.h"

#include <type_traits>

#include "base/log.h"
#include "tokenizer/utf8.h"

namespace hylo::chat {
namespace {

constexpr std::string_view kThinkOpen = "<think>", kThinkClose = "</think>", kCallOpen = "<tool_call>",
                           kCallClose = "</tool_call>", kFunctionOpen = "<function=", kFunctionClose = "</function>";

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

size_t skip_ws(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && is_ws(s[i])) ++i;
  return i;
}

// `s` is a proper, non-empty prefix of `tag` (more input could complete it).
bool is_partial(std::string_view s, std::string_view tag) {
  return !s.empty() && s.size() < tag.size() && tag.substr(0, s.size()) == s;
}

size_t trailing_ws(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && is_ws(s[s.size() - 1 - n])) ++n;
  return n;
}

}  // namespace

OutputParser::OutputParser(OutputParserOptions options)
    : opt_(std::move(options)), schemas_(opt_.tools), rng_(std::random_device{}()) {
  if (opt_.thinking_open && opt_.parse_reasoning) state_ = State::kReasoning;
}

std::string OutputParser::next_id() {
  const int index = n_calls_++;
  if (!opt_.id_prefix.empty()) return opt_.id_prefix + std::to_string(index);
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id += kAlphabet[rng_() % (sizeof(kAlphabet) - 1)];
  return id;
}

void OutputParser::emit_text(OutputEvent::Kind kind, std::string_view text) {
  if (text.empty()) return;
  (kind == OutputEvent::Kind::kReasoning ? result_.reasoning : result_.content).append(text);
  if (!events_.empty() && events_.back().kind == kind) {
    events_.back().text.append(text);
    return;
  }
  OutputEvent e;
  e.kind = kind;
  e.text = std::string(text);
  events_.push_back(std::move(e));
}

void OutputParser::emit_arguments(std::string_view text) {
  if (text.empty()) return;
  call_sent_.append(text);
  if (!events_.empty() && events_.back().kind == OutputEvent::Kind::kToolCallArguments) {
    events_.back().text.append(text);
    return;
  }
  OutputEvent e;
  e.kind = OutputEvent::Kind::kToolCallArguments;
  e.text = std::string(text);
  e.tool_call.id = call_id_;
  e.index = static_cast<int>(result_.tool_calls.size());
  events_.push_back(std::move(e));
}

void OutputParser::read_call(std::string_view body) {
  if (std::holds_alternative<std::monostate>(reader_)) {
    const std::string_view s = body.substr(skip_ws(body));
    if (s.empty() || is_partial(s, kFunctionOpen)) return;  // the form is not known yet
    if (s.starts_with(kFunctionOpen)) {
      reader_.emplace<XmlCallReader>(schemas_);
    } else {
      reader_.emplace<JsonCallReader>();
    }
  }
  std::visit(
      [&](auto& reader) {
        if constexpr (!std::is_same_v<std::decay_t<decltype(reader)>, std::monostate>) {
          reader.push(body.substr(fed_));
          fed_ = body.size();
          if (reader.begun() && !call_begun_) {
            call_begun_ = true;
            call_id_ = next_id();
            OutputEvent e;
            e.kind = OutputEvent::Kind::kToolCallBegin;
            e.tool_call.id = call_id_;
            e.tool_call.name = reader.name();
            e.index = static_cast<int>(result_.tool_calls.size());
            events_.push_back(std::move(e));
          }
          if (call_begun_) emit_arguments(reader.take());
        }
      },
      reader_);
}

Result<ToolCall> OutputParser::finish_call(std::string_view body) {
  read_call(body);
  if (auto* json = std::get_if<JsonCallReader>(&reader_)) return json->finish();
  if (auto* xml = std::get_if<XmlCallReader>(&reader_)) return xml->finish();
  return parse_json_tool_call(body);  // blank, or a cut-off "<function" (an error either way)
}

void OutputParser::emit_call(std::string_view raw, Result<ToolCall> call, bool report_error) {
  const bool begun = call_begun_;
  const std::string id = begun ? call_id_ : std::string();
  if (call.ok() && begun) {
    // By construction of the readers what streamed is the start of the arguments (the tests
    // check it on random splits); were it not, the rest cannot be expressed as a piece, and one
    // answer is wrong rather than the server down.
    if (call->arguments.starts_with(call_sent_))
      emit_arguments(std::string_view(call->arguments).substr(call_sent_.size()));
    else
      log_error("[chat] streamed tool-call arguments {} are not a prefix of {}", call_sent_, call->arguments);
  }
  reader_ = std::monostate();
  fed_ = 0;
  call_begun_ = false;
  call_id_.clear();
  call_sent_.clear();
  const int index = static_cast<int>(result_.tool_calls.size());
  if (call.ok()) {
    call->id = begun ? id : next_id();
    result_.tool_calls.push_back(*call);
    OutputEvent e;
    e.kind = OutputEvent::Kind::kToolCall;
    e.tool_call = std::move(call).value();
    e.index = index;
    events_.push_back(std::move(e));
    return;
  }
  // Unparseable: the text stays visible as content; the error is reported on a call entry.
  if (report_error) {
    ToolCall failed;
    failed.id = begun ? id : next_id();
    failed.error = call.message();
    result_.tool_calls.push_back(failed);
    OutputEvent e;
    e.kind = OutputEvent::Kind::kToolCall;
    e.tool_call = std::move(failed);
    e.index = index;
    events_.push_back(std::move(e));
  }
  emit_text(OutputEvent::Kind::kContent, raw);
}

bool OutputParser::step() {
  std::string_view p = pending_;
  auto consume = [&](size_t n) { pending_.erase(0, n); };
  switch (state_) {
    case State::kStart: {
      if (!opt_.parse_reasoning) {
        state_ = State::kContent;
        return true;
      }
      const size_t i = skip_ws(p);
      const std::string_view rest = p.substr(i);
      if (rest.empty() || is_partial(rest, kThinkOpen)) return false;
      if (rest.starts_with(kThinkOpen)) {
        consume(i + kThinkOpen.size());
        state_ = State::kReasoning;
      } else {
        state_ = State::kContent;
      }
      return true;
    }
    case State::kReasoning: {
      if (!reasoning_started_) {
        // Leading whitespace is dropped; a repeated <think> right at the start is too.
        const size_t i = skip_ws(p);
        const std::string_view rest = p.substr(i);
        if (rest.empty() || is_partial(rest, kThinkOpen) || is_partial(rest, kThinkClose)) return false;
        if (rest.starts_with(kThinkOpen)) {
          consume(i + kThinkOpen.size());
          return true;
        }
        consume(i);
        reasoning_started_ = true;
        return true;
      }
      const size_t close = p.find(kThinkClose);
      if (close != std::string_view::npos) {
        const std::string_view text = p.substr(0, close);
        emit_text(OutputEvent::Kind::kReasoning, text.substr(0, text.size() - trailing_ws(text)));
        consume(close + kThinkClose.size());
        state_ = State::kAfterThink;
        return true;
      }
      std::string_view emit = p.substr(0, p.size() - partial_tag_at_end(p, kThinkClose));
      emit = emit.substr(0, emit.size() - trailing_ws(emit));
      emit = emit.substr(0, emit.size() - tokenizer::utf8_incomplete_tail(emit));
      emit_text(OutputEvent::Kind::kReasoning, emit);
      consume(emit.size());
      return false;
    }
    case State::kAfterThink:
    case State::kAfterCall: {
      const size_t i = skip_ws(p);
      consume(i);
      p = pending_;
      if (p.empty()) return false;
      if (state_ == State::kAfterCall) {  // a stray </tool_call> after a bare <function=...> block
        if (is_partial(p, kCallClose)) return false;
        if (p.starts_with(kCallClose)) {
          consume(kCallClose.size());
          return true;
        }
      }
      state_ = State::kContent;
      return true;
    }
    case State::kContent: {
      const bool xml_bare = opt_.parse_tool_calls && opt_.format == ToolCallFormat::kXml;
      for (size_t lt = p.find('<'); opt_.parse_tool_calls && lt != std::string_view::npos; lt = p.find('<', lt + 1)) {
        const std::string_view at = p.substr(lt);
        const bool call = at.starts_with(kCallOpen), bare = xml_bare && at.starts_with(kFunctionOpen);
        const bool partial = is_partial(at, kCallOpen) || (xml_bare && is_partial(at, kFunctionOpen));
        if (!call && !bare && !partial) continue;
        // Whitespace before a call belongs to neither side.
        const std::string_view before = p.substr(0, lt);
        if (partial) {
          emit_text(OutputEvent::Kind::kContent, before.substr(0, before.size() - trailing_ws(before)));
          consume(before.size() - trailing_ws(before));
          return false;
        }
        emit_text(OutputEvent::Kind::kContent, before.substr(0, before.size() - trailing_ws(before)));
        consume(call ? lt + kCallOpen.size() : lt);
        state_ = call ? State::kToolCall : State::kBareFunction;
        return true;
      }
      std::string_view emit = p;
      if (opt_.parse_tool_calls) emit = emit.substr(0, emit.size() - trailing_ws(emit));
      emit = emit.substr(0, emit.size() - tokenizer::utf8_incomplete_tail(emit));
      emit_text(OutputEvent::Kind::kContent, emit);
      consume(emit.size());
      return false;
    }
    case State::kToolCall: {
      // The body read so far never holds a possible start of </tool_call>, so the tag cannot
      // begin before fed_.
      const size_t close = p.find(kCallClose, fed_);
      read_call(p.substr(0, close == std::string_view::npos ? p.size() - partial_tag_at_end(p, kCallClose) : close));
      if (close == std::string_view::npos) return false;
      const std::string_view body = p.substr(0, close);
      const std::string raw = std::string(kCallOpen) + std::string(body) + std::string(kCallClose);
      emit_call(raw, finish_call(body), true);
      consume(close + kCallClose.size());
      state_ = State::kAfterCall;
      return true;
    }
    case State::kBareFunction: {
      const size_t close = p.find(kFunctionClose, fed_);
      if (close == std::string_view::npos) {
        read_call(p.substr(0, p.size() - partial_tag_at_end(p, kFunctionClose)));
        return false;
      }
      const std::string_view raw = p.substr(0, close + kFunctionClose.size());
      emit_call(raw, finish_call(raw), true);
      consume(raw.size());
      state_ = State::kAfterCall;
      return true;
    }
    case State::kDone:
      return false;
  }
  return false;
}

std::vector<OutputEvent> OutputParser::push(std::string_view delta) {
  if (state_ != State::kDone) {
    pending_.append(delta);
    while (step()) {
    }
  }
  return std::exchange(events_, {});
}

std::vector<OutputEvent> OutputParser::finish() {
  if (state_ == State::kDone) return {};
  while (step()) {
  }
  std::string_view p = pending_;
  switch (state_) {
    case State::kReasoning:
      // Generation stopped inside the reasoning: all of it is reasoning.
      if (reasoning_started_ || !p.substr(skip_ws(p)).empty()) {
        p = p.substr(reasoning_started_ ? 0 : skip_ws(p));
        emit_text(OutputEvent::Kind::kReasoning, p.substr(0, p.size() - trailing_ws(p)));
      }
      break;
    case State::kToolCall: {
      // Stopped before </tool_call> (a stop string, say): a complete body (a whole JSON object,
      // or an XML function up to </function>) is still a call; a truncated one is text.
      const bool xml = p.substr(skip_ws(p)).starts_with(kFunctionOpen);
      Result<ToolCall> call = finish_call(p);
      if (xml && p.find(kFunctionClose) == std::string_view::npos) call = make_error("[chat] unterminated tool call");
      emit_call(std::string(kCallOpen) + std::string(p), std::move(call), false);
      break;
    }
    case State::kAfterThink:
    case State::kAfterCall:
      emit_text(OutputEvent::Kind::kContent, p.substr(skip_ws(p)));
      break;
    case State::kBareFunction:  // no </function>: text, even if the call began streaming
      emit_call(p, make_error("[chat] unterminated tool call"), false);
      break;
    default:
      emit_text(OutputEvent::Kind::kContent, p);
      break;
  }
  pending_.clear();
  state_ = State::kDone;
  return std::exchange(events_, {});
}

ParsedOutput parse_output(std::string_view text, const OutputParserOptions& options) {
  OutputParser parser(options);
  parser.push(text);
  parser.finish();
  return parser.result();
}

}  // namespace hylo::chat
