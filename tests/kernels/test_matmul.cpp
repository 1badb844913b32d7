// Every matmul kernel the binary contains (type × ISA family supported by this CPU) against the
// scalar reference: random shapes including edge tiles, the fixture rows of dots.json, identical
// activation bytes in every family, and batch invariance (bit-identical outputs however the
// matrix is split into row ranges and column sets).
#include <gtest/gtest.h>
#include <xmmintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "base/cpu.h"
#include "base/half.h"
#include "kernels/peak.h"
#include "kernels/quant.h"
#include "kernels/quant_fixture.h"

namespace hylo::kernels {
namespace {

constexpr TensorType kTypes[] = {TensorType::kF32,  TensorType::kF16,  TensorType::kBF16,   TensorType::kQ8_0,
                                 TensorType::kQ4_0, TensorType::kQ4_K, TensorType::kQ5_K,   TensorType::kQ6_K,
                                 TensorType::kQ2_K, TensorType::kQ3_K, TensorType::kIQ4_NL, TensorType::kIQ4_XS,
                                 TensorType::kQ4_1, TensorType::kQ5_0, TensorType::kQ5_1};

struct Case {
  const MatmulKernel* kernel;
  std::string name;
};

// The bf16 kernel of the AVX-512 family without AVX512-BF16, where the table holds the other one.
const MatmulKernel* other_bf16_kernel() {
  const MatmulKernel* k = avx512_bf16_fma_kernel();
  return k != matmul_kernel(TensorType::kBF16, Isa::kAvx512) ? k : nullptr;
}

// Every (type, family) pair compiled in and runnable here, and both AVX-512 bf16 kernels.
std::vector<Case> all_kernels() {
  std::vector<Case> cases;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    for (TensorType t : kTypes) {
      if (const MatmulKernel* k = matmul_kernel(t, isa)) {
        cases.push_back({k, std::string(isa_name(isa)) + "/" + std::string(tensor_type_name(t))});
      }
    }
  }
  if (const MatmulKernel* k = other_bf16_kernel()) cases.push_back({k, "avx512-fma/bf16"});
  return cases;
}

// Weights and activations ------------------------------------------------------------------------

// n_rows random rows of `type`: quantized from N(0, 1) (with per-row scale variety) for q4_0 and the
// K-quants, otherwise random code bytes with small positive fp16 block scales (every code, and every
// sub-block scale of iq4_xs, is then reached, which quantized normal data would not do).
std::vector<uint8_t> random_weights(TensorType type, int64_t n_rows, int64_t n, std::mt19937& rng) {
  const size_t rb = row_bytes(type, n);
  std::vector<uint8_t> w(rb * n_rows);
  const bool random_codes = type == TensorType::kQ4_1 || type == TensorType::kQ5_0 || type == TensorType::kQ5_1 ||
                            type == TensorType::kIQ4_NL || type == TensorType::kIQ4_XS;
  if (can_quantize(type) && !random_codes) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> row(n);
    for (int64_t r = 0; r < n_rows; ++r) {
      const float scale = std::ldexp(1.0f, static_cast<int>(r % 7) - 3);
      for (float& v : row) v = normal(rng) * scale;
      quantize_row(type, row.data(), w.data() + r * rb, n);
    }
    return w;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (uint8_t& b : w) b = static_cast<uint8_t>(byte(rng));
  // Tame the fp16 scale fields: the first field of every block of these types (d), plus dmin for
  // q4_1/q5_1 and the K-quants' d/dmin at their offsets.
  std::uniform_real_distribution<float> mag(0.001f, 0.02f);
  const TensorTypeInfo& info = tensor_type_info(type);
  std::vector<size_t> fields;
  switch (type) {
    case TensorType::kQ2_K:
      fields = {80, 82};
      break;
    case TensorType::kQ3_K:
      fields = {108};
      break;
    case TensorType::kQ4_1:
    case TensorType::kQ5_1:
      fields = {0, 2};
      break;
    default:
      fields = {0};
      break;
  }
  for (size_t off = 0; off < w.size(); off += info.block_bytes) {
    for (size_t f : fields) {
      const uint16_t h = fp32_to_fp16(mag(rng));
      std::memcpy(&w[off + f], &h, 2);
    }
  }
  return w;
}

std::vector<float> random_activations(int64_t n_cols, int64_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n_cols * n);
  for (float& v : x) v = normal(rng);
  return x;
}

struct Problem {
  int64_t n, n_rows, n_cols;
  std::vector<uint8_t> w;   // [n_rows, row_bytes(weight)]
  std::vector<uint8_t> xq;  // [n_cols, row_bytes(act)]
  size_t w_stride, x_stride;
};

Problem make_problem(const MatmulKernel& k, int64_t n, int64_t n_rows, int64_t n_cols, std::mt19937& rng) {
  Problem p{
      n, n_rows, n_cols, random_weights(k.weight, n_rows, n, rng), {}, row_bytes(k.weight, n), row_bytes(k.act, n)};
  const std::vector<float> x = random_activations(n_cols, n, rng);
  p.xq.resize(p.x_stride * n_cols);
  for (int64_t c = 0; c < n_cols; ++c) k.quantize_act(x.data() + c * n, p.xq.data() + c * p.x_stride, n);
  return p;
}

