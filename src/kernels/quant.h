// Quantized tensor formats (ggml block layouts): dequantization, quantization, and the matrix
// kernels that multiply a weight matrix stored in any supported type with f32 activations.
// Pure functions on raw buffers; threading is the caller's business (ops/).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/cpu.h"
#include "base/tensor_type.h"
#include "kernels/interleave.h"

namespace hylo::kernels {

// ---- Scalar reference conversions (always compiled, bit-exact with ggml's portable C) ----------

// True if dequantize_row supports the type.
bool can_dequantize(TensorType type);
// Row of n elements (n a multiple of the block size) to f32, bit-exact with ggml's to_float.
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);

// True if quantize_row supports the type (as a storage format: writer, KV cache, activations).
bool can_quantize(TensorType type);
// f32 row to `type`, bit-exact with ggml's reference quantizer (quantize_row_*_ref):
// f32, f16, bf16, q8_0, q8_1, q8_K, and the writer formats q4_0, q4_K, q5_K, q6_K (their
// scale searches reproduce ggml's bytes on the fixture; no importance matrix).
void quantize_row(TensorType type, const float* src, void* dst, int64_t n);

// f32 row to the activation format `act` exactly as every MatmulKernel::quantize_act does: ggml's
// x86 from_float for q8_0/q8_1 (d = amax/127 in fp16, q = round-half-even(x * 127/amax)), the
// reference for q8_K, f16 and bf16 (round to nearest even), a copy for f32. Lets callers quantize
// an activation once and share it between kernels of different families.
void quantize_act_row(TensorType act, const float* src, void* dst, int64_t n);

// ggml's vec_dot_type: the activation format a weight type is multiplied with.
TensorType vec_dot_type(TensorType weight);

// ---- Matrix multiplication ---------------------------------------------------------------------

// How a weight matrix of one type is multiplied with f32 activations. The activations are first
// converted row by row to `act` (ggml's vec_dot_type: q8_0 for q8_0/q4_0/iq4_nl weights, q8_1 for
// q4_1/q5_1, q8_K for the K-quants and iq4_xs, f16/bf16/f32 for float weights), then `gemm` runs.
//
// Families: scalar (portable C++, every type), AVX2 (+FMA/F16C) and AVX-512 (F/BW/VL/DQ + VNNI +
// BF16) for f32, f16, bf16, q8_0, q4_0, iq4_nl, q4_K, q5_K, q6_K, iq4_xs. For those types all
// three families perform the same per-output arithmetic and return identical bits on any CPU:
//   q8_0, q4_0, iq4_nl: ggml's scalar vec_dot order (= vec_dot_reference);
//   K-quants, iq4_xs:   per super-block t = Σ_j fma(float(S_j), f32(d·scale_j), t) over the exact
//                       integer sub-block sums S_j, minus fma(M, dmin) for q4_K/q5_K, then
//                       y = fma(t, d_a, y);
//   f32, f16:           per 256 elements, even and odd elements in two fma chains, y += (p0 + p1);
//   bf16:               vdpbf16ps's arithmetic (pairs of elements, odd one first, denormals
//                       flushed), per 256 elements in two chains of pairs (avx512_float.cpp).
// q5_0, q4_1, q5_1 (scalar and AVX-512 families) also use ggml's scalar vec_dot order in both;
// q2_K, q3_K have an AVX-512 kernel in the K-quant order above and the scalar order otherwise
// (they differ in rounding only). AVX2 runs these five with the scalar family.
//
// The SIMD kernels read the weights either in place (gemm) or from their interleaved image built
// once at load (gemm_image, interleave.h; AVX-512 family): each group of 16 (AVX-512) or 8 (AVX2)
// rows is unpacked per chunk into an L1-sized buffer on the stack (about 20 KB), after a transpose
// that the image has already done. The activations are re-laid once per call into a per-thread
// scratch buffer (about 1.3 bytes per activation element for the integer formats, 4 for the float
// ones). gemm may run concurrently on different threads.
//
// Prefill splits one product over many row ranges (and an expert's gate and up read the same
// input): RecordsKernel lets the caller re-lay the activations once into records, shared by every
// call that reads them, instead of once per call.
struct RecordsKernel {
  // Bytes of the records of n_cols activation columns of n elements.
  size_t (*bytes)(int64_t n, int64_t n_cols);
  // Columns [c0, c1) of X (as gemm's x: column c at x + c · x_stride) into the records of all
  // n_cols columns, so that threads can share the work. `records` is 64-byte aligned.
  void (*prepare)(int64_t n, const void* x, size_t x_stride, int64_t c0, int64_t c1, int64_t n_cols, void* records);
  // MatmulKernel::gemm and gemm_image from prepared records: the same bits.
  void (*gemm)(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* records, int64_t n_cols, float* y,
               size_t ldy);
  void (*gemm_image)(int64_t n, const void* image, int64_t n_rows, const void* records, int64_t n_cols, float* y,
                     size_t ldy);
};

struct MatmulKernel {
  TensorType weight;
  TensorType act;
  Isa isa;
  // One activation row of n floats to `act` (dst holds row_bytes(act, n) bytes). For q8_0/q8_1
  // this follows ggml's x86 path (scale 127/amax, round half to even) in every ISA variant.
  void (*quantize_act)(const float* x, void* dst, int64_t n);
  // y[c * ldy + r] = Σ_k W[r][k] · X[c][k]   for r < n_rows, c < n_cols
  // W: n_rows rows of n elements in `weight` format, w_stride bytes apart (w_stride < 64 MiB).
  // X: n_cols rows of n elements in `act` format, x_stride bytes apart (0: one row for all).
  // n: a multiple of the weight's block size (any n >= 1 for the float types).
  // Batch invariance: every y[c][r] is computed with the same sequence of floating-point
  // operations whatever n_rows, n_cols and the tile it falls in, so a row's result never depends
  // on which other rows share the batch.
  void (*gemm)(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
               int64_t n_cols, float* y, size_t ldy);
  // The interleaved image this kernel can read instead of the rows (interleave.h; lanes 0: none),
  // and the product from it: the same bits as gemm on the rows the image was built from. image
  // points at the image of the group holding row 0 of the call (n_rows rows from there).
  ImageLayout image{};
  void (*gemm_image)(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                     float* y, size_t ldy) = nullptr;
  // The same products from shared activation records (the row-lane families; nullptr: none).
  const RecordsKernel* records = nullptr;
};

// The kernel for `weight` in the given ISA family, or nullptr if that pair is not compiled in,
// this CPU lacks the family's instructions, or the type has no matmul support.
// matmul_kernel(type) uses best_isa() (HYLO_ISA lowers it) and falls back to a lower family for
// types the best one does not implement.
const MatmulKernel* matmul_kernel(TensorType weight, Isa isa);
const MatmulKernel* matmul_kernel(TensorType weight);
bool has_matmul(TensorType weight);
// The AVX-512 family's bf16 kernel for CPUs without AVX512-BF16 (FMAs), on any CPU that runs the
// family, so that tests cover it where the table picks vdpbf16ps; nullptr without the family.
const MatmulKernel* avx512_bf16_fma_kernel();

// ---- Test oracle -------------------------------------------------------------------------------

// ggml's scalar vec_dot (the *_generic functions) with its exact accumulation order: weight row w
// (n elements of `weight`) against activation row x already in the matching act format.
float vec_dot_reference(TensorType weight, int64_t n, const void* w, const void* x);

}  // namespace hylo::kernels
