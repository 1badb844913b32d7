// The SIMD elementwise kernels written once over a vector-register abstraction V (see
// vec_avx2.cpp / vec_avx512.cpp). Included only by ISA-flagged files; everything here is a
// template instantiated with that file's own V, so nothing is shared across ISAs by the linker.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "base/half.h"
#include "kernels/blocks.h"
#include "kernels/vec.h"

namespace hylo::kernels::simd {

template <class V>
struct VecImpl {
  using F = typename V::F;
  static constexpr int N = V::N;

  static F load_tail(const float* x, int64_t n, float fill = 0.0f) {
    alignas(64) float buf[N];
    for (int i = 0; i < N; ++i) buf[i] = i < n ? x[i] : fill;
    return V::load(buf);
  }
  static void store_tail(float* y, F v, int64_t n) {
    alignas(64) float buf[N];
    V::store(buf, v);
    std::memcpy(y, buf, static_cast<size_t>(n) * sizeof(float));
  }
  static F load_f16_tail(const uint16_t* x, int64_t n) {
    alignas(64) uint16_t buf[N] = {};
    std::memcpy(buf, x, static_cast<size_t>(n) * sizeof(uint16_t));
    return V::load_f16(buf);
  }

  // Four independent accumulators over 4N elements, then a fixed combine order.
  static float dot(const float* a, const float* b, int64_t n) {
    F s0 = V::zero(), s1 = V::zero(), s2 = V::zero(), s3 = V::zero();
    int64_t i = 0;
    for (; i + 4 * N <= n; i += 4 * N) {
      s0 = V::fmadd(V::load(a + i), V::load(b + i), s0);
      s1 = V::fmadd(V::load(a + i + N), V::load(b + i + N), s1);
      s2 = V::fmadd(V::load(a + i + 2 * N), V::load(b + i + 2 * N), s2);
      s3 = V::fmadd(V::load(a + i + 3 * N), V::load(b + i + 3 * N), s3);
    }
    for (; i + N <= n; i += N) s0 = V::fmadd(V::load(a + i), V::load(b + i), s0);
    if (i < n) s1 = V::fmadd(load_tail(a + i, n - i), load_tail(b + i, n - i), s1);
    return V::hsum(V::add(V::add(s0, s1), V::add(s2, s3)));
  }

  static float dot_f16(const float* a, const uint16_t* b, int64_t n) {
    F s0 = V::zero(), s1 = V::zero();
    int64_t i = 0;
    for (; i + 2 * N <= n; i += 2 * N) {
      s0 = V::fmadd(V::load(a + i), V::load_f16(b + i), s0);
      s1 = V::fmadd(V::load(a + i + N), V::load_f16(b + i + N), s1);
    }
    for (; i + N <= n; i += N) s0 = V::fmadd(V::load(a + i), V::load_f16(b + i), s0);
    if (i < n) s1 = V::fmadd(load_tail(a + i, n - i), load_f16_tail(b + i, n - i), s1);
    return V::hsum(V::add(s0, s1));
  }

  static void axpy(float a, const float* x, float* y, int64_t n) {
    const F va = V::set1(a);
    int64_t i = 0;
    for (; i + N <= n; i += N) V::store(y + i, V::fmadd(va, V::load(x + i), V::load(y + i)));
    if (i < n) store_tail(y + i, V::fmadd(va, load_tail(x + i, n - i), load_tail(y + i, n - i)), n - i);
  }

  static void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) {
    const F va = V::set1(a);
    int64_t i = 0;
    for (; i + N <= n; i += N) V::store(y + i, V::fmadd(va, V::load_f16(x + i), V::load(y + i)));
    if (i < n) store_tail(y + i, V::fmadd(va, load_f16_tail(x + i, n - i), load_tail(y + i, n - i)), n - i);
  }

  // Applies op(v) elementwise from x to y.
  template <typename Op>
  static void map(const float* x, float* y, int64_t n, Op op) {
    int64_t i = 0;
    for (; i + N <= n; i += N) V::store(y + i, op(V::load(x + i)));
    if (i < n) store_tail(y + i, op(load_tail(x + i, n - i)), n - i);
  }
  template <typename Op>
  static void map2(const float* x, const float* z, float* y, int64_t n, Op op) {
    int64_t i = 0;
    for (; i + N <= n; i += N) V::store(y + i, op(V::load(x + i), V::load(z + i)));
    if (i < n) store_tail(y + i, op(load_tail(x + i, n - i), load_tail(z + i, n - i)), n - i);
  }