std::vector<float> run(const MatmulKernel& k, const Problem& p) {
  std::vector<float> y(p.n_cols * p.n_rows, std::nanf(""));
  k.gemm(p.n, p.w.data(), p.w_stride, p.n_rows, p.xq.data(), p.x_stride, p.n_cols, y.data(), p.n_rows);
  return y;
}

// Tolerance --------------------------------------------------------------------------------------

// Every kernel computes exact integer (or exact product) partial sums and then accumulates them in
// f32 with at most one rounding per step: a chain of m roundings errs by at most m·u·Σ|terms|
// (u = 2^-24, first order), and every term is bounded by the Σ|w·a| of its elements, so
// |dot - exact| <= c · Σ|w·a| with c = 1.5 · m · u (1.5: slack for second-order terms), m the
// longest chain of roundings an output goes through:
//  - integer formats: one accumulation step per block of >= 16 elements plus a few scale
//    products, min terms and final reductions: m = n / 16 + 16 (4e-6 for n = 512, in line with
//    the README's measured 1.2e-7 .. 1e-6);
//  - float formats: the SIMD families accumulate one element per step (one fma per element, in
//    order), so m = n + 16; the scalar family sums in double and is far inside that.
double tolerance_c(TensorType type, int64_t n) {
  const bool per_element = tensor_type_info(type).block_elems == 1;
  const double m = per_element ? static_cast<double>(n) + 16 : static_cast<double>(n) / 16 + 16;
  return 1.5 * m * std::ldexp(1.0, -24);
}

// q4_1/q5_1 weights (y = q·d + m) meet q8_1 activations through the block's stored s = fp16(d_a·Σq_a):
// ggml adds m_w·s_a where the exact product has m_w·d_a·Σq_a. That rounding is part of the format
// (the README's 7.3e-6), so the reference includes it: Σ_blocks m_w · (s_a - d_a·Σq_a).
double q8_1_offset_rounding(const MatmulKernel& k, const Problem& p, int64_t r, int64_t c) {
  const size_t wb = tensor_type_info(k.weight).block_bytes;
  double delta = 0;
  for (int64_t b = 0; b < p.n / 32; ++b) {
    const uint8_t* wblk = p.w.data() + r * p.w_stride + b * wb;
    const uint8_t* ablk = p.xq.data() + c * p.x_stride + b * 36;
    uint16_t m_bits, d_bits, s_bits;
    std::memcpy(&m_bits, wblk + 2, 2);
    std::memcpy(&d_bits, ablk, 2);
    std::memcpy(&s_bits, ablk + 2, 2);
    int sum = 0;
    for (int i = 0; i < 32; ++i) sum += static_cast<int8_t>(ablk[4 + i]);
    delta += static_cast<double>(fp16_to_fp32(m_bits)) *
             (fp16_to_fp32(s_bits) - static_cast<double>(fp16_to_fp32(d_bits)) * sum);
  }
  return delta;
}

// Exact (double) dot of the dequantized rows and Σ|w·a|, per (c, r).
void reference(const MatmulKernel& k, const Problem& p, std::vector<double>* dot, std::vector<double>* mag) {
  std::vector<float> wf(p.n), xf(p.n);
  dot->assign(p.n_cols * p.n_rows, 0);
  mag->assign(p.n_cols * p.n_rows, 0);
  std::vector<float> xall(p.n_cols * p.n);
  for (int64_t c = 0; c < p.n_cols; ++c) dequantize_row(k.act, p.xq.data() + c * p.x_stride, &xall[c * p.n], p.n);
  for (int64_t r = 0; r < p.n_rows; ++r) {
    dequantize_row(k.weight, p.w.data() + r * p.w_stride, wf.data(), p.n);
    for (int64_t c = 0; c < p.n_cols; ++c) {
      double s = 0, m = 0;
      for (int64_t i = 0; i < p.n; ++i) {
        const double t = static_cast<double>(wf[i]) * xall[c * p.n + i];
        s += t;
        m += std::fabs(t);
      }
      if (k.act == TensorType::kQ8_1) s += q8_1_offset_rounding(k, p, r, c);
      (*dot)[c * p.n_rows + r] = s;
      (*mag)[c * p.n_rows + r] = m;
    }
  }
}

void expect_close(const MatmulKernel& k, const Problem& p, const std::vector<float>& y, const std::string& what) {
  std::vector<double> dot, mag;
  reference(k, p, &dot, &mag);
  const double c = tolerance_c(k.weight, p.n);
  int failures = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double err = std::fabs(y[i] - dot[i]);
    if (!(err <= c * mag[i]) && failures++ < 5) {
      ADD_FAILURE() << what << " col " << i / p.n_rows << " row " << i % p.n_rows << ": " << y[i] << " vs exact "
                    << dot[i] << " (err " << err << " > " << c << " * " << mag[i] << ")";
    }
  }
}

