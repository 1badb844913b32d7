// The token filter for grammars (GBNF, or JSON Schema compiled to GBNF): only tokens that keep
// the output a prefix of a sentence allowed, the end of generation only once it is complete.
// Masks are walks of the vocabulary trie (shared prefixes matched once), cached per state.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "runtime/engine.h"
#include "runtime/grammar.h"
#include "runtime/token_trie.h"

namespace hylo::runtime {

class GrammarFilter : public TokenFilter {
 public:
  // With `wait_for_think_end`, the grammar applies after the model's </think> (a thinking model
  // reasons freely first).
  GrammarFilter(std::shared_ptr<const TokenTrie> trie, std::shared_ptr<const Grammar> grammar,
                bool wait_for_think_end = false);
  // Near the end of the budget only tokens that leave room to complete the sentence are allowed
  // (each remaining byte counted as one token); when none does, those that come closest.
  void mask(float* logits, int64_t n_vocab, int32_t tokens_left) override;
  void accept(int32_t token) override;

  bool complete() const { return matcher_.accepting(state_); }
  bool can_continue() const { return matcher_.can_continue(state_); }
  // An unexpected token came through (e.g. a forced one): the filter no longer constrains.
  bool broken() const { return broken_; }

 private:
  // The tokens allowed in one state, grouped by the bytes that complete the sentence after them
  // (a handful of distinct values), so one walk serves every budget.
  struct Mask {
    std::vector<std::pair<int, std::vector<uint64_t>>> groups;  // (completion, bits [ceil(n_vocab / 64)])
  };
  Mask walk();

  std::shared_ptr<const TokenTrie> trie_;
  GrammarMatcher matcher_;
  GrammarMatcher::State state_;
  bool active_;
  bool broken_ = false;
  std::unordered_map<uint64_t, Mask> cache_;  // by state (set, partial character)
  std::vector<uint64_t> bits_;    // the mask being applied
  std::vector<uint8_t> is_eog_;  // [n_vocab]
  struct Frame {
    uint32_t node;
    GrammarMatcher::State state;
  };
  std::vector<Frame> stack_;
};

}  // namespace hylo::runtime
