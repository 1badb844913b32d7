#include "ops/delta_net.h"

#include <cmath>
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/vec.h"
#include "ops/profile.h"

namespace hylo::ops {
namespace {

struct HeadView {
  const DeltaRun* run;
  int j;   // value head
  int kh;  // key head
  float* S;
};

// Recurrent form over tokens [t0, t1) of one value head (spec §3.5.4).
void recurrent(const HeadView& h, const DeltaNetShape& s, int64_t t0, int64_t t1) {
  const kernels::VecKernels& K = kernels::vec();
  const DeltaRun& r = *h.run;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.d_k));
  thread_local std::vector<float> q;
  q.resize(s.d_k);
  for (int64_t t = t0; t < t1; ++t) {
    const float* kt = r.k + t * r.qk_stride + static_cast<int64_t>(h.kh) * s.d_k;
    const float* qt = r.q + t * r.qk_stride + static_cast<int64_t>(h.kh) * s.d_k;
    const float* vt = r.v + t * r.v_stride + static_cast<int64_t>(h.j) * s.d_v;
    float* ot = r.out + t * r.out_stride + static_cast<int64_t>(h.j) * s.d_v;
    K.scale(qt, scale, q.data(), s.d_k);
    K.delta_step(h.S, s.d_k, s.d_v, kt, q.data(), vt, r.beta[t * s.n_v_heads + h.j],
                 std::exp(r.g[t * s.n_v_heads + h.j]), ot);
  }
}