// Types whose scalar kernel follows the SIMD families' arithmetic (the others follow ggml's scalar
// order and have no SIMD kernel).
bool shares_simd_numerics(TensorType t) { return matmul_kernel(t, Isa::kAvx2) != nullptr; }

// Tests -----------------------------------------------------------------------------------------

TEST(Matmul, KernelTable) {
  for (TensorType t : {TensorType::kF32, TensorType::kF16, TensorType::kBF16, TensorType::kQ8_0, TensorType::kQ4_K,
                       TensorType::kQ5_K, TensorType::kQ6_K}) {
    const MatmulKernel* k = matmul_kernel(t);
    ASSERT_NE(k, nullptr) << tensor_type_name(t);
    EXPECT_EQ(k->weight, t);
    EXPECT_EQ(k->act, vec_dot_type(t));
    EXPECT_TRUE(has_matmul(t));
  }
  for (const Case& c : all_kernels()) {
    EXPECT_EQ(c.kernel->act, vec_dot_type(c.kernel->weight)) << c.name;
    EXPECT_TRUE(isa_supported(c.kernel->isa)) << c.name;
  }
  EXPECT_EQ(matmul_kernel(TensorType::kIQ2_XXS), nullptr);
}

// The AVX-512 family runs without AVX512-BF16 (Ice Lake, Cascade Lake): there its bf16 kernel
// multiplies with FMAs (vdpbf16ps would fault), and only CPUs with the extension measure a bf16
// peak.
TEST(Matmul, Bf16WithAndWithoutItsExtension) {
  if (!isa_supported(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 family on this CPU";
  const bool bf16 = cpu_features().avx512bf16;
  ASSERT_NE(matmul_kernel(TensorType::kBF16, Isa::kAvx512), nullptr);
  EXPECT_EQ(matmul_kernel(TensorType::kBF16, Isa::kAvx512) == avx512_bf16_fma_kernel(), !bf16);
  if (best_isa() == Isa::kAvx512) {
    EXPECT_EQ(matmul_kernel(TensorType::kBF16)->isa, Isa::kAvx512);
    EXPECT_EQ(measure_bf16_peak_gflops() > 0, bf16);
  }
}

// quantize_act of every family writes the bytes of quantize_act_row (so all families see the same
// activations), here on data with exact rounding ties, zero blocks, ties of the largest magnitude
// with both signs, subnormals and, for the float formats, lengths that are no multiple of a vector.
TEST(Matmul, ActivationBytesIdenticalInEveryFamily) {
  std::mt19937 rng(1);
  const int64_t n = 2048;
  std::vector<float> x = random_activations(1, n + 13, rng);
  for (int i = 0; i < 32; ++i) x[64 + i] = 0.0f;                                // an all-zero q8_0 block
  for (int i = 0; i < 32; ++i) x[128 + i] = i == 0 ? 127.0f : (i - 16) + 0.5f;  // ties at scale 1
  for (int i = 0; i < 256; ++i) x[768 + i] = 0.0f;                              // an all-zero q8_K block
  x[1024 + 3] = -9.0f;                                                          // largest magnitude twice,
  x[1024 + 200] = 9.0f;                                                         // first one negative
  x[1300] = 1e-40f;                                                             // f32 subnormal
  x[1301] = -0.0f;
  x[1302] = 65520.0f;                        // rounds to f16 inf
  x[1303] = 1.0009765625f + 0.00048828125f;  // f16 tie
  x[1304] = 1.00390625f;                     // bf16 tie
  x[1305] = 5.9604645e-08f;                  // f16 subnormal
  for (const Case& c : all_kernels()) {
    const bool float_act = tensor_type_info(c.kernel->act).block_elems == 1;
    for (int64_t len : {n, float_act ? n + 13 : n}) {
      std::vector<uint8_t> got(row_bytes(c.kernel->act, len)), want(got.size());
      c.kernel->quantize_act(x.data(), got.data(), len);
      quantize_act_row(c.kernel->act, x.data(), want.data(), len);
      EXPECT_EQ(got, want) << c.name << " n=" << len;
    }
  }
  // NaN survives bf16 conversion as a quiet NaN in every family.
  std::vector<float> nan_row(37, std::nanf(""));
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (const MatmulKernel* k = matmul_kernel(TensorType::kBF16, isa)) {
      std::vector<uint8_t> got(2 * nan_row.size()), want(got.size());
      k->quantize_act(nan_row.data(), got.data(), static_cast<int64_t>(nan_row.size()));
      quantize_act_row(TensorType::kBF16, nan_row.data(), want.data(), static_cast<int64_t>(nan_row.size()));
      EXPECT_EQ(got, want) << isa_name(isa);
    }
  }
}

TEST(Matmul, MatchesReferenceOnRandomShapes) {
  struct Shape {
    int64_t blocks, n_rows, n_cols;
  };
  const Shape shapes[] = {{1, 1, 1},  {1, 17, 3}, {3, 16, 8},  {2, 33, 9},
                          {5, 5, 13}, {9, 40, 1}, {24, 20, 2}, {40, 3, 17}};
  for (const Case& c : all_kernels()) {
    std::mt19937 rng(42);
    const int64_t block =
        tensor_type_info(c.kernel->weight).block_elems == 1 ? 32 : tensor_type_info(c.kernel->weight).block_elems;
    for (const Shape& s : shapes) {
      const int64_t n = s.blocks * block;
      const Problem p = make_problem(*c.kernel, n, s.n_rows, s.n_cols, rng);
      expect_close(*c.kernel, p, run(*c.kernel, p),
                   c.name + " n=" + std::to_string(n) + " rows=" + std::to_string(s.n_rows) +
                       " cols=" + std::to_string(s.n_cols));
    }
  }
}

// Float kernels on lengths that are not a multiple of their vector width.
TEST(Matmul, FloatTypesOddLengths) {
  for (const Case& c : all_kernels()) {
    if (tensor_type_info(c.kernel->weight).block_elems != 1) continue;
    std::mt19937 rng(3);
    for (int64_t n : {1, 7, 17, 33, 100}) {
      const Problem p = make_problem(*c.kernel, n, 19, 5, rng);
      expect_close(*c.kernel, p, run(*c.kernel, p), c.name + " n=" + std::to_string(n));
    }
  }
}

// The fixture rows (dots.json) with the natively quantized activation: within the tolerance of
// ggml's scalar result, and bit for bit where the family promises ggml's scalar order.
TEST(Matmul, FixtureDots) {
  for (const Case& c : all_kernels()) {
    const std::string type_name(tensor_type_name(c.kernel->weight));
    const auto& types = test::quant_fixture_types();
    if (std::find(types.begin(), types.end(), type_name) == types.end()) continue;
    const auto f = test::load_quant_fixture(type_name);
    std::vector<float> y(f.n_rows);
    c.kernel->gemm(f.n_per_row, f.bytes.data(), f.row_bytes, f.n_rows, f.act_native.data(), 0, 1, y.data(), f.n_rows);
    std::vector<float> a(f.n_per_row);
    dequantize_row(f.act, f.act_native.data(), a.data(), f.n_per_row);
    // ggml's scalar order: q8_0, q4_0, iq4_nl in every family; the scalar family's types without
    // SIMD kernels. The rest follow the SIMD families' own order (within the tolerance).
    const TensorType t = c.kernel->weight;
    const bool exact = t == TensorType::kQ8_0 || t == TensorType::kQ4_0 || t == TensorType::kIQ4_NL ||
                       (c.kernel->isa == Isa::kScalar && !shares_simd_numerics(t));
    for (int64_t r = 0; r < f.n_rows; ++r) {
      const float want = f.dots["vec_dot_scalar__act_native"][r].get<float>();
      double mag = 0;
      for (int64_t i = 0; i < f.n_per_row; ++i)
        mag += std::fabs(static_cast<double>(f.dequant[r * f.n_per_row + i]) * a[i]);
      if (exact) {
        EXPECT_EQ(std::bit_cast<uint32_t>(y[r]), std::bit_cast<uint32_t>(want)) << c.name << " row " << r;
      } else {
        EXPECT_LE(std::fabs(y[r] - want), 2 * tolerance_c(f.type, f.n_per_row) * mag) << c.name << " row " << r;
      }
    }
  }
}

// The same matrix computed whole, one column at a time, and as an irregular grid of row ranges and
// column sets (so rows land in different lanes and tiles, and columns in different column groups)
// must give bit-identical results.
TEST(Matmul, BatchInvariance) {
  for (const Case& c : all_kernels()) {
    std::mt19937 rng(9);
    const int64_t block = std::max<int64_t>(32, tensor_type_info(c.kernel->weight).block_elems);
    const int64_t n = block * (block == 32 ? 21 : 5);  // more than one K-chunk of every kernel
    const Problem p = make_problem(*c.kernel, n, 45, 21, rng);
    const std::vector<float> whole = run(*c.kernel, p);

    std::vector<float> split(whole.size(), std::nanf(""));
    const size_t ldy = p.n_rows;
    const int64_t row_cuts[] = {0, 1, 4, 21, 22, 38, 45};
    const int64_t col_cuts[] = {0, 1, 2, 11, 12, 21};
    for (size_t ri = 0; ri + 1 < std::size(row_cuts); ++ri) {
      for (size_t ci = 0; ci + 1 < std::size(col_cuts); ++ci) {
        const int64_t r0 = row_cuts[ri], r1 = row_cuts[ri + 1], c0 = col_cuts[ci], c1 = col_cuts[ci + 1];
        c.kernel->gemm(n, p.w.data() + r0 * p.w_stride, p.w_stride, r1 - r0, p.xq.data() + c0 * p.x_stride, p.x_stride,
                       c1 - c0, split.data() + c0 * ldy + r0, ldy);
      }
    }
    std::vector<float> single(whole.size(), std::nanf(""));
    for (int64_t r = 0; r < p.n_rows; ++r) {
      for (int64_t col = 0; col < p.n_cols; ++col) {
        c.kernel->gemm(n, p.w.data() + r * p.w_stride, p.w_stride, 1, p.xq.data() + col * p.x_stride, p.x_stride, 1,
                       &single[col * ldy + r], ldy);
      }
    }
    int diffs = 0;
    for (size_t i = 0; i < whole.size(); ++i) {
      const uint32_t a = std::bit_cast<uint32_t>(whole[i]);
      if ((a != std::bit_cast<uint32_t>(split[i]) || a != std::bit_cast<uint32_t>(single[i])) && diffs++ < 5) {
        ADD_FAILURE() << c.name << " col " << i / ldy << " row " << i % ldy << ": whole " << whole[i] << " split "
                      << split[i] << " single " << single[i];
      }
    }
  }
}

// A batch wider than the kernels' column blocks (about 256 columns): whole versus column by column.
TEST(Matmul, BatchInvarianceWideBatch) {
  for (const Case& c : all_kernels()) {
    if (c.kernel->isa == Isa::kScalar) continue;  // one vec_dot per output: nothing to block
    std::mt19937 rng(5);
    const int64_t n = std::max<int64_t>(32, tensor_type_info(c.kernel->weight).block_elems);
    const Problem p = make_problem(*c.kernel, n, 9, 300, rng);
    const std::vector<float> whole = run(*c.kernel, p);
    std::vector<float> single(whole.size(), std::nanf(""));
    for (int64_t col = 0; col < p.n_cols; ++col) {
      c.kernel->gemm(n, p.w.data(), p.w_stride, p.n_rows, p.xq.data() + col * p.x_stride, p.x_stride, 1,
                     &single[col * p.n_rows], p.n_rows);
    }
    int diffs = 0;
    for (size_t i = 0; i < whole.size(); ++i) {
      if (std::bit_cast<uint32_t>(whole[i]) != std::bit_cast<uint32_t>(single[i]) && diffs++ < 3) {
        ADD_FAILURE() << c.name << " col " << i / p.n_rows << " row " << i % p.n_rows;
      }
    }
  }
}

// Every family implements the same per-output arithmetic for the types they share (exact integer
// block sums, one fixed f32 sequence), so a model gives the same bits on any CPU: compare every
// family present here with every other on the same shapes.
TEST(Matmul, FamiliesAgreeBitForBit) {
  for (TensorType t : kTypes) {
    std::vector<const MatmulKernel*> kernels;
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      const MatmulKernel* k = matmul_kernel(t, isa);
      if (k != nullptr && (isa != Isa::kScalar || shares_simd_numerics(t))) kernels.push_back(k);
    }
    if (t == TensorType::kBF16 && other_bf16_kernel() != nullptr) kernels.push_back(other_bf16_kernel());
    if (kernels.size() < 2) continue;
    std::mt19937 rng(11);
    const int64_t block = std::max<int64_t>(32, tensor_type_info(t).block_elems);
    for (int64_t n : {block, block * 9, block * 3}) {
      const int64_t n_elems = tensor_type_info(t).block_elems == 1 ? n + 5 : n;  // odd float lengths too
      const Problem p = make_problem(*kernels[0], n_elems, 19, 7, rng);
      const std::vector<float> first = run(*kernels[0], p);
      for (size_t i = 1; i < kernels.size(); ++i) {
        const std::vector<float> other = run(*kernels[i], p);
        int diffs = 0;
        for (size_t e = 0; e < first.size(); ++e) {
          if (std::bit_cast<uint32_t>(first[e]) != std::bit_cast<uint32_t>(other[e]) && diffs++ < 3) {
            ADD_FAILURE() << tensor_type_name(t) << " n=" << n_elems << " " << isa_name(kernels[0]->isa) << " vs "
                          << isa_name(kernels[i]->isa) << " at " << e << ": " << first[e] << " vs " << other[e];
          }
        }
      }
    }
  }
}

