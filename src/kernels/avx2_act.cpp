// AVX2 activation quantizers (MatmulKernel::quantize_act of the AVX2 family): q8_0 and q8_1 (ggml's
// x86 variant), q8_K, f16 and bf16, writing exactly the bytes of quantize_act_row's scalar code (see
// avx512_act.cpp for why the vectorized operations give the same results).
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/avx2_gemm.h"
#include "kernels/avx2_util.h"
#include "kernels/blocks.h"
#include "kernels/simd.h"

namespace hylo::kernels {
namespace {

inline __m256 abs_ps(__m256 v) {
  return _mm256_castsi256_ps(_mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x7fffffff)));
}

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}

inline uint16_t fp16_bits(float f) { return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

// 32 int32 (values within int8) to bytes in order.
inline void store_i8x32(int8_t* dst, __m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);  // per 128-bit lane
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  // lanes hold a0 b0 c0 d0 | a1 b1 c1 d1 (4 dwords each): restore a b c d order
  const __m256i order = _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), order);
}

// d = amax / 127 (fp16), q = round-half-even(x * (127 / amax)); q8_1 also stores s = fp16(d · Σ q).
template <typename Block>
void quantize_q8_blocks(const float* x, Block* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(x + 8 * i);
      m = _mm256_max_ps(m, abs_ps(v[i]));
    }
    const float amax = hmax(m);
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    y[b].d = fp16_bits(d);
    const __m256 s = _mm256_set1_ps(id);
    __m256i q[4];
    for (int i = 0; i < 4; ++i) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], s));
    store_i8x32(y[b].qs, q[0], q[1], q[2], q[3]);
    if constexpr (std::is_same_v<Block, BlockQ8_1>) {
      const __m256i sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
      y[b].s = fp16_bits(d * static_cast<float>(hsum(sum)));
    }
  }
}

}  // namespace

void avx2_quantize_q8_0(const float* x, void* dst, int64_t n) {
  quantize_q8_blocks(x, static_cast<BlockQ8_0*>(dst), n);
}

void avx2_quantize_q8_1(const float* x, void* dst, int64_t n) {
  quantize_q8_blocks(x, static_cast<BlockQ8_1*>(dst), n);
}

void avx2_quantize_q8_k(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < kQKK; i += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + i)));
    const float amax = hmax(m);
    if (amax == 0.0f) {
      std::memset(&y[b], 0, sizeof(y[b]));
      continue;
    }
    float max = 0.0f;
    for (int i = 0; i < kQKK; i += 8) {  // the first element whose magnitude is amax
      const int hit =
          _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + i)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
      if (hit != 0) {
        max = x[i + __builtin_ctz(static_cast<unsigned>(hit))];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m256 s = _mm256_set1_ps(iscale);
    const __m256i cap = _mm256_set1_epi32(127);
    for (int j = 0; j < kQKK / 32; ++j) {
      __m256i q[4];
      for (int i = 0; i < 4; ++i) {
        q[i] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(s, _mm256_loadu_ps(x + 32 * j + 8 * i))), cap);
      }
      store_i8x32(y[b].qs + 32 * j, q[0], q[1], q[2], q[3]);
      y[b].bsums[2 * j] = static_cast<int16_t>(hsum(_mm256_add_epi32(q[0], q[1])));
      y[b].bsums[2 * j + 1] = static_cast<int16_t>(hsum(_mm256_add_epi32(q[2], q[3])));
    }
    y[b].d = 1.0f / iscale;
  }
}

void avx2_quantize_f16(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) y[i] = fp16_bits(x[i]);
}

void avx2_quantize_bf16(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<uint16_t*>(dst);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i bits = _mm256_castps_si256(_mm256_loadu_ps(x + i));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i rounded =
        _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(64));
    const __m256i abs = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
    const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));  // abs < 2^31: signed compare ok
    const __m256i r = _mm256_blendv_epi8(rounded, quiet, nan);
    const __m256i packed = _mm256_packus_epi32(r, r);  // values <= 0xFFFF
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i),
                     _mm_unpacklo_epi64(_mm256_castsi256_si128(packed), _mm256_extracti128_si256(packed, 1)));
  }
  for (; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, 4);
    y[i] = (bits & 0x7fffffffu) > 0x7f800000u ? static_cast<uint16_t>((bits >> 16) | 64u)
                                              : static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
  }
}

}  // namespace hylo::kernels
