// The gated delta rule of Gated DeltaNet (spec §3.5.4, §3.6), in two forms:
//  * recurrent: one token at a time, S ← e^g S; e = Sᵀk; S ← S + k·(β(v − e))ᵀ; o = Sᵀq;
//  * chunked: 64 tokens at once in matrix form (WY representation), exact in real arithmetic.
// gated_delta_rule() uses the chunked form for chunks aligned to absolute positions that are
// multiples of kDeltaChunk and lie wholly inside a run, and the recurrent form elsewhere; so a
// prompt gives the same bits however it is split, as long as splits fall on multiples of 64.
#pragma once

#include <cstdint>
#include <span>

#include "base/thread_pool.h"

namespace hylo::ops {

inline constexpr int kDeltaChunk = 64;

struct DeltaNetShape {
  int n_k_heads;  // H_k
  int n_v_heads;  // H_v, a multiple of H_k
  int d_k;
  int d_v;
  bool tiled_heads = false;  // κ(j) = j mod H_k (qwen35) instead of j / (H_v / H_k) (qwen3next)
  int key_head(int j) const { return tiled_heads ? j % n_k_heads : j / (n_v_heads / n_k_heads); }
};

// The tokens of one sequence inside a batch, positions pos0 … pos0 + n_tokens − 1.
struct DeltaRun {
  const float* q;     // [T] rows of [H_k][d_k], L2-normalised, not yet scaled by 1/√d_k
  const float* k;     // [T] rows of [H_k][d_k], L2-normalised
  const float* v;     // [T] rows of [H_v][d_v]
  const float* g;     // [T][H_v] log decay (≤ 0)
  const float* beta;  // [T][H_v]
  float* state;       // [H_v][d_k][d_v], in/out
  float* out;         // [T] rows of [H_v][d_v]
  int64_t qk_stride;  // floats between consecutive tokens of q and k
  int64_t v_stride;   // floats between consecutive tokens of v
  int64_t out_stride;
  int64_t n_tokens;
  int64_t pos0;
  // Optional [n_tokens] pointers (entries may be null): S after each token is copied there
  // (speculative verification keeps these to roll back rejected tokens). Such a run goes one token
  // at a time, exactly as single-token decode steps would, so its bits match sequential decoding.
  float* const* state_after = nullptr;
};

enum class DeltaMode { kAuto, kRecurrent, kChunked };

// kAuto: aligned full chunks chunked, the rest recurrent (see above). kChunked forces the
// chunked form on every (partial) chunk relative to pos0; kRecurrent never uses it.
void gated_delta_rule(ThreadPool& pool, std::span<const DeltaRun> runs, const DeltaNetShape& shape,
                      DeltaMode mode = DeltaMode::kAuto);

}  // namespace hylo::ops
