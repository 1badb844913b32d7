// Every SIMD family of the elementwise kernels against the scalar reference, on random data of
// odd sizes. Tolerances: summations differ only in order, so the error is bounded by
// n·ε·Σ|terms| (ε = 2^-24); the vector exp is accurate to a few ulp (relative 4e-7 measured),
// which propagates to a few ulp in silu/sigmoid/softmax.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/half.h"
#include "kernels/quant.h"
#include "kernels/vec.h"

namespace hylo::kernels {
namespace {

std::vector<float> randn(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<Isa> simd_families() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512})
    if (vec_kernels(isa) != nullptr && isa_supported(isa)) out.push_back(isa);
  return out;
}

const int64_t kSizes[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 64, 100, 128, 255, 256, 257, 1000, 2048};

TEST(VecKernels, ScalarFamilyIsAlwaysPresent) {
  ASSERT_NE(vec_kernels(Isa::kScalar), nullptr);
  EXPECT_NE(vec().dot, nullptr);
}

TEST(VecKernels, DotAndAxpyMatchScalar) {
  const VecKernels& ref = *vec_kernels(Isa::kScalar);
  for (Isa isa : simd_families()) {
    const VecKernels& k = *vec_kernels(isa);
    for (int64_t n : kSizes) {
      auto a = randn(n, 1), b = randn(n, 2);
      std::vector<uint16_t> b16(n);
      for (int64_t i = 0; i < n; ++i) b16[i] = fp32_to_fp16(b[i]);
      double mag = 0;
      for (int64_t i = 0; i < n; ++i) mag += std::fabs(a[i] * b[i]);
      const double tol = 2.0 * n * 6e-8 * mag + 1e-30;
      EXPECT_NEAR(k.dot(a.data(), b.data(), n), ref.dot(a.data(), b.data(), n), tol) << isa_name(isa) << " n=" << n;
      EXPECT_NEAR(k.dot_f16(a.data(), b16.data(), n), ref.dot_f16(a.data(), b16.data(), n), tol)
          << isa_name(isa) << " n=" << n;
      auto y1 = randn(n, 3), y2 = y1, y3 = y1, y4 = y1;
      k.axpy(0.37f, a.data(), y1.data(), n);
      ref.axpy(0.37f, a.data(), y2.data(), n);
      k.axpy_f16(-1.5f, b16.data(), y3.data(), n);
      ref.axpy_f16(-1.5f, b16.data(), y4.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        // One fused multiply-add vs multiply then add: at most one rounding apart.
        EXPECT_NEAR(y1[i], y2[i], 1e-6f * (std::fabs(y2[i]) + std::fabs(a[i]))) << isa_name(isa);
        EXPECT_NEAR(y3[i], y4[i], 1e-6f * (std::fabs(y4[i]) + std::fabs(b[i]) * 1.5f)) << isa_name(isa);
      }
    }
  }
}

TEST(VecKernels, NormsMatchScalar) {
  const VecKernels& ref = *vec_kernels(Isa::kScalar);
  for (Isa isa : simd_families()) {
    const VecKernels& k = *vec_kernels(isa);
    for (int64_t n : kSizes) {
      auto x = randn(n, 4, 3.0f), w = randn(n, 5);
      std::vector<float> y1(n), y2(n), z1(n), z2(n);
      k.rms_norm(x.data(), w.data(), y1.data(), n, 1e-6f);
      ref.rms_norm(x.data(), w.data(), y2.data(), n, 1e-6f);
      k.l2_norm(x.data(), z1.data(), n, 1e-6f);
      ref.l2_norm(x.data(), z2.data(), n, 1e-6f);
      for (int64_t i = 0; i < n; ++i) {
        // Sums are in double: the scale agrees to ~1 ulp, the products are identical.
        EXPECT_NEAR(y1[i], y2[i], 3e-7f * std::fabs(y2[i]) + 1e-30f) << isa_name(isa) << " n=" << n;
        EXPECT_NEAR(z1[i], z2[i], 3e-7f * std::fabs(z2[i]) + 1e-30f) << isa_name(isa) << " n=" << n;
      }
      // In place gives the same bits.
      auto x2 = x;
      k.rms_norm(x2.data(), w.data(), x2.data(), n, 1e-6f);
      EXPECT_EQ(x2, y1);
    }
  }
}

