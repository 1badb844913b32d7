// Scalar reference conversions: every dequantizer (to_float) and the activation quantizers, written
// next to the fixture README's formulas. Compiled with -ffp-contract=off: ggml-base has no FMA, and
// the results must be bit-exact. The writer quantizers (q4_0, K-quants) live in quant_writer.cpp.
#include <cmath>
#include <cstring>

#include "base/check.h"
#include "base/half.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "kernels/quant_internal.h"

namespace hylo::kernels {
namespace {

// ---- Dequantization: one block (or super-block) to f32, ggml's operation order ----------------

void dequant_q4_0(const BlockQ4_0& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>((b.qs[j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
  }
}

void dequant_q4_1(const BlockQ4_1& b, float* y) {
  const float d = fp16_to_fp32(b.d), m = fp16_to_fp32(b.m);
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>(b.qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(b.qs[j] >> 4) * d + m;
  }
}

void dequant_q5_0(const BlockQ5_0& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(q5_code(b.qh, b.qs, j) - 16) * d;
}

void dequant_q5_1(const BlockQ5_1& b, float* y) {
  const float d = fp16_to_fp32(b.d), m = fp16_to_fp32(b.m);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(q5_code(b.qh, b.qs, j)) * d + m;
}

void dequant_q8_0(const BlockQ8_0& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
}

void dequant_q8_1(const BlockQ8_1& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
}

void dequant_q2_k(const BlockQ2_K& b, float* y) {
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int e = 0; e < kQKK; ++e) {
    const int q = q2k_code(b, e);
    const uint8_t sc = b.scales[e / 16];
    const float dl = d * static_cast<float>(sc & 0x0F);
    const float ml = dmin * static_cast<float>(sc >> 4);
    y[e] = dl * static_cast<float>(q) - ml;
  }
}

void dequant_q3_k(const BlockQ3_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int e = 0; e < kQKK; ++e) {
    const int q = q3k_code(b, e);
    const float dl = d * static_cast<float>(unpack_scale_q3_k(e / 16, b.scales));
    y[e] = dl * static_cast<float>(q);
  }
}

void dequant_q4_k(const BlockQ4_K& b, float* y) {
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    unpack_scale_min_k4(j, b.scales, &sc, &m);
    const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
    for (int e = 32 * j; e < 32 * j + 32; ++e) y[e] = dl * static_cast<float>(q4k_code(b.qs, e)) - ml;
  }
}

void dequant_q5_k(const BlockQ5_K& b, float* y) {
  const float d = fp16_to_fp32(b.d), dmin = fp16_to_fp32(b.dmin);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    unpack_scale_min_k4(j, b.scales, &sc, &m);
    const float dl = d * static_cast<float>(sc), ml = dmin * static_cast<float>(m);
    for (int e = 32 * j; e < 32 * j + 32; ++e) y[e] = dl * static_cast<float>(q5k_code(b, e)) - ml;
  }
}

void dequant_q6_k(const BlockQ6_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int e = 0; e < kQKK; ++e) {
    const float dl = d * static_cast<float>(b.scales[e / 16]);
    y[e] = dl * static_cast<float>(q6k_code(b, e) - 32);
  }
}

void dequant_iq4_nl(const BlockIQ4_NL& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = d * static_cast<float>(kIq4nlValues[b.qs[j] & 0x0F]);
    y[j + 16] = d * static_cast<float>(kIq4nlValues[b.qs[j] >> 4]);
  }
}

void dequant_iq4_xs(const BlockIQ4_XS& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int ib = 0; ib < 8; ++ib) {
    const float dl = d * static_cast<float>(unpack_scale_iq4_xs(ib, b));
    const uint8_t* qs = b.qs + 16 * ib;
    for (int j = 0; j < 16; ++j) {
      y[32 * ib + j] = dl * static_cast<float>(kIq4nlValues[qs[j] & 0x0F]);
      y[32 * ib + j + 16] = dl * static_cast<float>(kIq4nlValues[qs[j] >> 4]);
    }
  }
}

void dequant_q8_k(const BlockQ8_K& b, float* y) {
  for (int j = 0; j < kQKK; ++j) y[j] = b.d * static_cast<float>(b.qs[j]);
}

// Applies `fn(block, out)` to every block of a row.
template <typename Block, int kElems, typename Fn>
void dequant_blocks(const void* src, float* dst, int64_t n, Fn fn) {
  HYLO_CHECK(n % kElems == 0);
  const Block* b = static_cast<const Block*>(src);
  for (int64_t i = 0; i < n / kElems; ++i) fn(b[i], dst + i * kElems);
}

// ---- Activation quantizers --------------------------------------------------------------------

