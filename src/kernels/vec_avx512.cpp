// AVX-512 family of the elementwise kernels (compiled with AVX-512 flags only).
#include <immintrin.h>

#include "kernels/vec_simd.h"

namespace hylo::kernels {
namespace {

struct V512 {
  using F = __m512;
  static constexpr int N = 16;
  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void store_f16(uint16_t* p, F v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  static F load_any(const float* p) { return load(p); }
  static F load_any(const uint16_t* p) { return load_f16(p); }
  static F load_i8(const int8_t* p) {  // N int8 values, widened
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  // y[c][r] = x[r][c] for a 16 × 16 block: pairs of rows interleaved, then 4-element groups, then
  // two rounds of 128-bit lane shuffles.
  static void transpose_block(const float* x, int64_t ldx, float* y, int64_t ldy) {
    F t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
      const F a = load_any(x + i * ldx), b = load_any(x + (i + 1) * ldx);
      t[i] = _mm512_unpacklo_ps(a, b);  // lane L: a[4L], b[4L], a[4L+1], b[4L+1]
      t[i + 1] = _mm512_unpackhi_ps(a, b);
    }
    for (int g = 0; g < 16; g += 4) {  // rows g .. g+3; u[g + c] lane L: column 4L + c of the 4 rows
      u[g] = _mm512_shuffle_ps(t[g], t[g + 2], 0x44);
      u[g + 1] = _mm512_shuffle_ps(t[g], t[g + 2], 0xEE);
      u[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
      u[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
    }
    for (int c = 0; c < 4; ++c) {
      const F v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
      const F v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88),
              v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
      store(y + c * ldy, _mm512_shuffle_f32x4(v0, v2, 0x88));
      store(y + (8 + c) * ldy, _mm512_shuffle_f32x4(v0, v2, 0xDD));
      store(y + (4 + c) * ldy, _mm512_shuffle_f32x4(v1, v3, 0x88));
      store(y + (12 + c) * ldy, _mm512_shuffle_f32x4(v1, v3, 0xDD));
    }
  }
  // Fixed-order horizontal reductions: 512 -> 256 -> 128 -> scalar.
  static float hsum(F v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(F v) {
    const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // e^x: x = n·ln2 + r, |r| ≤ ln2/2, degree-6 Taylor/minimax polynomial, 2^n by scalef.
  static F exp(F x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.33654f));
    x = _mm512_min_ps(x, _mm512_set1_ps(88.72283f));
    const F n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    F r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    F p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
  }
  static double sumsq_double(const float* x, int64_t n) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m512d lo = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
      const __m512d hi = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
      s0 = _mm512_fmadd_pd(lo, lo, s0);
      s1 = _mm512_fmadd_pd(hi, hi, s1);
    }
    const __m512d t = _mm512_add_pd(s0, s1);
    const __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(t), _mm512_extractf64x4_pd(t, 1));
    const __m128d q = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    double s = _mm_cvtsd_f64(_mm_add_sd(q, _mm_unpackhi_pd(q, q)));
    for (; i < n; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    return s;
  }
};

}  // namespace

constinit extern const VecKernels kVecAvx512 = simd::VecImpl<V512>::table(Isa::kAvx512);

}  // namespace hylo::kernels