TEST(VecKernels, ActivationsAndSoftmaxMatchScalar) {
  const VecKernels& ref = *vec_kernels(Isa::kScalar);
  for (Isa isa : simd_families()) {
    const VecKernels& k = *vec_kernels(isa);
    for (int64_t n : kSizes) {
      auto x = randn(n, 6, 4.0f), g = randn(n, 7, 4.0f);
      if (n > 3) {  // extremes: saturating sigmoid, exp underflow
        x[0] = 95.0f;
        x[1] = -95.0f;
        g[2] = -200.0f;
      }
      std::vector<float> a1(n), a2(n);
      auto check = [&](const char* what, float rel) {
        for (int64_t i = 0; i < n; ++i)
          EXPECT_NEAR(a1[i], a2[i], rel * std::fabs(a2[i]) + 1e-30f) << what << " " << isa_name(isa) << " i=" << i;
      };
      k.silu(x.data(), a1.data(), n);
      ref.silu(x.data(), a2.data(), n);
      check("silu", 2e-6f);
      k.sigmoid(x.data(), a1.data(), n);
      ref.sigmoid(x.data(), a2.data(), n);
      check("sigmoid", 2e-6f);
      k.swiglu(g.data(), x.data(), a1.data(), n);
      ref.swiglu(g.data(), x.data(), a2.data(), n);
      check("swiglu", 2e-6f);
      k.mul_sigmoid(x.data(), g.data(), a1.data(), n);
      ref.mul_sigmoid(x.data(), g.data(), a2.data(), n);
      check("mul_sigmoid", 2e-6f);
      k.mul_silu(x.data(), g.data(), a1.data(), n);
      ref.mul_silu(x.data(), g.data(), a2.data(), n);
      check("mul_silu", 2e-6f);
      a1 = x;
      a2 = x;
      k.softmax(a1.data(), n);
      ref.softmax(a2.data(), n);
      check("softmax", 3e-6f);
      double s = 0;
      for (float v : a1) s += v;
      EXPECT_NEAR(s, 1.0, 1e-5);
    }
  }
}

// An attention row: the max of its visible scores, then e^(x − max) and their sum.
TEST(VecKernels, MaxAndExpSumMatchScalar) {
  const VecKernels& ref = *vec_kernels(Isa::kScalar);
  for (Isa isa : simd_families()) {
    const VecKernels& k = *vec_kernels(isa);
    EXPECT_EQ(k.max(nullptr, 0), -INFINITY) << isa_name(isa);
    EXPECT_EQ(k.exp_sum(nullptr, 0, 1.0f), 0.0f) << isa_name(isa);
    for (int64_t n : kSizes) {
      auto x = randn(n, 17, 3.0f);
      x[n / 2] = 20.0f;  // the max anywhere, tails included
      EXPECT_EQ(k.max(x.data(), n), ref.max(x.data(), n)) << isa_name(isa) << " n=" << n;
      EXPECT_EQ(k.max(x.data(), n), 20.0f) << isa_name(isa) << " n=" << n;
      auto a1 = x, a2 = x;
      a1.push_back(123.0f);  // past the end: untouched
      const float s1 = k.exp_sum(a1.data(), n, 20.0f), s2 = ref.exp_sum(a2.data(), n, 20.0f);
      double s = 0;
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(a1[i], a2[i], 2e-6f * a2[i] + 1e-30f) << isa_name(isa) << " i=" << i;
        s += a2[i];
      }
      EXPECT_EQ(a1[n], 123.0f);
      EXPECT_NEAR(s1, s, 1e-6 * n * s) << isa_name(isa) << " n=" << n;
      EXPECT_NEAR(s2, s, 1e-6 * n * s) << isa_name(isa) << " n=" << n;
    }
  }
}

