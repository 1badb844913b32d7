// Elementwise and reduction kernels on f32 vectors: norms, activations, softmax, RoPE, dot and
// axpy. Each exists as a plain scalar reference (the fallback and test oracle) and as SIMD
// families chosen once at start-up. Every function is a pure function of its inputs, so results
// never depend on batch composition or threading.
#pragma once

#include <cstdint>

#include "base/cpu.h"

namespace hylo::kernels {

struct VecKernels {
  Isa isa;
  // Σ a[i]·b[i] (f32 accumulation, fixed lane order).
  float (*dot)(const float* a, const float* b, int64_t n);
  // Σ a[i]·fp16(b[i]) — keys of an f16 KV cache.
  float (*dot_f16)(const float* a, const uint16_t* b, int64_t n);
  // y[i] += a·x[i]
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  // y[i] += a·fp16(x[i])
  void (*axpy_f16)(float a, const uint16_t* x, float* y, int64_t n);
  // y[i] = a·x[i] (in place allowed)
  void (*scale)(const float* x, float a, float* y, int64_t n);
  // y = x / sqrt(mean(x²) + eps) ⊙ w   (w may be null: no weight); sum of squares in double
  // as llama.cpp does. In place allowed.
  void (*rms_norm)(const float* x, const float* w, float* y, int64_t n, float eps);
  // y = x / max(‖x‖₂, eps) (llama.cpp's L2 norm, sum in double). In place allowed.
  void (*l2_norm)(const float* x, float* y, int64_t n, float eps);
  // In place softmax: x = exp(x − max) / Σ exp(x − max); sum in double.
  void (*softmax)(float* x, int64_t n);
  // y = silu(g)·u  (SwiGLU). In place allowed (y may alias g or u).
  void (*swiglu)(const float* g, const float* u, float* y, int64_t n);
  // y = e^x (in place allowed).
  void (*exp)(const float* x, float* y, int64_t n);
  // max of x[0..n), −∞ when n = 0 (an attention row's scores).
  float (*max)(const float* x, int64_t n);
  // x = e^(x − shift) in place; returns Σ x over the n results in a fixed lane order (an attention
  // row's weights and their sum).
  float (*exp_sum)(float* x, int64_t n, float shift);
  // y = silu(x), y = σ(x); in place allowed.
  void (*silu)(const float* x, float* y, int64_t n);
  void (*sigmoid)(const float* x, float* y, int64_t n);
  // y = x ⊙ σ(g)  (attention output gate)
  void (*mul_sigmoid)(const float* x, const float* g, float* y, int64_t n);
  // y = x ⊙ silu(g)  (DeltaNet output gate)
  void (*mul_silu)(const float* x, const float* g, float* y, int64_t n);
  // NeoX RoPE on one head vector in place: pairs (i, i + n_rot/2) for i < n_rot/2 rotated by
  // (cos[i], sin[i]); dims ≥ n_rot untouched.
  void (*rope_neox)(float* x, const float* cos, const float* sin, int64_t n_rot);
  // One step of a causal depthwise convolution over n channels:
  // y[c] = Σ_{i<k} w[i·n + c] · x[i][c], i = 0 the oldest input, summed in i order with a separate
  // multiply and add per term (llama.cpp's order), so every family gives the same bits.
  void (*conv1d)(const float* const* x, const float* w, int k, float* y, int64_t n);
  // fp16 <-> f32 rows.
  void (*f16_to_f32)(const uint16_t* x, float* y, int64_t n);
  // rows × cols fp16 values (row stride ldx) to f32 (row stride ldy).
  void (*f16_to_f32_rows)(const uint16_t* x, int64_t rows, int64_t cols, int64_t ldx, float* y, int64_t ldy);
  void (*f32_to_f16)(const float* x, uint16_t* y, int64_t n);
  // n (a multiple of 32) elements of q8_0 / q4_0 blocks to f32, the reference dequantizer's bits.
  void (*dequantize_q8_0)(const void* x, float* y, int64_t n);
  void (*dequantize_q4_0)(const void* x, float* y, int64_t n);
  // rows × cols elements of q8_0 / q4_0 blocks (cols a multiple of 32), dequantized the same way
  // and transposed: y[c·ldy + r] (a quantized cache's keys).
  void (*transpose_q8_0)(const void* x, int64_t rows, int64_t cols, float* y, int64_t ldy);
  void (*transpose_q4_0)(const void* x, int64_t rows, int64_t cols, float* y, int64_t ldy);
  // Small dense product, row-major: C = alpha·A·B + beta·C with A [m][k] (row stride lda),
  // B [k][n] (ldb), C [m][n] (ldc). Each C element sums over k in ascending order, whatever the
  // tiling (beta = 0 ignores C's old contents, NaN included).
  void (*gemm)(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
               int64_t ldb, float beta, float* c, int64_t ldc);
  // The same with B in fp16 (widened exactly as it is read, so the same bits as gemm on the
  // widened B): attention multiplies an f16 KV cache in place.
  void (*gemm_f16)(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const uint16_t* b,
                   int64_t ldb, float beta, float* c, int64_t ldc);
  // One token of the gated delta rule on one head's state S [d_k][d_v] (rows by key index):
  // S ← decay·S; e = Sᵀk; S ← S + k·(β(v − e))ᵀ; out = Sᵀq. Two passes over S.
  void (*delta_step)(float* s, int64_t d_k, int64_t d_v, const float* k, const float* q, const float* v, float beta,
                     float decay, float* out);
};

// The family for `isa` (nullptr if not compiled in); vec() is the best supported one.
const VecKernels* vec_kernels(Isa isa);
const VecKernels& vec();

// Scalar helpers shared by all families (exactly llama.cpp's definitions).
float softplus_ref(float x);  // x > 20 ? x : log1p(exp(x)), in f32

}  // namespace hylo::kernels
