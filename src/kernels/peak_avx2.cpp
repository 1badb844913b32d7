// Peak loops in AVX2: vpmaddubsw and vfmadd231ps on ymm registers.
#include "kernels/peak_internal.h"
#include "kernels/peak_loop.h"
#include "kernels/simd.h"

namespace hylo::kernels {

double avx2_int8_peak_gops() {
  __m256i b = _mm256_set1_epi8(1);
  __asm__ volatile("" : "+v"(b));
  // Each vpmaddubsw does 32 u8 x s8 multiplies (pairs summed into 16 s16 lanes).
  const double ips =
      peak_instructions_per_second(_mm256_set1_epi8(2), [&](__m256i acc) { return _mm256_maddubs_epi16(acc, b); });
  return ips * 32 * 2 / 1e9;
}

double avx2_fma_peak_gflops() {
  __m256 a = _mm256_set1_ps(0.5f), b = _mm256_set1_ps(0.25f);
  __asm__ volatile("" : "+v"(a), "+v"(b));
  const double ips =
      peak_instructions_per_second(_mm256_setzero_ps(), [&](__m256 acc) { return _mm256_fmadd_ps(acc, a, b); });
  return ips * 8 * 2 / 1e9;
}

}  // namespace hylo::kernels