// q2_K and q3_K prefill multiplies each code by its sub-block's scale into one byte (q3_K value ·
// scale + 124: -4 · -32 = 128 is its top), decode does not: on raw random bytes (every code and
// scale, both signs), rows at the extremes (q3_K values -4 with scales -32, q2_K codes 3 with scales
// and mins 15) and activations at ±127, every family matches the exact dot and the others bit for
// bit, for one column (decode) and many (prefill, with an odd row group).
TEST(Matmul, LowBitFormatsExtremeCodes) {
  for (TensorType t : {TensorType::kQ2_K, TensorType::kQ3_K}) {
    const size_t block_bytes = tensor_type_info(t).block_bytes;
    const int64_t n = 512, n_rows = 33;
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> byte(0, 255);
    std::vector<uint8_t> w(row_bytes(t, n) * n_rows);
    for (uint8_t& b : w) b = static_cast<uint8_t>(byte(rng));
    for (size_t off = 0; off < w.size(); off += block_bytes) {
      const bool extreme = off / row_bytes(t, n) % 4 == 0;  // rows 0, 4, ..: the extreme block
      if (t == TensorType::kQ3_K) {                         // hmask[32], qs[64], scales[12], d
        if (extreme) std::memset(&w[off], 0, 108);          // value -4, stored scale 0 (-32)
      } else if (extreme) {                                 // scales[16], qs[64], d, dmin
        std::memset(&w[off], 0xFF, 80);
      }
      for (size_t f : t == TensorType::kQ3_K ? std::vector<size_t>{108} : std::vector<size_t>{80, 82}) {
        const uint16_t h = fp32_to_fp16(0.01f);
        std::memcpy(&w[off + f], &h, 2);
      }
    }
    std::vector<float> x = random_activations(13, n, rng);
    for (size_t i = 0; i < x.size(); ++i)
      if (i / 256 % 2 == 0) x[i] = i % 3 == 0 ? -1.0f : 1.0f;  // every other q8_K block all ±127
    std::vector<float> first_1, first_13;
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      const MatmulKernel* k = matmul_kernel(t, isa);
      if (k == nullptr) continue;
      for (int64_t n_cols : {1, 13}) {
        Problem p{n, n_rows, n_cols, w, {}, row_bytes(t, n), row_bytes(k->act, n)};
        p.xq.resize(p.x_stride * n_cols);
        for (int64_t c = 0; c < n_cols; ++c) k->quantize_act(x.data() + c * n, p.xq.data() + c * p.x_stride, n);
        const std::vector<float> y = run(*k, p);
        const std::string what =
            std::string(tensor_type_name(t)) + " " + isa_name(isa) + " cols=" + std::to_string(n_cols);
        expect_close(*k, p, y, what);
        std::vector<float>& first = n_cols == 1 ? first_1 : first_13;
        if (first.empty()) first = y;
        for (size_t e = 0; e < y.size(); ++e)
          ASSERT_EQ(std::bit_cast<uint32_t>(first[e]), std::bit_cast<uint32_t>(y[e])) << what << " at " << e;
      }
    }
  }
}