float block_amax(const float* x, int n) {
  float amax = 0.0f;
  for (int j = 0; j < n; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  return amax;
}

// ggml's nearest_int: round half to even through the float adder (valid for |v| < 2^22).
int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

// q8_0 / q8_1, portable reference: d = amax / 127, id = 1 / d, q = roundf(x * id).
template <bool kWithSum>
void quantize_q8_ref_block(const float* x, uint16_t* d_out, uint16_t* s_out, int8_t* qs) {
  const float amax = block_amax(x, kQK);
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  int sum = 0;
  for (int j = 0; j < kQK; ++j) {
    qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
    sum += qs[j];
  }
  *d_out = fp32_to_fp16(d);
  if constexpr (kWithSum) *s_out = fp32_to_fp16(static_cast<float>(sum) * d);
}

// q8_0 / q8_1, ggml's x86 path: id = 127 / amax, round half to even.
template <bool kWithSum>
void quantize_q8_x86_block(const float* x, uint16_t* d_out, uint16_t* s_out, int8_t* qs) {
  const float amax = block_amax(x, kQK);
  const float d = amax / 127.0f;
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  int sum = 0;
  for (int j = 0; j < kQK; ++j) {
    qs[j] = static_cast<int8_t>(std::nearbyintf(x[j] * id));  // default rounding mode: half to even
    sum += qs[j];
  }
  *d_out = fp32_to_fp16(d);
  if constexpr (kWithSum) *s_out = fp32_to_fp16(d * static_cast<float>(sum));
}

void quantize_q8_k_block(const float* x, BlockQ8_K* y) {
  float max = 0.0f, amax = 0.0f;  // max: signed value of the first element of largest magnitude
  for (int j = 0; j < kQKK; ++j) {
    const float ax = std::fabs(x[j]);
    if (ax > amax) {
      amax = ax;
      max = x[j];
    }
  }
  if (amax == 0.0f) {  // ggml leaves bsums unwritten here; they are multiplied by d = 0 anyway
    std::memset(y, 0, sizeof(*y));
    return;
  }
  const float iscale = -127.0f / max;
  for (int j = 0; j < kQKK; ++j) {
    const int v = nearest_int(iscale * x[j]);
    y->qs[j] = static_cast<int8_t>(v < 127 ? v : 127);
  }
  for (int j = 0; j < kQKK / 16; ++j) {
    int sum = 0;
    for (int i = 0; i < 16; ++i) sum += y->qs[16 * j + i];
    y->bsums[j] = static_cast<int16_t>(sum);
  }
  y->d = 1.0f / iscale;
}

}  // namespace

// ---- Internal entry points (kernels/quant_internal.h) -------------------------------------------

void quantize_row_q8_0_x86(const float* x, void* dst, int64_t n) {
  HYLO_CHECK(n % kQK == 0);
  BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) quantize_q8_x86_block<false>(x + i * kQK, &y[i].d, nullptr, y[i].qs);
}

void quantize_row_q8_1_x86(const float* x, void* dst, int64_t n) {
  HYLO_CHECK(n % kQK == 0);
  BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) quantize_q8_x86_block<true>(x + i * kQK, &y[i].d, &y[i].s, y[i].qs);
}

void quantize_row_q8_k(const float* x, void* dst, int64_t n) {
  HYLO_CHECK(n % kQKK == 0);
  BlockQ8_K* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i) quantize_q8_k_block(x + i * kQKK, &y[i]);
}

void quantize_row_f16(const float* x, void* dst, int64_t n) {
  uint16_t* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void quantize_row_bf16(const float* x, void* dst, int64_t n) {
  uint16_t* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

void quantize_row_f32(const float* x, void* dst, int64_t n) { std::memcpy(dst, x, static_cast<size_t>(n) * 4); }

// ---- Public API ---------------------------------------------------------------------------------

bool can_dequantize(TensorType type) {
  switch (type) {
    case TensorType::kF32:
    case TensorType::kF16:
    case TensorType::kBF16:
    case TensorType::kQ4_0:
    case TensorType::kQ4_1:
    case TensorType::kQ5_0:
    case TensorType::kQ5_1:
    case TensorType::kQ8_0:
    case TensorType::kQ8_1:
    case TensorType::kQ8_K:
    case TensorType::kQ2_K:
    case TensorType::kQ3_K:
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
    case TensorType::kQ6_K:
    case TensorType::kIQ4_NL:
    case TensorType::kIQ4_XS:
      return true;
    default:
      return false;
  }
}

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case TensorType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case TensorType::kF16: {
      const uint16_t* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
      return;
    }
    case TensorType::kBF16: {
      const uint16_t* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
      return;
    }
    case TensorType::kQ4_0:
      return dequant_blocks<BlockQ4_0, kQK>(src, dst, n, dequant_q4_0);
    case TensorType::kQ4_1:
      return dequant_blocks<BlockQ4_1, kQK>(src, dst, n, dequant_q4_1);
    case TensorType::kQ5_0:
      return dequant_blocks<BlockQ5_0, kQK>(src, dst, n, dequant_q5_0);
    case TensorType::kQ5_1:
      return dequant_blocks<BlockQ5_1, kQK>(src, dst, n, dequant_q5_1);
    case TensorType::kQ8_0:
      return dequant_blocks<BlockQ8_0, kQK>(src, dst, n, dequant_q8_0);
    case TensorType::kQ8_1:
      return dequant_blocks<BlockQ8_1, kQK>(src, dst, n, dequant_q8_1);
    case TensorType::kQ8_K:
      return dequant_blocks<BlockQ8_K, kQKK>(src, dst, n, dequant_q8_k);
    case TensorType::kQ2_K:
      return dequant_blocks<BlockQ2_K, kQKK>(src, dst, n, dequant_q2_k);
    case TensorType::kQ3_K:
      return dequant_blocks<BlockQ3_K, kQKK>(src, dst, n, dequant_q3_k);
    case TensorType::kQ4_K:
      return dequant_blocks<BlockQ4_K, kQKK>(src, dst, n, dequant_q4_k);
    case TensorType::kQ5_K:
      return dequant_blocks<BlockQ5_K, kQKK>(src, dst, n, dequant_q5_k);
    case TensorType::kQ6_K:
      return dequant_blocks<BlockQ6_K, kQKK>(src, dst, n, dequant_q6_k);
    case TensorType::kIQ4_NL:
      return dequant_blocks<BlockIQ4_NL, kQK>(src, dst, n, dequant_iq4_nl);
    case TensorType::kIQ4_XS:
      return dequant_blocks<BlockIQ4_XS, kQKK>(src, dst, n, dequant_iq4_xs);
    default:
      HYLO_CHECK(false, "dequantize_row: type {} unsupported", tensor_type_name(type));
  }
}

