// Dispatch of the peak measurements (peak.h) to the loops of the kernel family in use (best_isa(),
// so HYLO_ISA=avx2 measures the AVX2 instructions).
#include "kernels/peak.h"

#include "base/cpu.h"
#include "kernels/peak_internal.h"

namespace hylo::kernels {

double measure_int8_peak_gops(int threads) {
  double per_core = 0;
#if defined(__x86_64__)
  if (best_isa() == Isa::kAvx512)
    per_core = avx512_int8_peak_gops();
  else if (best_isa() == Isa::kAvx2)
    per_core = avx2_int8_peak_gops();
#endif
  return per_core * threads;
}

double measure_bf16_peak_gflops(int threads) {
  double per_core = 0;
#if defined(__x86_64__)
  if (best_isa() == Isa::kAvx512 && cpu_features().avx512bf16) per_core = avx512_bf16_peak_gflops();
#endif
  return per_core * threads;
}

double measure_fma_peak_gflops(int threads) {
  double per_core = 0;
#if defined(__x86_64__)
  if (best_isa() == Isa::kAvx512)
    per_core = avx512_fma_peak_gflops();
  else if (best_isa() == Isa::kAvx2)
    per_core = avx2_fma_peak_gflops();
#endif
  return per_core * threads;
}

}  // namespace hylo::kernels