  static void scale(const float* x, float a, float* y, int64_t n) {
    const F va = V::set1(a);
    map(x, y, n, [&](F v) { return V::mul(v, va); });
  }

  static void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
    const double sum = V::sumsq_double(x, n);
    const float mean = static_cast<float>(sum / static_cast<double>(n));
    const F s = V::set1(1.0f / std::sqrt(mean + eps));
    if (w == nullptr) {
      map(x, y, n, [&](F v) { return V::mul(v, s); });
    } else {
      map2(x, w, y, n, [&](F v, F wv) { return V::mul(V::mul(v, s), wv); });
    }
  }

  static void l2_norm(const float* x, float* y, int64_t n, float eps) {
    const double sum = V::sumsq_double(x, n);
    const F s = V::set1(1.0f / std::fmax(static_cast<float>(std::sqrt(sum)), eps));
    map(x, y, n, [&](F v) { return V::mul(v, s); });
  }

  static F sigmoid_v(F v) { return V::div(V::set1(1.0f), V::add(V::set1(1.0f), V::exp(V::sub(V::zero(), v)))); }
  static F silu_v(F v) { return V::div(v, V::add(V::set1(1.0f), V::exp(V::sub(V::zero(), v)))); }

  static void softmax(float* x, int64_t n) {
    const F mx = V::set1(max_(x, n));
    double sum = 0;
    int64_t i = 0;
    for (; i + N <= n; i += N) {
      const F e = V::exp(V::sub(V::load(x + i), mx));
      V::store(x + i, e);
      sum += static_cast<double>(V::hsum(e));
    }
    if (i < n) {
      const F e = V::exp(V::sub(load_tail(x + i, n - i, -INFINITY), mx));
      store_tail(x + i, e, n - i);
      sum += static_cast<double>(V::hsum(e));
    }
    const F inv = V::set1(static_cast<float>(1.0 / sum));
    map(x, x, n, [&](F v) { return V::mul(v, inv); });
  }

  static void swiglu(const float* g, const float* u, float* y, int64_t n) {
    map2(g, u, y, n, [](F a, F b) { return V::mul(silu_v(a), b); });
  }
  static void silu(const float* x, float* y, int64_t n) { map(x, y, n, [](F v) { return silu_v(v); }); }
  static void exp_(const float* x, float* y, int64_t n) { map(x, y, n, [](F v) { return V::exp(v); }); }
  static float max_(const float* x, int64_t n) {
    F m = V::set1(-INFINITY);
    int64_t i = 0;
    for (; i + N <= n; i += N) m = V::max(m, V::load(x + i));
    if (i < n) m = V::max(m, load_tail(x + i, n - i, -INFINITY));
    return V::hmax(m);
  }
  // One accumulator per lane, then hsum's fixed order.
  static float exp_sum(float* x, int64_t n, float shift) {
    const F sh = V::set1(shift);
    F s = V::zero();
    int64_t i = 0;
    for (; i + N <= n; i += N) {
      const F e = V::exp(V::sub(V::load(x + i), sh));
      V::store(x + i, e);
      s = V::add(s, e);
    }
    if (i < n) {
      store_tail(x + i, V::exp(V::sub(load_tail(x + i, n - i), sh)), n - i);
      s = V::add(s, load_tail(x + i, n - i));  // the lanes past n add +0
    }
    return V::hsum(s);
  }
  static void sigmoid(const float* x, float* y, int64_t n) { map(x, y, n, [](F v) { return sigmoid_v(v); }); }
  static void mul_sigmoid(const float* x, const float* g, float* y, int64_t n) {
    map2(x, g, y, n, [](F a, F b) { return V::mul(a, sigmoid_v(b)); });
  }
  static void mul_silu(const float* x, const float* g, float* y, int64_t n) {
    map2(x, g, y, n, [](F a, F b) { return V::mul(a, silu_v(b)); });
  }

  static void rope_neox(float* x, const float* c, const float* s, int64_t n_rot) {
    const int64_t half = n_rot / 2;
    int64_t i = 0;
    for (; i + N <= half; i += N) {
      const F a = V::load(x + i), b = V::load(x + i + half);
      const F cv = V::load(c + i), sv = V::load(s + i);
      V::store(x + i, V::sub(V::mul(a, cv), V::mul(b, sv)));
      V::store(x + i + half, V::add(V::mul(a, sv), V::mul(b, cv)));
    }
    for (; i < half; ++i) {  // short heads (n_rot/2 < N): scalar, same formula
      const float a = x[i], b = x[i + half];
      x[i] = a * c[i] - b * s[i];
      x[i + half] = a * s[i] + b * c[i];
    }
  }

  static void conv1d(const float* const* x, const float* w, int k, float* y, int64_t n) {
    int64_t c = 0;
    for (; c + N <= n; c += N) {
      F s = V::zero();
      for (int i = 0; i < k; ++i) s = V::add(s, V::mul(V::load(w + i * n + c), V::load(x[i] + c)));
      V::store(y + c, s);
    }
    for (; c < n; ++c) {
      float s = 0.0f;
      for (int i = 0; i < k; ++i) s += w[i * n + c] * x[i][c];
      y[c] = s;
    }
  }

  static void f16_to_f32_rows(const uint16_t* x, int64_t rows, int64_t cols, int64_t ldx, float* y, int64_t ldy) {
    for (int64_t r = 0; r < rows; ++r) f16_to_f32(x + r * ldx, y + r * ldy, cols);
  }

  // q8_0 / q4_0 blocks to f32 (the quantized KV caches): q · d is exact in f32 (8 or 4 bits
  // times an fp16's 11), so these give the reference dequantizer's bits.
  static void dequantize_q8_0(const void* src, float* y, int64_t n) {
    const auto* b = static_cast<const BlockQ8_0*>(src);
    for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
      const F d = V::set1(fp16_to_fp32(b[i].d));
      for (int j = 0; j < kQK; j += N) V::store(y + j, V::mul(V::load_i8(b[i].qs + j), d));
    }
  }
  static void dequantize_q4_0(const void* src, float* y, int64_t n) {
    const auto* b = static_cast<const BlockQ4_0*>(src);
    for (int64_t i = 0; i < n / kQK; ++i, y += kQK) {
      int8_t q[kQK];  // low nibbles are elements 0..15, high nibbles 16..31
      for (int j = 0; j < kQK / 2; ++j) {
        q[j] = static_cast<int8_t>((b[i].qs[j] & 0x0F) - 8);
        q[j + kQK / 2] = static_cast<int8_t>((b[i].qs[j] >> 4) - 8);
      }
      const F d = V::set1(fp16_to_fp32(b[i].d));
      for (int j = 0; j < kQK; j += N) V::store(y + j, V::mul(V::load_i8(q + j), d));
    }
  }

  // rows × cols elements of q8_0 / q4_0 blocks (rows of cols / 32 blocks), widened and
  // transposed: y[c·ldy + r] (a quantized cache's keys). N rows of one block at a time go
  // through an L1 buffer and the register transpose.
  template <typename Block, void (*kDequantize)(const void*, float*, int64_t)>
  static void transpose_blocks(const void* x, int64_t rows, int64_t cols, float* y, int64_t ldy) {
    const auto* blocks = static_cast<const Block*>(x);
    const int64_t nb = cols / kQK;
    alignas(64) float buf[N * kQK];
    for (int64_t r0 = 0; r0 < rows; r0 += N) {
      const int64_t h = std::min<int64_t>(N, rows - r0);
      for (int64_t b = 0; b < nb; ++b) {
        for (int64_t i = 0; i < h; ++i) kDequantize(blocks + (r0 + i) * nb + b, buf + i * kQK, kQK);
        float* out = y + b * kQK * ldy + r0;
        if (h == N) {
          for (int c = 0; c < kQK; c += N) V::transpose_block(buf + c, kQK, out + c * ldy, ldy);
        } else {
          for (int64_t i = 0; i < h; ++i)
            for (int c = 0; c < kQK; ++c) out[c * ldy + i] = buf[i * kQK + c];
        }
      }
    }
  }
  static void transpose_q8_0(const void* x, int64_t rows, int64_t cols, float* y, int64_t ldy) {
    transpose_blocks<BlockQ8_0, dequantize_q8_0>(x, rows, cols, y, ldy);
  }
  static void transpose_q4_0(const void* x, int64_t rows, int64_t cols, float* y, int64_t ldy) {
    transpose_blocks<BlockQ4_0, dequantize_q4_0>(x, rows, cols, y, ldy);
  }

  static void f16_to_f32(const uint16_t* x, float* y, int64_t n) {
    int64_t i = 0;
    for (; i + N <= n; i += N) V::store(y + i, V::load_f16(x + i));
    if (i < n) store_tail(y + i, load_f16_tail(x + i, n - i), n - i);
  }
  static void f32_to_f16(const float* x, uint16_t* y, int64_t n) {
    int64_t i = 0;
    for (; i + N <= n; i += N) V::store_f16(y + i, V::load(x + i));
    if (i < n) {
      alignas(64) uint16_t buf[N];
      V::store_f16(buf, load_tail(x + i, n - i));
      std::memcpy(y + i, buf, static_cast<size_t>(n - i) * sizeof(uint16_t));
    }
  }

  static constexpr int64_t kGemmPrefetchRows = 64;  // 4 KiB ahead in the KV cache's 64-byte stripe rows
  static F load_b_tail(const float* x, int64_t n) { return load_tail(x, n); }
  static F load_b_tail(const uint16_t* x, int64_t n) { return load_f16_tail(x, n); }

  // One C tile of R rows × w ≤ 2N columns (two registers when w = 2N, else one register at a
  // time with partial loads); each element accumulates over k in order, then store_scaled.
  // B is f32 or fp16 (T = uint16_t, widened as it is loaded: exact, so the same bits).
  template <int R, typename T>
  static void gemm_tile(int64_t w, int64_t k, float alpha, const float* a, int64_t lda, const T* b, int64_t ldb,
                        float beta, float* c, int64_t ldc) {
    if (w == 2 * N) {
      F acc0[R], acc1[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = V::zero();
      for (int64_t p = 0; p < k; ++p) {
        // An fp16 B is the KV cache, read once from memory (the f32 B's are scratch in cache):
        // fetch ahead, the 16 FMAs of a 64-byte row do not cover the memory's latency.
        if constexpr (std::is_same_v<T, uint16_t>) __builtin_prefetch(b + (p + kGemmPrefetchRows) * ldb);
        const F b0 = V::load_any(b + p * ldb), b1 = V::load_any(b + p * ldb + N);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const F av = V::set1(a[r * lda + p]);
          acc0[r] = V::fmadd(av, b0, acc0[r]);
          acc1[r] = V::fmadd(av, b1, acc1[r]);
        }
      }
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        store_scaled(c + r * ldc, acc0[r], alpha, beta, N);
        store_scaled(c + r * ldc + N, acc1[r], alpha, beta, N);
      }
      return;
    }
    for (int64_t j = 0; j < w; j += N) {
      const int64_t wj = std::min<int64_t>(N, w - j);
      F acc[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r] = V::zero();
      for (int64_t p = 0; p < k; ++p) {
        const F bv = wj == N ? V::load_any(b + p * ldb + j) : load_b_tail(b + p * ldb + j, wj);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) acc[r] = V::fmadd(V::set1(a[r * lda + p]), bv, acc[r]);
      }
      for (int r = 0; r < R; ++r) store_scaled(c + r * ldc + j, acc[r], alpha, beta, wj);
    }
  }
  static void store_scaled(float* c, F acc, float alpha, float beta, int64_t w) {
    F out = V::mul(acc, V::set1(alpha));
    if (beta != 0.0f) out = V::fmadd(w == N ? V::load(c) : load_tail(c, w), V::set1(beta), out);
    if (w == N) {
      V::store(c, out);
    } else {
      store_tail(c, out, w);
    }
  }
  // Column stripes of 2N outermost: a stripe of B (k × 2N floats, 16-32 KiB for attention's
  // k = 128-256) stays in L1 while every row block reuses it, where rows outermost streamed all
  // of B from L2 once per 6 rows. 6 rows × 2 registers: 12 accumulators cover the FMA latency.
  template <typename T>
  static void gemm_any(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const T* b,
                       int64_t ldb, float beta, float* c, int64_t ldc) {
    for (int64_t j = 0; j < n; j += 2 * N) {
      const int64_t w = std::min<int64_t>(2 * N, n - j);
      int64_t i = 0;
      // 8 rows left (all of them for a decode token's 8 query heads per KV head): with 32
      // registers one tile of 8, which reads its stripe of B once (decode reads the KV cache
      // in place, so each element comes from memory once); with 16, 4 + 4, since a 1-row tile
      // keeps 2 accumulators and waits on the FMA latency.
      for (; i + 6 <= m && m - i != 8; i += 6)
        gemm_tile<6>(w, k, alpha, a + i * lda, lda, b + j, ldb, beta, c + i * ldc + j, ldc);
      if constexpr (N == 16) {
        if (m - i == 8) {
          gemm_tile<8>(w, k, alpha, a + i * lda, lda, b + j, ldb, beta, c + i * ldc + j, ldc);
          i += 8;
        }
      }
      for (; i + 4 <= m; i += 4) gemm_tile<4>(w, k, alpha, a + i * lda, lda, b + j, ldb, beta, c + i * ldc + j, ldc);
      for (; i < m; ++i) gemm_tile<1>(w, k, alpha, a + i * lda, lda, b + j, ldb, beta, c + i * ldc + j, ldc);
    }
  }
  static void gemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                   int64_t ldb, float beta, float* c, int64_t ldc) {
    gemm_any(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  static void gemm_f16(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const uint16_t* b,
                       int64_t ldb, float beta, float* c, int64_t ldc) {
    gemm_any(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }

  // Columns in blocks of kDeltaRegs registers: e and the output stay in registers while the rows
  // of S stream through twice.
  static constexpr int kDeltaRegs = N == 16 ? 8 : 6;
  static void delta_step(float* s, int64_t dk, int64_t dv, const float* k, const float* q, const float* v,
                         float beta, float decay, float* out) {
    const F vdecay = V::set1(decay), vbeta = V::set1(beta);
    int64_t c0 = 0;
    for (; c0 + kDeltaRegs * N <= dv; c0 += kDeltaRegs * N) {
      F e[kDeltaRegs];
      for (int r = 0; r < kDeltaRegs; ++r) e[r] = V::zero();
      for (int64_t i = 0; i < dk; ++i) {
        float* row = s + i * dv + c0;
        const F ki = V::set1(k[i]);
#pragma GCC unroll 8
        for (int r = 0; r < kDeltaRegs; ++r) {
          const F x = V::mul(V::load(row + r * N), vdecay);
          V::store(row + r * N, x);
          e[r] = V::fmadd(x, ki, e[r]);
        }
      }
      for (int r = 0; r < kDeltaRegs; ++r) e[r] = V::mul(vbeta, V::sub(V::load(v + c0 + r * N), e[r]));  // δ
      F o[kDeltaRegs];
      for (int r = 0; r < kDeltaRegs; ++r) o[r] = V::zero();
      for (int64_t i = 0; i < dk; ++i) {
        float* row = s + i * dv + c0;
        const F ki = V::set1(k[i]), qi = V::set1(q[i]);
#pragma GCC unroll 8
        for (int r = 0; r < kDeltaRegs; ++r) {
          const F x = V::fmadd(ki, e[r], V::load(row + r * N));
          V::store(row + r * N, x);
          o[r] = V::fmadd(x, qi, o[r]);
        }
      }
      for (int r = 0; r < kDeltaRegs; ++r) V::store(out + c0 + r * N, o[r]);
    }
    for (int64_t c = c0; c < dv; ++c) {  // leftover columns, same order per column
      float e = 0.0f;
      for (int64_t i = 0; i < dk; ++i) {
        float& x = s[i * dv + c];
        x *= decay;
        e = std::fma(x, k[i], e);
      }
      const float delta = beta * (v[c] - e);
      float o = 0.0f;
      for (int64_t i = 0; i < dk; ++i) {
        float& x = s[i * dv + c];
        x = std::fma(k[i], delta, x);
        o = std::fma(x, q[i], o);
      }
      out[c] = o;
    }
  }

  static constexpr VecKernels table(Isa isa) {
    return VecKernels{isa,
                      dot,
                      dot_f16,
                      axpy,
                      axpy_f16,
                      scale,
                      rms_norm,
                      l2_norm,
                      softmax,
                      swiglu,
                      exp_,
                      max_,
                      exp_sum,
                      silu,
                      sigmoid,
                      mul_sigmoid,
                      mul_silu,
                      rope_neox,
                      conv1d,
                      f16_to_f32,
                      f16_to_f32_rows,
                      f32_to_f16,
                      dequantize_q8_0,
                      dequantize_q4_0,
                      transpose_q8_0,
                      transpose_q4_0,
                      gemm,
                      gemm_f16,
                      delta_step};
  }
};

}  // namespace hylo::kernels::simd
