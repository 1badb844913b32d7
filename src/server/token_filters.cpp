#include "server/token_filters.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string_view>

namespace hylo::server {

namespace {

using Mode = JsonState::Mode;

bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
bool is_hex(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

constexpr std::string_view kLiterals[] = {"true", "false", "null"};

}  // namespace

// ---------------------------------------------------------------------------------------------
// JSON state machine

namespace {

// A value has ended: the container continues, or the document is complete.
void value_done(JsonState* s) { s->mode = s->depth == 0 ? Mode::kDone : Mode::kAfterValue; }

bool open_container(JsonState* s, bool array) {
  if (s->depth >= JsonState::kMaxDepth) return false;
  if (array)
    s->arrays |= uint64_t{1} << s->depth;
  else
    s->arrays &= ~(uint64_t{1} << s->depth);
  ++s->depth;
  s->mode = array ? Mode::kArrayFirst : Mode::kObjectFirst;
  return true;
}

bool top_is_array(const JsonState& s) { return s.depth > 0 && ((s.arrays >> (s.depth - 1)) & 1) != 0; }

bool close_container(JsonState* s, bool array) {
  if (s->depth == 0 || top_is_array(*s) != array) return false;
  --s->depth;
  value_done(s);
  return true;
}

// The first byte of a value.
bool start_value(JsonState* s, uint8_t c) {
  switch (c) {
    case '{':
      return open_container(s, false);
    case '[':
      return open_container(s, true);
    case '"':
      s->mode = Mode::kString;
      s->key = false;
      return true;
    case '-':
      s->mode = Mode::kNumMinus;
      return true;
    case '0':
      s->mode = Mode::kNumZero;
      return true;
    case 't':
    case 'f':
    case 'n':
      s->mode = Mode::kLiteral;
      s->literal = c == 't' ? 0 : c == 'f' ? 1 : 2;
      s->aux = 1;
      return true;
    default:
      if (c >= '1' && c <= '9') {
        s->mode = Mode::kNumInt;
        s->aux = 1;
        return true;
      }
      return false;
  }
}

}  // namespace

bool JsonState::push(uint8_t c) {
  // Whitespace between tokens of JSON, bounded so a model cannot pad forever.
  const bool between = mode == Mode::kValue || mode == Mode::kArrayFirst || mode == Mode::kObjectFirst ||
                       mode == Mode::kKey || mode == Mode::kColon || mode == Mode::kAfterValue;
  if (between && is_ws(c)) {
    if (++whitespace > kMaxWhitespace) {
      mode = Mode::kInvalid;
      return false;
    }
    return true;
  }
  whitespace = 0;
  bool ok = true;
  switch (mode) {
    case Mode::kStart:
      ok = c == '{' && open_container(this, false);
      break;
    case Mode::kValue:
      ok = start_value(this, c);
      break;
    case Mode::kArrayFirst:
      ok = c == ']' ? close_container(this, true) : start_value(this, c);
      break;
    case Mode::kObjectFirst:
      if (c == '}') {
        ok = close_container(this, false);
      } else {
        ok = c == '"';
        mode = Mode::kString;
        key = true;
      }
      break;
    case Mode::kKey:
      ok = c == '"';
      mode = Mode::kString;
      key = true;
      break;
    case Mode::kColon:
      ok = c == ':';
      mode = Mode::kValue;
      break;
    case Mode::kAfterValue:
      if (c == ',') {
        mode = top_is_array(*this) ? Mode::kValue : Mode::kKey;
      } else if (c == ']' || c == '}') {
        ok = close_container(this, c == ']');
      } else {
        ok = false;
      }
      break;
    case Mode::kString:
      if (c == '"') {
        if (key)
          mode = Mode::kColon;
        else
          value_done(this);
      } else if (c == '\\') {
        mode = Mode::kEscape;
      } else {
        ok = c >= 0x20;  // bytes of UTF-8 characters (≥ 0x80) are fine
      }
      break;
    case Mode::kEscape:
      if (c == 'u') {
        mode = Mode::kUnicode;
        aux = 0;
      } else {
        ok = c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't';
        mode = Mode::kString;
      }
      break;
    case Mode::kUnicode:
      ok = is_hex(c);
      if (++aux == 4) mode = Mode::kString;
      break;
    case Mode::kNumMinus:
      ok = is_digit(c);
      mode = c == '0' ? Mode::kNumZero : Mode::kNumInt;
      aux = 1;
      break;
    case Mode::kNumDot:
      ok = is_digit(c);
      mode = Mode::kNumFrac;
      aux = 1;
      break;
    case Mode::kNumExp:
      if (c == '+' || c == '-') {
        mode = Mode::kNumExpSign;
      } else {
        ok = is_digit(c);
        mode = Mode::kNumExpDigits;
        aux = 1;
      }
      break;
    case Mode::kNumExpSign:
      ok = is_digit(c);
      mode = Mode::kNumExpDigits;
      aux = 1;
      break;
    case Mode::kNumZero:
    case Mode::kNumInt:
    case Mode::kNumFrac:
    case Mode::kNumExpDigits:
      if (is_digit(c) && mode != Mode::kNumZero) {
        // Bounded so every number parses as a double: 1e99 at most, 20 digits per part.
        ok = ++aux <= (mode == Mode::kNumExpDigits ? kMaxExponentDigits : kMaxNumberDigits);
        break;
      }
      if (c == '.' && (mode == Mode::kNumZero || mode == Mode::kNumInt)) {
        mode = Mode::kNumDot;
        return true;
      }
      if ((c == 'e' || c == 'E') && mode != Mode::kNumExpDigits) {
        mode = Mode::kNumExp;
        return true;
      }
      // The number has ended (numbers only occur inside containers): this byte follows it.
      mode = Mode::kAfterValue;
      return push(c);
    case Mode::kLiteral: {
      const std::string_view lit = kLiterals[literal];
      ok = c == static_cast<uint8_t>(lit[aux]);
      if (++aux == lit.size()) value_done(this);
      break;
    }
    case Mode::kDone:
    case Mode::kInvalid:
      ok = false;
      break;
  }
  if (!ok) mode = Mode::kInvalid;
  return ok;
}

bool JsonState::push(const std::string& bytes) {
  for (char c : bytes)
    if (!push(static_cast<uint8_t>(c))) return false;
  return true;
}

int JsonState::completion_length() const {
  const int closers = depth;           // one '}' or ']' per open container
  const int string_end = key ? 3 : 1;  // '"' (a key also needs ":0")
  switch (mode) {
    case Mode::kStart:
      return 2;  // "{}"
    case Mode::kValue:
      return 1 + closers;
    case Mode::kArrayFirst:
    case Mode::kObjectFirst:
    case Mode::kAfterValue:
      return closers;
    case Mode::kKey:
      return 4 + closers;  // "":0
    case Mode::kColon:
      return 2 + closers;
    case Mode::kString:
      return string_end + closers;
    case Mode::kEscape:
      return 1 + string_end + closers;
    case Mode::kUnicode:
      return (4 - aux) + string_end + closers;
    case Mode::kNumMinus:
    case Mode::kNumDot:
    case Mode::kNumExp:
    case Mode::kNumExpSign:
      return 1 + closers;
    case Mode::kNumZero:
    case Mode::kNumInt:
    case Mode::kNumFrac:
    case Mode::kNumExpDigits:
      return closers;
    case Mode::kLiteral:
      return static_cast<int>(kLiterals[literal].size()) - aux + closers;
    case Mode::kDone:
      return 0;
    case Mode::kInvalid:
      return std::numeric_limits<int>::max() / 2;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Filters

JsonFilter::JsonFilter(std::shared_ptr<const TokenTrie> trie, bool wait_for_think_end)
    : trie_(std::move(trie)), active_(!wait_for_think_end || trie_->think_end_id() < 0) {}

JsonFilter::JsonFilter(std::shared_ptr<const TokenTrie> trie, const JsonState& start)
    : trie_(std::move(trie)), state_(start), active_(true) {}

void JsonFilter::walk(const TokenTrie::Trie& trie, const JsonState& from, int budget, int* min_completion) {
  stack_.clear();
  stack_.push_back({0, from});
  while (!stack_.empty()) {
    const Frame f = stack_.back();
    stack_.pop_back();
    const TokenTrie::Node& n = trie.nodes[f.node];
    if (f.node != 0 && n.n_tokens > 0) {
      const int c = f.state.completion_length();
      *min_completion = std::min(*min_completion, c);
      if (c <= budget)
        for (uint32_t k = 0; k < n.n_tokens; ++k) allowed_[static_cast<size_t>(trie.token_ids[n.first_token + k])] = 1;
    }
    for (uint32_t k = 0; k < n.n_children; ++k) {
      const uint32_t child = n.first_child + k;
      JsonState s = f.state;
      if (s.push(trie.nodes[child].byte)) stack_.push_back({child, s});
    }
  }
}

void JsonFilter::mask(float* logits, int64_t n_vocab, int32_t tokens_left) {
  if (!active_ || broken_) return;
  allowed_.assign(static_cast<size_t>(n_vocab), 0);
  if (state_.done()) {
    for (int32_t id : trie_->eog_ids())
      if (id < n_vocab) allowed_[static_cast<size_t>(id)] = 1;
  } else {
    // After this token, tokens_left - 1 more may follow: enough to close if each is one byte.
    const int budget = std::max(0, tokens_left - 1);
    int min_completion = std::numeric_limits<int>::max();
    if (state_.mode == JsonState::Mode::kString) {
      // Tokens without quotes, backslashes or control bytes leave a string as it is.
      const int c = state_.completion_length();
      min_completion = c;
      if (c <= budget)
        for (int32_t id : trie_->string_safe_ids()) allowed_[static_cast<size_t>(id)] = 1;
      walk(trie_->string_unsafe(), state_, budget, &min_completion);
    } else {
      walk(trie_->all(), state_, budget, &min_completion);
    }
    if (std::find(allowed_.begin(), allowed_.end(), 1) == allowed_.end() &&
        min_completion < std::numeric_limits<int>::max()) {
      // The budget is too small to close the object: come as close as possible.
      if (state_.mode == JsonState::Mode::kString && state_.completion_length() <= min_completion)
        for (int32_t id : trie_->string_safe_ids()) allowed_[static_cast<size_t>(id)] = 1;
      walk(state_.mode == JsonState::Mode::kString ? trie_->string_unsafe() : trie_->all(), state_, min_completion,
           &min_completion);
    }
  }
  if (std::find(allowed_.begin(), allowed_.end(), 1) == allowed_.end()) return;  // nothing fits: leave it be
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int64_t id = 0; id < n_vocab; ++id)
    if (!allowed_[static_cast<size_t>(id)]) logits[id] = kNegInf;
}

void JsonFilter::accept(int32_t token) {
  if (broken_) return;
  if (!active_) {
    active_ = token == trie_->think_end_id();
    return;
  }
  if (token < 0 || token >= trie_->n_vocab() || !state_.push(trie_->piece(token))) broken_ = true;
}

void ForcedOutputFilter::mask(float* logits, int64_t n_vocab, int32_t) {
  const int32_t next = pos_ < tokens_.size() ? tokens_[pos_] : eog_;
  if (next < 0 || next >= n_vocab) return;
  const float keep = std::isfinite(logits[next]) ? logits[next] : 0.0f;
  std::fill(logits, logits + n_vocab, -std::numeric_limits<float>::infinity());
  logits[next] = keep;
}

}  // namespace hylo::server
