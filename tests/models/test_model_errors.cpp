// Bad models and bad batches give clear errors, never a crash.
#include <gtest/gtest.h>

#include "common/fixtures.h"
#include "gguf/writer.h"
#include "models/model.h"

namespace hylo {
namespace {

TEST(ModelErrors, BadBatchesAreRejectedBeforeAnythingChanges) {
  auto model = models::load_model(test::fixture_model("qwen3next-tiny"));
  ASSERT_TRUE(model.ok());
  models::MemoryOptions mo;
  mo.n_seq = 2;
  mo.n_ctx = 8;
  models::Memory mem((*model)->memory_layout(), mo);
  ThreadPool pool(1);
  std::vector<float> logits(16 * 151936);
  auto expect_error = [&](std::vector<models::BatchRow> rows, const std::string& needle) {
    auto st = (*model)->forward(rows, mem, pool, logits.data());
    ASSERT_FALSE(st.ok()) << needle;
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
  };
  expect_error({}, "empty batch");
  expect_error({{0, 0, 151936, true}}, "outside the vocabulary");
  expect_error({{0, 0, -1, true}}, "outside the vocabulary");
  expect_error({{2, 0, 5, true}}, "sequence 2 outside");
  expect_error({{0, 1, 5, true}}, "continues at position 0");
  expect_error({{0, 0, 5, true}, {0, 2, 5, true}}, "does not follow");
  expect_error({{0, 0, 5, true}, {1, 0, 5, true}, {0, 1, 5, true}}, "two separate runs");
  std::vector<models::BatchRow> too_long;
  for (int i = 0; i < 9; ++i) too_long.push_back({0, i, 5, false});
  expect_error(too_long, "beyond the context size 8");
  EXPECT_EQ(mem.seq_len(0), 0);
  EXPECT_EQ(mem.seq_len(1), 0);
}

TEST(ModelErrors, MissingTensorAndWrongShapeAreNamed) {
  gguf::Writer w;
  w.set_string("general.architecture", "qwen3moe");
  w.set_u32("qwen3moe.embedding_length", 64);
  w.set_u32("qwen3moe.block_count", 1);
  w.set_u32("qwen3moe.context_length", 128);
  w.set_u32("qwen3moe.attention.head_count", 2);
  w.set_u32("qwen3moe.attention.head_count_kv", 1);
  w.set_u32("qwen3moe.attention.key_length", 32);
  w.set_f32("qwen3moe.attention.layer_norm_rms_epsilon", 1e-6f);
  w.set_u32("qwen3moe.expert_count", 4);
  w.set_u32("qwen3moe.expert_used_count", 2);
  w.set_u32("qwen3moe.expert_feed_forward_length", 32);
  w.add_tensor_bytes("token_embd.weight", TensorType::kF32, {64, 10}, std::vector<uint8_t>(64 * 10 * 4));
  w.add_tensor_bytes("output_norm.weight", TensorType::kF32, {32}, std::vector<uint8_t>(32 * 4));
  const std::string path = test::scratch_path("bad_shape.gguf");
  ASSERT_TRUE(w.write(path).ok());
  auto m = models::load_model(path);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("tensor output_norm.weight: shape [32] expected [64]"), std::string::npos) << m.message();

  gguf::Writer w2;
  w2.set_string("general.architecture", "llama");
  const std::string path2 = test::scratch_path("other_arch.gguf");
  ASSERT_TRUE(w2.write(path2).ok());
  auto m2 = models::load_model(path2);
  ASSERT_FALSE(m2.ok());
  EXPECT_NE(m2.message().find("architecture 'llama' is not supported"), std::string::npos) << m2.message();
}

}  // namespace
}  // namespace hylo
