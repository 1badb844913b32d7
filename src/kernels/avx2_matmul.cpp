// The AVX2 matmul family table (AVX2 + FMA + F16C): which gemm and activation
// quantizer serve each weight type. The kernels themselves live in avx2_*.cpp by quant family.
#include "kernels/avx2_gemm.h"
#include "kernels/quant_internal.h"

namespace hylo::kernels {
namespace {

using T = TensorType;
constexpr MatmulKernel kKernels[] = {
    {T::kF32, T::kF32, Isa::kAvx2, quantize_row_f32, avx2_gemm_f32, image_layout(T::kF32, 8), avx2_gemm_image_f32,
     &avx2_records_f32},
    {T::kF16, T::kF16, Isa::kAvx2, avx2_quantize_f16, avx2_gemm_f16, image_layout(T::kF16, 8), avx2_gemm_image_f16,
     &avx2_records_f16},
    {T::kBF16, T::kBF16, Isa::kAvx2, avx2_quantize_bf16, avx2_gemm_bf16, image_layout(T::kBF16, 8),
     avx2_gemm_image_bf16, &avx2_records_bf16},
    {T::kQ8_0, T::kQ8_0, Isa::kAvx2, avx2_quantize_q8_0, avx2_gemm_q8_0, image_layout(T::kQ8_0, 8),
     avx2_gemm_image_q8_0, &avx2_records_q8_0},
    {T::kQ4_0, T::kQ8_0, Isa::kAvx2, avx2_quantize_q8_0, avx2_gemm_q4_0, image_layout(T::kQ4_0, 8),
     avx2_gemm_image_q4_0, &avx2_records_q4_0},
    {T::kQ5_0, T::kQ8_0, Isa::kAvx2, avx2_quantize_q8_0, avx2_gemm_q5_0, image_layout(T::kQ5_0, 8),
     avx2_gemm_image_q5_0, &avx2_records_q5_0},
    {T::kQ4_1, T::kQ8_1, Isa::kAvx2, avx2_quantize_q8_1, avx2_gemm_q4_1, image_layout(T::kQ4_1, 8),
     avx2_gemm_image_q4_1, &avx2_records_q4_1},
    {T::kQ5_1, T::kQ8_1, Isa::kAvx2, avx2_quantize_q8_1, avx2_gemm_q5_1, image_layout(T::kQ5_1, 8),
     avx2_gemm_image_q5_1, &avx2_records_q5_1},
    {T::kIQ4_NL, T::kQ8_0, Isa::kAvx2, avx2_quantize_q8_0, avx2_gemm_iq4_nl, image_layout(T::kIQ4_NL, 8),
     avx2_gemm_image_iq4_nl, &avx2_records_iq4_nl},
    {T::kQ2_K, T::kQ8_K, Isa::kAvx2, avx2_quantize_q8_k, avx2_gemm_q2_k, image_layout(T::kQ2_K, 8),
     avx2_gemm_image_q2_k, &avx2_records_q2_k},
    {T::kQ3_K, T::kQ8_K, Isa::kAvx2, avx2_quantize_q8_k, avx2_gemm_q3_k, image_layout(T::kQ3_K, 8),
     avx2_gemm_image_q3_k, &avx2_records_q3_k},
    {T::kQ4_K, T::kQ8_K, Isa::kAvx2, avx2_quantize_q8_k, avx2_gemm_q4_k, image_layout(T::kQ4_K, 8),
     avx2_gemm_image_q4_k, &avx2_records_q4_k},
    {T::kQ5_K, T::kQ8_K, Isa::kAvx2, avx2_quantize_q8_k, avx2_gemm_q5_k, image_layout(T::kQ5_K, 8),
     avx2_gemm_image_q5_k, &avx2_records_q5_k},
    {T::kQ6_K, T::kQ8_K, Isa::kAvx2, avx2_quantize_q8_k, avx2_gemm_q6_k, image_layout(T::kQ6_K, 8),
     avx2_gemm_image_q6_k, &avx2_records_q6_k},
    {T::kIQ4_XS, T::kQ8_K, Isa::kAvx2, avx2_quantize_q8_k, avx2_gemm_iq4_xs, image_layout(T::kIQ4_XS, 8),
     avx2_gemm_image_iq4_xs, &avx2_records_iq4_xs},
};

}  // namespace

const MatmulKernel* avx2_matmul_kernel(TensorType weight) {
  for (const MatmulKernel& k : kKernels) {
    if (k.weight == weight) return &k;
  }
  return nullptr;
}

}  // namespace hylo::kernels
