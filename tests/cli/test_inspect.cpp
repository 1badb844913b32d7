// hylo inspect end to end: human and JSON output on fixture models, clean errors on bad files.
#include <gtest/gtest.h>

#include <fstream>

#include "common/fixtures.h"

namespace hylo {
namespace {

TEST(Inspect, DescribesAFixtureModel) {
  const std::string path = test::fixture_model("qwen3next-tiny");
  std::string out;
  ASSERT_EQ(test::run_command(test::hylo_binary() + " inspect " + path, &out), 0) << out;
  EXPECT_NE(out.find("architecture  qwen3next"), std::string::npos) << out;
  EXPECT_NE(out.find("262,144 tokens"), std::string::npos);
  EXPECT_NE(out.find("ssm.time_step_rank"), std::string::npos);
  EXPECT_NE(out.find("blk.3.attn_q.weight"), std::string::npos);
  EXPECT_NE(out.find("151,936 tokens"), std::string::npos);
  EXPECT_NE(out.find("recurrent state"), std::string::npos);
}

TEST(Inspect, JsonHasTensorsTotalsAndMemory) {
  const std::string path = test::fixture_model("qwen3moe-tiny-q8");
  std::string out;
  ASSERT_EQ(test::run_command(test::hylo_binary() + " -q inspect --json " + path, &out), 0) << out;
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["architecture"], "qwen3moe");
  EXPECT_EQ(j["context_length"], 262144);
  EXPECT_EQ(j["hyperparameters"]["expert_count"], "16");
  EXPECT_TRUE(j["runnable"].get<bool>());
  EXPECT_EQ(j["tokenizer"]["n_tokens"], 151936);
  uint64_t sum = 0;
  for (const auto& t : j["tensors"]) sum += t["bytes"].get<uint64_t>();
  EXPECT_EQ(sum, j["memory"]["weights_bytes"].get<uint64_t>());
  EXPECT_GT(j["totals_by_type"]["q8_0"]["bytes"].get<uint64_t>(), 0u);
  // qwen3moe-tiny: 4 layers x 2 (K, V) x 2 heads x 64 dims x 2 bytes.
  EXPECT_EQ(j["memory"]["kv_bytes_per_token_f16"], 4 * 2 * 2 * 64 * 2);
}

TEST(Inspect, ReadsEveryQuantTypeOfTheReferenceFile) {
  std::string out;
  ASSERT_EQ(test::run_command(test::hylo_binary() + " inspect --json " + test::fixtures_dir() +
                                  "/quant/quant-reference.gguf 2>/dev/null",
                              &out),
            0);
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["tensors"].size(), 16u);
  EXPECT_FALSE(j["runnable"].get<bool>());
}

TEST(Inspect, BadFilesGiveCleanErrors) {
  const std::string src = test::fixture_model("qwen3moe-tiny-q8");
  const std::string bytes = test::read_text_file(src);
  const std::string cut = test::work_dir() + "/truncated.gguf";
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  std::string out;
  EXPECT_EQ(test::run_command(test::hylo_binary() + " inspect " + cut, &out), 1);
  EXPECT_NE(out.find("[gguf] truncated.gguf: tensor"), std::string::npos) << out;
  EXPECT_NE(out.find("beyond end of file"), std::string::npos) << out;
  EXPECT_EQ(test::run_command(test::hylo_binary() + " inspect " + test::work_dir() + "/does-not-exist.gguf", &out), 1);
  EXPECT_NE(out.find("cannot open"), std::string::npos) << out;
  const std::string junk = test::work_dir() + "/junk.gguf";
  std::ofstream(junk) << "this is not a model";
  EXPECT_EQ(test::run_command(test::hylo_binary() + " inspect " + junk, &out), 1);
  EXPECT_NE(out.find("not a GGUF file"), std::string::npos) << out;
}

}  // namespace
}  // namespace hylo
