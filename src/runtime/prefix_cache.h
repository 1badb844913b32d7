// The prefix cache shared by all slots: checkpoints of sequence state at 64-token block
// boundaries, keyed by a hash chain over the tokens, so a prompt that repeats an earlier prefix
// (the next turn of a conversation, another conversation's system prompt) restores the state
// instead of prefilling it. Not the per-slot live state; that stays with the engine.
//
// Each node covers tokens [begin, end) of some prompt and holds the KV rows of that span (its
// ancestors hold the rest) and, while it is a restore point, the recurrent state at end. Nodes
// sit only at multiples of 64 that were reached by prefill, so a restored state has the same bits
// as prefilling from scratch (the DeltaNet chunks are aligned to absolute positions). The byte
// budget holds after every insert: least recently used leaves go first, and an inner node may
// lose its recurrent state (it then only carries KV rows for its descendants).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "models/memory.h"
#include "runtime/checkpoint_store.h"

namespace hylo::runtime {

struct PrefixCacheOptions {
  uint64_t max_bytes = 0;       // RAM budget; 0: nothing is kept
  int32_t interval = 2048;      // tokens between kept checkpoints (a multiple of 64), besides prompt ends
  std::string dir;              // disk tier: checkpoints evicted from RAM (and all at exit) go here
  uint64_t disk_bytes = 0;      // budget of the disk tier
  CheckpointIdentity identity;  // what files must have been written for
};

struct PrefixCacheStats {
  uint64_t lookups = 0, hits = 0, tokens_reused = 0;
  uint64_t checkpoints_saved = 0, evictions = 0;
  uint64_t bytes = 0, max_bytes = 0, nodes = 0;
  uint64_t disk_bytes = 0, disk_files = 0, disk_reads = 0, disk_writes = 0, disk_rejected = 0;
  double save_seconds = 0, restore_seconds = 0;  // copying state into and out of the cache
  uint64_t bytes_saved = 0, bytes_restored = 0;
};

class PrefixCache {
 public:
  static constexpr int32_t kBlock = 64;  // = ops::kDeltaChunk

  explicit PrefixCache(const PrefixCacheOptions& options);
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  const PrefixCacheOptions& options() const { return options_; }
  bool enabled() const { return options_.max_bytes > 0; }

  // Chain hashes of the whole 64-token blocks of tokens: [i] covers tokens [0, 64·(i+1)).
  static std::vector<uint64_t> block_hashes(std::span<const int32_t> tokens);

  // The longest cached restore point that is a prefix of tokens and no longer than limit.
  struct Match {
    int32_t n_tokens = 0;  // 0: none
    uint64_t hash = 0;
    bool on_disk = false;
  };
  Match lookup(std::span<const int32_t> tokens, std::span<const uint64_t> hashes, int32_t limit);
  // Rebuilds the match for these tokens into seq (cleared first). Counts a hit. A checkpoint read
  // from disk is kept in RAM again.
  // mtp_hidden, if given, receives the trunk's hidden state of the last restored position when
  // the checkpoint kept one (empty otherwise): what an MTP head needs to go on drafting.
  Status restore(const Match& match, std::span<const int32_t> tokens, std::span<const uint64_t> hashes,
                 models::Memory& memory, int seq, std::vector<float>* mtp_hidden = nullptr);

  // The first position after pos, up to n_prompt, where a prompt of n_prompt tokens keeps a
  // checkpoint (multiples of the interval, and the last block boundary of the prompt); -1: none.
  int32_t next_boundary(int32_t pos, int32_t n_prompt) const;
  // Keeps seq's state at its current length n (a block boundary) as the state after tokens[0, n).
  // mtp_hidden: the trunk's hidden state of position n − 1 ([n_embd]) when seq's MTP head holds
  // all n positions, else empty; kept in RAM only (a checkpoint read from disk restores without it).
  void insert(std::span<const int32_t> tokens, std::span<const uint64_t> hashes, const models::Memory& memory, int seq,
              std::span<const float> mtp_hidden = {});

  PrefixCacheStats stats() const;
  bool has_disk() const { return store_ != nullptr; }

 private:
  struct Node;
  Node* find(uint64_t hash, int32_t end) const;
  bool matches(const Node* n, std::span<const int32_t> tokens) const;
  void touch(Node* n);
  // Removes n, then any ancestor left with neither children nor state (except keep).
  void remove_leaf(Node* n, const Node* keep);
  void insert_locked(std::span<const int32_t> tokens, std::span<const uint64_t> hashes, const models::Memory& memory,
                     int seq, std::span<const float> mtp_hidden);
  // Writes a restore point to the disk tier (if any) before it leaves RAM.
  void spill(const Node* n);
  // Frees least recently used state until `incoming` more bytes fit; never touches `keep`'s chain.
  bool make_room(uint64_t incoming, const Node* keep);

  PrefixCacheOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::unique_ptr<Node>> nodes_;  // by chain hash
  uint64_t clock_ = 0;
  PrefixCacheStats stats_;
  std::unique_ptr<CheckpointStore> store_;
};

}  // namespace hylo::runtime
