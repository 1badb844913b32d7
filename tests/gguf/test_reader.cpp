// The reader against files made by other tools: the quantization reference (ggml) and the
// fixture models (tools/mkgguf.py).
#include <gtest/gtest.h>

#include "base/npy.h"
#include "common/fixtures.h"
#include "gguf/gguf.h"

namespace hylo {
namespace {

TEST(GgufReader, QuantReferenceFile) {
  const std::string dir = test::fixtures_dir() + "/quant";
  auto file = gguf::File::open(dir + "/quant-reference.gguf");
  ASSERT_TRUE(file.ok()) << file.message();
  EXPECT_EQ(file->version(), 3u);
  EXPECT_EQ(file->alignment(), 32u);
  EXPECT_EQ(file->get_string("general.architecture"), "quant-reference");
  const auto dots = test::read_json_file(dir + "/dots.json");
  int checked = 0;
  for (const char* name : {"f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K", "q5_K",
                           "q6_K", "iq4_nl", "iq4_xs"}) {
    const gguf::TensorInfo* t = file->find_tensor(std::string("quant.") + name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(tensor_type_name(t->type), name);
    EXPECT_EQ(t->ne[0], 512);
    EXPECT_EQ(t->ne[1], 8);
    auto bytes = read_npy(dir + "/bytes/" + name + ".npy");
    ASSERT_TRUE(bytes.ok()) << bytes.message();
    ASSERT_EQ(bytes->bytes.size(), t->n_bytes) << name;
    EXPECT_EQ(0, std::memcmp(bytes->bytes.data(), file->tensor_data(*t), t->n_bytes)) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 14);
  const gguf::TensorInfo* src = file->find_tensor("source");
  ASSERT_NE(src, nullptr);
  EXPECT_EQ(src->type, TensorType::kF32);
  auto source = read_npy(dir + "/source.npy");
  ASSERT_TRUE(source.ok());
  EXPECT_EQ(0, std::memcmp(source->bytes.data(), file->tensor_data(*src), src->n_bytes));
}

class FixtureModels : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureModels, ReadsMetadataAndTensors) {
  const std::string path = test::fixture_model(GetParam());
  ASSERT_FALSE(path.empty());
  auto file = gguf::File::open(path);
  ASSERT_TRUE(file.ok()) << file.message();
  const auto arch = file->get_string("general.architecture");
  ASSERT_TRUE(arch.has_value());
  EXPECT_TRUE(*arch == "qwen3next" || *arch == "qwen3moe");
  EXPECT_EQ(file->get_int(*arch + ".embedding_length"), 128);
  EXPECT_EQ(file->get_int(*arch + ".context_length"), 262144);
  const gguf::Array* tokens = file->get_array("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->strings.size(), 151936u);
  EXPECT_EQ(tokens->strings[151644], "<|im_start|>");
  const gguf::Array* merges = file->get_array("tokenizer.ggml.merges");
  ASSERT_NE(merges, nullptr);
  EXPECT_GT(merges->strings.size(), 100000u);
  const gguf::TensorInfo* emb = file->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->ne[0], 128);
  EXPECT_EQ(emb->ne[1], 151936);
  // Tensors tile the data section without overlap.
  uint64_t total = 0;
  for (const auto& t : file->tensors()) total += t.n_bytes;
  EXPECT_LE(total + file->data_offset(), file->file_size());
}

INSTANTIATE_TEST_SUITE_P(All, FixtureModels,
                         ::testing::Values("qwen3next-tiny", "qwen3next-tiny-legacy", "qwen3moe-tiny",
                                           "qwen3next-tiny-q8", "qwen3moe-tiny-q8", "qwen3next-tiny-mtp"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) c = (c == '-') ? '_' : c;
                           return s;
                         });

}  // namespace
}  // namespace hylo
