// Measured arithmetic peaks of one core, the denominators of "% of peak" in benchmarks: a tight
// loop of independent accumulators in the instruction of the kernel family in use (best_isa()),
// about 50 ms each.
// Measured on the calling thread; the result is that rate times `threads` (pass 1 for one core).
#pragma once

namespace hylo::kernels {

// int8 multiply-accumulates as 2 ops each: vpdpbusd zmm (64 MACs) with AVX-512 VNNI, else
// vpmaddubsw ymm (32 MACs, the AVX2 int8 instruction); 0 without either.
double measure_int8_peak_gops(int threads = 1);
// bf16 dot products as 2 flops per product: vdpbf16ps zmm (32 products); 0 without AVX512-BF16.
double measure_bf16_peak_gflops(int threads = 1);
// f32 fused multiply-add, 2 flops each: vfmadd zmm (16) with AVX-512, else ymm (8); 0 without FMA.
double measure_fma_peak_gflops(int threads = 1);

}  // namespace hylo::kernels
