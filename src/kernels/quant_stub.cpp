// Temporary minimal implementation of kernels/quant.h (f32, f16, bf16, q8_0; scalar only) so the
// engine can be built and tested before the full quantized-kernel library lands.
#include <cmath>
#include <cstring>

#include "base/half.h"
#include "kernels/quant.h"

namespace hylo::kernels {
namespace {

struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34);

void quantize_q8_0_x86(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[b * 32 + i]));
    const float d = amax / 127.0f;
    const float id = amax != 0 ? 127.0f / amax : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int i = 0; i < 32; ++i) y[b].qs[i] = static_cast<int8_t>(std::nearbyint(x[b * 32 + i] * id));
  }
}

void copy_f32(const float* x, void* dst, int64_t n) { std::memcpy(dst, x, static_cast<size_t>(n) * 4); }

void gemm_f32(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
              int64_t n_cols, float* y, size_t ldy) {
  for (int64_t c = 0; c < n_cols; ++c) {
    const float* xc = reinterpret_cast<const float*>(static_cast<const uint8_t*>(x) + c * x_stride);
    for (int64_t r = 0; r < n_rows; ++r) {
      const float* wr = reinterpret_cast<const float*>(static_cast<const uint8_t*>(w) + r * w_stride);
      float s = 0;
      for (int64_t k = 0; k < n; ++k) s += wr[k] * xc[k];
      y[c * ldy + r] = s;
    }
  }
}

void gemm_q8_0(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
               int64_t n_cols, float* y, size_t ldy) {
  for (int64_t c = 0; c < n_cols; ++c) {
    const auto* xc = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(x) + c * x_stride);
    for (int64_t r = 0; r < n_rows; ++r) {
      const auto* wr = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(w) + r * w_stride);
      float acc = 0;
      for (int64_t b = 0; b < n / 32; ++b) {
        int s = 0;
        for (int i = 0; i < 32; ++i) s += wr[b].qs[i] * xc[b].qs[i];
        acc += static_cast<float>(s) * (fp16_to_fp32(wr[b].d) * fp16_to_fp32(xc[b].d));
      }
      y[c * ldy + r] = acc;
    }
  }
}

const MatmulKernel kF32 = {TensorType::kF32, TensorType::kF32, Isa::kScalar, copy_f32, gemm_f32};
const MatmulKernel kQ8_0 = {TensorType::kQ8_0, TensorType::kQ8_0, Isa::kScalar, quantize_q8_0_x86, gemm_q8_0};

}  // namespace

bool can_dequantize(TensorType t) {
  return t == TensorType::kF32 || t == TensorType::kF16 || t == TensorType::kBF16 || t == TensorType::kQ8_0;
}

void dequantize_row(TensorType t, const void* src, float* dst, int64_t n) {
  switch (t) {
    case TensorType::kF32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); break;
    case TensorType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(static_cast<const uint16_t*>(src)[i]);
      break;
    case TensorType::kBF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(static_cast<const uint16_t*>(src)[i]);
      break;
    case TensorType::kQ8_0: {
      const auto* b = static_cast<const BlockQ8_0*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = b[i / 32].qs[i % 32] * fp16_to_fp32(b[i / 32].d);
      break;
    }
    default: break;
  }
}

bool can_quantize(TensorType t) { return can_dequantize(t); }

void quantize_row(TensorType t, const float* src, void* dst, int64_t n) {
  switch (t) {
    case TensorType::kF32: copy_f32(src, dst, n); break;
    case TensorType::kF16:
      for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = fp32_to_fp16(src[i]);
      break;
    case TensorType::kBF16:
      for (int64_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = fp32_to_bf16(src[i]);
      break;
    case TensorType::kQ8_0: {
      auto* y = static_cast<BlockQ8_0*>(dst);
      for (int64_t b = 0; b < n / 32; ++b) {
        float amax = 0;
        for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(src[b * 32 + i]));
        const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        y[b].d = fp32_to_fp16(d);
        for (int i = 0; i < 32; ++i) y[b].qs[i] = static_cast<int8_t>(std::round(src[b * 32 + i] * id));
      }
      break;
    }
    default: break;
  }
}

const MatmulKernel* matmul_kernel(TensorType weight, Isa) {
  if (weight == TensorType::kF32) return &kF32;
  if (weight == TensorType::kQ8_0) return &kQ8_0;
  return nullptr;
}
const MatmulKernel* matmul_kernel(TensorType weight) { return matmul_kernel(weight, Isa::kScalar); }
bool has_matmul(TensorType weight) { return matmul_kernel(weight) != nullptr; }

float vec_dot_reference(TensorType, int64_t, const void*, const void*) { return 0; }

}  // namespace hylo::kernels
