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
// dense products: T = (I + A)⁻¹ by forward substitution, [U | W] = T·[diag(β)V | diag(βe^γ)K],
// Vn = U − W·S, O = diag(e^γ)Q·S + P·Vn, S ← e^{γ_last}S + (diag(e^{γ_last−γ})K)ᵀ·Vn.
void chunked(const HeadView& h, const DeltaNetShape& s, int64_t t0, int64_t n) {
  const kernels::VecKernels& K = kernels::vec();
  const DeltaRun& r = *h.run;
  const int64_t dk = s.d_k, dv = s.d_v, dw = dv + dk;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dk));
  thread_local std::vector<float> buf;
  const size_t need = static_cast<size_t>(n) * (4 * dk + 2 * dw + dv + 4 * n + 3);
  if (buf.size() < need) buf.resize(need);
  float* KQ = buf.data();        // [2n][dk]: keys, then queries / √d_k
  float* Kt = KQ + 2 * n * dk;   // [dk][n] keys transposed; later e^{γ_last − γ}·keys transposed
  float* VK = Kt + n * dk;       // [n][dv + dk]: β v | β e^γ k
  float* UW = VK + n * dw;       // [n][dv + dk]: U (becomes Vn) | W
  float* O = UW + n * dw;        // [n][dv]
  float* AP = O + n * dv;        // [2n][n]: k·k then A (strictly lower); q·k then P (lower)
  float* T = AP + 2 * n * n;     // [n][n] (I + A)⁻¹
  float* gam = T + n * n;        // [n] cumulative log decay, restarting at the chunk
  float* egam = gam + n;         // [n] e^γ
  float* decay = egam + n;       // [n] scratch
  float* Q = KQ + n * dk;
  float* A = AP;
  float* P = AP + n * n;
  const float* k0 = r.k + t0 * r.qk_stride + static_cast<int64_t>(h.kh) * dk;
  const float* v0 = r.v + t0 * r.v_stride + static_cast<int64_t>(h.j) * dv;
  auto beta = [&](int64_t i) { return r.beta[(t0 + i) * s.n_v_heads + h.j]; };

  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    acc += r.g[(t0 + i) * s.n_v_heads + h.j];
    gam[i] = acc;
    const float* ki = k0 + i * r.qk_stride;
    std::memcpy(KQ + i * dk, ki, sizeof(float) * dk);
    K.scale(r.q + (t0 + i) * r.qk_stride + static_cast<int64_t>(h.kh) * dk, scale, Q + i * dk, dk);
    for (int64_t c = 0; c < dk; ++c) Kt[c * n + i] = ki[c];
  }
  K.exp(gam, egam, n);
  K.gemm(2 * n, n, dk, 1.0f, KQ, dk, Kt, n, 0.0f, AP, n);
  // Decay mask: exponents γ_a − γ_b ≤ 0 only (masked before exp, spec §10.1).
  for (int64_t a = 0; a < n; ++a) {
    for (int64_t b = 0; b <= a; ++b) decay[b] = gam[a] - gam[b];
    K.exp(decay, decay, a + 1);
    const float ba = beta(a);
    float* Pa = P + a * n;
    float* Aa = A + a * n;
    for (int64_t b = 0; b < a; ++b) {
      Pa[b] *= decay[b];
      Aa[b] = ba * Aa[b] * decay[b];
    }
    Pa[a] *= decay[a];
    std::fill(Pa + a + 1, Pa + n, 0.0f);
    std::fill(Aa + a, Aa + n, 0.0f);
  }
  // T = (I + A)⁻¹, unit lower triangular: T_a = e_a − Σ_{b<a} A_ab T_b, one row at a time (the
  // entries right of the diagonal come out exactly zero, as T_b is zero beyond b).
  std::fill(T, T + n, 0.0f);
  T[0] = 1.0f;
  for (int64_t a = 1; a < n; ++a) {
    K.gemm(1, n, a, -1.0f, A + a * n, n, T, n, 0.0f, T + a * n, n);
    T[a * n + a] = 1.0f;
  }
  for (int64_t i = 0; i < n; ++i) {
    K.scale(v0 + i * r.v_stride, beta(i), VK + i * dw, dv);
    K.scale(KQ + i * dk, beta(i) * egam[i], VK + i * dw + dv, dk);
  }
  K.gemm(n, dw, n, 1.0f, T, n, VK, dw, 0.0f, UW, dw);
  float* U = UW;
  const float* W = UW + dv;
  K.gemm(n, dv, dk, -1.0f, W, dw, h.S, dv, 1.0f, U, dw);  // Vn = U − W·S
  for (int64_t i = 0; i < n; ++i) K.scale(Q + i * dk, egam[i], Q + i * dk, dk);
  K.gemm(n, dv, dk, 1.0f, Q, dk, h.S, dv, 0.0f, O, dv);
  K.gemm(n, dv, n, 1.0f, P, n, U, dw, 1.0f, O, dv);
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(r.out + (t0 + i) * r.out_stride + static_cast<int64_t>(h.j) * dv, O + i * dv, sizeof(float) * dv);
  for (int64_t b = 0; b < n; ++b) decay[b] = gam[n - 1] - gam[b];
  K.exp(decay, decay, n);
  for (int64_t c = 0; c < dk; ++c)
    for (int64_t b = 0; b < n; ++b) Kt[c * n + b] *= decay[b];
  K.gemm(dk, dv, n, 1.0f, Kt, n, U, dw, egam[n - 1], h.S, dv);
}

void run_head(const HeadView& h, const DeltaNetShape& s, DeltaMode mode) {
  const DeltaRun& r = *h.run;
  if (r.state_after != nullptr) {
    const int64_t head_floats = int64_t{s.d_k} * s.d_v;
    for (int64_t t = 0; t < r.n_tokens; ++t) {
      if (mode == DeltaMode::kChunked) {
        chunked(h, s, t, 1);
      } else {
        recurrent(h, s, t, t + 1);
      }
      if (float* dst = r.state_after[t]) std::memcpy(dst + h.j * head_floats, h.S, sizeof(float) * head_floats);
    }
    return;
  }
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
