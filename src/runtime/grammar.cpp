#include "runtime/grammar.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <map>

#include "base/check.h"

namespace hylo::runtime {

namespace {

using Kind = Grammar::Kind;
using Element = Grammar::Element;
using Sequence = std::vector<Element>;

constexpr uint32_t kInfinite = 1u << 24;  // min length of a rule with no finite derivation
constexpr size_t kMaxElements = size_t{1} << 20;
constexpr int kMaxRepetition = 4096;
constexpr uint32_t kMaxCodePoint = 0x10FFFF;

int utf8_length(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

// Recursive-descent parser for GBNF. Rules are built as alternatives of element sequences and
// flattened at the end; groups and repetitions become generated rules named after their parent.
class Parser {
 public:
  explicit Parser(std::string_view src) : src_(src) {}

  Result<std::shared_ptr<const Grammar>> run(std::string_view root_name) {
    skip_space(true);
    while (pos_ < src_.size()) {
      HYLO_TRY(parse_rule());
      skip_space(true);
    }
    if (rules_.empty()) return make_error("[grammar] the grammar has no rules");
    for (size_t r = 0; r < rules_.size(); ++r)
      if (!defined_[r])
        return make_error("[grammar] {}: rule '{}' is used but not defined", where(first_use_[r]), names_[r]);
    const auto root = ids_.find(std::string(root_name));
    if (root == ids_.end()) return make_error("[grammar] there is no rule '{}' to start from", root_name);
    return finish(root->second);
  }

 private:
  std::string where(size_t at) const {
    int line = 1, col = 1;
    for (size_t i = 0; i < at && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return fmt::format("{}:{}", line, col);
  }
  Error error_at(size_t at, const std::string& what) const {
    return make_error("[grammar] {}: {}", where(at), what);
  }
  bool eof() const { return pos_ >= src_.size(); }
  char peek(size_t ahead = 0) const { return pos_ + ahead < src_.size() ? src_[pos_ + ahead] : '\0'; }
  static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  }

  // Spaces, tabs and comments; newlines too when `newlines`.
  void skip_space(bool newlines) {
    while (!eof()) {
      const char c = peek();
      if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
        ++pos_;
      } else if (c == '#') {
        while (!eof() && peek() != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  // At a line break outside parentheses: whether the rule goes on (the next line does not start
  // a new rule). Consumes the break when it does.
  bool rule_continues() {
    const size_t save = pos_;
    skip_space(true);
    if (eof()) return false;
    size_t p = pos_;
    while (p < src_.size() && name_char(src_[p])) ++p;
    if (p > pos_) {
      while (p < src_.size() && (src_[p] == ' ' || src_[p] == '\t')) ++p;
      if (src_.substr(p, 3) == "::=") {
        pos_ = save;
        return false;
      }
    }
    return true;
  }

  uint32_t rule_id(const std::string& name, size_t at) {
    auto [it, added] = ids_.emplace(name, static_cast<uint32_t>(rules_.size()));
    if (added) {
      rules_.emplace_back();
      names_.push_back(name);
      defined_.push_back(false);
      first_use_.push_back(at);
    }
    return it->second;
  }
  uint32_t new_rule(const std::string& parent, std::vector<Sequence> alts) {
    std::string name;
    do name = fmt::format("{}_{}", parent, ++generated_);
    while (ids_.count(name));
    const uint32_t id = rule_id(name, pos_);
    rules_[id] = std::move(alts);
    defined_[id] = true;
    return id;
  }
  uint32_t class_id(CharClass c) {
    std::sort(c.ranges.begin(), c.ranges.end());
    const auto key = std::make_pair(c.negated, c.ranges);
    auto [it, added] = class_ids_.emplace(key, static_cast<uint32_t>(classes_.size()));
    if (added) classes_.push_back(std::move(c));
    return it->second;
  }
  Element chars(uint32_t lo, uint32_t hi, bool negated = false) {
    CharClass c;
    if (lo <= hi) c.ranges.emplace_back(lo, hi);
    c.negated = negated;
    return {Kind::kChars, class_id(std::move(c))};
  }

  Status parse_rule() {
    const size_t start = pos_;
    std::string name;
    while (!eof() && name_char(peek())) name += src_[pos_++];
    if (name.empty()) return error_at(start, "expected a rule name");
    skip_space(false);
    if (src_.substr(pos_, 3) != "::=") return error_at(pos_, fmt::format("expected '::=' after '{}'", name));
    pos_ += 3;
    skip_space(true);
    const uint32_t id = rule_id(name, start);
    if (defined_[id]) return error_at(start, fmt::format("rule '{}' is defined twice", name));
    defined_[id] = true;  // before the body: the body may refer to it
    HYLO_ASSIGN_OR_RETURN(auto alts, parse_alternatives(name, false));
    rules_[id] = std::move(alts);
    if (!eof() && peek() != '\n' && peek() != '\r')
      return error_at(pos_, fmt::format("unexpected '{}'", peek()));
    return ok_status();
  }

  Result<std::vector<Sequence>> parse_alternatives(const std::string& rule, bool nested) {
    std::vector<Sequence> alts;
    while (true) {
      HYLO_ASSIGN_OR_RETURN(auto seq, parse_sequence(rule, nested));
      alts.push_back(std::move(seq));
      if (peek() != '|') break;
      ++pos_;
      skip_space(true);
    }
    return alts;
  }

  Result<Sequence> parse_sequence(const std::string& rule, bool nested) {
    Sequence seq;
    size_t last = 0;  // start of the last element's elements (what a repetition applies to)
    bool have_last = false;
    while (true) {
      skip_space(nested);
      if (eof()) break;
      const char c = peek();
      if (!nested && (c == '\n' || c == '\r')) {
        if (!rule_continues()) break;
        continue;
      }
      const size_t start = pos_;
      if (c == '"') {
        ++pos_;
        last = seq.size();
        while (true) {
          if (eof() || peek() == '\n') return error_at(start, "unterminated string literal");
          if (peek() == '"') break;
          HYLO_ASSIGN_OR_RETURN(uint32_t cp, parse_char());
          seq.push_back(chars(cp, cp));
        }
        ++pos_;
        have_last = true;
      } else if (c == '[') {
        ++pos_;
        CharClass cls;
        if (peek() == '^') {
          cls.negated = true;
          ++pos_;
        }
        while (true) {
          if (eof() || peek() == '\n') return error_at(start, "unterminated character class");
          if (peek() == ']') break;
          HYLO_ASSIGN_OR_RETURN(uint32_t lo, parse_char());
          uint32_t hi = lo;
          if (peek() == '-' && peek(1) != ']') {
            ++pos_;
            const size_t at = pos_;
            HYLO_ASSIGN_OR_RETURN(hi, parse_char());
            if (hi < lo) return error_at(at, "character range ends before it starts");
          }
          cls.ranges.emplace_back(lo, hi);
        }
        ++pos_;
        last = seq.size();
        seq.push_back({Kind::kChars, class_id(std::move(cls))});
        have_last = true;
      } else if (c == '.') {
        ++pos_;
        last = seq.size();
        seq.push_back(chars(1, 0, /*negated=*/true));  // the complement of nothing
        have_last = true;
      } else if (c == '(') {
        ++pos_;
        skip_space(true);
        HYLO_ASSIGN_OR_RETURN(auto alts, parse_alternatives(rule, true));
        skip_space(true);
        if (peek() != ')') return error_at(pos_, "expected ')' to close the group");
        ++pos_;
        last = seq.size();
        seq.push_back({Kind::kRule, new_rule(rule, std::move(alts))});
        have_last = true;
      } else if (name_char(c)) {
        std::string name;
        while (!eof() && name_char(peek())) name += src_[pos_++];
        last = seq.size();
        seq.push_back({Kind::kRule, rule_id(name, start)});
        have_last = true;
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (!have_last) return error_at(start, fmt::format("'{}' has nothing to repeat", c));
        int min = 0, max = -1;
        ++pos_;
        if (c == '+') {
          min = 1;
        } else if (c == '?') {
          max = 1;
        } else if (c == '{') {
          skip_space(true);
          HYLO_ASSIGN_OR_RETURN(min, parse_int());
          skip_space(true);
          max = min;
          if (peek() == ',') {
            ++pos_;
            skip_space(true);
            max = -1;
            if (peek() != '}') {
              HYLO_ASSIGN_OR_RETURN(max, parse_int());
            }
            skip_space(true);
          }
          if (peek() != '}') return error_at(pos_, "expected '}' to close the repetition");
          ++pos_;
          if (max >= 0 && max < min) return error_at(start, fmt::format("repetition {{{},{}}}: max < min", min, max));
        }
        repeat(rule, &seq, last, min, max);
        have_last = false;
      } else if (c == '|' || c == ')') {
        break;
      } else {
        return error_at(start, fmt::format("unexpected '{}'", c));
      }
      if (seq.size() > kMaxElements) return error_at(start, "the grammar is too large");
    }
    return seq;
  }

  Result<int> parse_int() {
    const size_t start = pos_;
    long v = 0;
    while (!eof() && peek() >= '0' && peek() <= '9') {
      v = v * 10 + (src_[pos_++] - '0');
      if (v > kMaxRepetition) return error_at(start, fmt::format("repetition counts are limited to {}", kMaxRepetition));
    }
    if (pos_ == start) return error_at(start, "expected a number");
    return static_cast<int>(v);
  }

  // One character of a literal or class: an escape or a UTF-8 character.
  Result<uint32_t> parse_char() {
    const size_t start = pos_;
    const auto b = static_cast<uint8_t>(src_[pos_]);
    if (b == '\\') {
      ++pos_;
      if (eof()) return error_at(start, "escape at the end of the grammar");
      const char e = src_[pos_++];
      auto hex = [&](int n) -> Result<uint32_t> {
        uint32_t v = 0;
        for (int i = 0; i < n; ++i) {
          const char h = peek();
          int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
          if (d < 0) return error_at(pos_, fmt::format("expected {} hex digits after \\{}", n, e));
          v = v * 16 + static_cast<uint32_t>(d);
          ++pos_;
        }
        if (v > kMaxCodePoint) return error_at(start, "code point beyond U+10FFFF");
        return v;
      };
      switch (e) {
        case 'n': return uint32_t{'\n'};
        case 'r': return uint32_t{'\r'};
        case 't': return uint32_t{'\t'};
        case '0': return uint32_t{0};
        case 'x': return hex(2);
        case 'u': return hex(4);
        case 'U': return hex(8);
        case '\\': case '"': case '[': case ']': case '-': case '^': case '/': case '\'': case '.':
          return static_cast<uint32_t>(e);
        default:
          return error_at(start, fmt::format("unknown escape '\\{}'", e));
      }
    }
    const int n = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || pos_ + static_cast<size_t>(n) > src_.size()) return error_at(start, "invalid UTF-8");
    uint32_t cp = n == 1 ? b : b & (0x7F >> n);
    for (int i = 1; i < n; ++i) {
      const auto cb = static_cast<uint8_t>(src_[pos_ + static_cast<size_t>(i)]);
      if ((cb & 0xC0) != 0x80) return error_at(start, "invalid UTF-8");
      cp = (cp << 6) | (cb & 0x3F);
    }
    pos_ += static_cast<size_t>(n);
    return cp;
  }

  // Replaces seq[last, end) by its repetition {min, max} (max < 0: unbounded).
  void repeat(const std::string& rule, Sequence* seq, size_t last, int min, int max) {
    Sequence unit(seq->begin() + static_cast<std::ptrdiff_t>(last), seq->end());
    seq->resize(last);
    if (unit.empty()) return;
    Element e = unit[0];
    if (unit.size() > 1) e = {Kind::kRule, new_rule(rule, {unit})};
    for (int i = 0; i < min; ++i) seq->push_back(e);
    if (max < 0) {
      // R ::= e R | ε  (right recursion: the matcher's stacks do not grow)
      const uint32_t r = new_rule(rule, {});
      rules_[r] = {{e, {Kind::kRule, r}}, {}};
      seq->push_back({Kind::kRule, r});
    } else if (max > min) {
      // R1 ::= e | ε;  Rk ::= e R(k-1) | ε
      uint32_t inner = new_rule(rule, {{e}, {}});
      for (int k = 1; k < max - min; ++k) inner = new_rule(rule, {{e, {Kind::kRule, inner}}, {}});
      seq->push_back({Kind::kRule, inner});
    }
  }

  Result<std::shared_ptr<const Grammar>> finish(uint32_t root) {
    auto g = std::make_shared<Grammar>();
    g->root = root;
    g->classes = std::move(classes_);
    g->rule_names = names_;
    // Flatten.
    g->rules.resize(rules_.size());
    for (size_t r = 0; r < rules_.size(); ++r) {
      for (const Sequence& alt : rules_[r]) {
        g->rules[r].push_back(static_cast<uint32_t>(g->elements.size()));
        g->elements.insert(g->elements.end(), alt.begin(), alt.end());
        g->elements.push_back({Kind::kEnd, 0});
      }
      if (g->elements.size() > kMaxElements) return make_error("[grammar] the grammar is too large");
    }
    // Shortest derivation of each rule, by fixed point; then the tail of every position.
    std::vector<uint32_t> min_len(rules_.size(), kInfinite);
    auto cost = [&](const Element& e) -> uint32_t {
      if (e.kind == Kind::kChars) {
        const int n = g->classes[e.arg].min_utf8_bytes();
        return n > 4 ? kInfinite : static_cast<uint32_t>(n);
      }
      return min_len[e.arg];
    };
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < rules_.size(); ++r) {
        for (const Sequence& alt : rules_[r]) {
          uint64_t sum = 0;
          for (const Element& e : alt) sum += cost(e);
          const auto v = static_cast<uint32_t>(std::min<uint64_t>(sum, kInfinite));
          if (v < min_len[r]) {
            min_len[r] = v;
            changed = true;
          }
        }
      }
    }
    g->min_tail.assign(g->elements.size(), 0);
    for (size_t i = g->elements.size(); i-- > 0;) {
      const Element& e = g->elements[i];
      if (e.kind == Kind::kEnd) continue;
      g->min_tail[i] = std::min<uint32_t>(kInfinite, cost(e) + g->min_tail[i + 1]);
    }
    HYLO_TRY(check_left_recursion(*g, min_len));
    return std::shared_ptr<const Grammar>(std::move(g));
  }

  // A rule that can reach itself without writing a character would make the matcher loop.
  Status check_left_recursion(const Grammar& g, const std::vector<uint32_t>& min_len) const {
    const size_t n = g.rules.size();
    std::vector<std::vector<uint32_t>> first(n);  // rules an alternative may begin with
    for (size_t r = 0; r < n; ++r) {
      for (uint32_t start : g.rules[r]) {
        for (uint32_t p = start; g.elements[p].kind == Kind::kRule; ++p) {
          first[r].push_back(g.elements[p].arg);
          if (min_len[g.elements[p].arg] != 0) break;
        }
      }
    }
    std::vector<uint8_t> mark(n, 0);  // 1: on the path, 2: done
    std::function<bool(uint32_t, std::vector<uint32_t>*)> visit = [&](uint32_t r, std::vector<uint32_t>* path) {
      if (mark[r] == 2) return false;
      if (mark[r] == 1) {
        path->push_back(r);
        return true;
      }
      mark[r] = 1;
      path->push_back(r);
      for (uint32_t s : first[r])
        if (visit(s, path)) return true;
      path->pop_back();
      mark[r] = 2;
      return false;
    };
    for (uint32_t r = 0; r < n; ++r) {
      std::vector<uint32_t> path;
      if (visit(r, &path)) {
        std::string cycle;
        const auto from = std::find(path.begin(), path.end(), path.back());
        for (auto it = from; it != path.end(); ++it) cycle += (cycle.empty() ? "" : " -> ") + names_[*it];
        return make_error("[grammar] left recursion ({}): a rule may not begin with itself, also not through rules "
                          "or repetitions that can match nothing",
                          cycle);
      }
    }
    return ok_status();
  }

  std::string_view src_;
  size_t pos_ = 0;
  std::vector<std::vector<Sequence>> rules_;
  std::vector<std::string> names_;
  std::vector<bool> defined_;
  std::vector<size_t> first_use_;
  std::map<std::string, uint32_t> ids_;
  std::vector<CharClass> classes_;
  std::map<std::pair<bool, std::vector<std::pair<uint32_t, uint32_t>>>, uint32_t> class_ids_;
  int generated_ = 0;
};

}  // namespace

bool CharClass::matches(uint32_t cp) const {
  bool in = false;
  for (const auto& [lo, hi] : ranges) in = in || (cp >= lo && cp <= hi);
  return in != negated;
}

bool CharClass::intersects(uint32_t lo, uint32_t hi) const {
  if (!negated) {
    for (const auto& [a, b] : ranges)
      if (a <= hi && b >= lo) return true;
    return false;
  }
  // Some point of [lo, hi] outside every range (ranges are sorted by start).
  uint32_t next = lo;
  for (const auto& [a, b] : ranges) {
    if (a > next) break;
    if (b >= next) {
      if (b >= hi) return false;
      next = b + 1;
    }
  }
  return next <= hi;
}

bool CharClass::covers(uint32_t lo, uint32_t hi) const {
  CharClass complement{ranges, !negated};
  return !complement.intersects(lo, hi);
}

int CharClass::min_utf8_bytes() const {
  if (!negated) {
    int best = 5;
    for (const auto& [lo, hi] : ranges) best = std::min(best, utf8_length(lo));
    return best;
  }
  for (uint32_t lo : {0u, 0x80u, 0x800u, 0x10000u})
    if (intersects(lo, lo == 0 ? 0x7F : lo == 0x80 ? 0x7FF : lo == 0x800 ? 0xFFFF : kMaxCodePoint))
      return utf8_length(lo);
  return 5;
}

Result<std::shared_ptr<const Grammar>> Grammar::parse(std::string_view text, std::string_view root) {
  return Parser(text).run(root);
}

// ---------------------------------------------------------------------------------------------
// Matcher

size_t GrammarMatcher::VecHash::operator()(const std::vector<uint32_t>& v) const {
  uint64_t h = 1469598103934665603ull;
  for (uint32_t x : v) h = (h ^ x) * 1099511628211ull;
  return static_cast<size_t>(h);
}

GrammarMatcher::GrammarMatcher(std::shared_ptr<const Grammar> grammar) : g_(std::move(grammar)) {
  std::vector<Stack> stacks;
  for (uint32_t start : g_->rules[g_->root]) {
    Stack s;
    if (g_->elements[start].kind != Kind::kEnd) s.push_back(start);
    advance(std::move(s), &stacks, 0);
  }
  initial_.set = intern(std::move(stacks));
}

void GrammarMatcher::advance(Stack stack, std::vector<Stack>* out, int depth) const {
  HYLO_CHECK(depth < 100000);  // left recursion is rejected when parsing
  if (stack.empty() || g_->elements[stack.back()].kind == Kind::kChars) {
    out->push_back(std::move(stack));
    return;
  }
  const uint32_t top = stack.back();
  stack.pop_back();
  if (g_->elements[top + 1].kind != Kind::kEnd) stack.push_back(top + 1);
  for (uint32_t start : g_->rules[g_->elements[top].arg]) {
    Stack s = stack;
    if (g_->elements[start].kind != Kind::kEnd) s.push_back(start);
    advance(std::move(s), out, depth + 1);
  }
}

uint32_t GrammarMatcher::intern(std::vector<Stack> stacks) {
  if (stacks.empty()) return kDead;
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
  std::vector<uint32_t> key;
  for (const Stack& s : stacks) {
    key.push_back(static_cast<uint32_t>(s.size()));
    key.insert(key.end(), s.begin(), s.end());
  }
  auto [it, added] = ids_.emplace(std::move(key), static_cast<uint32_t>(sets_.size()));
  if (!added) return it->second;
  Set set;
  set.cost = set.cost_after_top = std::numeric_limits<int>::max() / 4;
  for (const Stack& s : stacks) {
    if (s.empty()) {
      set.accepting = true;
      set.cost = 0;
      continue;
    }
    uint64_t sum = 0;
    for (uint32_t p : s) sum += g_->min_tail[p];
    set.cost = static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(set.cost), sum));
    const uint64_t after = sum - g_->min_tail[s.back()] + g_->min_tail[s.back() + 1];
    set.cost_after_top = static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(set.cost_after_top), after));
  }
  set.stacks = std::move(stacks);
  sets_.push_back(std::move(set));
  return it->second;
}