// Chunked form over tokens [t0, t0 + n), n ≤ kDeltaChunk, of one value head (spec §3.6), as small
// dense products: T = (I + A)⁻¹ by forward substitution, U = T·diag(β)V, W = T·diag(βe^γ)K,
// Vn = U − W·S, O = diag(e^γ)Q·S + P·Vn, S ← e^{γ_last}S + (diag(e^{γ_last−γ})K)ᵀ·Vn.
void chunked(const HeadView& h, const DeltaNetShape& s, int64_t t0, int64_t n) {
  const kernels::VecKernels& K = kernels::vec();
  const DeltaRun& r = *h.run;
  const int64_t dk = s.d_k, dv = s.d_v;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dk));
  thread_local std::vector<float> buf;
  const size_t need = static_cast<size_t>(n) * (5 * dk + 3 * dv + 4 * n + 2);
  if (buf.size() < need) buf.resize(need);
  float* Q = buf.data();    // [n][dk] q/√d_k, later scaled by e^γ
  float* Kt = Q + n * dk;   // [dk][n] keys transposed
  float* Kb = Kt + n * dk;  // [n][dk] β e^γ k
  float* W = Kb + n * dk;   // [n][dk]
  float* Kd = W + n * dk;   // [dk][n] e^{γ_last − γ} k, transposed
  float* Vb = Kd + n * dk;  // [n][dv] β v
  float* U = Vb + n * dv;   // [n][dv] becomes Vn
  float* O = U + n * dv;    // [n][dv]
  float* KK = O + n * dv;   // [n][n] k·k, then A (strictly lower, decayed, β-scaled)
  float* P = KK + n * n;    // [n][n] q·k, then P (lower incl. diagonal, decayed)
  float* T = P + n * n;     // [n][n] (I + A)⁻¹
  float* gam = T + n * n;   // [n] cumulative log decay, restarting at the chunk
  float* egam = gam + n;    // [n] e^γ
  const float* k0 = r.k + t0 * r.qk_stride + static_cast<int64_t>(h.kh) * dk;
  const float* v0 = r.v + t0 * r.v_stride + static_cast<int64_t>(h.j) * dv;
  auto beta = [&](int64_t i) { return r.beta[(t0 + i) * s.n_v_heads + h.j]; };

  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    acc += r.g[(t0 + i) * s.n_v_heads + h.j];
    gam[i] = acc;
    egam[i] = std::exp(acc);
    K.scale(r.q + (t0 + i) * r.qk_stride + static_cast<int64_t>(h.kh) * dk, scale, Q + i * dk, dk);
    const float* ki = k0 + i * r.qk_stride;
    for (int64_t c = 0; c < dk; ++c) Kt[c * n + i] = ki[c];
  }
  K.gemm(n, n, dk, 1.0f, k0, r.qk_stride, Kt, n, 0.0f, KK, n);
  K.gemm(n, n, dk, 1.0f, Q, dk, Kt, n, 0.0f, P, n);
  // Decay mask: exponents γ_a − γ_b ≤ 0 only (masked before exp, spec §10.1).
  thread_local std::vector<float> decay;
  decay.resize(n);
  for (int64_t a = 0; a < n; ++a) {
    for (int64_t b = 0; b <= a; ++b) decay[b] = gam[a] - gam[b];
    K.exp(decay.data(), decay.data(), a + 1);
    const float ba = beta(a);
    float* Pa = P + a * n;
    float* Aa = KK + a * n;
    for (int64_t b = 0; b < a; ++b) {
      Pa[b] *= decay[b];
      Aa[b] = ba * Aa[b] * decay[b];
    }
    Pa[a] *= decay[a];
    std::fill(Pa + a + 1, Pa + n, 0.0f);
    std::fill(Aa + a, Aa + n, 0.0f);
  }
  // T = (I + A)⁻¹, unit lower triangular: T_a = e_a − Σ_{b<a} A_ab T_b.
  for (int64_t a = 0; a < n; ++a) {
    float* Ta = T + a * n;
    std::fill(Ta, Ta + n, 0.0f);
    Ta[a] = 1.0f;
    for (int64_t b = 0; b < a; ++b) K.axpy(-KK[a * n + b], T + b * n, Ta, b + 1);
  }
  for (int64_t i = 0; i < n; ++i) {
    K.scale(v0 + i * r.v_stride, beta(i), Vb + i * dv, dv);
    K.scale(k0 + i * r.qk_stride, beta(i) * egam[i], Kb + i * dk, dk);
  }
  K.gemm(n, dv, n, 1.0f, T, n, Vb, dv, 0.0f, U, dv);
  K.gemm(n, dk, n, 1.0f, T, n, Kb, dk, 0.0f, W, dk);
  K.gemm(n, dv, dk, -1.0f, W, dk, h.S, dv, 1.0f, U, dv);  // Vn = U − W·S
  for (int64_t i = 0; i < n; ++i) K.scale(Q + i * dk, egam[i], Q + i * dk, dk);
  K.gemm(n, dv, dk, 1.0f, Q, dk, h.S, dv, 0.0f, O, dv);
  K.gemm(n, dv, n, 1.0f, P, n, U, dv, 1.0f, O, dv);
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(r.out + (t0 + i) * r.out_stride + static_cast<int64_t>(h.j) * dv, O + i * dv, sizeof(float) * dv);
  for (int64_t b = 0; b < n; ++b) decay[b] = gam[n - 1] - gam[b];
  K.exp(decay.data(), decay.data(), n);
  for (int64_t b = 0; b < n; ++b) {
    const float* kb = k0 + b * r.qk_stride;
    for (int64_t c = 0; c < dk; ++c) Kd[c * n + b] = decay[b] * kb[c];
  }
  K.gemm(dk, dv, n, 1.0f, Kd, n, U, dv, egam[n - 1], h.S, dv);
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
  PhaseTimer timer(Phase::kDeltaRule);
  std::vector<HeadView> heads;
  for (const DeltaRun& r : runs)
    for (int j = 0; j < shape.n_v_heads; ++j)
      heads.push_back({&r, j, shape.key_head(j), r.state + static_cast<int64_t>(j) * shape.d_k * shape.d_v});
  pool.parallel_for(static_cast<int64_t>(heads.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) run_head(heads[i], shape, mode);
  });
}

}  // namespace hylo::ops