// bf16 follows vdpbf16ps: denormal inputs read as zero and denormal results flushed, in every
// family (the SIMD ones without vdpbf16ps set DAZ and FTZ for the call, and restore the modes). Values near the bottom
// of the f32 range (products about 2^-126, some inputs denormal) must give the same bits in every family, and the data
// must actually reach the flushing: the same order without it gives other bits for some outputs.
TEST(Matmul, Bf16FlushesDenormalsInEveryFamily) {
  std::mt19937 rng(17);
  const int64_t n = 300, n_rows = 21, n_cols = 5;  // two chunks, a partial block
  std::uniform_int_distribution<int> mantissa(0, 127), sign(0, 1), exponent(-4, 4), one_in_8(0, 7);
  const auto value = [&](int base) -> uint16_t {  // sign, biased exponent near base (or 0), mantissa
    const int e = one_in_8(rng) == 0 ? 0 : base + exponent(rng);
    return static_cast<uint16_t>((sign(rng) << 15) | (e << 7) | mantissa(rng));
  };
  std::vector<uint16_t> w(n_rows * n), x(n_cols * n);
  for (uint16_t& v : w) v = value(127 - 60);  // about 2^-60, one in 8 denormal
  for (uint16_t& v : x) v = value(127 - 66);  // about 2^-66: products about 2^-126
  std::vector<std::vector<float>> results;
  for (const MatmulKernel* k :
       {matmul_kernel(TensorType::kBF16, Isa::kScalar), matmul_kernel(TensorType::kBF16, Isa::kAvx2),
        matmul_kernel(TensorType::kBF16, Isa::kAvx512), other_bf16_kernel()}) {
    if (k == nullptr) continue;
    const std::string_view name = k == other_bf16_kernel() ? "avx512-fma" : isa_name(k->isa);
    std::vector<float> y(n_cols * n_rows, std::nanf(""));
    const auto modes = [] { return _mm_getcsr() & ~0x3Fu; };  // MXCSR less its sticky exception flags
    const unsigned before = modes();
    k->gemm(n, w.data(), 2 * n, n_rows, x.data(), 2 * n, n_cols, y.data(), n_rows);
    EXPECT_EQ(modes(), before) << name << ": the caller's floating-point modes come back";
    if (!results.empty()) {
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(results[0][i])) << name << " at " << i;
    }
    results.push_back(std::move(y));
  }
  // The same pair order with gradual underflow.
  int differ = 0;
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t c = 0; c < n_cols; ++c) {
      float y = 0;
      for (int64_t k0 = 0; k0 < n; k0 += 256) {
        float p[2] = {0, 0};
        for (int64_t k = k0; k < std::min(n, k0 + 256); k += 2) {
          float& s = p[(k - k0) / 2 % 2];
          s = std::fma(bf16_to_fp32(w[r * n + k + 1]), bf16_to_fp32(x[c * n + k + 1]), s);
          s = std::fma(bf16_to_fp32(w[r * n + k]), bf16_to_fp32(x[c * n + k]), s);
        }
        y = y + (p[0] + p[1]);
      }
      differ += std::bit_cast<uint32_t>(y) != std::bit_cast<uint32_t>(results[0][c * n_rows + r]);
    }
  }
  EXPECT_GT(differ, 0) << "the data never reached a denormal";
}

}  // namespace
}  // namespace hylo::kernels

