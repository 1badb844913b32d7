// JsonCallReader (a scan of the top-level object's members) and XmlCallReader (a state machine
// over the <function=, <parameter= and closing tags).
#include "chat/tool_call_reader.h"

#include <algorithm>

#include "tokenizer/utf8.h"

namespace hylo::chat {
namespace {

using ojson = nlohmann::ordered_json;

constexpr std::string_view kFunction = "<function=", kParam = "<parameter=", kParamEnd = "</parameter>",
                           kFunctionEnd = "</function>";

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim_ws(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

// `text` as it appears inside a JSON string written by dump(). Escaping pieces one after the
// other gives the escaped whole as long as no piece ends inside a UTF-8 sequence that the next
// one continues: dump() then reads each piece from a code point boundary, as it reads the whole.
void append_escaped(std::string& out, std::string_view text) {
  if (text.empty()) return;
  const std::string quoted = dump(ojson(std::string(text)));
  out.append(quoted, 1, quoted.size() - 2);
}

// The text of a JSON string token (between its quotes) decoded; nullopt when it is not valid.
std::optional<std::string> decode_string(std::string_view inner) {
  if (inner.find('\\') == std::string_view::npos) return std::string(inner);
  const ojson j = ojson::parse("\"" + std::string(inner) + "\"", nullptr, false);
  if (!j.is_string()) return std::nullopt;
  return j.get<std::string>();
}

}  // namespace

size_t partial_tag_at_end(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (tag.substr(0, n) == s.substr(s.size() - n)) return n;
  return 0;
}

// ---- Hermes JSON ----

void JsonCallReader::push(std::string_view text) {
  body_.append(text);
  scan();
}

// Enough of JSON to find where each top-level member starts and ends in a valid document; what
// is not valid stops the scan, and finish() reports it.
void JsonCallReader::scan() {
  while (pos_ < body_.size()) {
    const char c = body_[pos_];
    switch (scan_) {
      case Scan::kObject:
        if (is_ws(c)) {
          ++pos_;
        } else if (c == '{') {
          ++pos_;
          scan_ = Scan::kKey;
        } else {
          scan_ = Scan::kEnd;
        }
        break;
      case Scan::kKey:
        if (is_ws(c)) {
          ++pos_;
        } else if (c == '"') {
          key_begin_ = ++pos_;
          escaped_ = false;
          scan_ = Scan::kKeyText;
        } else {
          scan_ = Scan::kEnd;  // "}" (no members) or not JSON
        }
        break;
      case Scan::kKeyText:
        if (escaped_) {
          escaped_ = false;
        } else if (c == '\\') {
          escaped_ = true;
        } else if (c == '"') {
          key_end_ = pos_;
          scan_ = Scan::kColon;
        }
        ++pos_;
        break;
      case Scan::kColon:
        if (is_ws(c)) {
          ++pos_;
        } else if (c == ':') {
          ++pos_;
          value_begin_ = std::string::npos;
          scan_ = Scan::kValue;
        } else {
          scan_ = Scan::kEnd;
        }
        break;
      case Scan::kValue:
        if (value_begin_ == std::string::npos) {
          if (is_ws(c)) {
            ++pos_;
            break;
          }
          value_begin_ = pos_++;
          value_type_ = c == '"' ? '"' : c == '{' || c == '[' ? '{' : 's';
          depth_ = 1;
          in_string_ = c == '"';
          escaped_ = false;
          value_started();
        } else if (in_string_) {
          ++pos_;
          if (escaped_) {
            escaped_ = false;
          } else if (c == '\\') {
            escaped_ = true;
          } else if (c == '"') {
            in_string_ = false;
            if (value_type_ == '"') value_ended(pos_);
          }
        } else if (value_type_ == 's') {
          if (is_ws(c) || c == ',' || c == '}' || c == ']') {
            value_ended(pos_);  // the delimiter is read again after the value
          } else {
            ++pos_;
          }
        } else {
          ++pos_;
          if (c == '"') {
            in_string_ = true;
          } else if (c == '{' || c == '[') {
            ++depth_;
          } else if ((c == '}' || c == ']') && --depth_ == 0) {
            value_ended(pos_);
          }
        }
        break;
      case Scan::kAfterValue:
        if (is_ws(c)) {
          ++pos_;
        } else if (c == ',') {
          ++pos_;
          scan_ = Scan::kKey;
        } else {
          scan_ = Scan::kEnd;  // "}" or not JSON
        }
        break;
      case Scan::kEnd:
        pos_ = body_.size();
        break;
    }
  }
}

void JsonCallReader::value_started() {
  key_ = decode_string(std::string_view(body_).substr(key_begin_, key_end_ - key_begin_)).value_or("");
  if (key_ != "arguments" || arguments_seen_) return;
  arguments_seen_ = true;
  if (body_[value_begin_] == '{' && !name_.empty()) {
    begun_ = true;
    taken_ = value_begin_;
  }
}

void JsonCallReader::value_ended(size_t end) {
  const Span span{value_begin_, end};
  if (key_ == "name" && !name_span_.found()) {
    name_span_ = span;
    if (value_type_ == '"')
      name_ = decode_string(std::string_view(body_).substr(span.begin + 1, end - span.begin - 2)).value_or("");
  } else if (key_ == "arguments" && !arguments_span_.found()) {
    arguments_span_ = span;
  } else if (key_ == "parameters" && !parameters_span_.found()) {
    parameters_span_ = span;
  }
  scan_ = Scan::kAfterValue;
}

std::string JsonCallReader::take() {
  if (!begun_) return {};
  const size_t end = arguments_span_.found() ? arguments_span_.end : pos_;
  std::string_view piece = std::string_view(body_).substr(taken_, end - taken_);
  if (!arguments_span_.found()) piece.remove_suffix(tokenizer::utf8_incomplete_tail(piece));
  taken_ += piece.size();
  return std::string(piece);
}

Result<ToolCall> JsonCallReader::finish() {
  ojson j;
  try {
    j = ojson::parse(trim_ws(body_));
  } catch (const ojson::exception& e) {
    return make_error("[chat] tool call is not valid JSON: {}", e.what());
  }
  if (!j.is_object()) return make_error("[chat] tool call must be a JSON object, got {}", j.type_name());
  if (name_.empty()) return make_error("[chat] tool call has no \"name\" string");
  ToolCall call;
  call.name = name_;
  const Span span = arguments_span_.found() ? arguments_span_ : parameters_span_;
  if (!span.found()) {
    call.arguments = "{}";
    return call;
  }
  const std::string_view raw = std::string_view(body_).substr(span.begin, span.end - span.begin);
  ojson args = ojson::parse(raw, nullptr, false);
  if (args.is_object()) {
    call.arguments = std::string(raw);  // as written: what streamed
    return call;
  }
  if (args.is_string()) {  // arguments given as a JSON string
    args = ojson::parse(args.get<std::string>(), nullptr, false);
    if (args.is_discarded())
      return make_error("[chat] tool call \"{}\": arguments string is not valid JSON", call.name);
  }
  if (args.is_null()) args = ojson::object();
  if (!args.is_object())
    return make_error("[chat] tool call \"{}\": arguments must be a JSON object, got {}", call.name, args.type_name());
  call.arguments = dump(args);
  return call;
}

// ---- Qwen XML ----

void XmlCallReader::push(std::string_view text) {
  if (state_ == State::kDone || state_ == State::kFailed) return;
  buf_.append(text);
  while (step(false)) {
  }
}

std::string XmlCallReader::take() {
  std::string piece = arguments_.substr(taken_);
  taken_ = arguments_.size();
  return piece;
}

Result<ToolCall> XmlCallReader::finish() {
  while (step(true)) {
  }
  if (state_ == State::kFailed) return Error{error_};
  ToolCall call;
  call.name = name_;
  call.arguments = arguments_;
  return call;
}

void XmlCallReader::fail(std::string message) {
  error_ = std::move(message);
  state_ = State::kFailed;
  buf_.clear();
}

void XmlCallReader::open_value(const std::string& key) {
  schema_ = schemas_.parameter(name_, key);
  string_value_ = parameter_always_string(schema_);
  value_lead_done_ = false;
  arguments_ += n_parameters_++ == 0 ? "{" : ",";
  arguments_ += dump(ojson(key));
  arguments_ += ':';
  if (string_value_) arguments_ += '"';
}

// `rest`: the value's text not added yet. The template puts one newline on each side of a value.
void XmlCallReader::close_value(std::string_view rest) {
  if (!value_lead_done_ && rest.starts_with('\n')) rest.remove_prefix(1);
  if (rest.ends_with('\n')) rest.remove_suffix(1);
  if (string_value_) {
    append_escaped(arguments_, rest);
    arguments_ += '"';
  } else {
    arguments_ += dump(coerce_parameter(std::string(rest), schema_));
  }
}

void XmlCallReader::close_object() { arguments_ += n_parameters_ == 0 ? "{}" : "}"; }

// Adds what is certainly part of a string value: not a possible tag (nor, from a whole
// <parameter=, anything after it: it ends the value if no </parameter> follows), not the
// newline that may precede the closing tag, not an incomplete UTF-8 character.
void XmlCallReader::stream_value() {
  if (!value_lead_done_) {
    if (buf_.empty()) return;
    value_lead_done_ = true;
    if (buf_[0] == '\n') buf_.erase(0, 1);
  }
  const std::string_view b = buf_;
  size_t end = b.size() - std::max({partial_tag_at_end(b, kParamEnd), partial_tag_at_end(b, kFunctionEnd),
                                    partial_tag_at_end(b, kParam)});
  end = std::min(end, b.find(kParam));
  end -= tokenizer::utf8_incomplete_tail(b.substr(0, end));
  if (end > 0 && b[end - 1] == '\n') --end;
  append_escaped(arguments_, b.substr(0, end));
  buf_.erase(0, end);
}

bool XmlCallReader::step(bool at_end) {
  const std::string_view b = buf_;
  constexpr size_t npos = std::string_view::npos;
  switch (state_) {
    case State::kFunction: {
      const size_t at = b.find(kFunction);
      if (at == npos) {
        if (at_end) {
          fail("[chat] tool call has no <function=...> tag");
        } else {
          buf_.erase(0, b.size() - partial_tag_at_end(b, kFunction));
        }
        return false;
      }
      buf_.erase(0, at + kFunction.size());
      state_ = State::kName;
      return true;
    }
    case State::kName: {
      const size_t gt = b.find('>');
      if (gt == npos) {
        if (at_end) fail("[chat] unterminated <function= tag in tool call");
        return false;
      }
      std::string name(trim_ws(b.substr(0, gt)));
      if (name.empty()) {
        fail("[chat] tool call has an empty function name");
        return false;
      }
      name_ = std::move(name);
      buf_.erase(0, gt + 1);
      state_ = State::kBetween;
      return true;
    }
    case State::kBetween: {  // text between parameters is skipped
      const size_t param = b.find(kParam), fend = b.find(kFunctionEnd);
      if (fend != npos && (param == npos || fend < param)) {
        close_object();
        buf_.clear();
        state_ = State::kDone;
        return false;
      }
      if (param != npos) {
        buf_.erase(0, param + kParam.size());
        state_ = State::kKey;
        return true;
      }
      if (at_end) {
        close_object();
        buf_.clear();
        state_ = State::kDone;
        return false;
      }
      buf_.erase(0, b.size() - std::max(partial_tag_at_end(b, kParam), partial_tag_at_end(b, kFunctionEnd)));
      return false;
    }
    case State::kKey: {
      const size_t gt = b.find('>'), fend = b.find(kFunctionEnd);
      if (gt != npos && (fend == npos || gt < fend)) {
        const std::string key(trim_ws(b.substr(0, gt)));
        if (key.empty()) {
          fail(fmt::format("[chat] tool call \"{}\": empty parameter name", name_));
          return false;
        }
        open_value(key);
        buf_.erase(0, gt + 1);
        state_ = State::kValue;
        return true;
      }
      if (fend != npos || at_end) fail(fmt::format("[chat] tool call \"{}\": unterminated <parameter= tag", name_));
      return false;
    }
    case State::kValue: {
      const size_t pend = b.find(kParamEnd), fend = b.find(kFunctionEnd);
      if (pend != npos && (fend == npos || pend < fend)) {
        close_value(b.substr(0, pend));
        buf_.erase(0, pend + kParamEnd.size());
        state_ = State::kBetween;
        return true;
      }
      if (fend != npos || at_end) {  // no </parameter>: the value runs to the next <parameter= or the end
        size_t end = fend != npos ? fend : b.size();
        end = std::min(end, b.substr(0, end).find(kParam));
        close_value(b.substr(0, end));
        buf_.erase(0, end);
        state_ = State::kBetween;
        return true;
      }
      if (string_value_) stream_value();
      return false;
    }
    case State::kDone:
    case State::kFailed:
      return false;
  }
  return false;
}

}  // namespace hylo::chat
