// Loads the ggml quantization reference (fixtures/quant): raw blocks, dequantized values,
// quantized activations and dot products per type, as the tests of kernels/ use them.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/tensor_type.h"

namespace hylo::test {

// The 14 weight types of the fixture, by ggml name.
const std::vector<std::string>& quant_fixture_types();

struct QuantFixtureType {
  std::string name;
  TensorType type;
  TensorType act;  // vec_dot type
  int64_t n_per_row = 0, n_rows = 0;
  size_t row_bytes = 0;
  std::vector<uint8_t> bytes;                // [n_rows, row_bytes]
  std::vector<float> dequant;                // [n_rows, n_per_row]
  std::vector<uint8_t> act_ref, act_native;  // activation in `act`, reference / x86 quantizer
  nlohmann::json dots;                       // dots.json entry of the type
};

std::string quant_fixture_dir();
// Reads every file of the type; fails the current test (ASSERT-style) if one is missing.
QuantFixtureType load_quant_fixture(const std::string& name);
std::vector<float> load_quant_activation();  // activation.npy, f32 [512]
std::vector<float> load_quant_source();      // source.npy, f32 [8 * 512]

}  // namespace hylo::test
