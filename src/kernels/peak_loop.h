// The timing loop shared by peak_avx2.cpp and peak_avx512.cpp: 12 independent accumulators (more
// than latency x issue width of any of the measured instructions, and few enough to stay in the 16
// registers of AVX2 next to the operands), opaque to the compiler, repeated in short bursts for
// ~50 ms; the best burst is the peak.
// Include only from ISA-specific sources (internal linkage, no library templates).
#pragma once

#include <time.h>

namespace hylo::kernels {
namespace {

inline double now_seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Instructions per second of `step` (acc = step(acc)) over 12 dependency chains.
template <typename V, typename Step>
double peak_instructions_per_second(V init, Step step) {
  constexpr long kBurst = 25000;  // 300k instructions, ~0.1 ms
  V a0 = init, a1 = init, a2 = init, a3 = init, a4 = init, a5 = init;
  V a6 = init, a7 = init, a8 = init, a9 = init, a10 = init, a11 = init;
  double best = 0;
  const double start = now_seconds();
  while (now_seconds() - start < 0.05) {
    const double t0 = now_seconds();
    for (long i = 0; i < kBurst; ++i) {
      a0 = step(a0), a1 = step(a1), a2 = step(a2), a3 = step(a3), a4 = step(a4), a5 = step(a5);
      a6 = step(a6), a7 = step(a7), a8 = step(a8), a9 = step(a9), a10 = step(a10), a11 = step(a11);
      __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5));
      __asm__ volatile("" : "+v"(a6), "+v"(a7), "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
    }
    const double rate = 12.0 * kBurst / (now_seconds() - t0);
    if (rate > best) best = rate;
  }
  __asm__ volatile("" ::"v"(a0), "v"(a1), "v"(a2), "v"(a3), "v"(a4), "v"(a5));
  __asm__ volatile("" ::"v"(a6), "v"(a7), "v"(a8), "v"(a9), "v"(a10), "v"(a11));
  return best;
}

}  // namespace
}  // namespace hylo::kernels
