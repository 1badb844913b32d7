// Scalar reference of the elementwise kernels: plain loops in the order the math is written.
// Compiled without contraction so it is a stable oracle for the SIMD families.
#include <cmath>
#include <vector>

#include "base/half.h"
#include "kernels/quant.h"
#include "kernels/vec.h"

namespace hylo::kernels {
namespace {

float dot(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

float dot_f16(const float* a, const uint16_t* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * fp16_to_fp32(b[i]);
  return s;
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

void scale(const float* x, float a, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a * x[i];
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float s = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = w ? (x[i] * s) * w[i] : x[i] * s;
}

void l2_norm(const float* x, float* y, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  const float s = 1.0f / std::fmax(static_cast<float>(std::sqrt(sum)), eps);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
}

void softmax(float* x, int64_t n) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::fmax(mx, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

inline float silu1(float v) { return v / (1.0f + std::exp(-v)); }
inline float sigmoid1(float v) { return 1.0f / (1.0f + std::exp(-v)); }

void exp_(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

float max_(const float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::fmax(m, x[i]);
  return m;
}

float exp_sum(float* x, int64_t n, float shift) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    s += x[i];
  }
  return s;
}

void swiglu(const float* g, const float* u, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = silu1(g[i]) * u[i];
}
void silu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = silu1(x[i]);
}
void sigmoid(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = sigmoid1(x[i]);
}
void mul_sigmoid(const float* x, const float* g, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid1(g[i]);
}
void mul_silu(const float* x, const float* g, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * silu1(g[i]);
}

void rope_neox(float* x, const float* c, const float* s, int64_t n_rot) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[i], b = x[i + half];
    x[i] = a * c[i] - b * s[i];
    x[i + half] = a * s[i] + b * c[i];
  }
}

void conv1d(const float* const* x, const float* w, int k, float* y, int64_t n) {
  for (int64_t c = 0; c < n; ++c) {
    float s = 0.0f;
    for (int i = 0; i < k; ++i) s += w[i * n + c] * x[i][c];
    y[c] = s;
  }
}

void f16_to_f32(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}
void f16_to_f32_rows(const uint16_t* x, int64_t rows, int64_t cols, int64_t ldx, float* y, int64_t ldy) {
  for (int64_t r = 0; r < rows; ++r) f16_to_f32(x + r * ldx, y + r * ldy, cols);
}
void f32_to_f16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void dequantize_q8_0(const void* x, float* y, int64_t n) { dequantize_row(TensorType::kQ8_0, x, y, n); }
void dequantize_q4_0(const void* x, float* y, int64_t n) { dequantize_row(TensorType::kQ4_0, x, y, n); }
template <TensorType kType>
void transpose_blocks(const void* x, int64_t rows, int64_t cols, float* y, int64_t ldy) {
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(kType, static_cast<const uint8_t*>(x) + r * row_bytes(kType, cols), row.data(), cols);
    for (int64_t c = 0; c < cols; ++c) y[c * ldy + r] = row[c];
  }
}
void transpose_q8_0(const void* x, int64_t rows, int64_t cols, float* y, int64_t ldy) {
  transpose_blocks<TensorType::kQ8_0>(x, rows, cols, y, ldy);
}
void transpose_q4_0(const void* x, int64_t rows, int64_t cols, float* y, int64_t ldy) {
  transpose_blocks<TensorType::kQ4_0>(x, rows, cols, y, ldy);
}

void gemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
          float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; ++p) acc += a[i * lda + p] * b[p * ldb + j];
      float& out = c[i * ldc + j];
      out = beta == 0.0f ? alpha * acc : alpha * acc + beta * out;
    }
}

void gemm_f16(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const uint16_t* b, int64_t ldb,
              float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; ++p) acc += a[i * lda + p] * fp16_to_fp32(b[p * ldb + j]);
      float& out = c[i * ldc + j];
      out = beta == 0.0f ? alpha * acc : alpha * acc + beta * out;
    }
}

void delta_step(float* s, int64_t dk, int64_t dv, const float* k, const float* q, const float* v, float beta,
                float decay, float* out) {
  for (int64_t c = 0; c < dv; ++c) {
    float e = 0.0f;
    for (int64_t i = 0; i < dk; ++i) {
      float& x = s[i * dv + c];
      x *= decay;
      e += x * k[i];
    }
    const float delta = beta * (v[c] - e);
    float o = 0.0f;
    for (int64_t i = 0; i < dk; ++i) {
      float& x = s[i * dv + c];
      x += k[i] * delta;
      o += x * q[i];
    }
    out[c] = o;
  }
}

}  // namespace

float softplus_ref(float x) { return x > 20.0f ? x : std::log(1.0f + std::exp(x)); }

constinit extern const VecKernels kVecScalar = {
    Isa::kScalar,
    dot,
    dot_f16,
    axpy,
    axpy_f16,
    scale,
    rms_norm,
    l2_norm,
    softmax,
    swiglu,
    exp_,
    max_,
    exp_sum,
    silu,
    sigmoid,
    mul_sigmoid,
    mul_silu,
    rope_neox,
    conv1d,
    f16_to_f32,
    f16_to_f32_rows,
    f32_to_f16,
    dequantize_q8_0,
    dequantize_q4_0,
    transpose_q8_0,
    transpose_q4_0,
    gemm,
    gemm_f16,
    delta_step,
};

}  // namespace hylo::kernels