namespace hylo::kernels {
namespace {

// The interleaved image (the load-time repack) against the rows in place: every kernel that reads
// an image returns the same bits from it, for odd row counts (a padded last group), float lengths
// that end in a partial block, several chunks along n, one column (decode) and many, and calls
// that start at any group of the image. 101 rows (7 groups) with 1, 2 and 5 columns take the
// decode path over 4, 2 and 1 groups at once, the last one padded; 3, 4 and 8 columns reach the
// edges of the families' fused and packed decode tiles (kFusedImageMaxCols, kMaxCols).
TEST(Matmul, ImageMatchesRowsInPlace) {
  int checked = 0;
  for (const Case& c : all_kernels()) {
    if (c.kernel->gemm_image == nullptr) continue;
    const ImageLayout& L = c.kernel->image;
    const TensorTypeInfo& info = tensor_type_info(c.kernel->weight);
    const bool is_float = info.block_elems == 1;  // the image still works in blocks of 16 elements
    ASSERT_EQ(L.block_bytes, static_cast<int>(info.block_bytes * (is_float ? L.block_elems : 1))) << c.name;
    if (!is_float) {
      ASSERT_EQ(L.block_elems, static_cast<int>(info.block_elems)) << c.name;
    }
    std::mt19937 rng(13);
    const int64_t block = L.block_elems;
    for (int64_t n : {block, block * (block == 32 ? 19 : 5), is_float ? block * 3 + 5 : block * 2}) {
      for (int64_t n_rows : {int64_t{1}, int64_t{16}, int64_t{37}, int64_t{101}}) {
        Problem p = make_problem(*c.kernel, n, n_rows, 13, rng);
        if (is_float) {  // rows with a gap between them, ending mid-block
          p.w = random_weights(c.kernel->weight, n_rows, n + 8, rng);
          p.w_stride = row_bytes(c.kernel->weight, n + 8);
        }
        const size_t used = row_bytes(c.kernel->weight, n);
        std::vector<uint8_t> image(L.image_bytes(n_rows, n) + 64);
        auto* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(image.data()) + 63) / 64 * 64);
        build_image(L, p.w.data(), p.w_stride, used, n_rows, n, 0, L.groups(n_rows), aligned);
        for (int64_t cols : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{8}, int64_t{13}}) {
          std::vector<float> in_place(cols * n_rows, std::nanf("")), imaged(cols * n_rows, std::nanf(""));
          c.kernel->gemm(n, p.w.data(), p.w_stride, n_rows, p.xq.data(), p.x_stride, cols, in_place.data(), n_rows);
          c.kernel->gemm_image(n, aligned, n_rows, p.xq.data(), p.x_stride, cols, imaged.data(), n_rows);
          int diffs = 0;
          for (size_t i = 0; i < in_place.size(); ++i) {
            if (std::bit_cast<uint32_t>(in_place[i]) != std::bit_cast<uint32_t>(imaged[i]) && diffs++ < 3)
              ADD_FAILURE() << c.name << " n=" << n << " rows=" << n_rows << " cols=" << cols << " at " << i << ": "
                            << in_place[i] << " vs " << imaged[i];
          }
          ++checked;
        }
        // A call that starts at the second group (rows lanes..): what a thread's task does.
        const int64_t g1 = L.lanes;
        if (n_rows > g1) {
          std::vector<float> in_place(n_rows - g1), imaged(n_rows - g1);
          c.kernel->gemm(n, p.w.data() + g1 * p.w_stride, p.w_stride, n_rows - g1, p.xq.data(), p.x_stride, 1,
                         in_place.data(), n_rows - g1);
          c.kernel->gemm_image(n, aligned + L.group_bytes(n), n_rows - g1, p.xq.data(), p.x_stride, 1, imaged.data(),
                               n_rows - g1);
          for (size_t i = 0; i < in_place.size(); ++i)
            EXPECT_EQ(std::bit_cast<uint32_t>(in_place[i]), std::bit_cast<uint32_t>(imaged[i])) << c.name << " " << i;
        }
      }
    }
  }
  if (isa_supported(Isa::kAvx512)) {
    EXPECT_GT(checked, 0);
  }
}

