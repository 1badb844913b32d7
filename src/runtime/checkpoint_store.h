// The prefix cache's disk tier: one self-contained file per checkpoint (its tokens, the KV rows
// from position 0 and the recurrent state at its end), so files survive a restart and each can
// be checked on its own. A file is used only if its header names this model and memory layout,
// its sizes add up and its checksum matches; anything else is ignored with a warning.
// Not thread-safe: the prefix cache calls it under its lock.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "models/memory.h"
#include "models/model.h"

namespace hylo::runtime {

struct CheckpointIdentity {
  uint64_t model = 0;   // the weights (see model_identity())
  uint64_t layout = 0;  // KV and recurrent shapes, KV types, RoPE
};

// The identity of a model's weights (file size, tensor table and the first bytes of each tensor:
// cheap, unlike hashing every weight) and of its memory layout with these KV types and the
// model's current RoPE.
CheckpointIdentity checkpoint_identity(const models::Model& model, TensorType type_k, TensorType type_v);

class CheckpointStore {
 public:
  // Indexes the files already in dir (created if missing). max_bytes bounds the files kept.
  static Result<std::unique_ptr<CheckpointStore>> open(const std::string& dir, uint64_t max_bytes,
                                                       const CheckpointIdentity& id);

  bool has(uint64_t hash, int32_t n_tokens) const;
  // The longest stored checkpoint whose tokens are a prefix of tokens, no longer than limit and
  // longer than `better_than`; 0 if none. *hash gets its chain hash.
  int32_t lookup(std::span<const int32_t> tokens, std::span<const uint64_t> hashes, int32_t limit, int32_t better_than,
                 uint64_t* hash);
  // Writes the state after tokens (n = tokens.size()); whole covers [0, n) with recurrent state.
  // Older files go first when the budget would be exceeded.
  Status write(uint64_t hash, std::span<const int32_t> tokens, const models::SeqSegment& whole);
  // Reads and validates a file; a bad file is removed from the index (and reported).
  Result<models::SeqSegment> read(uint64_t hash, int32_t n_tokens);

  uint64_t bytes() const { return bytes_; }
  size_t files() const { return index_.size(); }
  uint64_t reads() const { return reads_; }
  uint64_t writes() const { return writes_; }
  uint64_t rejected() const { return rejected_; }

 private:
  struct Entry {
    std::string path;
    int32_t n_tokens = 0;
    uint64_t bytes = 0;
    uint64_t last_used = 0;
  };
  CheckpointStore(std::string dir, uint64_t max_bytes, const CheckpointIdentity& id);
  void scan();
  Result<std::vector<int32_t>> read_tokens(const Entry& e) const;
  void drop(uint64_t hash, const std::string& why);

  std::string dir_;
  uint64_t max_bytes_;
  CheckpointIdentity id_;
  std::map<uint64_t, Entry> index_;  // by chain hash
  uint64_t bytes_ = 0, clock_ = 0, reads_ = 0, writes_ = 0, rejected_ = 0;
};

}  // namespace hylo::runtime
