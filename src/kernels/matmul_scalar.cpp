// The scalar matmul family: portable C++, the fallback on any CPU and the readable model of the
// SIMD families' arithmetic. For every type the SIMD families implement, it performs per output
// exactly their operation sequence (see the per-type comments below), so all families return the
// same bits; for the 32-element block formats that sequence is ggml's scalar order
// (vec_dot_reference). Compiled with
// -ffp-contract=off: every fused multiply-add is an explicit std::fma.
#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "base/half.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "kernels/quant_internal.h"
#include "kernels/scratch.h"

namespace hylo::kernels {
namespace {

// ---- ggml's scalar order: one vec_dot_reference per output -------------------------------------
// (the SIMD families use ggml's order for every 32-element block format.)

template <TensorType kWeight>
void gemm_vec_dot(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                  int64_t n_cols, float* y, size_t ldy) {
  const VecDotFn dot = vec_dot_reference_fn(kWeight);
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(x);
  for (int64_t r = 0; r < n_rows; ++r) {  // one weight row stays in L1 while every column passes
    for (int64_t c = 0; c < n_cols; ++c) {
      y[static_cast<size_t>(c) * ldy + static_cast<size_t>(r)] =
          dot(n, wb + static_cast<size_t>(r) * w_stride, xb + static_cast<size_t>(c) * x_stride);
    }
  }
}

// ---- Float weights ------------------------------------------------------------------------------
// f32, f16: per output, for each chunk of 256 elements: p_even, p_odd = 0; p = fma(w_k, x_k, p)
// into the partial sum of k's parity, k in order; then y = y + (p_even + p_odd).
// bf16: vdpbf16ps's arithmetic (avx512_float.cpp): per chunk, pairs of elements alternate between
// two partial sums, p = ftz(fma(w_2j, x_2j, ftz(fma(w_2j+1, x_2j+1, p)))) with denormal inputs
// read as zero; then y = ftz(y + ftz(p_0 + p_1)).

constexpr int64_t kFloatChunk = 256;

float widen(TensorType t, const uint8_t* row, int64_t i) {
  uint16_t h;
  switch (t) {
    case TensorType::kF16:
      std::memcpy(&h, row + 2 * i, 2);
      return fp16_to_fp32(h);
    case TensorType::kBF16:
      std::memcpy(&h, row + 2 * i, 2);
      return bf16_to_fp32(h);
    default: {
      float v;
      std::memcpy(&v, row + 4 * i, 4);
      return v;
    }
  }
}

float dot_float_chunked(const float* w, const float* a, int64_t n) {
  float y = 0;
  for (int64_t k0 = 0; k0 < n; k0 += kFloatChunk) {
    float p[2] = {0, 0};
    const int64_t k1 = n - k0 < kFloatChunk ? n : k0 + kFloatChunk;
    for (int64_t k = k0; k < k1; ++k) p[k % 2] = std::fma(w[k], a[k], p[k % 2]);
    y = y + (p[0] + p[1]);
  }
  return y;
}

// A denormal as a zero of its sign: vdpbf16ps's treatment of its inputs and of every result.
float flush_denormal(float v) { return std::fpclassify(v) == FP_SUBNORMAL ? std::copysign(0.0f, v) : v; }

// w and a hold n elements, already flushed. The SIMD kernels run to the end of their last block
// of 16 on zeros (which can turn a partial sum's -0 into +0), so this does too.
float dot_bf16_pairs_chunked(const float* w, const float* a, int64_t n) {
  const auto at = [n](const float* v, int64_t k) { return k < n ? v[k] : 0.0f; };
  const int64_t padded = (n + 15) / 16 * 16;
  float y = 0;
  for (int64_t k0 = 0; k0 < padded; k0 += kFloatChunk) {
    float p[2] = {0, 0};
    const int64_t k1 = padded - k0 < kFloatChunk ? padded : k0 + kFloatChunk;
    for (int64_t k = k0; k < k1; k += 2) {
      float& s = p[(k - k0) / 2 % 2];
      s = flush_denormal(std::fma(at(w, k + 1), at(a, k + 1), s));
      s = flush_denormal(std::fma(at(w, k), at(a, k), s));
    }
    y = flush_denormal(y + flush_denormal(p[0] + p[1]));
  }
  return y;
}

template <TensorType kWeight>
void gemm_float(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                int64_t n_cols, float* y, size_t ldy) {
  // Widen every activation row once, and each weight row once (kept for all columns).
  auto* buf = static_cast<float*>(thread_scratch(static_cast<size_t>(n * (n_cols + 1)) * sizeof(float)));
  float* wrow = buf + n * n_cols;
  for (int64_t c = 0; c < n_cols; ++c) {
    const auto* row = static_cast<const uint8_t*>(x) + static_cast<size_t>(c) * x_stride;
    for (int64_t i = 0; i < n; ++i) buf[c * n + i] = widen(kWeight, row, i);
  }
  constexpr bool kPairs = kWeight == TensorType::kBF16;
  if constexpr (kPairs) {
    for (int64_t i = 0; i < n * n_cols; ++i) buf[i] = flush_denormal(buf[i]);
  }
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto* row = static_cast<const uint8_t*>(w) + static_cast<size_t>(r) * w_stride;
    for (int64_t i = 0; i < n; ++i) wrow[i] = kPairs ? flush_denormal(widen(kWeight, row, i)) : widen(kWeight, row, i);
    for (int64_t c = 0; c < n_cols; ++c) {
      y[static_cast<size_t>(c) * ldy + static_cast<size_t>(r)] =
          kPairs ? dot_bf16_pairs_chunked(wrow, buf + c * n, n) : dot_float_chunked(wrow, buf + c * n, n);
    }
  }
}

// ---- Super-block formats against q8_K -----------------------------------------------------------
// Per output and super-block: S_j = exact integer dot of sub-block j (32 elements; 16 for q6_K),
// dsc_j = d_w * float(scale_j); t = 0; t = fma(float(S_j), dsc_j, t) for each j in order;
// q4_K/q5_K: t = fma(-float(M), dmin_w, t) with M = Σ_j m_j * Σ_{i in j} q_a[i]; y = fma(t, d_a, y).

// One super-block of one weight row, decoded.
struct DecodedSuperBlock {
  int8_t values[kQKK];  // signed weight values (q6_K: code - 32, iq4_xs: grid value)
  float dsc[16];        // per sub-block
  int mins[8];          // q4_K / q5_K
  float dmin;
  int n_sub;  // 8 or 16
};

// Chunk c of qs: element 64c + l in the low nibble of qs[32c + l], 64c + 32 + l in the high one.
void decode_nibble_chunks(const uint8_t* qs, int8_t* values) {
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      values[64 * c + l] = static_cast<int8_t>(qs[32 * c + l] & 0x0F);
      values[64 * c + 32 + l] = static_cast<int8_t>(qs[32 * c + l] >> 4);
    }
  }
}

