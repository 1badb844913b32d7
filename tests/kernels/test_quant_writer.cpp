// The writer quantizers (q4_0, q4_1, q5_0, q5_1, q2_K … q6_K, iq4_nl, iq4_xs) against the blocks ggml's reference
// quantizers produced from the same source rows, and their round-trip error on random data.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/quant.h"
#include "kernels/quant_fixture.h"

namespace hylo::kernels {
namespace {

TEST(QuantWriter, BitExactWithGgmlReference) {
  const std::vector<float> source = test::load_quant_source();
  for (const char* name :
       {"q4_0", "q4_1", "q5_0", "q5_1", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_nl", "iq4_xs"}) {
    const auto f = test::load_quant_fixture(name);
    ASSERT_TRUE(can_quantize(f.type)) << name;
    for (int64_t r = 0; r < f.n_rows; ++r) {
      std::vector<uint8_t> out(f.row_bytes);
      quantize_row(f.type, source.data() + r * f.n_per_row, out.data(), f.n_per_row);
      const std::vector<uint8_t> want(f.bytes.begin() + r * f.row_bytes, f.bytes.begin() + (r + 1) * f.row_bytes);
      EXPECT_EQ(out, want) << name << " row " << r;
    }
  }
}

// Round trip on N(0, 1) rows: the RMS error relative to the RMS of the data stays below what each
// format's bits allow (measured: q2_K 0.29, q3_K 0.15, q4_0 0.084, q4_1 0.077, iq4_nl 0.075, iq4_xs 0.075,
// q4_K 0.071, q5_0 0.042, q5_1 0.037, q5_K 0.036, q6_K 0.018).
TEST(QuantWriter, RoundTripError) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t n = 4096;
  std::vector<float> x(n), back(n);
  for (float& v : x) v = normal(rng);
  for (auto [name, bound] : {std::pair{"q2_K", 0.33},
                             {"q3_K", 0.17},
                             {"q4_0", 0.10},
                             {"q4_1", 0.09},
                             {"q5_0", 0.05},
                             {"q5_1", 0.045},
                             {"iq4_nl", 0.09},
                             {"iq4_xs", 0.09},
                             {"q4_K", 0.085},
                             {"q5_K", 0.045},
                             {"q6_K", 0.022}}) {
    const TensorType t = *tensor_type_from_name(name);
    std::vector<uint8_t> q(row_bytes(t, n));
    quantize_row(t, x.data(), q.data(), n);
    dequantize_row(t, q.data(), back.data(), n);
    double err = 0, ref = 0;
    for (int64_t i = 0; i < n; ++i) {
      err += (back[i] - x[i]) * static_cast<double>(back[i] - x[i]);
      ref += x[i] * static_cast<double>(x[i]);
    }
    EXPECT_LT(std::sqrt(err / ref), bound) << name;
  }
}

}  // namespace
}  // namespace hylo::kernels