// C = alpha·A·B + beta·C against the scalar product, on odd sizes and strides (row and column
// tails, k not a multiple of anything). Each element sums over k in order whatever the tiling, so
// a row computed alone has the same bits as in a block of rows: attention's rows (one token or a
// block of 64) and the DeltaNet chunk rely on it.
TEST(VecKernels, GemmMatchesScalarAndRowsAreIndependent) {
  const VecKernels& ref = *vec_kernels(Isa::kScalar);
  struct Shape {
    int64_t m, n, k;
  };
  for (Isa isa : simd_families()) {
    const VecKernels& g = *vec_kernels(isa);
    for (Shape sh : {Shape{1, 1, 1}, Shape{7, 33, 5}, Shape{13, 64, 128}, Shape{11, 200, 37}, Shape{6, 17, 256},
                     Shape{64, 128, 64}}) {
      const int64_t lda = sh.k + 3, ldb = sh.n + 16, ldc = sh.n + 5;
      const auto a = randn(sh.m * lda, 18), b = randn(sh.k * ldb, 19), c0 = randn(sh.m * ldc, 20);
      for (float beta : {0.0f, 1.0f}) {
        auto c1 = c0, c2 = c0, c3 = c0;
        g.gemm(sh.m, sh.n, sh.k, 0.5f, a.data(), lda, b.data(), ldb, beta, c1.data(), ldc);
        ref.gemm(sh.m, sh.n, sh.k, 0.5f, a.data(), lda, b.data(), ldb, beta, c2.data(), ldc);
        for (int64_t i = 0; i < sh.m; ++i)
          g.gemm(1, sh.n, sh.k, 0.5f, a.data() + i * lda, lda, b.data(), ldb, beta, c3.data() + i * ldc, ldc);
        EXPECT_EQ(0, std::memcmp(c1.data(), c3.data(), c1.size() * sizeof(float)))
            << isa_name(isa) << " m=" << sh.m << " n=" << sh.n << " k=" << sh.k;
        for (int64_t i = 0; i < sh.m; ++i)
          for (int64_t j = 0; j < ldc; ++j) {
            const float want = c2[i * ldc + j];
            if (j >= sh.n) {  // the stride's padding is not written
              EXPECT_EQ(c1[i * ldc + j], c0[i * ldc + j]);
              continue;
            }
            double mag = beta * std::fabs(c0[i * ldc + j]);
            for (int64_t p = 0; p < sh.k; ++p) mag += 0.5 * std::fabs(a[i * lda + p] * b[p * ldb + j]);
            EXPECT_NEAR(c1[i * ldc + j], want, 2.0 * (sh.k + 2) * 6e-8 * mag + 1e-30)
                << isa_name(isa) << " i=" << i << " j=" << j;
          }
      }
    }
  }
}

// The quantized KV caches' dequantizers give the reference's bits (q · d is exact in f32).
TEST(VecKernels, DequantizeMatchesTheReference) {
  constexpr int64_t n = 4 * 32;
  const auto x = randn(n, 25, 3.0f);
  std::vector<Isa> families = simd_families();
  families.push_back(Isa::kScalar);
  for (TensorType t : {TensorType::kQ8_0, TensorType::kQ4_0}) {
    std::vector<uint8_t> q(row_bytes(t, n));
    kernels::quantize_row(t, x.data(), q.data(), n);
    std::vector<float> want(n);
    kernels::dequantize_row(t, q.data(), want.data(), n);
    for (Isa isa : families) {
      const VecKernels& g = *vec_kernels(isa);
      std::vector<float> got(n + 1, -1.0f);
      (t == TensorType::kQ8_0 ? g.dequantize_q8_0 : g.dequantize_q4_0)(q.data(), got.data(), n);
      EXPECT_EQ(0, std::memcmp(got.data(), want.data(), n * sizeof(float)))
          << isa_name(isa) << " " << tensor_type_name(t);
      EXPECT_EQ(got[n], -1.0f);
    }
  }
  // Transposed (a quantized cache's keys): rows × 64 elements, edge rows, the stride's padding kept.
  for (TensorType t : {TensorType::kQ8_0, TensorType::kQ4_0})
    for (int64_t rows : {int64_t{1}, int64_t{16}, int64_t{37}}) {
      constexpr int64_t cols = 64;
      const int64_t ldy = rows + 5;
      const auto xs = randn(rows * cols, 26, 2.0f);
      std::vector<uint8_t> q(rows * row_bytes(t, cols));
      for (int64_t r = 0; r < rows; ++r)
        kernels::quantize_row(t, xs.data() + r * cols, q.data() + r * row_bytes(t, cols), cols);
      std::vector<float> want(cols * ldy, -1.0f), row(cols);
      for (int64_t r = 0; r < rows; ++r) {
        kernels::dequantize_row(t, q.data() + r * row_bytes(t, cols), row.data(), cols);
        for (int64_t c = 0; c < cols; ++c) want[c * ldy + r] = row[c];
      }
      for (Isa isa : families) {
        const VecKernels& g = *vec_kernels(isa);
        std::vector<float> got(cols * ldy, -1.0f);
        (t == TensorType::kQ8_0 ? g.transpose_q8_0 : g.transpose_q4_0)(q.data(), rows, cols, got.data(), ldy);
        EXPECT_EQ(got, want) << isa_name(isa) << " " << tensor_type_name(t) << " rows=" << rows;
      }
    }
}

