#include "runtime/grammar_filter.h"

#include <algorithm>
#include <limits>

namespace hylo::runtime {

namespace {

constexpr size_t kMaxCachedMasks = 256;

uint64_t state_key(const GrammarMatcher::State& s) {
  return (uint64_t{s.set} << 32) ^ (uint64_t{s.partial} << 5) ^ (uint64_t{s.length} << 2) ^ s.need;
}

}  // namespace

GrammarFilter::GrammarFilter(std::shared_ptr<const TokenTrie> trie, std::shared_ptr<const Grammar> grammar,
                             bool wait_for_think_end)
    : trie_(std::move(trie)),
      matcher_(std::move(grammar)),
      state_(matcher_.initial()),
      active_(!wait_for_think_end || trie_->think_end_id() < 0) {}

GrammarFilter::Mask GrammarFilter::walk() {
  const TokenTrie::Trie& trie = trie_->all();
  const auto words = static_cast<size_t>((trie_->n_vocab() + 63) / 64);
  Mask out;
  auto group = [&](int completion) -> std::vector<uint64_t>& {
    for (auto& g : out.groups)
      if (g.first == completion) return g.second;
    return out.groups.emplace_back(completion, std::vector<uint64_t>(words, 0)).second;
  };
  stack_.clear();
  stack_.push_back({0, state_});
  while (!stack_.empty()) {
    const Frame f = stack_.back();
    stack_.pop_back();
    const TokenTrie::Node& n = trie.nodes[f.node];
    if (f.node != 0 && n.n_tokens > 0) {
      std::vector<uint64_t>& bits = group(matcher_.completion_bytes(f.state));
      for (uint32_t k = 0; k < n.n_tokens; ++k) {
        const auto id = static_cast<uint64_t>(trie.token_ids[n.first_token + k]);
        bits[id >> 6] |= uint64_t{1} << (id & 63);
      }
    }
    if (n.n_children == 0) continue;
    const TokenTrie::Below& below = trie.below[f.node];
    if (f.state.need == 0 && !below.irregular) {
      // Every byte below keeps the state as it is: the whole subtree is allowed, at this
      // completion, without walking it.
      const GrammarMatcher::Loops& l = matcher_.loops(f.state.set);
      if ((below.ascii[0] & ~l.ascii[0]) == 0 && (below.ascii[1] & ~l.ascii[1]) == 0 && (!below.high || l.non_ascii)) {
        std::vector<uint64_t>& bits = group(matcher_.completion_bytes(f.state));
        for (uint32_t t = n.first_token + n.n_tokens; t < below.end; ++t) {
          const auto id = static_cast<uint64_t>(trie.token_ids[t]);
          bits[id >> 6] |= uint64_t{1} << (id & 63);
        }
        continue;
      }
    }
    for (uint32_t k = 0; k < n.n_children; ++k) {
      const uint32_t child = n.first_child + k;
      const GrammarMatcher::State s = matcher_.push(f.state, trie.nodes[child].byte);
      if (!s.dead()) stack_.push_back({child, s});
    }
  }
  std::sort(out.groups.begin(), out.groups.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

void GrammarFilter::mask(float* logits, int64_t n_vocab, int32_t tokens_left) {
  if (!active_ || broken_) return;
  if (matcher_.trim(&state_)) cache_.clear();
  const uint64_t key = state_key(state_);
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    if (cache_.size() >= kMaxCachedMasks) cache_.clear();
    it = cache_.emplace(key, walk()).first;
  }
  const Mask& m = it->second;
  // After this token, tokens_left - 1 more may follow: tokens whose completion fits that. When
  // none does, those that come closest (the output is then cut at the budget, and the request
  // reports that it was).
  const int budget = std::max(0, tokens_left - 1);
  bits_.assign(static_cast<size_t>((n_vocab + 63) / 64), 0);
  bool any = false;
  for (const auto& [completion, bits] : m.groups) {
    if (completion > budget && (any || matcher_.accepting(state_))) break;
    for (size_t w = 0; w < bits.size() && w < bits_.size(); ++w) bits_[w] |= bits[w];
    any = true;
  }
  // The end of generation only where the sentence is complete (or where no token can follow at
  // all: the vocabulary cannot write what the grammar needs).
  const bool can_end = matcher_.accepting(state_) || !any;
  if (is_eog_.size() != static_cast<size_t>(n_vocab)) {
    is_eog_.assign(static_cast<size_t>(n_vocab), 0);
    for (int32_t id : trie_->eog_ids())
      if (id >= 0 && id < n_vocab) is_eog_[static_cast<size_t>(id)] = 1;
  }
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int64_t id = 0; id < n_vocab; ++id) {
    const auto i = static_cast<size_t>(id);
    const bool allowed = is_eog_[i] ? can_end : ((bits_[i >> 6] >> (i & 63)) & 1) != 0;
    if (!allowed) logits[id] = kNegInf;
  }
}

void GrammarFilter::accept(int32_t token) {
  if (broken_) return;
  if (!active_) {
    active_ = token == trie_->think_end_id();
    return;
  }
  if (token < 0 || token >= trie_->n_vocab()) {
    broken_ = true;
    return;
  }
  state_ = matcher_.push(state_, trie_->piece(token));
  if (state_.dead()) broken_ = true;
}

}  // namespace hylo::runtime
