// Sparse mixture-of-experts FFN (spec §3.7): softmax router, top-k, renormalised weights, the
// selected experts' SwiGLU FFNs computed for all tokens routed to each expert at once, and the
// optional sigmoid-gated shared expert (qwen3next). Each token's expert outputs are summed in
// its top-k order, as llama.cpp does, whatever the batch.
#pragma once

#include <cstdint>
#include <vector>

#include "base/huge_pages.h"
#include "base/thread_pool.h"
#include "ops/matmul.h"
#include "ops/weights.h"

namespace hylo::ops {

struct MoeWeights {
  Weight router;                // ffn_gate_inp: n_embd → n_expert (f32)
  ExpertWeight gate, up, down;  // ffn_{gate,up}_exps: n_embd → n_ff; ffn_down_exps: n_ff → n_embd
  int n_used = 0;
  bool norm_topk = true;
  // Shared expert (absent when shexp_gate is not valid).
  Weight shexp_gate, shexp_up, shexp_down;
  std::vector<float> shexp_gate_inp;  // [n_embd]: s = σ(shexp_gate_inp · f)
};

// Reused buffers; grow to the largest batch seen.
// Reused buffers; grow to the largest batch seen, so steady-state decode allocates nothing.
struct MoeScratch {
  LargeVector<float> logits, probs, weights, hidden, gate_out, up_out, shared;
  std::vector<int32_t> selected, order;
  std::vector<int64_t> slot_row;
  // Routing grouped by expert: the slots (t·k + i) of expert e are slots[offset[e] .. offset[e+1]).
  std::vector<int64_t> offset;
  std::vector<int32_t> slots, fill, active;
  std::vector<Weight> expert_gate, expert_up, expert_down;
  std::vector<MatmulJob> jobs;
  ActRows router_in, tokens_q, shared_in, shared_hidden_q;
  // The routed experts' inputs and hidden activations, rows grouped by expert (offset).
  ActRows routed_in, routed_hidden;
};

// y = MoE(f); f, y: [n_tokens][n_embd]. `layer` names the dumps ("ffn_moe_logits-<layer>").
void moe_forward(ThreadPool& pool, const MoeWeights& w, const float* f, int64_t n_tokens, float* y, MoeScratch& scratch,
                 int layer);

}  // namespace hylo::ops