// gemm_f16 (B in fp16, attention's in-place product over an f16 KV cache) gives exactly the bits
// of gemm on the widened B, in every family, for decode's 8-row tile and the odd shapes.
TEST(VecKernels, GemmF16IsGemmOnTheWidenedMatrix) {
  struct Shape {
    int64_t m, n, k;
  };
  std::vector<Isa> families = simd_families();
  families.push_back(Isa::kScalar);
  for (Isa isa : families) {
    const VecKernels* g = vec_kernels(isa);
    for (Shape sh : {Shape{1, 1, 1}, Shape{8, 256, 128}, Shape{8, 128, 256}, Shape{8, 100, 37}, Shape{7, 33, 5},
                     Shape{14, 64, 128}, Shape{32, 200, 64}}) {
      const int64_t lda = sh.k + 3, ldb = sh.n + 16, ldc = sh.n + 5;
      const auto a = randn(sh.m * lda, 22), b = randn(sh.k * ldb, 23), c0 = randn(sh.m * ldc, 24);
      std::vector<uint16_t> b16(b.size());
      std::vector<float> wide(b.size());
      for (size_t i = 0; i < b.size(); ++i) {
        b16[i] = fp32_to_fp16(b[i]);
        wide[i] = fp16_to_fp32(b16[i]);
      }
      for (float beta : {0.0f, 1.0f}) {
        auto c1 = c0, c2 = c0;
        g->gemm_f16(sh.m, sh.n, sh.k, 0.125f, a.data(), lda, b16.data(), ldb, beta, c1.data(), ldc);
        g->gemm(sh.m, sh.n, sh.k, 0.125f, a.data(), lda, wide.data(), ldb, beta, c2.data(), ldc);
        EXPECT_EQ(0, std::memcmp(c1.data(), c2.data(), c1.size() * sizeof(float)))
            << isa_name(isa) << " m=" << sh.m << " n=" << sh.n << " k=" << sh.k << " beta=" << beta;
      }
    }
  }
}

TEST(VecKernels, RopeAndConversionsMatchScalar) {
  const VecKernels& ref = *vec_kernels(Isa::kScalar);
  for (Isa isa : simd_families()) {
    const VecKernels& k = *vec_kernels(isa);
    for (int64_t n_rot : {int64_t{4}, int64_t{16}, int64_t{32}, int64_t{64}, int64_t{128}}) {
      auto x = randn(256, 8), c = randn(n_rot / 2, 9), s = randn(n_rot / 2, 10);
      auto y1 = x, y2 = x;
      k.rope_neox(y1.data(), c.data(), s.data(), n_rot);
      ref.rope_neox(y2.data(), c.data(), s.data(), n_rot);
      for (int i = 0; i < 256; ++i) EXPECT_NEAR(y1[i], y2[i], 1e-6f * (std::fabs(x[i]) + 1)) << isa_name(isa);
      for (int64_t i = n_rot; i < 256; ++i) EXPECT_EQ(y1[i], x[i]);
    }
    for (int64_t n : kSizes) {
      auto x = randn(n, 11, 100.0f);
      std::vector<uint16_t> h1(n), h2(n);
      k.f32_to_f16(x.data(), h1.data(), n);
      ref.f32_to_f16(x.data(), h2.data(), n);
      EXPECT_EQ(h1, h2) << isa_name(isa);
      std::vector<float> f1(n), f2(n);
      k.f16_to_f32(h1.data(), f1.data(), n);
      ref.f16_to_f32(h1.data(), f2.data(), n);
      EXPECT_EQ(f1, f2) << isa_name(isa);
    }
  }
}

