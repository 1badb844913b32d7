// Dispatch of the peak measurements (peak.h) to the ISA-specific loops.
#include "kernels/peak.h"

#include "base/cpu.h"
#include "kernels/peak_internal.h"

namespace hylo::kernels {

double measure_int8_peak_gops(int threads) {
  double per_core = 0;
#if defined(__x86_64__)
  if (isa_supported(Isa::kAvx512))
    per_core = avx512_int8_peak_gops();
  else if (isa_supported(Isa::kAvx2))
    per_core = avx2_int8_peak_gops();
#endif
  return per_core * threads;
}

double measure_bf16_peak_gflops(int threads) {
  double per_core = 0;
#if defined(__x86_64__)
  if (isa_supported(Isa::kAvx512)) per_core = avx512_bf16_peak_gflops();
#endif
  return per_core * threads;
}

double measure_fma_peak_gflops(int threads) {
  double per_core = 0;
#if defined(__x86_64__)
  if (isa_supported(Isa::kAvx512))
    per_core = avx512_fma_peak_gflops();
  else if (isa_supported(Isa::kAvx2))
    per_core = avx2_fma_peak_gflops();
#endif
  return per_core * threads;
}

}  // namespace hylo::kernels