uint32_t GrammarMatcher::step(uint32_t set, uint32_t cp) {
  const uint64_t key = (uint64_t{set} << 32) | cp;
  if (auto it = steps_.find(key); it != steps_.end()) return it->second;
  std::vector<Stack> next;
  for (const Stack& s : sets_[set].stacks) {
    if (s.empty()) continue;
    const Element& e = g_->elements[s.back()];
    if (!g_->classes[e.arg].matches(cp)) continue;
    Stack t = s;
    t.pop_back();
    if (g_->elements[s.back() + 1].kind != Kind::kEnd) t.push_back(s.back() + 1);
    advance(std::move(t), &next, 0);
  }
  const uint32_t id = intern(std::move(next));
  steps_.emplace(key, id);
  return id;
}

bool GrammarMatcher::prefix_viable(uint32_t set, uint32_t partial, int need, int length) const {
  static constexpr uint32_t kMinOfLength[5] = {0, 0, 0x80, 0x800, 0x10000};
  const uint32_t lo = std::max(partial << (6 * need), kMinOfLength[length]);
  const uint32_t hi = std::min((partial << (6 * need)) | ((1u << (6 * need)) - 1), kMaxCodePoint);
  if (lo > hi) return false;
  for (const Stack& s : sets_[set].stacks)
    if (!s.empty() && g_->classes[g_->elements[s.back()].arg].intersects(lo, hi)) return true;
  return false;
}