void decode(const BlockQ4_K& b, DecodedSuperBlock* out) {
  const float d = fp16_to_fp32(b.d);
  decode_nibble_chunks(b.qs, out->values);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    unpack_scale_min_k4(j, b.scales, &sc, &m);
    out->dsc[j] = d * static_cast<float>(sc);
    out->mins[j] = m;
  }
  out->dmin = fp16_to_fp32(b.dmin);
  out->n_sub = 8;
}

void decode(const BlockQ5_K& b, DecodedSuperBlock* out) {
  const float d = fp16_to_fp32(b.d);
  decode_nibble_chunks(b.qs, out->values);
  for (int j = 0; j < 8; ++j) {  // 5th bit of sub-block j's element l: bit j of qh[l]
    for (int l = 0; l < 32; ++l) out->values[32 * j + l] |= static_cast<int8_t>(((b.qh[l] >> j) & 1) << 4);
  }
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    unpack_scale_min_k4(j, b.scales, &sc, &m);
    out->dsc[j] = d * static_cast<float>(sc);
    out->mins[j] = m;
  }
  out->dmin = fp16_to_fp32(b.dmin);
  out->n_sub = 8;
}

void decode(const BlockQ6_K& b, DecodedSuperBlock* out) {
  const float d = fp16_to_fp32(b.d);
  for (int h = 0; h < 2; ++h) {  // element 128h + 32t + l (see BlockQ6_K)
    for (int l = 0; l < 32; ++l) {
      const uint8_t lo0 = b.ql[64 * h + l], lo1 = b.ql[64 * h + 32 + l], hi = b.qh[32 * h + l];
      int8_t* v = out->values + 128 * h + l;
      v[0] = static_cast<int8_t>(((lo0 & 0x0F) | (hi & 3) << 4) - 32);
      v[32] = static_cast<int8_t>(((lo1 & 0x0F) | ((hi >> 2) & 3) << 4) - 32);
      v[64] = static_cast<int8_t>(((lo0 >> 4) | ((hi >> 4) & 3) << 4) - 32);
      v[96] = static_cast<int8_t>(((lo1 >> 4) | ((hi >> 6) & 3) << 4) - 32);
    }
  }
  for (int j = 0; j < 16; ++j) out->dsc[j] = d * static_cast<float>(b.scales[j]);
  out->n_sub = 16;
}

