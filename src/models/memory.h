// Per-sequence model state behind one interface: a paged KV cache for attention layers and a
// recurrent state (conv window + S matrices) for Gated DeltaNet layers.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/tensor_type.h"
#include "ops/kv_cache.h"

namespace hylo::models {

// What state a model keeps per sequence, per layer.
struct MemoryLayout {
  struct Kv {
    int layer;
    int n_kv_head;
    int head_dim;
  };
  struct Recurrent {
    int layer;
    int conv_window;  // kernel size − 1
    int conv_dim;
    int n_heads;
    int d_k;
    int d_v;
  };
  int n_layer = 0;  // all blocks the forward pass may touch (trunk + MTP)
  std::vector<Kv> kv;
  std::vector<Recurrent> recurrent;

  // Bytes of K and V per position over all KV layers (the doctor's arithmetic: row_bytes of
  // n_kv_head·head_dim elements of each type).
  uint64_t kv_bytes_per_token(TensorType type_k, TensorType type_v) const;
  uint64_t kv_bytes_per_token(TensorType kv_type) const { return kv_bytes_per_token(kv_type, kv_type); }
  // Why the layout cannot hold a cache of these types (empty if it can).
  std::string kv_type_problem(TensorType type_k, TensorType type_v) const;
  uint64_t recurrent_bytes_per_sequence() const;
};

// Part of one sequence's state, cut at token boundaries: the KV rows [begin, end) of each attention
// layer and, when `recurrent` is set, the recurrent state at end. A chain of segments from 0
// rebuilds a sequence exactly (the prefix cache keeps such chains).
struct SeqSegment {
  int32_t begin = 0, end = 0;
  std::vector<int32_t> kv_rows;            // per KV layer: rows saved (fewer than end − begin for
                                           // a layer that lags, e.g. an MTP head)
  std::vector<std::vector<uint8_t>> k, v;  // per KV layer: [kv_rows][n_kv_head][head_dim], as stored
  bool recurrent = false;
  std::vector<std::vector<float>> conv, ssm;  // per recurrent layer, as ops::RecurrentSeqState
  uint64_t bytes() const;
};

struct MemoryOptions {
  int n_seq = 1;                          // sequences that can be held at once (ids 0 … n_seq−1)
  int32_t n_ctx = 4096;                   // positions per sequence
  TensorType kv_type = TensorType::kF16;  // K (and V unless kv_type_v is set): f32, f16, bf16, q8_0, q4_0
  std::optional<TensorType> kv_type_v;    // V when it differs from K
  TensorType type_k() const { return kv_type; }
  TensorType type_v() const { return kv_type_v.value_or(kv_type); }
};

class Memory {
 public:
  // The options' KV types must suit the layout (kv_type_problem() empty: a CHECK).
  Memory(const MemoryLayout& layout, const MemoryOptions& options);

  const MemoryOptions& options() const { return options_; }
  const MemoryLayout& layout() const { return layout_; }
  int n_seq() const { return options_.n_seq; }
  int32_t n_ctx() const { return options_.n_ctx; }

  // Number of positions stored for sequence seq.
  int32_t seq_len(int seq) const { return seq_len_.at(seq); }
  void clear(int seq);
  // dst becomes a copy of src (forking a conversation).
  Status copy(int src, int dst);
  // Keeps the first n positions. Attention-only models can always do this; models with recurrent
  // layers only to n == seq_len (nothing to undo) or n == 0, unless a snapshot was taken at n.
  Status truncate(int seq, int32_t n);
  // Recurrent state snapshot of seq at its current length (one per sequence); truncate() to that
  // length restores it (the engine rewinds to the end of a prompt with it).
  void snapshot(int seq);
  bool has_recurrent() const { return !layout_.recurrent.empty(); }

  // Speculative verification. arm_checkpoints(seq, n) before a forward that appends n rows to seq:
  // that forward saves the recurrent state after each of its first n−1 rows, and rollback(seq, len)
  // afterwards keeps any length in (seq_len at arming, + n] exactly, by swapping a saved state in.
  // Why checkpoints rather than snapshot + recompute: the verify pass has each head's state in
  // cache after every token, so saving it costs only writes; a rollback then needs no second pass
  // over the weights (which is what a rejected draft would otherwise cost) and no copy of the live
  // state. The price is n−1 states of memory per armed sequence, allocated on first use.
  Status arm_checkpoints(int seq, int32_t n_rows);
  Status rollback(int seq, int32_t n);
  // For the forward pass: the n−1 checkpoint states of recurrent layer `layer` when seq is armed
  // for a run of n rows at pos0; null otherwise.
  ops::RecurrentSeqState* checkpoints(int layer, int seq, int32_t pos0, int64_t n);

  // The state of seq from position begin to its current length (KV rows and, if with_recurrent,
  // the recurrent state at that length).
  Status save_segment(int seq, int32_t begin, bool with_recurrent, SeqSegment* out) const;
  // Appends a segment saved from a sequence with the same tokens: seq must hold exactly
  // segment.begin positions. With with_recurrent, the segment's recurrent state (it must have one
  // if the model has recurrent layers) replaces seq's.
  Status append_segment(int seq, const SeqSegment& segment, bool with_recurrent = true);

  uint64_t bytes_allocated() const;

  // For the models' forward pass.
  ops::KvSeqCache& kv(int layer, int seq);
  const ops::KvSeqCache& kv(int layer, int seq) const;
  ops::RecurrentSeqState& recurrent(int layer, int seq);
  void set_seq_len(int seq, int32_t n) { seq_len_.at(seq) = n; }

 private:
  MemoryLayout layout_;
  MemoryOptions options_;
  std::vector<int> kv_slot_of_layer_, rs_slot_of_layer_;                  // -1 if none
  std::vector<std::vector<std::unique_ptr<ops::KvSeqCache>>> kv_;         // [kv layer][seq]
  std::vector<std::vector<std::unique_ptr<ops::RecurrentSeqState>>> rs_;  // [recurrent layer][seq]
  struct Snapshot {
    int32_t len = -1;
    std::vector<std::vector<float>> conv, ssm;  // per recurrent layer
  };
  std::vector<Snapshot> snapshots_;
  struct Checkpoints {
    int32_t pos0 = -1;  // -1: not armed
    int32_t n = 0;
    std::vector<std::vector<ops::RecurrentSeqState>> states;  // [recurrent layer][n−1]
  };
  std::vector<Checkpoints> checkpoints_;
  std::vector<int32_t> seq_len_;
};

}  // namespace hylo::models