GrammarMatcher::State GrammarMatcher::push(State s, uint8_t b) {
  static constexpr State kDeadState{kDead, 0, 0, 0};
  if (s.dead()) return s;
  if (s.need == 0) {
    if (b < 0x80) {
      s.set = step(s.set, b);
      return s;
    }
    if ((b & 0xE0) == 0xC0) {
      s.partial = b & 0x1F;
      s.need = 1;
    } else if ((b & 0xF0) == 0xE0) {
      s.partial = b & 0x0F;
      s.need = 2;
    } else if ((b & 0xF8) == 0xF0) {
      s.partial = b & 0x07;
      s.need = 3;
    } else {
      return kDeadState;
    }
    s.length = static_cast<uint8_t>(s.need + 1);
  } else {
    if ((b & 0xC0) != 0x80) return kDeadState;
    s.partial = (s.partial << 6) | (b & 0x3F);
    if (--s.need == 0) {
      if (!prefix_viable(s.set, s.partial, 0, s.length)) return kDeadState;  // overlong or beyond U+10FFFF
      s.set = step(s.set, s.partial);
      s.partial = 0;
      s.length = 0;
      return s;
    }
  }
  if (!prefix_viable(s.set, s.partial, s.need, s.length)) return kDeadState;
  return s;
}

