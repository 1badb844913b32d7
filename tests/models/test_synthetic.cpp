// hylo make-model: deterministic files with the real layout and tokenizer, readable by the GGUF
// reader with the metadata they were given; the two qwen3next layouts describe the same model.
#include <gtest/gtest.h>

#include <cmath>

#include "base/thread_pool.h"
#include "common/fixtures.h"
#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "models/model.h"
#include "models/synthetic.h"
#include "tokenizer/hf_import.h"

namespace hylo {
namespace {

std::string make(const models::SyntheticSpec& spec, const std::string& name) {
  ThreadPool pool(2);
  auto tok = tokenizer::import_hf_tokenizer(test::fixtures_dir() + "/tokenizer/qwen3", 151936);
  EXPECT_TRUE(tok.ok()) << tok.message();
  const std::string path = test::scratch_path(name);
  auto size = models::write_synthetic_model(spec, path, pool, [&](gguf::Writer& w) {
    tokenizer::add_tokenizer_metadata(w, *tok);
    return ok_status();
  });
  EXPECT_TRUE(size.ok()) << size.message();
  return path;
}

TEST(MakeModel, DeterministicWithTheRequestedMetadata) {
  models::SyntheticSpec spec;
  spec.arch = "qwen3next";
  spec.preset = "tiny";
  spec.type = "q8_0";
  spec.seed = 7;
  const std::string a = make(spec, "synth_a.gguf"), b = make(spec, "synth_b.gguf");
  EXPECT_EQ(test::read_text_file(a), test::read_text_file(b));
  auto f = gguf::File::open(a);
  ASSERT_TRUE(f.ok()) << f.message();
  EXPECT_EQ(f->get_string("general.architecture"), "qwen3next");
  EXPECT_EQ(f->get_int("qwen3next.block_count"), 4);
  EXPECT_EQ(f->get_int("qwen3next.embedding_length"), 128);
  EXPECT_EQ(f->get_int("qwen3next.ssm.time_step_rank"), 4);
  EXPECT_EQ(f->get_int("qwen3next.context_length"), 262144);
  EXPECT_EQ(f->get_bool("hylo.random_weights"), true);
  // The tokenizer is the fixture models' (the same Qwen3 files).
  auto fixture = gguf::File::open(test::fixture_model("qwen3next-tiny"));
  ASSERT_TRUE(fixture.ok());
  EXPECT_EQ(f->get_array("tokenizer.ggml.tokens")->strings, fixture->get_array("tokenizer.ggml.tokens")->strings);
  EXPECT_EQ(f->get_array("tokenizer.ggml.merges")->strings, fixture->get_array("tokenizer.ggml.merges")->strings);
  EXPECT_EQ(f->get_string("tokenizer.chat_template"), fixture->get_string("tokenizer.chat_template"));
  // Every tensor of the q8_0 fixture model exists with the same shape and type.
  auto fixture_q8 = gguf::File::open(test::fixture_model("qwen3next-tiny-q8"));
  ASSERT_TRUE(fixture_q8.ok());
  for (const auto& t : fixture_q8->tensors()) {
    const gguf::TensorInfo* mine = f->find_tensor(t.name);
    ASSERT_NE(mine, nullptr) << t.name;
    EXPECT_EQ(mine->ne, t.ne) << t.name;
    EXPECT_EQ(mine->type, t.type) << t.name;
  }
  // Values are finite and scaled: the embedding rows have std ≈ 2/√128.
  const gguf::TensorInfo* emb = f->find_tensor("token_embd.weight");
  std::vector<float> row(128);
  double sq = 0;
  for (int r = 0; r < 100; ++r) {
    kernels::dequantize_row(emb->type, f->tensor_data(*emb) + r * row_bytes(emb->type, 128), row.data(), 128);
    for (float x : row) {
      ASSERT_TRUE(std::isfinite(x));
      sq += x * x;
    }
  }
  EXPECT_NEAR(std::sqrt(sq / 12800), 2.0 / std::sqrt(128.0), 0.02);
}

TEST(MakeModel, LegacyAndSplitLayoutsGiveTheSameLogits) {
  models::SyntheticSpec spec;
  spec.arch = "qwen3next";
  spec.preset = "tiny";
  spec.type = "f32";
  spec.seed = 3;
  const std::string split = make(spec, "synth_split.gguf");
  spec.layout = "legacy";
  const std::string legacy = make(spec, "synth_legacy.gguf");
  auto f = gguf::File::open(legacy);
  ASSERT_TRUE(f.ok());
  EXPECT_NE(f->find_tensor("blk.0.ssm_in.weight"), nullptr);
  EXPECT_EQ(f->find_tensor("blk.0.attn_qkv.weight"), nullptr);
  ThreadPool pool(2);
  std::vector<std::vector<float>> out;
  for (const auto& path : {split, legacy}) {
    auto m = models::load_model(path);
    ASSERT_TRUE(m.ok()) << m.message();
    models::Memory mem((*m)->memory_layout(), {});
    std::vector<models::BatchRow> rows;
    for (int i = 0; i < 12; ++i) rows.push_back({0, i, 100 + 37 * i, true});
    std::vector<float> logits(12 * 151936);
    ASSERT_TRUE((*m)->forward(rows, mem, pool, logits.data()).ok());
    for (float x : logits) ASSERT_TRUE(std::isfinite(x));
    out.push_back(std::move(logits));
  }
  EXPECT_EQ(out[0], out[1]);
}

TEST(MakeModel, EveryArchitectureAndTypeRuns) {
  ThreadPool pool(2);
  for (const char* arch : {"qwen3next", "qwen3moe"})
    for (const char* type : {"f16", "bf16", "q4_k_m", "iq4_xs"}) {
      models::SyntheticSpec spec;
      spec.arch = arch;
      spec.preset = "tiny";
      spec.type = type;
      spec.mtp = std::string(arch) == "qwen3next";
      const std::string path = make(spec, std::string("synth_") + arch + "_" + type + ".gguf");
      auto m = models::load_model(path);
      ASSERT_TRUE(m.ok()) << arch << " " << type << ": " << m.message();
      models::Memory mem((*m)->memory_layout(), {});
      std::vector<models::BatchRow> rows = {{0, 0, 9707, false}, {0, 1, 1879, true}};
      std::vector<float> logits(151936);
      ASSERT_TRUE((*m)->forward(rows, mem, pool, logits.data()).ok());
      for (float x : logits) ASSERT_TRUE(std::isfinite(x)) << arch << " " << type;
    }
}

// The mixes keep the sensitive matrices in more bits, as llama.cpp's _M files do, and
// general.file_type names the llama.cpp file type.
TEST(MakeModel, WeightFormatsAndMixes) {
  auto type = [](const char* format, const char* name) { return *models::matrix_type(format, name, 2048); };
  EXPECT_EQ(type("q3_k_m", "blk.0.ffn_up_exps.weight"), TensorType::kQ3_K);
  EXPECT_EQ(type("q3_k_m", "blk.0.ffn_down_exps.weight"), TensorType::kQ4_K);
  EXPECT_EQ(type("q3_k_m", "blk.0.ssm_out.weight"), TensorType::kQ4_K);
  EXPECT_EQ(type("q3_k_m", "output.weight"), TensorType::kQ6_K);
  EXPECT_EQ(type("q4_k_m", "blk.0.ffn_down_exps.weight"), TensorType::kQ6_K);
  EXPECT_EQ(type("q2_k", "blk.0.ffn_down_exps.weight"), TensorType::kQ2_K);
  EXPECT_EQ(type("q2_k", "output.weight"), TensorType::kQ2_K);
  // Rows that do not fill a block: q8_0, or f16 where not even that.
  EXPECT_EQ(*models::matrix_type("q2_k", "blk.0.attn_q.weight", 96), TensorType::kQ8_0);
  EXPECT_EQ(*models::matrix_type("q2_k", "blk.0.attn_q.weight", 100), TensorType::kF16);
  EXPECT_EQ(models::llama_file_type("q2_k"), 10u);
  EXPECT_EQ(models::llama_file_type("q3_k_m"), 12u);
  EXPECT_EQ(models::llama_file_type("q4_k_m"), 15u);
  EXPECT_EQ(models::llama_file_type("q5_1"), 9u);
  EXPECT_EQ(models::llama_file_type("iq4_nl"), 25u);
  EXPECT_EQ(models::llama_file_type("iq4_xs"), 30u);
  EXPECT_EQ(type("iq4_xs", "output.weight"), TensorType::kIQ4_XS);
  // iq4_xs blocks are 256 wide: narrower rows fall back to q8_0.
  EXPECT_EQ(*models::matrix_type("iq4_xs", "blk.0.attn_q.weight", 96), TensorType::kQ8_0);
  const std::string names = models::weight_format_names();
  EXPECT_EQ(names.substr(0, 5), "f32, ");
  EXPECT_NE(names.find(", q3_k_m, "), std::string::npos);
  EXPECT_EQ(names.substr(names.size() - 10), " or q5_k_m");
}

TEST(MakeModel, BadSpecsAreRefusedByName) {
  models::SyntheticSpec spec;
  spec.arch = "llama";
  EXPECT_NE(models::validate(spec).message().find("--arch llama"), std::string::npos);
  spec = {};
  spec.preset = "huge";
  EXPECT_NE(models::validate(spec).message().find("--preset huge"), std::string::npos);
  spec = {};
  spec.type = "q7_k";
  EXPECT_NE(models::validate(spec).message().find("--type q7_k"), std::string::npos);
  spec = {};
  spec.arch = "qwen3moe";
  spec.layout = "legacy";
  EXPECT_FALSE(models::validate(spec).ok());
}

}  // namespace
}  // namespace hylo
