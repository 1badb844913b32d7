// GBNF grammars (the notation llama.cpp's server accepts) and a pushdown matcher over UTF-8 bytes.
// Parsing turns repetition and groups into plain rules; matching keeps the set of parse stacks,
// interned so that a state is one integer and transitions are cached. Not a regex engine.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/result.h"

namespace hylo::runtime {

// A set of Unicode code points: ranges, or their complement.
struct CharClass {
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // inclusive
  bool negated = false;

  bool matches(uint32_t cp) const;
  // Whether some code point in [lo, hi] matches.
  bool intersects(uint32_t lo, uint32_t hi) const;
  bool covers(uint32_t lo, uint32_t hi) const;  // every code point in [lo, hi] matches
  int min_utf8_bytes() const;  // of the shortest matching code point (5: none matches)
};

// A compiled grammar. Every alternative is a run of elements in `elements`, ended by kEnd.
struct Grammar {
  enum class Kind : uint8_t { kEnd, kChars, kRule };
  struct Element {
    Kind kind = Kind::kEnd;
    uint32_t arg = 0;  // kChars: index in classes; kRule: index in rules
  };
  std::vector<Element> elements;
  std::vector<std::vector<uint32_t>> rules;  // rule -> start positions of its alternatives
  std::vector<std::string> rule_names;
  std::vector<CharClass> classes;
  uint32_t root = 0;
  std::vector<uint32_t> min_tail;  // [elements.size()] fewest bytes from a position to its kEnd

  // Parses GBNF text. Errors name the line and column: "[grammar] 3:14: expected ...".
  static Result<std::shared_ptr<const Grammar>> parse(std::string_view text, std::string_view root = "root");
};

// The matching state of one text against one grammar, byte by byte. A State is a small value
// (an interned set of parse stacks and a partial UTF-8 character), so token masks can walk the
// vocabulary trie with one copy per node. Not thread-safe: one per generation.
class GrammarMatcher {
 public:
  struct State {
    uint32_t set = 0;      // interned stack set; kDead: no continuation
    uint32_t partial = 0;  // bits of a UTF-8 character begun
    uint8_t need = 0;      // continuation bytes it still needs
    uint8_t length = 0;    // bytes of that character in all
    bool dead() const { return set == kDead; }
    bool operator==(const State&) const = default;
  };
  static constexpr uint32_t kDead = 0xFFFFFFFFu;

  explicit GrammarMatcher(std::shared_ptr<const Grammar> grammar);

  State initial() const { return initial_; }
  State push(State s, uint8_t byte);
  State push(State s, std::string_view bytes);
  // The text so far is a complete sentence of the grammar.
  bool accepting(State s) const;
  // More text may follow.
  bool can_continue(State s) const;
  // Fewest bytes that complete the sentence from s (large when s is dead).
  int completion_bytes(State s) const;
  // The characters that leave a state as it is (the inside of a string, say): ASCII bytes, and
  // whether every non-ASCII character does.
  struct Loops {
    uint64_t ascii[2] = {0, 0};
    bool non_ascii = false;
  };
  const Loops& loops(uint32_t set);
  // Forgets cached sets and transitions once they grow past a bound; `keep` is re-interned.
  // True when it did (set ids seen before are then meaningless).
  bool trim(State* keep);
  size_t n_sets() const { return sets_.size(); }

 private:
  using Stack = std::vector<uint32_t>;  // positions in grammar elements; top at the back
  struct Set {
    std::vector<Stack> stacks;
    bool accepting = false;
    int cost = 0;            // min over stacks of the bytes that complete it
    int cost_after_top = 0;  // the same once the top character is written
  };
  struct VecHash {
    size_t operator()(const std::vector<uint32_t>& v) const;
  };

  // Expands rule references at the top of `stack` until a character element or the empty stack.
  void advance(Stack stack, std::vector<Stack>* out, int depth) const;
  uint32_t intern(std::vector<Stack> stacks);
  uint32_t step(uint32_t set, uint32_t cp);
  // Whether a character begun so (overlong forms excluded) can still be one the set accepts.
  bool prefix_viable(uint32_t set, uint32_t partial, int need, int length) const;

  std::shared_ptr<const Grammar> g_;
  std::vector<Set> sets_;
  std::unordered_map<std::vector<uint32_t>, uint32_t, VecHash> ids_;
  std::unordered_map<uint64_t, uint32_t> steps_;
  std::unordered_map<uint32_t, Loops> loops_;
  State initial_;
};

}  // namespace hylo::runtime
