// Byte-level BPE merging: a merge table keyed by token-id pairs and the per-word merge loop.
// Works on token ids only; text handling (pre-tokenization, byte mapping) lives elsewhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hylo::tokenizer {

// Open-addressing hash table (left id, right id) -> (rank, merged id). Read-only after loading,
// so concurrent lookups are safe.
class MergeTable {
 public:
  struct Entry {
    uint64_t key;
    int32_t rank;
    int32_t result;
  };

  void reserve(size_t n_merges);
  // Later insertions of the same pair replace earlier ones (HF tokenizers builds its merge map
  // the same way).
  void insert(int32_t left, int32_t right, int32_t rank, int32_t result);
  const Entry* find(int32_t left, int32_t right) const;
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  size_t slot(uint64_t k) const { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> shift_); }
  void grow();

  std::vector<Entry> entries_;
  int shift_ = 64;
  size_t size_ = 0;
};

// Merges `symbols` (one id per byte of a pre-token, in order) in place: repeatedly replaces the
// adjacent pair with the lowest merge rank, the leftmost one on ties, until no pair merges.
void bpe_merge(const MergeTable& merges, std::vector<int32_t>* symbols);

}  // namespace hylo::tokenizer
