// Byte-level BPE merge table and merge loop (rank order, leftmost first on ties).
#include "tokenizer/bpe.h"

#include <algorithm>
#include <climits>
#include <queue>

namespace hylo::tokenizer {

void MergeTable::reserve(size_t n_merges) {
  size_t cap = 16;
  int shift = 60;
  while (cap < n_merges * 2) {
    cap *= 2;
    --shift;
  }
  if (cap <= entries_.size()) return;
  std::vector<Entry> old = std::move(entries_);
  entries_.assign(cap, Entry{kEmpty, 0, 0});
  shift_ = shift;
  size_ = 0;
  for (const Entry& e : old)
    if (e.key != kEmpty)
      insert(static_cast<int32_t>(e.key >> 32), static_cast<int32_t>(e.key & 0xFFFFFFFF), e.rank, e.result);
}

void MergeTable::grow() { reserve(std::max<size_t>(16, entries_.size())); }

void MergeTable::insert(int32_t left, int32_t right, int32_t rank, int32_t result) {
  if ((size_ + 1) * 2 > entries_.size()) grow();
  const uint64_t k = key(left, right);
  const size_t mask = entries_.size() - 1;
  for (size_t i = slot(k);; i = (i + 1) & mask) {
    Entry& e = entries_[i];
    if (e.key == kEmpty) {
      e = Entry{k, rank, result};
      ++size_;
      return;
    }
    if (e.key == k) {
      e.rank = rank;
      e.result = result;
      return;
    }
  }
}

const MergeTable::Entry* MergeTable::find(int32_t left, int32_t right) const {
  if (entries_.empty()) return nullptr;
  const uint64_t k = key(left, right);
  const size_t mask = entries_.size() - 1;
  for (size_t i = slot(k);; i = (i + 1) & mask) {
    const Entry& e = entries_[i];
    if (e.key == k) return &e;
    if (e.key == kEmpty) return nullptr;
  }
}

namespace {

// Short words: rescan all pairs after every merge. O(n^2) but with tiny n and no allocation.
void merge_by_scan(const MergeTable& merges, std::vector<int32_t>& sym) {
  while (sym.size() > 1) {
    int32_t best_rank = INT32_MAX, best_result = -1;
    size_t best = 0;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      const MergeTable::Entry* e = merges.find(sym[i], sym[i + 1]);
      if (e != nullptr && e->rank < best_rank) {
        best_rank = e->rank;
        best_result = e->result;
        best = i;
      }
    }
    if (best_result < 0) return;
    sym[best] = best_result;
    sym.erase(sym.begin() + static_cast<ptrdiff_t>(best) + 1);
  }
}

// Long words (a megabyte without spaces is one pre-token): a priority queue of candidate pairs
// over a linked list of symbols, O(n log n). Stale queue entries are recognised by their ids:
// a merge always makes a symbol longer, so an id never reappears at the same position.
void merge_by_queue(const MergeTable& merges, std::vector<int32_t>& sym) {
  const int n = static_cast<int>(sym.size());
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int pos;  // index of the left symbol; increasing left to right
    int32_t left, right, result;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto add = [&](int i) {
    const int j = next[i];
    if (j < 0) return;
    if (const MergeTable::Entry* e = merges.find(sym[i], sym[j])) queue.push({e->rank, i, sym[i], sym[j], e->result});
  };
  for (int i = 0; i + 1 < n; ++i) add(i);
  std::vector<bool> alive(n, true);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    const int i = c.pos;
    if (!alive[i] || sym[i] != c.left) continue;
    const int j = next[i];
    if (j < 0 || sym[j] != c.right) continue;
    sym[i] = c.result;
    alive[j] = false;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    if (prev[i] >= 0) add(prev[i]);
    add(i);
  }
  int out = 0;
  for (int i = 0; i >= 0 && i < n; i = next[i]) sym[out++] = sym[i];
  sym.resize(out);
}

}  // namespace

void bpe_merge(const MergeTable& merges, std::vector<int32_t>* symbols) {
  constexpr size_t kScanLimit = 24;
  if (symbols->size() < 2) return;
  if (symbols->size() <= kScanLimit) {
    merge_by_scan(merges, *symbols);
  } else {
    merge_by_queue(merges, *symbols);
  }
}

}  // namespace hylo::tokenizer