void decode(const BlockIQ4_XS& b, DecodedSuperBlock* out) {
  const float d = fp16_to_fp32(b.d);
  for (int s = 0; s < 8; ++s) {
    for (int j = 0; j < 32; ++j) out->values[32 * s + j] = kIq4nlValues[nibble_code(b.qs + 16 * s, j)];
    out->dsc[s] = d * static_cast<float>(unpack_scale_iq4_xs(s, b));
  }
  out->n_sub = 8;
}

template <bool kHasMin>
float super_block_term(const DecodedSuperBlock& w, const BlockQ8_K& a) {
  const int len = kQKK / w.n_sub;
  float t = 0;
  for (int j = 0; j < w.n_sub; ++j) {
    int32_t s = 0;
    for (int i = j * len; i < (j + 1) * len; ++i) s += w.values[i] * a.qs[i];
    t = std::fma(static_cast<float>(s), w.dsc[j], t);
  }
  if constexpr (kHasMin) {
    int32_t m = 0;
    for (int j = 0; j < 8; ++j) {
      int32_t sum = 0;
      for (int i = 32 * j; i < 32 * j + 32; ++i) sum += a.qs[i];
      m += w.mins[j] * sum;
    }
    t = std::fma(-static_cast<float>(m), w.dmin, t);
  }
  return t;
}

template <typename Block, bool kHasMin>
void gemm_super_blocks(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                       int64_t n_cols, float* y, size_t ldy) {
  const int64_t nb = n / kQKK;
  auto* decoded = static_cast<DecodedSuperBlock*>(thread_scratch(static_cast<size_t>(nb) * sizeof(DecodedSuperBlock)));
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto* blocks =
        reinterpret_cast<const Block*>(static_cast<const uint8_t*>(w) + static_cast<size_t>(r) * w_stride);
    for (int64_t b = 0; b < nb; ++b) decode(blocks[b], &decoded[b]);  // once per row, for all columns
    for (int64_t c = 0; c < n_cols; ++c) {
      const auto* act =
          reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(x) + static_cast<size_t>(c) * x_stride);
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) acc = std::fma(super_block_term<kHasMin>(decoded[b], act[b]), act[b].d, acc);
      y[static_cast<size_t>(c) * ldy + static_cast<size_t>(r)] = acc;
    }
  }
}

// ---- q2_K and q3_K: scales applied in integers ---------------------------------------------------
// Per output and super-block (see avx512_kquants.cpp): S_j = exact integer dot of sub-block j (16
// elements, signed values), A = Σ_j sc_j * S_j and, for q2_K, M = Σ_j m_j * Σ_{i in j} q_a[i], both
// exact; t = float(A) * d_w; q2_K: t = fma(-float(M), dmin_w, t); y = fma(t, d_a, y).

struct PairScalesTerms {
  int32_t a = 0, m = 0;
};

PairScalesTerms pair_scales_terms(const BlockQ2_K& w, const BlockQ8_K& act) {
  PairScalesTerms out;
  for (int j = 0; j < 16; ++j) {
    int32_t s = 0, sum = 0;
    for (int e = 16 * j; e < 16 * j + 16; ++e) {
      s += q2k_code(w, e) * act.qs[e];
      sum += act.qs[e];
    }
    out.a += (w.scales[j] & 0x0F) * s;
    out.m += (w.scales[j] >> 4) * sum;
  }
  return out;
}