// Shared activation records (RecordsKernel): prepared once, in uneven column ranges as threads
// would, then read by calls over the rows in place and over the image, whole and from the second
// group on: the same bits as the calls that prepare their own records, for many columns
// (prefill tiles, several column blocks) and few.
TEST(Matmul, SharedRecordsMatchPerCall) {
  int checked = 0;
  for (const Case& c : all_kernels()) {
    const RecordsKernel* rk = c.kernel->records;
    if (rk == nullptr) continue;
    ASSERT_NE(c.kernel->gemm_image, nullptr) << c.name;
    const ImageLayout& L = c.kernel->image;
    const bool is_float = tensor_type_info(c.kernel->weight).block_elems == 1;
    std::mt19937 rng(17);
    const int64_t block = L.block_elems;
    for (int64_t n : {block * 3, is_float ? block * 5 + 3 : block * 7}) {
      for (int64_t n_cols : {int64_t{3}, int64_t{40}, int64_t{300}}) {
        const int64_t n_rows = 37;
        const Problem p = make_problem(*c.kernel, n, n_rows, n_cols, rng);
        std::vector<uint8_t> image(L.image_bytes(n_rows, n) + 64);
        auto* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(image.data()) + 63) / 64 * 64);
        build_image(L, p.w.data(), p.w_stride, row_bytes(c.kernel->weight, n), n_rows, n, 0, L.groups(n_rows), aligned);
        std::vector<uint8_t> store(rk->bytes(n, n_cols) + 64);
        auto* records = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(store.data()) + 63) / 64 * 64);
        const int64_t cut1 = n_cols / 3, cut2 = n_cols - 1;  // three ranges, the last one column
        rk->prepare(n, p.xq.data(), p.x_stride, cut2, n_cols, n_cols, records);
        rk->prepare(n, p.xq.data(), p.x_stride, 0, cut1, n_cols, records);
        rk->prepare(n, p.xq.data(), p.x_stride, cut1, cut2, n_cols, records);
        const auto compare = [&](const std::vector<float>& want, const std::vector<float>& got, const char* what) {
          int diffs = 0;
          for (size_t i = 0; i < want.size(); ++i) {
            if (std::bit_cast<uint32_t>(want[i]) != std::bit_cast<uint32_t>(got[i]) && diffs++ < 3)
              ADD_FAILURE() << c.name << " " << what << " n=" << n << " cols=" << n_cols << " at " << i << ": "
                            << want[i] << " vs " << got[i];
          }
        };
        const size_t size = static_cast<size_t>(n_cols * n_rows);
        std::vector<float> want(size, std::nanf("")), got(size, std::nanf(""));
        c.kernel->gemm(n, p.w.data(), p.w_stride, n_rows, p.xq.data(), p.x_stride, n_cols, want.data(), n_rows);
        rk->gemm(n, p.w.data(), p.w_stride, n_rows, records, n_cols, got.data(), n_rows);
        compare(want, got, "in place");
        std::fill(got.begin(), got.end(), std::nanf(""));
        rk->gemm_image(n, aligned, n_rows, records, n_cols, got.data(), n_rows);
        compare(want, got, "image");
        // A task's call: the rows from the second group on, into the same y positions.
        std::copy(want.begin(), want.end(), got.begin());
        for (int64_t col = 0; col < n_cols; ++col)
          std::fill_n(got.begin() + col * n_rows + L.lanes, n_rows - L.lanes, std::nanf(""));
        rk->gemm_image(n, aligned + L.group_bytes(n), n_rows - L.lanes, records, n_cols, got.data() + L.lanes, n_rows);
        compare(want, got, "image from group 1");
        ++checked;
      }
    }
  }
  if (isa_supported(Isa::kAvx512)) {
    EXPECT_GT(checked, 0);
  }
}

