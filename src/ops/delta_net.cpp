#include "ops/delta_net.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/vec.h"

namespace hylo::ops {
namespace {

struct HeadView {
  const DeltaRun* run;
  int j;   // value head
  int kh;  // key head
  float* S;
};

// Recurrent form over tokens [t0, t1) of one value head.
void recurrent(const HeadView& h, const DeltaNetShape& s, int64_t t0, int64_t t1) {
  const kernels::VecKernels& K = kernels::vec();
  const DeltaRun& r = *h.run;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.d_k));
  std::vector<float> e(s.d_v), delta(s.d_v), q(s.d_k);
  for (int64_t t = t0; t < t1; ++t) {
    const float* kt = r.k + t * r.qk_stride + static_cast<int64_t>(h.kh) * s.d_k;
    const float* qt = r.q + t * r.qk_stride + static_cast<int64_t>(h.kh) * s.d_k;
    const float* vt = r.v + t * r.v_stride + static_cast<int64_t>(h.j) * s.d_v;
    const float decay = std::exp(r.g[t * s.n_v_heads + h.j]);
    const float beta = r.beta[t * s.n_v_heads + h.j];
    float* ot = r.out + t * r.out_stride + static_cast<int64_t>(h.j) * s.d_v;
    K.scale(qt, scale, q.data(), s.d_k);
    // Decay, then e = Sᵀk (rows of S are indexed by the key dimension).
    std::fill(e.begin(), e.end(), 0.0f);
    for (int i = 0; i < s.d_k; ++i) {
      float* row = h.S + static_cast<int64_t>(i) * s.d_v;
      K.scale(row, decay, row, s.d_v);
      K.axpy(kt[i], row, e.data(), s.d_v);
    }
    for (int c = 0; c < s.d_v; ++c) delta[c] = beta * (vt[c] - e[c]);
    // Rank-1 update, then the read-out o = Sᵀq after it.
    std::memset(ot, 0, sizeof(float) * s.d_v);
    for (int i = 0; i < s.d_k; ++i) {
      float* row = h.S + static_cast<int64_t>(i) * s.d_v;
      K.axpy(kt[i], delta.data(), row, s.d_v);
      K.axpy(q[i], row, ot, s.d_v);
    }
  }
}