PairScalesTerms pair_scales_terms(const BlockQ3_K& w, const BlockQ8_K& act) {
  PairScalesTerms out;
  for (int j = 0; j < 16; ++j) {
    int32_t s = 0;
    for (int e = 16 * j; e < 16 * j + 16; ++e) s += q3k_code(w, e) * act.qs[e];
    out.a += unpack_scale_q3_k(j, w.scales) * s;
  }
  return out;
}

template <typename Block>
void gemm_pair_scales(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                      int64_t n_cols, float* y, size_t ldy) {
  constexpr bool kHasMin = std::is_same_v<Block, BlockQ2_K>;
  const int64_t nb = n / kQKK;
  for (int64_t r = 0; r < n_rows; ++r) {
    const auto* blocks =
        reinterpret_cast<const Block*>(static_cast<const uint8_t*>(w) + static_cast<size_t>(r) * w_stride);
    for (int64_t c = 0; c < n_cols; ++c) {
      const auto* act =
          reinterpret_cast<const BlockQ8_K*>(static_cast<const uint8_t*>(x) + static_cast<size_t>(c) * x_stride);
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        const PairScalesTerms terms = pair_scales_terms(blocks[b], act[b]);
        float t = static_cast<float>(terms.a) * fp16_to_fp32(blocks[b].d);
        if constexpr (kHasMin) t = std::fma(-static_cast<float>(terms.m), fp16_to_fp32(blocks[b].dmin), t);
        acc = std::fma(t, act[b].d, acc);
      }
      y[static_cast<size_t>(c) * ldy + static_cast<size_t>(r)] = acc;
    }
  }
}

// ---- The table ----------------------------------------------------------------------------------

using T = TensorType;
using Gemm = decltype(MatmulKernel::gemm);
using Quantize = decltype(MatmulKernel::quantize_act);

constexpr MatmulKernel entry(T weight, T act, Quantize quantize, Gemm gemm) {
  return MatmulKernel{weight, act, Isa::kScalar, quantize, gemm};
}

constexpr MatmulKernel kKernels[] = {
    entry(T::kF32, T::kF32, quantize_row_f32, gemm_float<T::kF32>),
    entry(T::kF16, T::kF16, quantize_row_f16, gemm_float<T::kF16>),
    entry(T::kBF16, T::kBF16, quantize_row_bf16, gemm_float<T::kBF16>),
    entry(T::kQ8_0, T::kQ8_0, quantize_row_q8_0_x86, gemm_vec_dot<T::kQ8_0>),
    entry(T::kQ4_0, T::kQ8_0, quantize_row_q8_0_x86, gemm_vec_dot<T::kQ4_0>),
    entry(T::kIQ4_NL, T::kQ8_0, quantize_row_q8_0_x86, gemm_vec_dot<T::kIQ4_NL>),
    entry(T::kQ4_K, T::kQ8_K, quantize_row_q8_k, gemm_super_blocks<BlockQ4_K, true>),
    entry(T::kQ5_K, T::kQ8_K, quantize_row_q8_k, gemm_super_blocks<BlockQ5_K, true>),
    entry(T::kQ6_K, T::kQ8_K, quantize_row_q8_k, gemm_super_blocks<BlockQ6_K, false>),
    entry(T::kIQ4_XS, T::kQ8_K, quantize_row_q8_k, gemm_super_blocks<BlockIQ4_XS, false>),
    entry(T::kQ2_K, T::kQ8_K, quantize_row_q8_k, gemm_pair_scales<BlockQ2_K>),
    entry(T::kQ3_K, T::kQ8_K, quantize_row_q8_k, gemm_pair_scales<BlockQ3_K>),
    entry(T::kQ5_0, T::kQ8_0, quantize_row_q8_0_x86, gemm_vec_dot<T::kQ5_0>),
    entry(T::kQ4_1, T::kQ8_1, quantize_row_q8_1_x86, gemm_vec_dot<T::kQ4_1>),
    entry(T::kQ5_1, T::kQ8_1, quantize_row_q8_1_x86, gemm_vec_dot<T::kQ5_1>),
};

}  // namespace

const MatmulKernel* scalar_matmul_kernel(TensorType weight) {
  for (const MatmulKernel& k : kKernels) {
    if (k.weight == weight) return &k;
  }
  return nullptr;
}

}  // namespace hylo::kernels
