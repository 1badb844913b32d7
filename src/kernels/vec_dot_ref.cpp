// vec_dot_reference: ggml's scalar dot products (the *_generic functions) with their exact
// accumulation order, the oracle the SIMD kernels are tested against. Each per-type function
// follows the row of the fixture README's accumulation table. Compiled with -ffp-contract=off.
#include "base/check.h"
#include "base/half.h"
#include "kernels/blocks.h"
#include "kernels/quant.h"
#include "kernels/quant_internal.h"

namespace hylo::kernels {
namespace {

// ---- 32-element blocks against q8_0 / q8_1 -----------------------------------------------------

// Integer dot of one block: Σ code(j) · q_a[j].
template <typename CodeFn>
int block_dot(const int8_t* qa, CodeFn code) {
  int sum = 0;
  for (int j = 0; j < kQK; ++j) sum += code(j) * qa[j];
  return sum;
}

float dot_q4_0(int64_t nb, const BlockQ4_0* w, const BlockQ8_0* a) {
  float acc = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const int s = block_dot(a[i].qs, [&](int j) { return nibble_code(w[i].qs, j) - 8; });
    acc += (static_cast<float>(s) * fp16_to_fp32(w[i].d)) * fp16_to_fp32(a[i].d);
  }
  return acc;
}

float dot_q4_1(int64_t nb, const BlockQ4_1* w, const BlockQ8_1* a) {
  float acc = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const int s = block_dot(a[i].qs, [&](int j) { return nibble_code(w[i].qs, j); });
    acc += (fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d)) * static_cast<float>(s) +
           fp16_to_fp32(w[i].m) * fp16_to_fp32(a[i].s);
  }
  return acc;
}

float dot_q5_0(int64_t nb, const BlockQ5_0* w, const BlockQ8_0* a) {
  float acc = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const int s = block_dot(a[i].qs, [&](int j) { return q5_code(w[i].qh, w[i].qs, j) - 16; });
    acc += (fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d)) * static_cast<float>(s);
  }
  return acc;
}

float dot_q5_1(int64_t nb, const BlockQ5_1* w, const BlockQ8_1* a) {
  float acc = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const int s = block_dot(a[i].qs, [&](int j) { return q5_code(w[i].qh, w[i].qs, j); });
    acc += (fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d)) * static_cast<float>(s) +
           fp16_to_fp32(w[i].m) * fp16_to_fp32(a[i].s);
  }
  return acc;
}

float dot_q8_0(int64_t nb, const BlockQ8_0* w, const BlockQ8_0* a) {
  float acc = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const int s = block_dot(a[i].qs, [&](int j) { return static_cast<int>(w[i].qs[j]); });
    acc += static_cast<float>(s) * (fp16_to_fp32(w[i].d) * fp16_to_fp32(a[i].d));
  }
  return acc;
}

float dot_iq4_nl(int64_t nb, const BlockIQ4_NL* w, const BlockQ8_0* a) {
  float acc = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const int s = block_dot(a[i].qs, [&](int j) { return static_cast<int>(kIq4nlValues[nibble_code(w[i].qs, j)]); });
    acc += (fp16_to_fp32(a[i].d) * fp16_to_fp32(w[i].d)) * static_cast<float>(s);
  }
  return acc;
}

// ---- 256-element super-blocks against q8_K ------------------------------------------------------

float dot_q2_k(int64_t nb, const BlockQ2_K* w, const BlockQ8_K* a) {
  float acc = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int summs = 0, isum = 0;
    for (int k = 0; k < 16; ++k) {
      summs += a[i].bsums[k] * (w[i].scales[k] >> 4);
      int s = 0;
      for (int e = 16 * k; e < 16 * k + 16; ++e) s += q2k_code(w[i], e) * a[i].qs[e];
      isum += (w[i].scales[k] & 0x0F) * s;
    }
    const float dall = a[i].d * fp16_to_fp32(w[i].d);
    const float dmin = a[i].d * fp16_to_fp32(w[i].dmin);
    acc += dall * static_cast<float>(isum) - dmin * static_cast<float>(summs);
  }
  return acc;
}