// Strided fp16 rows (the KV cache's key stripes) widened: every family gives exactly the scalar
// result, and leaves the destination's stride padding alone.
TEST(VecKernels, F16RowsWidenExactly) {
  const VecKernels& ref = *vec_kernels(Isa::kScalar);
  for (Isa isa : simd_families()) {
    for (int64_t rows : {int64_t{1}, int64_t{7}, int64_t{16}, int64_t{37}, int64_t{256}})
      for (int64_t cols : {int64_t{3}, int64_t{8}, int64_t{32}, int64_t{128}}) {
        const int64_t ldx = cols + 5;
        const auto x = randn(rows * ldx, 21);
        std::vector<uint16_t> h(x.size());
        for (size_t i = 0; i < x.size(); ++i) h[i] = fp32_to_fp16(x[i]);
        std::vector<float> r1(rows * (cols + 3), -1.0f), r2(rows * (cols + 3), -1.0f);
        vec_kernels(isa)->f16_to_f32_rows(h.data(), rows, cols, ldx, r1.data(), cols + 3);
        ref.f16_to_f32_rows(h.data(), rows, cols, ldx, r2.data(), cols + 3);
        EXPECT_EQ(r1, r2) << isa_name(isa) << " " << rows << "x" << cols;
        EXPECT_EQ(r2[cols + 2], -1.0f);
        EXPECT_EQ(r2[(rows - 1) * (cols + 3) + cols - 1], fp16_to_fp32(h[(rows - 1) * ldx + cols - 1]));
      }
  }
}

TEST(VecKernels, Conv1dIsBitIdenticalAcrossFamilies) {
  const VecKernels& ref = *vec_kernels(Isa::kScalar);
  for (Isa isa : simd_families()) {
    for (int64_t n : kSizes) {
      auto w = randn(4 * n, 12), a = randn(n, 13), b = randn(n, 14), c = randn(n, 15), d = randn(n, 16);
      const float* rows[4] = {a.data(), b.data(), c.data(), d.data()};
      std::vector<float> y1(n), y2(n);
      vec_kernels(isa)->conv1d(rows, w.data(), 4, y1.data(), n);
      ref.conv1d(rows, w.data(), 4, y2.data(), n);
      EXPECT_EQ(y1, y2) << isa_name(isa) << " n=" << n;
    }
  }
}

TEST(VecKernels, Fp16ScalarConversionIsExact) {
  // Every half value round-trips; rounding of floats to half is to nearest even.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaN payloads
    EXPECT_EQ(fp32_to_fp16(fp16_to_fp32(static_cast<uint16_t>(h))), h);
  }
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00);   // rounds to inf
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7bff);
  EXPECT_EQ(fp32_to_fp16(1.0f + 1.0f / 2048), 0x3c00);  // tie to even
  EXPECT_EQ(fp32_to_fp16(1.0f + 3.0f / 2048), 0x3c02);
  EXPECT_EQ(fp32_to_fp16(5.96046448e-8f), 0x0001);  // smallest subnormal
  EXPECT_EQ(fp32_to_fp16(2.98023224e-8f), 0x0000);  // exactly half of it: tie to even (0)
  EXPECT_EQ(fp32_to_bf16(1.00390625f), 0x3f80);     // tie to even
  EXPECT_EQ(fp32_to_bf16(1.01171875f), 0x3f82);
}

}  // namespace
}  // namespace hylo::kernels
