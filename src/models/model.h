// The model interface: a forward pass over a batch of (sequence, position, token) rows.
// One implementation file per architecture (qwen3_next.cpp, qwen3_moe.cpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/thread_pool.h"
#include "gguf/gguf.h"
#include "models/memory.h"
#include "models/rope.h"
#include "ops/delta_net.h"

namespace hylo::models {

// One row of a batch. The rows of a sequence are consecutive and continue it: positions
// seq_len(seq), seq_len(seq)+1, ... A sequence appears in at most one run per batch.
struct BatchRow {
  int32_t seq = 0;
  int32_t pos = 0;
  int32_t token = 0;
  bool logits = false;  // produce this row's logits
};

struct ModelInfo {
  std::string arch;  // general.architecture
  std::string name;  // general.name
  std::string path;
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;      // trunk blocks (MTP blocks excluded)
  int64_t n_ctx_train = 0;  // <arch>.context_length
  int64_t n_expert = 0, n_expert_used = 0;
  bool has_mtp = false;
  // Weight bytes: all tensors, and those read to decode one token (active experts only).
  uint64_t weight_bytes = 0;
  uint64_t active_weight_bytes = 0;
  uint64_t active_params = 0;   // multiply-adds per token in the matrix products
  uint64_t lm_head_params = 0;  // of which the LM head's (n_embd · n_vocab: once per logit row)
  // The load-time repack of the matrices into their kernels' interleaved layout (0: all in place).
  uint64_t repacked_bytes = 0;
  double repack_seconds = 0.0;
  // The rest of a token's arithmetic: attention costs this many FLOPs per key it attends to
  // (QK and PV, all layers), the gated delta rule a fixed amount (recurrent form).
  uint64_t attention_flops_per_key = 0;
  uint64_t recurrent_flops_per_token = 0;
  // FLOPs of one token at a context of n_ctx positions.
  double flops_per_token(double n_ctx) const {
    return 2.0 * static_cast<double>(active_params) + static_cast<double>(recurrent_flops_per_token) +
           static_cast<double>(attention_flops_per_key) * n_ctx;
  }
};

struct ForwardOptions {
  ops::DeltaMode delta_mode = ops::DeltaMode::kAuto;
  // Keep every row's final normed hidden state in all_hidden(), not only the logit rows' (MTP
  // drafting feeds the trunk's hidden state of each prompt position to the MTP head).
  bool keep_all_hidden = false;
};

class Model {
 public:
  virtual ~Model() = default;

  const ModelInfo& info() const { return info_; }
  const gguf::File& file() const { return file_; }
  virtual MemoryLayout memory_layout() const = 0;

  ForwardOptions& options() { return options_; }

  // One user at a time: forward() keeps its scratch and its results (last_hidden(), all_hidden())
  // in the model, so a second driver running beside the first would read the other's rows. A runtime
  // engine claims the model for its lifetime; claim() is false while another holds it.
  bool claim() { return !claimed_.exchange(true); }
  void release() { claimed_.store(false); }

  // The RoPE every attention layer uses: the file's after loading; set_rope() applies the run's
  // choice (choose_rope) before the first forward.
  const RopeParams& rope() const { return rope_; }
  void set_rope(const RopeParams& rope) { rope_ = rope; }

  // Runs a batch. For each row with logits = true, in row order, writes n_vocab floats to
  // `logits` ([n_logit_rows][n_vocab]). Validates the batch against `memory` first; on error
  // nothing has been changed. Not thread-safe: one forward at a time per model.
  virtual Status forward(std::span<const BatchRow> rows, Memory& memory, ThreadPool& pool, float* logits) = 0;

  // The final normed hidden states of the logit rows of the last forward ([n][n_embd]): the
  // LM head's input (`h_nextn`, the MTP head's input).
  virtual const std::vector<float>& last_hidden() const = 0;
  // With options().keep_all_hidden: the final normed hidden states of all rows of the last
  // forward ([n_rows][n_embd]); empty otherwise.
  virtual const std::vector<float>& all_hidden() const = 0;

  // Multi-token prediction (NextN) head, when the file has one (spec §5): row k predicts the token
  // after rows[k].token from that token and `hidden[k]`, the trunk's h_nextn of the position
  // before it (zeros for position 0). The head keeps its own KV cache in `memory` (rows of a
  // sequence continue it or rewrite its tail). Writes n_vocab logits per row with logits = true
  // and, into last_hidden(), the head's own normed hidden states of all rows (the input for
  // drafting one more token).
  virtual bool has_mtp() const { return false; }
  virtual Status forward_mtp(std::span<const BatchRow> rows, const float* hidden, Memory& memory, ThreadPool& pool,
                             float* logits) {
    return make_error("[model] this model has no MTP head");
  }
  // Positions already in the MTP head's cache for a sequence.
  virtual int32_t mtp_len(const Memory& memory, int seq) const { return 0; }

 protected:
  Model(gguf::File file) : file_(std::move(file)) {}
  gguf::File file_;
  ModelInfo info_;
  ForwardOptions options_;
  RopeParams rope_;

 private:
  std::atomic<bool> claimed_{false};
};

struct LoadOptions {
  // Repack the matrices into their kernels' interleaved layout when they fit in memory
  // (ops/weight_images.h); false keeps every weight in place in the mapping (inspection only).
  bool repack = true;
  // Read the file into memory instead of mapping it (--no-mmap).
  bool read_into_memory = false;
};

// Opens a GGUF file and builds the model for its architecture (weights memory-mapped, and
// repacked once where that pays, see LoadOptions).
Result<std::unique_ptr<Model>> load_model(const std::string& path, const LoadOptions& options = {});
// Architectures this build can run.
std::vector<std::string> supported_architectures();

}  // namespace hylo::models