float dot_iq4_xs(int64_t nb, const BlockIQ4_XS* w, const BlockQ8_K* a) {
  float acc = 0;
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(w[i].d) * a[i].d;
    for (int ib = 0; ib < 8; ++ib) {
      int s = 0;
      for (int j = 0; j < 32; ++j) s += kIq4nlValues[nibble_code(w[i].qs + 16 * ib, j)] * a[i].qs[32 * ib + j];
      acc += (d * static_cast<float>(unpack_scale_iq4_xs(ib, w[i]))) * static_cast<float>(s);
    }
  }
  return acc;
}

// q3_K, q4_K, q5_K, q6_K share one shape: element e adds scale(e / 16) · q_w · q_a to int lane
// e mod 8; per super-block the eight lanes are scaled by d_w · d_a into eight float lane sums that
// persist over the row (q4_K/q5_K also subtract their min term from acc); the lanes are added to
// acc in order at the end. `decode` fills codes[256], scales[16] (per 16 elements), mins[16] and
// returns false if the type has no min term.
template <typename Block, typename Decode>
float dot_k_lanes(int64_t nb, const Block* w, const BlockQ8_K* a, Decode decode) {
  float lanes[8] = {};
  float acc = 0;
  for (int64_t i = 0; i < nb; ++i) {
    int codes[kQKK], scales[16], mins[16] = {};
    float d_w = 0, dmin_w = 0;
    const bool has_min = decode(w[i], codes, scales, mins, &d_w, &dmin_w);
    int lane_sum[8] = {};
    for (int e = 0; e < kQKK; ++e) lane_sum[e % 8] += scales[e / 16] * codes[e] * a[i].qs[e];
    const float d = d_w * a[i].d;
    for (int l = 0; l < 8; ++l) lanes[l] += d * static_cast<float>(lane_sum[l]);
    if (has_min) {
      int summ = 0;
      for (int k = 0; k < 16; ++k) summ += a[i].bsums[k] * mins[k];
      acc -= (dmin_w * a[i].d) * static_cast<float>(summ);
    }
  }
  for (int l = 0; l < 8; ++l) acc += lanes[l];
  return acc;
}

bool decode_q3_k(const BlockQ3_K& b, int* codes, int* scales, int*, float* d, float*) {
  for (int e = 0; e < kQKK; ++e) codes[e] = q3k_code(b, e);
  for (int k = 0; k < 16; ++k) scales[k] = unpack_scale_q3_k(k, b.scales);
  *d = fp16_to_fp32(b.d);
  return false;
}

template <typename Block, typename CodeFn>
bool decode_k4(const Block& b, int* codes, int* scales, int* mins, float* d, float* dmin, CodeFn code) {
  for (int e = 0; e < kQKK; ++e) codes[e] = code(b, e);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    unpack_scale_min_k4(j, b.scales, &sc, &m);
    scales[2 * j] = scales[2 * j + 1] = sc;
    mins[2 * j] = mins[2 * j + 1] = m;
  }
  *d = fp16_to_fp32(b.d);
  *dmin = fp16_to_fp32(b.dmin);
  return true;
}

bool decode_q4_k(const BlockQ4_K& b, int* codes, int* scales, int* mins, float* d, float* dmin) {
  return decode_k4(b, codes, scales, mins, d, dmin, [](const BlockQ4_K& x, int e) { return q4k_code(x.qs, e); });
}

bool decode_q5_k(const BlockQ5_K& b, int* codes, int* scales, int* mins, float* d, float* dmin) {
  return decode_k4(b, codes, scales, mins, d, dmin, [](const BlockQ5_K& x, int e) { return q5k_code(x, e); });
}

bool decode_q6_k(const BlockQ6_K& b, int* codes, int* scales, int*, float* d, float*) {
  for (int e = 0; e < kQKK; ++e) codes[e] = q6k_code(b, e) - 32;
  for (int k = 0; k < 16; ++k) scales[k] = b.scales[k];
  *d = fp16_to_fp32(b.d);
  return false;
}

// ---- Float types: products rounded to f32, summed in double (ggml's ggml_float) ----------------

template <typename ToFloat>
float dot_float(int64_t n, const void* w, const void* a, ToFloat to_float) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(to_float(w, i) * to_float(a, i));
  return static_cast<float>(sum);
}

// Uniform signature for the dispatch table: n elements, raw weight row, raw activation row.
template <typename W, typename A, float (*kDot)(int64_t, const W*, const A*), int kBlock>
float typed_dot(int64_t n, const void* w, const void* x) {
  return kDot(n / kBlock, static_cast<const W*>(w), static_cast<const A*>(x));
}