bool can_quantize(TensorType type) {
  switch (type) {
    case TensorType::kF32:
    case TensorType::kF16:
    case TensorType::kBF16:
    case TensorType::kQ8_0:
    case TensorType::kQ8_1:
    case TensorType::kQ8_K:
    case TensorType::kQ4_0:
    case TensorType::kQ4_1:
    case TensorType::kQ5_0:
    case TensorType::kQ5_1:
    case TensorType::kQ2_K:
    case TensorType::kQ3_K:
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
    case TensorType::kQ6_K:
    case TensorType::kIQ4_NL:
    case TensorType::kIQ4_XS:
      return true;
    default:
      return false;
  }
}

void quantize_row(TensorType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case TensorType::kF32:
      return quantize_row_f32(src, dst, n);
    case TensorType::kF16:
      return quantize_row_f16(src, dst, n);
    case TensorType::kBF16:
      return quantize_row_bf16(src, dst, n);
    case TensorType::kQ8_0: {
      HYLO_CHECK(n % kQK == 0);
      BlockQ8_0* y = static_cast<BlockQ8_0*>(dst);
      for (int64_t i = 0; i < n / kQK; ++i) quantize_q8_ref_block<false>(src + i * kQK, &y[i].d, nullptr, y[i].qs);
      return;
    }
    case TensorType::kQ8_1: {
      HYLO_CHECK(n % kQK == 0);
      BlockQ8_1* y = static_cast<BlockQ8_1*>(dst);
      for (int64_t i = 0; i < n / kQK; ++i) quantize_q8_ref_block<true>(src + i * kQK, &y[i].d, &y[i].s, y[i].qs);
      return;
    }
    case TensorType::kQ8_K:
      return quantize_row_q8_k(src, dst, n);
    case TensorType::kQ4_0:
      return quantize_row_q4_0_ref(src, dst, n);
    case TensorType::kQ4_1:
      return quantize_row_q4_1_ref(src, dst, n);
    case TensorType::kQ5_0:
      return quantize_row_q5_0_ref(src, dst, n);
    case TensorType::kQ5_1:
      return quantize_row_q5_1_ref(src, dst, n);
    case TensorType::kQ2_K:
      return quantize_row_q2_k_ref(src, dst, n);
    case TensorType::kQ3_K:
      return quantize_row_q3_k_ref(src, dst, n);
    case TensorType::kQ4_K:
      return quantize_row_q4_k_ref(src, dst, n);
    case TensorType::kQ5_K:
      return quantize_row_q5_k_ref(src, dst, n);
    case TensorType::kQ6_K:
      return quantize_row_q6_k_ref(src, dst, n);
    case TensorType::kIQ4_NL:
      return quantize_row_iq4_nl_ref(src, dst, n);
    case TensorType::kIQ4_XS:
      return quantize_row_iq4_xs_ref(src, dst, n);
    default:
      HYLO_CHECK(false, "quantize_row: type {} unsupported", tensor_type_name(type));
  }
}

void quantize_act_row(TensorType act, const float* src, void* dst, int64_t n) {
  switch (act) {
    case TensorType::kQ8_0:
      return quantize_row_q8_0_x86(src, dst, n);
    case TensorType::kQ8_1:
      return quantize_row_q8_1_x86(src, dst, n);
    case TensorType::kQ8_K:
      return quantize_row_q8_k(src, dst, n);
    case TensorType::kF32:
      return quantize_row_f32(src, dst, n);
    case TensorType::kF16:
      return quantize_row_f16(src, dst, n);
    case TensorType::kBF16:
      return quantize_row_bf16(src, dst, n);
    default:
      HYLO_CHECK(false, "quantize_act_row: {} is not an activation type", tensor_type_name(act));
  }
}

}  // namespace hylo::kernels
