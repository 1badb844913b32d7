// Peak loops in AVX-512: vpdpbusd and vfmadd231ps on zmm registers (vdpbf16ps: avx512_bf16.cpp).
#include "kernels/peak_internal.h"
#include "kernels/peak_loop.h"
#include "kernels/simd.h"

namespace hylo::kernels {

double avx512_int8_peak_gops() {
  __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-5);
  __asm__ volatile("" : "+v"(a), "+v"(b));
  const double ips =
      peak_instructions_per_second(_mm512_setzero_si512(), [&](__m512i acc) { return _mm512_dpbusd_epi32(acc, a, b); });
  return ips * 64 * 2 / 1e9;
}

double avx512_fma_peak_gflops() {
  __m512 a = _mm512_set1_ps(0.5f), b = _mm512_set1_ps(0.25f);
  __asm__ volatile("" : "+v"(a), "+v"(b));
  const double ips =
      peak_instructions_per_second(_mm512_setzero_ps(), [&](__m512 acc) { return _mm512_fmadd_ps(acc, a, b); });
  return ips * 16 * 2 / 1e9;
}

}  // namespace hylo::kernels
