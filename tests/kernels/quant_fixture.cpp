#include "kernels/quant_fixture.h"

#include <gtest/gtest.h>

#include <cstring>

#include "base/npy.h"
#include "common/fixtures.h"

namespace hylo::test {
namespace {

NpyArray must_read(const std::string& path) {
  auto a = read_npy(path);
  if (!a.ok()) {
    ADD_FAILURE() << a.message();
    return {};
  }
  return std::move(*a);
}

std::vector<float> as_floats(const NpyArray& a) {
  std::vector<float> v(a.bytes.size() / 4);
  if (!v.empty()) std::memcpy(v.data(), a.bytes.data(), v.size() * 4);
  return v;
}

}  // namespace

const std::vector<std::string>& quant_fixture_types() {
  static const std::vector<std::string> types = {"f16",  "bf16", "q4_0", "q4_1", "q5_0", "q5_1",   "q8_0",
                                                 "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_nl", "iq4_xs"};
  return types;
}

std::string quant_fixture_dir() { return fixtures_dir() + "/quant"; }

QuantFixtureType load_quant_fixture(const std::string& name) {
  const std::string dir = quant_fixture_dir();
  static const nlohmann::json dots = read_json_file(dir + "/dots.json");
  QuantFixtureType f;
  f.name = name;
  f.type = *tensor_type_from_name(name);
  f.dots = dots["types"][name];
  f.act = *tensor_type_from_name(f.dots["vec_dot_type"].get<std::string>());
  f.n_per_row = dots["n_per_row"].get<int64_t>();
  f.n_rows = dots["n_rows"].get<int64_t>();
  f.row_bytes = f.dots["row_bytes"].get<size_t>();
  f.bytes = must_read(dir + "/bytes/" + name + ".npy").bytes;
  f.dequant = as_floats(must_read(dir + "/dequant/" + name + ".npy"));
  const std::string act = f.dots["vec_dot_type"].get<std::string>();
  f.act_ref = must_read(dir + "/activation_q/" + act + ".ref.npy").bytes;
  f.act_native = must_read(dir + "/activation_q/" + act + ".native.npy").bytes;
  return f;
}

std::vector<float> load_quant_activation() { return as_floats(must_read(quant_fixture_dir() + "/activation.npy")); }
std::vector<float> load_quant_source() { return as_floats(must_read(quant_fixture_dir() + "/source.npy")); }

}  // namespace hylo::test
