// The AVX-512 matmul family table (AVX-512 F/BW/VL/DQ + VNNI): which gemm and activation quantizer
// serve each weight type. bf16 multiplies with vdpbf16ps where the CPU has AVX512-BF16 and with
// FMAs elsewhere (the same bits). The kernels themselves live in avx512_*.cpp by quant family.
#include "base/cpu.h"
#include "kernels/avx512_gemm.h"
#include "kernels/quant_internal.h"

namespace hylo::kernels {
namespace {

using T = TensorType;
constexpr MatmulKernel kKernels[] = {
    {T::kF32, T::kF32, Isa::kAvx512, quantize_row_f32, avx512_gemm_f32, image_layout(T::kF32, 16),
     avx512_gemm_image_f32, &avx512_records_f32},
    {T::kF16, T::kF16, Isa::kAvx512, avx512_quantize_f16, avx512_gemm_f16, image_layout(T::kF16, 16),
     avx512_gemm_image_f16, &avx512_records_f16},
    {T::kBF16, T::kBF16, Isa::kAvx512, avx512_quantize_bf16, avx512_gemm_bf16, image_layout(T::kBF16, 16),
     avx512_gemm_image_bf16, &avx512_records_bf16},
    {T::kQ8_0, T::kQ8_0, Isa::kAvx512, avx512_quantize_q8_0, avx512_gemm_q8_0, image_layout(T::kQ8_0, 16),
     avx512_gemm_image_q8_0, &avx512_records_q8_0},
    {T::kQ4_0, T::kQ8_0, Isa::kAvx512, avx512_quantize_q8_0, avx512_gemm_q4_0, image_layout(T::kQ4_0, 16),
     avx512_gemm_image_q4_0, &avx512_records_q4_0},
    {T::kQ5_0, T::kQ8_0, Isa::kAvx512, avx512_quantize_q8_0, avx512_gemm_q5_0, image_layout(T::kQ5_0, 16),
     avx512_gemm_image_q5_0, &avx512_records_q5_0},
    {T::kQ4_1, T::kQ8_1, Isa::kAvx512, avx512_quantize_q8_1, avx512_gemm_q4_1, image_layout(T::kQ4_1, 16),
     avx512_gemm_image_q4_1, &avx512_records_q4_1},
    {T::kQ5_1, T::kQ8_1, Isa::kAvx512, avx512_quantize_q8_1, avx512_gemm_q5_1, image_layout(T::kQ5_1, 16),
     avx512_gemm_image_q5_1, &avx512_records_q5_1},
    {T::kIQ4_NL, T::kQ8_0, Isa::kAvx512, avx512_quantize_q8_0, avx512_gemm_iq4_nl, image_layout(T::kIQ4_NL, 16),
     avx512_gemm_image_iq4_nl, &avx512_records_iq4_nl},
    {T::kQ2_K, T::kQ8_K, Isa::kAvx512, avx512_quantize_q8_k, avx512_gemm_q2_k, image_layout(T::kQ2_K, 16),
     avx512_gemm_image_q2_k, &avx512_records_q2_k},
    {T::kQ3_K, T::kQ8_K, Isa::kAvx512, avx512_quantize_q8_k, avx512_gemm_q3_k, image_layout(T::kQ3_K, 16),
     avx512_gemm_image_q3_k, &avx512_records_q3_k},
    {T::kQ4_K, T::kQ8_K, Isa::kAvx512, avx512_quantize_q8_k, avx512_gemm_q4_k, image_layout(T::kQ4_K, 16),
     avx512_gemm_image_q4_k, &avx512_records_q4_k},
    {T::kQ5_K, T::kQ8_K, Isa::kAvx512, avx512_quantize_q8_k, avx512_gemm_q5_k, image_layout(T::kQ5_K, 16),
     avx512_gemm_image_q5_k, &avx512_records_q5_k},
    {T::kQ6_K, T::kQ8_K, Isa::kAvx512, avx512_quantize_q8_k, avx512_gemm_q6_k, image_layout(T::kQ6_K, 16),
     avx512_gemm_image_q6_k, &avx512_records_q6_k},
    {T::kIQ4_XS, T::kQ8_K, Isa::kAvx512, avx512_quantize_q8_k, avx512_gemm_iq4_xs, image_layout(T::kIQ4_XS, 16),
     avx512_gemm_image_iq4_xs, &avx512_records_iq4_xs},
};

constexpr MatmulKernel kBf16Fma = {T::kBF16,
                                   T::kBF16,
                                   Isa::kAvx512,
                                   avx512_quantize_bf16,
                                   avx512_gemm_bf16_fma,
                                   image_layout(T::kBF16, 16),
                                   avx512_gemm_image_bf16_fma,
                                   &avx512_records_bf16_fma};

}  // namespace

const MatmulKernel* avx512_bf16_fma_kernel() { return isa_supported(Isa::kAvx512) ? &kBf16Fma : nullptr; }

const MatmulKernel* avx512_matmul_kernel(TensorType weight) {
  if (weight == T::kBF16 && !cpu_features().avx512bf16) return &kBf16Fma;
  for (const MatmulKernel& k : kKernels) {
    if (k.weight == weight) return &k;
  }
  return nullptr;
}

}  // namespace hylo::kernels
