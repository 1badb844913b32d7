// AVX-512 activation quantizers (MatmulKernel::quantize_act of the AVX-512 family): q8_0 and q8_1
// (ggml's x86 variant), q8_K, f16 and bf16. They write exactly the bytes of quantize_act_row's scalar
// code: the same f32 operations (the block maximum is exact in any order, the divisions and the
// products are single IEEE operations, conversions round to nearest even), only vectorized.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/avx512_gemm.h"
#include "kernels/avx512_util.h"
#include "kernels/blocks.h"
#include "kernels/simd.h"

namespace hylo::kernels {
namespace {

inline __m512 abs_ps(__m512 v) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)));
}

// d = amax / 127 (fp16), q = round-half-even(x * (127 / amax)); q8_1 also stores s = fp16(d · Σ q).
template <typename Block>
void quantize_q8_blocks(const float* x, Block* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(abs_ps(v0), abs_ps(v1)));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    y[b].d = fp16_bits(d);
    const __m512 s = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, s)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, s));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs), _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16), _mm512_cvtsepi32_epi8(q1));
    if constexpr (std::is_same_v<Block, BlockQ8_1>)
      y[b].s = fp16_bits(d * static_cast<float>(_mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1))));
  }
}

}  // namespace

void avx512_quantize_q8_0(const float* x, void* dst, int64_t n) {
  quantize_q8_blocks(x, static_cast<BlockQ8_0*>(dst), n);
}

void avx512_quantize_q8_1(const float* x, void* dst, int64_t n) {
  quantize_q8_blocks(x, static_cast<BlockQ8_1*>(dst), n);
}

// max = the first element of largest magnitude, iscale = -127 / max, q = min(127, rne(iscale * x)),
// d = 1 / iscale, bsums of 16.
void avx512_quantize_q8_k(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    __m512 m = _mm512_setzero_ps();
    for (int i = 0; i < kQKK; i += 16) m = _mm512_max_ps(m, abs_ps(_mm512_loadu_ps(x + i)));
    const float amax = _mm512_reduce_max_ps(m);
    if (amax == 0.0f) {
      std::memset(&y[b], 0, sizeof(y[b]));
      continue;
    }
    float max = 0.0f;
    for (int i = 0; i < kQKK; i += 16) {  // the first element whose magnitude is amax
      const __mmask16 hit = _mm512_cmp_ps_mask(abs_ps(_mm512_loadu_ps(x + i)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (hit != 0) {
        max = x[i + __builtin_ctz(hit)];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m512 s = _mm512_set1_ps(iscale);
    for (int j = 0; j < kQKK / 16; ++j) {
      const __m512i q =
          _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(s, _mm512_loadu_ps(x + 16 * j))), _mm512_set1_epi32(127));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y[b].qs + 16 * j), _mm512_cvtsepi32_epi8(q));
      y[b].bsums[j] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
    }
    y[b].d = 1.0f / iscale;
  }
}

void avx512_quantize_f16(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) y[i] = fp16_bits(x[i]);
}

// Round to nearest even on the bits; NaN keeps its upper bits and is forced quiet.
void avx512_quantize_bf16(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512i bits = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + i));
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    const __m512i rounded =
        _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    const __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(64));
    const __mmask16 nan =
        _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet)));
  }
}

}  // namespace hylo::kernels