GrammarMatcher::State GrammarMatcher::push(State s, std::string_view bytes) {
  for (char c : bytes) s = push(s, static_cast<uint8_t>(c));
  return s;
}

bool GrammarMatcher::accepting(State s) const { return !s.dead() && s.need == 0 && sets_[s.set].accepting; }

bool GrammarMatcher::can_continue(State s) const {
  if (s.dead()) return false;
  if (s.need > 0) return true;
  for (const Stack& st : sets_[s.set].stacks)
    if (!st.empty()) return true;
  return false;
}

int GrammarMatcher::completion_bytes(State s) const {
  if (s.dead()) return std::numeric_limits<int>::max() / 4;
  if (s.need > 0) return s.need + sets_[s.set].cost_after_top;
  return sets_[s.set].cost;
}

const GrammarMatcher::Loops& GrammarMatcher::loops(uint32_t set) {
  if (auto it = loops_.find(set); it != loops_.end()) return it->second;
  Loops l;
  for (uint32_t b = 0; b < 0x80; ++b)
    if (step(set, b) == set) l.ascii[b >> 6] |= uint64_t{1} << (b & 63);
  // Every non-ASCII character leads to the same set when each class at a stack top takes all of
  // them or none; then one of them tells where.
  bool uniform = true;
  for (const Stack& s : sets_[set].stacks) {
    if (s.empty()) continue;
    const CharClass& c = g_->classes[g_->elements[s.back()].arg];
    uniform = uniform && (c.covers(0x80, kMaxCodePoint) || !c.intersects(0x80, kMaxCodePoint));
  }
  l.non_ascii = uniform && step(set, 0x80) == set;
  return loops_[set] = l;
}

bool GrammarMatcher::trim(State* keep) {
  constexpr size_t kMaxSets = 1 << 16, kMaxSteps = 1 << 21;
  if (sets_.size() < kMaxSets && steps_.size() < kMaxSteps) return false;
  std::vector<Stack> stacks = keep->dead() ? std::vector<Stack>{} : sets_[keep->set].stacks;
  std::vector<Stack> initial = sets_[initial_.set].stacks;
  sets_.clear();
  ids_.clear();
  steps_.clear();
  loops_.clear();
  initial_.set = intern(std::move(initial));
  if (!keep->dead()) keep->set = intern(std::move(stacks));
  return true;
}

}  // namespace hylo::runtime
