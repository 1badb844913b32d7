#include "ops/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "kernels/vec.h"
#include "ops/dump.h"

namespace hylo::ops {
namespace {

// Gathers the token rows of `slots` (slot = t·k + i), in order, from src into dst (same format).
void gather_rows(ThreadPool& pool, const ActRows& src, const int32_t* slots, int64_t n, int64_t k, ActRows* dst) {
  dst->type = src.type;
  dst->n = src.n;
  dst->stride = src.stride;
  dst->rows = n;
  const size_t need = src.stride * static_cast<size_t>(n);
  if (dst->data.size() < need) dst->data.resize(need);
  pool.parallel_for(n, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) std::memcpy(dst->data.data() + i * src.stride, src.row(slots[i] / k), src.stride);
  });
}

}  // namespace

void moe_forward(ThreadPool& pool, const MoeWeights& w, const float* f, int64_t n_tokens, float* y, MoeScratch& s,
                 int layer) {
  const kernels::VecKernels& K = kernels::vec();
  const int64_t n_embd = w.router.n_in, n_exp = w.router.n_out, k = w.n_used;
  const int64_t n_ff = w.gate.first.n_out;

  // Router: logits, softmax, top-k, renormalisation (clamped as llama.cpp).
  s.logits.resize(n_tokens * n_exp);
  matmul(pool, w.router, f, n_tokens, s.logits.data(), &s.router_in);
  dump(layer_name("ffn_moe_logits", layer), s.logits.data(), {n_tokens, n_exp});
  s.probs.resize(s.logits.size());
  std::copy(s.logits.begin(), s.logits.end(), s.probs.begin());
  s.selected.resize(n_tokens * k);
  s.weights.resize(n_tokens * k);
  s.order.resize(n_exp);
  for (int64_t t = 0; t < n_tokens; ++t) {
    float* p = s.probs.data() + t * n_exp;
    K.softmax(p, n_exp);
    std::iota(s.order.begin(), s.order.end(), 0);
    std::partial_sort(s.order.begin(), s.order.begin() + k, s.order.end(),
                      [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    float sum = 0.0f;
    for (int64_t i = 0; i < k; ++i) {
      s.selected[t * k + i] = s.order[i];
      s.weights[t * k + i] = p[s.order[i]];
      sum += p[s.order[i]];
    }
    if (w.norm_topk) {
      sum = std::max(sum, 6.103515625e-5f);
      for (int64_t i = 0; i < k; ++i) s.weights[t * k + i] /= sum;
    }
  }
  dump(layer_name("ffn_moe_probs", layer), s.probs.data(), {n_tokens, n_exp});
  dump(layer_name("ffn_moe_weights_norm", layer), s.weights.data(), {n_tokens, k});

  // Slots grouped by expert (a counting sort, tokens in order within an expert); offset[e] is also
  // the first row of expert e's outputs in gate_out/up_out/hidden.
  s.offset.assign(n_exp + 1, 0);
  for (int64_t slot = 0; slot < n_tokens * k; ++slot) ++s.offset[s.selected[slot] + 1];
  for (int64_t e = 0; e < n_exp; ++e) s.offset[e + 1] += s.offset[e];
  s.slots.resize(n_tokens * k);
  s.fill.assign(n_exp, 0);
  for (int64_t slot = 0; slot < n_tokens * k; ++slot) {
    const int32_t e = s.selected[slot];
    s.slots[s.offset[e] + s.fill[e]++] = static_cast<int32_t>(slot);
  }
  s.active.clear();
  for (int32_t e = 0; e < n_exp; ++e)
    if (s.offset[e + 1] > s.offset[e]) s.active.push_back(e);
  const int64_t* offset = s.offset.data();

  // Gate and up projections of every active expert (and the shared expert) in one parallel region.
  const kernels::MatmulKernel& in_kernel = *w.gate.first.kernel;
  convert_rows(pool, in_kernel, f, n_tokens, n_embd, n_embd, &s.tokens_q);
  if (s.expert_gate.size() < static_cast<size_t>(n_exp)) {
    s.expert_gate.resize(n_exp);
    s.expert_up.resize(n_exp);
    s.expert_down.resize(n_exp);
  }
  const int64_t routed_rows = offset[n_exp];
  const bool shared = w.shexp_gate.valid();
  const int64_t n_ff_sh = shared ? w.shexp_gate.n_out : 0;
  s.gate_out.resize(routed_rows * n_ff + n_tokens * n_ff_sh);
  s.up_out.resize(routed_rows * n_ff + n_tokens * n_ff_sh);
  // Every expert's input rows in one batch (expert after expert), each product reading its range.
  gather_rows(pool, s.tokens_q, s.slots.data(), routed_rows, k, &s.routed_in);
  s.jobs.clear();
  for (int32_t e : s.active) {
    s.expert_gate[e] = w.gate.expert(e);
    s.expert_up[e] = w.up.expert(e);
    s.expert_down[e] = w.down.expert(e);
    s.jobs.push_back(
        {&s.expert_gate[e], &s.routed_in, s.gate_out.data() + offset[e] * n_ff, n_ff, offset[e], offset[e + 1]});
    s.jobs.push_back(
        {&s.expert_up[e], &s.routed_in, s.up_out.data() + offset[e] * n_ff, n_ff, offset[e], offset[e + 1]});
  }
  float* sh_gate = s.gate_out.data() + routed_rows * n_ff;
  float* sh_up = s.up_out.data() + routed_rows * n_ff;
  if (shared) {
    const ActRows* in = &s.tokens_q;
    if (w.shexp_gate.kernel->act != in_kernel.act) {
      convert_rows(pool, *w.shexp_gate.kernel, f, n_tokens, n_embd, n_embd, &s.shared_in);
      in = &s.shared_in;
    }
    s.jobs.push_back({&w.shexp_gate, in, sh_gate, n_ff_sh});
    s.jobs.push_back({&w.shexp_up, in, sh_up, n_ff_sh});
  }
  matmul(pool, s.jobs);

  // SwiGLU, then the down projections.
  pool.parallel_for(routed_rows * n_ff + n_tokens * n_ff_sh, kElementGrain, [&](int64_t b, int64_t e) {
    K.swiglu(s.gate_out.data() + b, s.up_out.data() + b, s.gate_out.data() + b, e - b);
  });
  s.hidden.resize(routed_rows * n_embd);
  s.shared.resize(n_tokens * n_embd);
  s.jobs.clear();
  convert_rows(pool, *w.down.first.kernel, s.gate_out.data(), routed_rows, n_ff, n_ff, &s.routed_hidden);
  for (int32_t e : s.active) {
    s.jobs.push_back(
        {&s.expert_down[e], &s.routed_hidden, s.hidden.data() + offset[e] * n_embd, n_embd, offset[e], offset[e + 1]});
  }
  if (shared) {
    convert_rows(pool, *w.shexp_down.kernel, sh_gate, n_tokens, n_ff_sh, n_ff_sh, &s.shared_hidden_q);
    s.jobs.push_back({&w.shexp_down, &s.shared_hidden_q, s.shared.data(), n_embd});
  }
  matmul(pool, s.jobs);
  // Row of s.hidden holding the output of slot t·k + i.
  s.slot_row.resize(n_tokens * k);
  for (int32_t e : s.active)
    for (int64_t r = offset[e]; r < offset[e + 1]; ++r) s.slot_row[s.slots[r]] = r;

  // y = Σ_i w_i·FFN_i in top-k order, then + σ(shexp_gate_inp·f)·shared; per token, so the order
  // never depends on the batch.
  pool.parallel_for(n_tokens, 8, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      float* yt = y + t * n_embd;
      K.scale(s.hidden.data() + s.slot_row[t * k] * n_embd, s.weights[t * k], yt, n_embd);
      for (int64_t i = 1; i < k; ++i)
        K.axpy(s.weights[t * k + i], s.hidden.data() + s.slot_row[t * k + i] * n_embd, yt, n_embd);
    }
  });
  dump(layer_name("ffn_moe_out", layer), y, {n_tokens, n_embd});
  if (shared) {
    pool.parallel_for(n_tokens, 8, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const float gate = 1.0f / (1.0f + std::exp(-K.dot(w.shexp_gate_inp.data(), f + t * n_embd, n_embd)));
        K.axpy(gate, s.shared.data() + t * n_embd, y + t * n_embd, n_embd);
      }
    });
    dump(layer_name("ffn_shexp", layer), s.shared.data(), {n_tokens, n_embd});
  }
}

}  // namespace hylo::ops
