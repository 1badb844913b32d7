// ISA-specific peak loops behind peak.h (one core, about 50 ms each).
#pragma once

namespace hylo::kernels {

double avx512_int8_peak_gops();
double avx512_bf16_peak_gflops();
double avx512_fma_peak_gflops();
double avx2_int8_peak_gops();
double avx2_fma_peak_gflops();

}  // namespace hylo::kernels
