// The scalar matmul family: portable C++, the fallback on any CPU. Every output is one
// vec_dot_reference call, so this family reproduces ggml's scalar kernels bit for bit and is
// batch-invariant by construction. Compiled with -ffp-contract=off.
#include <cstddef>

#include "kernels/quant.h"
#include "kernels/quant_internal.h"

namespace hylo::kernels {
namespace {

template <TensorType kWeight>
void gemm_scalar(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                 int64_t n_cols, float* y, size_t ldy) {
  const VecDotFn dot = vec_dot_reference_fn(kWeight);
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(x);
  for (int64_t r = 0; r < n_rows; ++r) {  // one weight row stays in L1 while every column passes
    for (int64_t c = 0; c < n_cols; ++c) {
      y[static_cast<size_t>(c) * ldy + static_cast<size_t>(r)] =
          dot(n, wb + static_cast<size_t>(r) * w_stride, xb + static_cast<size_t>(c) * x_stride);
    }
  }
}

template <TensorType kWeight, TensorType kAct, void (*kQuantize)(const float*, void*, int64_t)>
constexpr MatmulKernel entry() {
  return MatmulKernel{kWeight, kAct, Isa::kScalar, kQuantize, gemm_scalar<kWeight>};
}

using T = TensorType;
constexpr MatmulKernel kKernels[] = {
    entry<T::kF32, T::kF32, quantize_row_f32>(),          entry<T::kF16, T::kF16, quantize_row_f16>(),
    entry<T::kBF16, T::kBF16, quantize_row_bf16>(),       entry<T::kQ8_0, T::kQ8_0, quantize_row_q8_0_x86>(),
    entry<T::kQ4_0, T::kQ8_0, quantize_row_q8_0_x86>(),   entry<T::kQ5_0, T::kQ8_0, quantize_row_q8_0_x86>(),
    entry<T::kIQ4_NL, T::kQ8_0, quantize_row_q8_0_x86>(), entry<T::kQ4_1, T::kQ8_1, quantize_row_q8_1_x86>(),
    entry<T::kQ5_1, T::kQ8_1, quantize_row_q8_1_x86>(),   entry<T::kQ2_K, T::kQ8_K, quantize_row_q8_k>(),
    entry<T::kQ3_K, T::kQ8_K, quantize_row_q8_k>(),       entry<T::kQ4_K, T::kQ8_K, quantize_row_q8_k>(),
    entry<T::kQ5_K, T::kQ8_K, quantize_row_q8_k>(),       entry<T::kQ6_K, T::kQ8_K, quantize_row_q8_k>(),
    entry<T::kIQ4_XS, T::kQ8_K, quantize_row_q8_k>(),
};

}  // namespace

const MatmulKernel* scalar_matmul_kernel(TensorType weight) {
  for (const MatmulKernel& k : kKernels) {
    if (k.weight == weight) return &k;
  }
  return nullptr;
}

}  // namespace hylo::kernels
