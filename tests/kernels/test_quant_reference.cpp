// The scalar reference against ggml (fixtures/quant): file bytes, dequantization and activation
// quantization bit-exact, and vec_dot_reference bit-exact with ggml's scalar dot products.
#include <gtest/gtest.h>

#include <bit>
#include <cstring>

#include "base/npy.h"
#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "kernels/quant_fixture.h"

namespace hylo::kernels {
namespace {

using test::load_quant_fixture;
using test::quant_fixture_types;

TEST(QuantFixture, GgufTensorsMatchBytes) {
  auto file = gguf::File::open(test::quant_fixture_dir() + "/quant-reference.gguf");
  ASSERT_TRUE(file.ok()) << file.message();
  for (const std::string& name : quant_fixture_types()) {
    const auto f = load_quant_fixture(name);
    const gguf::TensorInfo* t = file->find_tensor("quant." + name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->type, f.type) << name;
    EXPECT_EQ(t->ne[0], f.n_per_row) << name;
    EXPECT_EQ(t->ne[1], f.n_rows) << name;
    EXPECT_EQ(row_bytes(f.type, f.n_per_row), f.row_bytes) << name;
    ASSERT_EQ(t->n_bytes, f.bytes.size()) << name;
    EXPECT_EQ(0, std::memcmp(file->tensor_data(*t), f.bytes.data(), f.bytes.size())) << name;
  }
}

TEST(QuantReference, DequantizeBitExact) {
  for (const std::string& name : quant_fixture_types()) {
    const auto f = load_quant_fixture(name);
    ASSERT_TRUE(can_dequantize(f.type)) << name;
    std::vector<float> out(f.dequant.size());
    for (int64_t r = 0; r < f.n_rows; ++r) {
      dequantize_row(f.type, f.bytes.data() + r * f.row_bytes, out.data() + r * f.n_per_row, f.n_per_row);
    }
    int mismatches = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      // Bit patterns, so that -0.0 vs +0.0 counts.
      if (std::bit_cast<uint32_t>(out[i]) != std::bit_cast<uint32_t>(f.dequant[i]) && mismatches++ < 3) {
        ADD_FAILURE() << name << " element " << i << ": " << out[i] << " expected " << f.dequant[i];
      }
    }
    EXPECT_EQ(mismatches, 0) << name;
  }
}

TEST(QuantReference, ActivationQuantizersBitExact) {
  const std::vector<float> act = test::load_quant_activation();
  const int64_t n = static_cast<int64_t>(act.size());
  for (const char* vt : {"q8_0", "q8_1", "q8_K", "f16", "bf16"}) {
    const TensorType t = *tensor_type_from_name(vt);
    const std::string dir = test::quant_fixture_dir() + "/activation_q/" + vt;
    const auto ref = read_npy(dir + ".ref.npy");
    const auto native = read_npy(dir + ".native.npy");
    ASSERT_TRUE(ref.ok() && native.ok()) << vt;
    std::vector<uint8_t> out(row_bytes(t, n));
    quantize_row(t, act.data(), out.data(), n);
    EXPECT_EQ(out, ref->bytes) << vt << ": reference quantizer";
    // The .native file is ggml's x86 from_float, which quantize_act_row copies.
    quantize_act_row(t, act.data(), out.data(), n);
    EXPECT_EQ(out, native->bytes) << vt << ": x86 quantizer";
  }
}

TEST(QuantReference, VecDotBitExactWithGgmlScalar) {
  for (const std::string& name : quant_fixture_types()) {
    const auto f = load_quant_fixture(name);
    EXPECT_EQ(vec_dot_type(f.type), f.act) << name;
    for (const char* flavour : {"ref", "native"}) {
      const auto& act = std::string(flavour) == "ref" ? f.act_ref : f.act_native;
      const auto& expected = f.dots[std::string("vec_dot_scalar__act_") + flavour];
      for (int64_t r = 0; r < f.n_rows; ++r) {
        const float got = vec_dot_reference(f.type, f.n_per_row, f.bytes.data() + r * f.row_bytes, act.data());
        const float want = expected[r].get<float>();
        EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
            << name << " row " << r << " act " << flavour << ": " << got << " expected " << want;
      }
    }
  }
}

}  // namespace
}  // namespace hylo::kernels
