// Causal multi-head attention with grouped KV heads over the paged KV cache.
// Each (query row, KV head) is computed independently in a fixed order (positions ascending),
// so results do not depend on which other rows share the batch.
#pragma once

#include <cstdint>
#include <span>

#include "base/thread_pool.h"
#include "ops/kv_cache.h"

namespace hylo::ops {

struct AttentionShape {
  int n_head;     // query heads; query head h uses KV head h / (n_head / n_kv_head)
  int n_kv_head;
  int head_dim;
  float scale;    // applied to q·k before the softmax
};

// The rows of one sequence inside a batch: T consecutive positions pos0 … pos0+T−1, whose K/V are
// already in `cache`.
struct AttentionRun {
  const KvSeqCache* cache;
  const float* q;  // [T][n_head][head_dim]
  float* out;      // [T][n_head][head_dim]
  int64_t n_tokens;
  int32_t pos0;
};

void attention(ThreadPool& pool, std::span<const AttentionRun> runs, const AttentionShape& shape);

}  // namespace hylo::ops