// Chunked form over tokens [t0, t0 + n), n ≤ kDeltaChunk, of one value head (spec §3.6).
// U and W are found by forward substitution with (I + A) instead of forming T = (I + A)⁻¹.
void chunked(const HeadView& h, const DeltaNetShape& s, int64_t t0, int64_t n) {
  const kernels::VecKernels& K = kernels::vec();
  const DeltaRun& r = *h.run;
  const int dk = s.d_k, dv = s.d_v;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dk));
  thread_local std::vector<float> buf;
  const size_t need = static_cast<size_t>(n) * (2 * dk + 2 * dv + n + 2) + 2 * n * n + dv;
  if (buf.size() < need) buf.resize(need);
  float* Q = buf.data();       // [n][dk] scaled queries
  float* W = Q + n * dk;       // [n][dk]
  float* U = W + n * dk;       // [n][dv]  (becomes Vn)
  float* O = U + n * dv;       // [n][dv]
  float* gam = O + n * dv;     // [n] cumulative log decay
  float* egam = gam + n;       // [n] e^γ
  float* A = egam + n;         // [n][n] strictly lower: β_r (k_r·k_s) e^{γ_r−γ_s}
  float* P = A + n * n;        // [n][n] lower incl. diagonal: (q_r·k_s) e^{γ_r−γ_s}
  auto krow = [&](int64_t i) { return r.k + (t0 + i) * r.qk_stride + static_cast<int64_t>(h.kh) * dk; };
  auto vrow = [&](int64_t i) { return r.v + (t0 + i) * r.v_stride + static_cast<int64_t>(h.j) * dv; };
  auto beta = [&](int64_t i) { return r.beta[(t0 + i) * s.n_v_heads + h.j]; };

  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    acc += r.g[(t0 + i) * s.n_v_heads + h.j];
    gam[i] = acc;
    egam[i] = std::exp(acc);
    K.scale(r.q + (t0 + i) * r.qk_stride + static_cast<int64_t>(h.kh) * dk, scale, Q + i * dk, dk);
  }
  for (int64_t a = 0; a < n; ++a) {
    for (int64_t b = 0; b <= a; ++b) {
      const float decay = std::exp(gam[a] - gam[b]);  // a ≥ b: exponent ≤ 0, masked before exp
      P[a * n + b] = K.dot(Q + a * dk, krow(b), dk) * decay;
      A[a * n + b] = b < a ? beta(a) * K.dot(krow(a), krow(b), dk) * decay : 0.0f;
    }
  }
  // (I + A)·U = diag(β)·V and (I + A)·W = diag(β e^γ)·K, row by row.
  for (int64_t a = 0; a < n; ++a) {
    K.scale(vrow(a), beta(a), U + a * dv, dv);
    K.scale(krow(a), beta(a) * egam[a], W + a * dk, dk);
    for (int64_t b = 0; b < a; ++b) {
      K.axpy(-A[a * n + b], U + b * dv, U + a * dv, dv);
      K.axpy(-A[a * n + b], W + b * dk, W + a * dk, dk);
    }
  }
  // Vn = U − W·S; O = diag(e^γ)·Q·S + P·Vn.
  for (int64_t a = 0; a < n; ++a) {
    float* o = O + a * dv;
    std::memset(o, 0, sizeof(float) * dv);
    for (int i = 0; i < dk; ++i) {
      const float* Srow = h.S + static_cast<int64_t>(i) * dv;
      K.axpy(-W[a * dk + i], Srow, U + a * dv, dv);
      K.axpy(Q[a * dk + i] * egam[a], Srow, o, dv);
    }
  }
  for (int64_t a = 0; a < n; ++a) {
    float* o = O + a * dv;
    for (int64_t b = 0; b <= a; ++b) K.axpy(P[a * n + b], U + b * dv, o, dv);
    std::memcpy(r.out + (t0 + a) * r.out_stride + static_cast<int64_t>(h.j) * dv, o, sizeof(float) * dv);
  }
  // S ← e^{γ_last} S + Σ_s e^{γ_last − γ_s} k_s Vn_sᵀ.
  const float glast = gam[n - 1];
  for (int i = 0; i < dk; ++i) {
    float* Srow = h.S + static_cast<int64_t>(i) * dv;
    K.scale(Srow, egam[n - 1], Srow, dv);
    for (int64_t b = 0; b < n; ++b) K.axpy(std::exp(glast - gam[b]) * krow(b)[i], U + b * dv, Srow, dv);
  }
}

void run_head(const HeadView& h, const DeltaNetShape& s, DeltaMode mode) {
  const DeltaRun& r = *h.run;
  if (mode == DeltaMode::kRecurrent) {
    recurrent(h, s, 0, r.n_tokens);
    return;
  }
  if (mode == DeltaMode::kChunked) {
    for (int64_t t = 0; t < r.n_tokens; t += kDeltaChunk) chunked(h, s, t, std::min<int64_t>(kDeltaChunk, r.n_tokens - t));
    return;
  }
  int64_t t = 0;
  while (t < r.n_tokens) {
    const int64_t pos = r.pos0 + t;
    const int64_t to_boundary = (kDeltaChunk - pos % kDeltaChunk) % kDeltaChunk;
    if (to_boundary == 0 && r.n_tokens - t >= kDeltaChunk) {
      chunked(h, s, t, kDeltaChunk);
      t += kDeltaChunk;
    } else {
      const int64_t end = std::min(r.n_tokens, t + (to_boundary == 0 ? kDeltaChunk : to_boundary));
      recurrent(h, s, t, end);
      t = end;
    }
  }
}

}  // namespace

void gated_delta_rule(ThreadPool& pool, std::span<const DeltaRun> runs, const DeltaNetShape& shape, DeltaMode mode) {
  std::vector<HeadView> heads;
  for (const DeltaRun& r : runs)
    for (int j = 0; j < shape.n_v_heads; ++j)
      heads.push_back({&r, j, shape.key_head(j), r.state + static_cast<int64_t>(j) * shape.d_k * shape.d_v});
  pool.parallel_for(static_cast<int64_t>(heads.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) run_head(heads[i], shape, mode);
  });
}

}  // namespace hylo::ops
