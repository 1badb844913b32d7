// Writer round trip: what is written reads back with the same metadata and bytes.
#include <gtest/gtest.h>

#include <cstring>

#include "common/fixtures.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"

namespace hylo {
namespace {

TEST(GgufWriter, RoundTripsMetadataAndTensors) {
  gguf::Writer w;
  w.set_string("general.architecture", "test");
  w.set_u32("test.block_count", 7);
  w.set_i32("test.negative", -5);
  w.set_u64("test.big", 1ull << 40);
  w.set_f32("test.eps", 1e-6f);
  w.set_bool("test.flag", true);
  w.set_strings("test.words", {"a", "", "ünïcode", "<|im_start|>"});
  w.set_i32s("test.ints", {1, -2, 3});
  w.set_f32s("test.floats", {0.5f, -1.25f});
  std::vector<float> f32(64 * 3);
  for (size_t i = 0; i < f32.size(); ++i) f32[i] = static_cast<float>(i) * 0.25f - 3.0f;
  std::vector<uint8_t> bytes(f32.size() * 4);
  std::memcpy(bytes.data(), f32.data(), bytes.size());
  w.add_tensor_bytes("a.weight", TensorType::kF32, {64, 3}, bytes);
  std::vector<uint8_t> q8(34 * 2 * 5);
  for (size_t i = 0; i < q8.size(); ++i) q8[i] = static_cast<uint8_t>(i * 7);
  w.add_tensor_bytes("b.weight", TensorType::kQ8_0, {64, 5}, q8);
  const std::string path = test::scratch_path("writer_roundtrip.gguf");
  ASSERT_TRUE(w.write(path).ok());

  auto f = gguf::File::open(path);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->get_string("general.architecture"), "test");
  EXPECT_EQ(f->get_int("test.block_count"), 7);
  EXPECT_EQ(f->get_int("test.negative"), -5);
  EXPECT_EQ(f->get_int("test.big"), int64_t{1} << 40);
  EXPECT_FLOAT_EQ(static_cast<float>(*f->get_float("test.eps")), 1e-6f);
  EXPECT_EQ(f->get_bool("test.flag"), true);
  ASSERT_NE(f->get_array("test.words"), nullptr);
  EXPECT_EQ(f->get_array("test.words")->strings, (std::vector<std::string>{"a", "", "ünïcode", "<|im_start|>"}));
  EXPECT_EQ(f->get_array("test.ints")->ints, (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(f->get_array("test.floats")->floats, (std::vector<double>{0.5, -1.25}));
  ASSERT_EQ(f->metadata().size(), 9u);
  EXPECT_EQ(f->metadata()[0].first, "general.architecture");  // insertion order kept
  const gguf::TensorInfo* a = f->find_tensor("a.weight");
  const gguf::TensorInfo* b = f->find_tensor("b.weight");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->shape_string(), "[64, 3]");
  EXPECT_EQ(b->type, TensorType::kQ8_0);
  EXPECT_EQ(0, std::memcmp(f->tensor_data(*a), bytes.data(), bytes.size()));
  EXPECT_EQ(0, std::memcmp(f->tensor_data(*b), q8.data(), q8.size()));
  EXPECT_EQ(b->offset % 32, 0u);
}

}  // namespace
}  // namespace hylo
