// Internal declarations shared by the kernel sources: the scalar quantizers behind quantize_row /
// quantize_act_row and the per-family matmul tables. Not part of the kernels' public interface.
// Plain function declarations only: this header is included by ISA-specific files.
#pragma once

#include <cstdint>

#include "kernels/quant.h"

namespace hylo::kernels {

// Activation quantizers (quant_ref.cpp); the _x86 ones are ggml's x86 from_float.
void quantize_row_q8_0_x86(const float* x, void* dst, int64_t n);
void quantize_row_q8_1_x86(const float* x, void* dst, int64_t n);
void quantize_row_q8_k(const float* x, void* dst, int64_t n);
void quantize_row_f16(const float* x, void* dst, int64_t n);
void quantize_row_bf16(const float* x, void* dst, int64_t n);
void quantize_row_f32(const float* x, void* dst, int64_t n);

// Writer quantizers (quant_writer.cpp).
void quantize_row_q4_0_ref(const float* x, void* dst, int64_t n);
void quantize_row_q4_1_ref(const float* x, void* dst, int64_t n);
void quantize_row_q5_0_ref(const float* x, void* dst, int64_t n);
void quantize_row_q5_1_ref(const float* x, void* dst, int64_t n);
void quantize_row_q2_k_ref(const float* x, void* dst, int64_t n);
void quantize_row_q3_k_ref(const float* x, void* dst, int64_t n);
void quantize_row_q4_k_ref(const float* x, void* dst, int64_t n);
void quantize_row_q5_k_ref(const float* x, void* dst, int64_t n);
void quantize_row_q6_k_ref(const float* x, void* dst, int64_t n);
void quantize_row_iq4_nl_ref(const float* x, void* dst, int64_t n);
void quantize_row_iq4_xs_ref(const float* x, void* dst, int64_t n);

// The scalar dot of vec_dot_reference for one weight type (picked once, called per row).
using VecDotFn = float (*)(int64_t n, const void* w, const void* x);
VecDotFn vec_dot_reference_fn(TensorType weight);

// Per-family matmul kernels: the entry for `weight`, or nullptr. Defined by the family's sources
// (matmul_scalar.cpp, avx2_*.cpp, avx512_*.cpp); matmul.cpp only asks the ones compiled in.
const MatmulKernel* scalar_matmul_kernel(TensorType weight);
#if defined(__x86_64__)
const MatmulKernel* avx2_matmul_kernel(TensorType weight);
const MatmulKernel* avx512_matmul_kernel(TensorType weight);
#endif

}  // namespace hylo::kernels
