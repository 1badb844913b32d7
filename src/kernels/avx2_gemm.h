// The AVX2 family's gemm entry points, one per weight type (signature of MatmulKernel::gemm).
// Defined in the avx2_*.cpp sources, collected into the family table by avx2_matmul.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/quant.h"

namespace hylo::kernels {

#define HYLO_AVX2_GEMM(name)                                                                                           \
  void name(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols, \
            float* y, size_t ldy)
HYLO_AVX2_GEMM(avx2_gemm_f32);
HYLO_AVX2_GEMM(avx2_gemm_f16);
HYLO_AVX2_GEMM(avx2_gemm_bf16);
HYLO_AVX2_GEMM(avx2_gemm_q8_0);
HYLO_AVX2_GEMM(avx2_gemm_q4_0);
HYLO_AVX2_GEMM(avx2_gemm_iq4_nl);
HYLO_AVX2_GEMM(avx2_gemm_q5_0);
HYLO_AVX2_GEMM(avx2_gemm_q4_1);
HYLO_AVX2_GEMM(avx2_gemm_q5_1);
HYLO_AVX2_GEMM(avx2_gemm_q2_k);
HYLO_AVX2_GEMM(avx2_gemm_q3_k);
HYLO_AVX2_GEMM(avx2_gemm_q4_k);
HYLO_AVX2_GEMM(avx2_gemm_q5_k);
HYLO_AVX2_GEMM(avx2_gemm_q6_k);
HYLO_AVX2_GEMM(avx2_gemm_iq4_xs);
#undef HYLO_AVX2_GEMM

// The same products from the rows' interleaved image (signature of MatmulKernel::gemm_image).
#define HYLO_AVX2_GEMM_IMAGE(name)                                                                                  \
  void name(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols, float* y, \
            size_t ldy)
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_f32);
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_f16);
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_bf16);
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_q8_0);
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_q4_0);
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_iq4_nl);
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_q5_0);
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_q4_1);
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_q5_1);
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_q2_k);
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_q3_k);
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_q4_k);
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_q5_k);
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_q6_k);
HYLO_AVX2_GEMM_IMAGE(avx2_gemm_image_iq4_xs);
#undef HYLO_AVX2_GEMM_IMAGE

// The same products from shared activation records (MatmulKernel::records).
extern const RecordsKernel avx2_records_q8_0;
extern const RecordsKernel avx2_records_q4_0;
extern const RecordsKernel avx2_records_iq4_nl;
extern const RecordsKernel avx2_records_q5_0;
extern const RecordsKernel avx2_records_q4_1;
extern const RecordsKernel avx2_records_q5_1;
extern const RecordsKernel avx2_records_q2_k;
extern const RecordsKernel avx2_records_q3_k;
extern const RecordsKernel avx2_records_q4_k;
extern const RecordsKernel avx2_records_q5_k;
extern const RecordsKernel avx2_records_q6_k;
extern const RecordsKernel avx2_records_iq4_xs;
extern const RecordsKernel avx2_records_f32;
extern const RecordsKernel avx2_records_f16;
extern const RecordsKernel avx2_records_bf16;

// Activation quantizers (avx2_act.cpp), bit-identical to quantize_act_row.
void avx2_quantize_q8_0(const float* x, void* dst, int64_t n);
void avx2_quantize_q8_1(const float* x, void* dst, int64_t n);
void avx2_quantize_q8_k(const float* x, void* dst, int64_t n);
void avx2_quantize_f16(const float* x, void* dst, int64_t n);
void avx2_quantize_bf16(const float* x, void* dst, int64_t n);

}  // namespace hylo::kernels