// The image is the rows' bytes rearranged: same size per group of rows, and the 4-byte unit at
// byte off of block b of lane l's row sits at body + (b · body + (off − head) · lanes/4 + l) · 4.
TEST(Matmul, ImageLayoutArithmetic) {
  const ImageLayout L = image_layout(TensorType::kQ8_0, 16);
  EXPECT_EQ(L.body_bytes(), 32);
  EXPECT_EQ(L.group_bytes(64), 64u * 34u / 32u * 16u);  // 2 blocks of 16 rows
  EXPECT_EQ(L.group_bytes(32 * 3), (3u * 16u * 34u + 63u) / 64u * 64u);
  EXPECT_EQ(L.groups(17), 2);
  std::vector<uint8_t> rows(17 * 68);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<uint8_t>(i * 7 + 3);
  std::vector<uint8_t> image(L.image_bytes(17, 64));
  build_image(L, rows.data(), 68, 68, 17, 64, 0, 2, image.data());
  for (int l = 0; l < 16; ++l)
    for (int b = 0; b < 2; ++b) {
      for (int k = 0; k < 8; ++k)  // codes: body unit k
        for (int j = 0; j < 4; ++j)
          ASSERT_EQ(image[(b * 8 * 16 + k * 16 + l) * 4 + j], rows[l * 68 + b * 34 + 2 + 4 * k + j]);
      for (int j = 0; j < 2; ++j)  // d: the halves region after both blocks' bodies
        ASSERT_EQ(image[2 * 512 + b * 32 + l * 2 + j], rows[l * 68 + b * 34 + j]);
    }
  // Group 1 holds row 16 in lane 0 and repeats it in the spare lanes.
  const uint8_t* g1 = image.data() + L.group_bytes(64);
  for (int l = 0; l < 16; ++l) EXPECT_EQ(g1[l * 4], rows[16 * 68 + 2]);
}

}  // namespace
}  // namespace hylo::kernels
