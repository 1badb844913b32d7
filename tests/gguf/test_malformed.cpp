// Malformed files: every truncation point and byte flips in the header and tensor directory
// must give a clean error (or, for flips that keep the file valid, a successful parse) — never
// a crash, a hang or a giant allocation.
#include <gtest/gtest.h>

#include <random>

#include "common/fixtures.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"

namespace hylo {
namespace {

std::vector<uint8_t> small_valid_file() {
  gguf::Writer w;
  w.set_string("general.architecture", "test");
  w.set_u32("test.count", 3);
  w.set_strings("tokenizer.ggml.tokens", {"a", "bb", "ccc"});
  w.set_i32s("tokenizer.ggml.token_type", {1, 1, 3});
  std::vector<uint8_t> t(32 * 4 * 2, 1);
  w.add_tensor_bytes("x.weight", TensorType::kF32, {32, 2}, t);
  w.add_tensor_bytes("y.weight", TensorType::kQ8_0, {32, 2}, std::vector<uint8_t>(68, 2));
  const std::string path = test::scratch_path("small_valid.gguf");
  EXPECT_TRUE(w.write(path).ok());
  const std::string s = test::read_text_file(path);
  return {s.begin(), s.end()};
}

TEST(GgufMalformed, EveryTruncationFailsCleanly) {
  const auto bytes = small_valid_file();
  auto full = gguf::File::parse(bytes.data(), bytes.size(), "small.gguf");
  ASSERT_TRUE(full.ok());
  // Padding after the last tensor is optional; anything shorter than its end must fail.
  const auto& last = full->tensors().back();
  const size_t needed = full->data_offset() + last.offset + last.n_bytes;
  for (size_t n = 0; n < needed; ++n) {
    auto f = gguf::File::parse(bytes.data(), n, "small.gguf");
    ASSERT_FALSE(f.ok()) << "truncated to " << n << " bytes parsed";
    EXPECT_NE(f.message().find("[gguf] small.gguf"), std::string::npos) << f.message();
  }
}

TEST(GgufMalformed, TruncatedFixtureModelNamesTheTensor) {
  const std::string path = test::fixture_model("qwen3moe-tiny-q8");
  ASSERT_FALSE(path.empty());
  auto full = gguf::File::open(path);
  ASSERT_TRUE(full.ok());
  const std::string s = test::read_text_file(path);
  const std::vector<uint8_t> bytes(s.begin(), s.end());
  const auto& last = full->tensors().back();
  auto f = gguf::File::parse(bytes.data(), bytes.size() - 100, "model.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.message().find("tensor " + last.name + ": data ["), std::string::npos) << f.message();
  EXPECT_NE(f.message().find("beyond end of file"), std::string::npos) << f.message();
}

TEST(GgufMalformed, ByteFlipsInHeaderNeverCrash) {
  const auto bytes = small_valid_file();
  auto ok = gguf::File::parse(bytes.data(), bytes.size(), "small.gguf");
  ASSERT_TRUE(ok.ok());
  const size_t header_end = ok->data_offset();
  std::mt19937 rng(1234);
  int failures = 0;
  for (size_t pos = 0; pos < header_end; ++pos) {
    for (uint8_t v : {uint8_t{0x00}, uint8_t{0xff}, uint8_t{0x80}, static_cast<uint8_t>(rng())}) {
      auto mutated = bytes;
      mutated[pos] = v;
      auto f = gguf::File::parse(mutated.data(), mutated.size(), "small.gguf");
      if (!f.ok()) {
        ++failures;
        EXPECT_EQ(f.message().rfind("[gguf] small.gguf", 0), 0u) << f.message();
      }
    }
  }
  EXPECT_GT(failures, 100);
}

TEST(GgufMalformed, SpecificErrors) {
  auto bytes = small_valid_file();
  {
    auto m = bytes;
    m[0] = 'X';
    auto f = gguf::File::parse(m.data(), m.size(), "m.gguf");
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.message().find("not a GGUF file"), std::string::npos);
  }
  {
    auto m = bytes;
    m[4] = 1;  // version 1
    EXPECT_NE(gguf::File::parse(m.data(), m.size(), "m.gguf").message().find("version 1"), std::string::npos);
    m[4] = 0; m[7] = 3;  // big-endian 3
    EXPECT_NE(gguf::File::parse(m.data(), m.size(), "m.gguf").message().find("big-endian"), std::string::npos);
  }
  {
    auto m = bytes;
    for (int i = 8; i < 16; ++i) m[i] = 0xff;  // absurd tensor count
    auto f = gguf::File::parse(m.data(), m.size(), "m.gguf");
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.message().find("tensor count"), std::string::npos) << f.message();
  }
  {
    // Unknown tensor type: find the type field of x.weight (after its name, n_dims, 2 dims).
    auto f0 = gguf::File::parse(bytes.data(), bytes.size(), "m.gguf");
    const std::string needle = "x.weight";
    auto it = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
    ASSERT_NE(it, bytes.end());
    size_t type_pos = static_cast<size_t>(it - bytes.begin()) + needle.size() + 4 + 16;
    auto m = bytes;
    m[type_pos] = 99;
    auto f = gguf::File::parse(m.data(), m.size(), "m.gguf");
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.message().find("tensor x.weight: unknown tensor type 99"), std::string::npos) << f.message();
  }
}

}  // namespace
}  // namespace hylo