template <typename W, typename Decode, Decode kDecode>
float k_lanes_dot(int64_t n, const void* w, const void* x) {
  return dot_k_lanes(n / kQKK, static_cast<const W*>(w), static_cast<const BlockQ8_K*>(x), kDecode);
}

float f32_dot(int64_t n, const void* w, const void* x) {
  return dot_float(n, w, x, [](const void* p, int64_t i) { return static_cast<const float*>(p)[i]; });
}
float f16_dot(int64_t n, const void* w, const void* x) {
  return dot_float(n, w, x, [](const void* p, int64_t i) { return fp16_to_fp32(static_cast<const uint16_t*>(p)[i]); });
}
float bf16_dot(int64_t n, const void* w, const void* x) {
  return dot_float(n, w, x, [](const void* p, int64_t i) { return bf16_to_fp32(static_cast<const uint16_t*>(p)[i]); });
}

}  // namespace

VecDotFn vec_dot_reference_fn(TensorType weight) {
  switch (weight) {
    case TensorType::kF32:
      return f32_dot;
    case TensorType::kF16:
      return f16_dot;
    case TensorType::kBF16:
      return bf16_dot;
    case TensorType::kQ4_0:
      return typed_dot<BlockQ4_0, BlockQ8_0, dot_q4_0, kQK>;
    case TensorType::kQ4_1:
      return typed_dot<BlockQ4_1, BlockQ8_1, dot_q4_1, kQK>;
    case TensorType::kQ5_0:
      return typed_dot<BlockQ5_0, BlockQ8_0, dot_q5_0, kQK>;
    case TensorType::kQ5_1:
      return typed_dot<BlockQ5_1, BlockQ8_1, dot_q5_1, kQK>;
    case TensorType::kQ8_0:
      return typed_dot<BlockQ8_0, BlockQ8_0, dot_q8_0, kQK>;
    case TensorType::kIQ4_NL:
      return typed_dot<BlockIQ4_NL, BlockQ8_0, dot_iq4_nl, kQK>;
    case TensorType::kQ2_K:
      return typed_dot<BlockQ2_K, BlockQ8_K, dot_q2_k, kQKK>;
    case TensorType::kIQ4_XS:
      return typed_dot<BlockIQ4_XS, BlockQ8_K, dot_iq4_xs, kQKK>;
    case TensorType::kQ3_K:
      return k_lanes_dot<BlockQ3_K, decltype(&decode_q3_k), decode_q3_k>;
    case TensorType::kQ4_K:
      return k_lanes_dot<BlockQ4_K, decltype(&decode_q4_k), decode_q4_k>;
    case TensorType::kQ5_K:
      return k_lanes_dot<BlockQ5_K, decltype(&decode_q5_k), decode_q5_k>;
    case TensorType::kQ6_K:
      return k_lanes_dot<BlockQ6_K, decltype(&decode_q6_k), decode_q6_k>;
    default:
      return nullptr;
  }
}

float vec_dot_reference(TensorType weight, int64_t n, const void* w, const void* x) {
  const TensorTypeInfo& info = tensor_type_info(weight);
  const VecDotFn dot = vec_dot_reference_fn(weight);
  HYLO_CHECK(dot != nullptr, "vec_dot_reference: type {} unsupported", info.name);
  HYLO_CHECK(n % info.block_elems == 0, "vec_dot_reference: n={} for {}", n, info.name);
  return dot(n, w, x);
}

TensorType vec_dot_type(TensorType weight) {
  switch (weight) {
    case TensorType::kQ4_0:
    case TensorType::kQ5_0:
    case TensorType::kQ8_0:
    case TensorType::kIQ4_NL:
      return TensorType::kQ8_0;
    case TensorType::kQ4_1:
    case TensorType::kQ5_1:
      return TensorType::kQ8_1;
    case TensorType::kQ2_K:
    case TensorType::kQ3_K:
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
    case TensorType::kQ6_K:
    case TensorType::kIQ4_XS:
      return TensorType::kQ8_K;
    default:
      return weight;  // f32, f16, bf16: activations in the weight's own format
  }
}

}  // namespace hylo::kernels
