// Ollama Modelfile parsing, number parsing, and a Modelfile driving the whole input gathering.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/fixtures.h"
#include "doctor/config.h"
#include "doctor/doctor.h"

namespace hylo::doctor {
namespace {

TEST(Modelfile, ParsesInstructionsParametersAndMultilineBlocks) {
  const char* text = R"(# a coding model with a 128k window
FROM qwen3-coder:30b
parameter num_ctx 65536
PARAMETER temperature 0.7
PARAMETER stop "<|im_end|>"
PARAMETER stop "<|endoftext|>"
TEMPLATE """{{ if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}"""
SYSTEM You are a careful engineer.
MESSAGE user """what is
FROM here?"""
PARAMETER num_ctx 131072
PARAMETER num_predict -1
)";
  auto mf = parse_modelfile(text, "Modelfile");
  ASSERT_TRUE(mf.ok()) << mf.message();
  EXPECT_EQ(mf->from, "qwen3-coder:30b");
  EXPECT_EQ(mf->from_line, 2);
  ASSERT_NE(mf->find("num_ctx"), nullptr);
  EXPECT_EQ(mf->find("num_ctx")->value, "131072");  // the last one wins
  EXPECT_EQ(mf->find("num_ctx")->line, 13);
  EXPECT_EQ(mf->find("stop")->value, "<|endoftext|>");
  Config c;
  ASSERT_TRUE(apply_modelfile(*mf, &c).ok());
  EXPECT_EQ(c.ctx, 131072);
  EXPECT_EQ(c.ctx_origin, Origin::kModelfile);
  EXPECT_EQ(c.ctx_source, "Modelfile line 13");
  EXPECT_FALSE(c.num_predict.has_value());  // -1: unlimited
}

TEST(Modelfile, BatchAndPredict) {
  auto mf = parse_modelfile("FROM x\nPARAMETER num_batch 1024\nPARAMETER num_predict 4,096\n", "m");
  ASSERT_TRUE(mf.ok()) << mf.message();
  Config c;
  ASSERT_TRUE(apply_modelfile(*mf, &c).ok());
  EXPECT_EQ(c.batch, 1024);
  EXPECT_EQ(c.ubatch, 1024);
  EXPECT_EQ(c.num_predict, 4096);
  EXPECT_EQ(c.ctx, 0);  // untouched: the model's trained context
}

TEST(Modelfile, BadLinesNameTheLine) {
  struct Case {
    const char* text;
    const char* expect;
  };
  for (const Case& c :
       {Case{"FROM x\nPARAMETER num_ctx lots\n", "line 2"}, Case{"FROM x\nRUN make\n", "unknown instruction 'RUN'"},
        Case{"FROM x\nPARAMETER num_ctx\n", "needs a name and a value"},
        Case{"FROM x\nPARAMETER context 5\n", "unknown parameter 'context'"},
        Case{"FROM x\nTEMPLATE \"\"\"open\n", "never closed"}, Case{"FROM\n", "FROM needs"},
        Case{"FROM x\nPARAMETER num_ctx 99999999999\n", "outside"},
        Case{"FROM x\nPARAMETER num_ctx -5\n", "not a whole number"}}) {
    auto mf = parse_modelfile(c.text, "mf");
    Config cfg;
    Status st = mf.ok() ? apply_modelfile(*mf, &cfg) : Status(mf.error());
    ASSERT_FALSE(st.ok()) << c.text;
    EXPECT_NE(st.message().find(c.expect), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("mf"), std::string::npos) << st.message();
  }
  EXPECT_FALSE(parse_modelfile(std::string("FROM x\n\0\n", 9), "bin").ok());
  EXPECT_FALSE(read_modelfile("/nonexistent/Modelfile").ok());
}

TEST(ParseNumbers, CountsAndRates) {
  EXPECT_EQ(*parse_count("262144", "n", 1, kMaxCtx), 262144);
  EXPECT_EQ(*parse_count("262,144", "n", 1, kMaxCtx), 262144);
  EXPECT_EQ(*parse_count("256k", "n", 1, kMaxCtx), 262144);
  EXPECT_EQ(*parse_count("1M", "n", 1, kMaxCtx), 1048576);
  EXPECT_FALSE(parse_count("", "n", 1, 10).ok());
  EXPECT_FALSE(parse_count("12x", "n", 1, 100).ok());
  EXPECT_FALSE(parse_count("0", "n", 1, 100).ok());
  EXPECT_FALSE(parse_count("1e9", "n", 1, kMaxCtx).ok());
  EXPECT_FALSE(parse_count("123456789012345678901", "n", 1, kMaxCtx).ok());
  EXPECT_DOUBLE_EQ(*parse_positive("400", "tps", 1e9), 400.0);
  EXPECT_DOUBLE_EQ(*parse_positive("2.5", "s", 1e9), 2.5);
  EXPECT_FALSE(parse_positive("nan", "s", 1e9).ok());
  EXPECT_FALSE(parse_positive("inf", "s", 1e9).ok());
  EXPECT_FALSE(parse_positive("-1", "s", 1e9).ok());
  EXPECT_FALSE(parse_positive("3 s", "s", 1e9).ok());
  EXPECT_EQ(*parse_kv_type("Q8_0"), TensorType::kQ8_0);
  EXPECT_EQ(*parse_kv_type("f16"), TensorType::kF16);
  EXPECT_FALSE(parse_kv_type("q4_K").ok());
}

TEST(Modelfile, DrivesTheInputsFromItsFromLine) {
  const std::string dir = test::work_dir() + "/doctor-modelfile";
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/v-128k") << "FROM qwen3-coder:30b-a3b-q8_0\nPARAMETER num_ctx 131072\n"; }
  Options o;
  o.modelfile = dir + "/v-128k";
  o.hardware = "mac-studio-m2-ultra-192";
  auto in = gather_inputs(o);
  ASSERT_TRUE(in.ok()) << in.message();
  EXPECT_EQ(in->model.name, "Qwen3-Coder-30B-A3B");
  EXPECT_EQ(in->model.quant, "Q8_0");  // read from the tag
  EXPECT_EQ(in->config.ctx, 131072);
  ASSERT_EQ(in->config.sources.size(), 1u);
  EXPECT_NE(in->config.sources[0].find("PARAMETER num_ctx 131072"), std::string::npos);

  // Flags win over the Modelfile.
  o.ctx = 32768;
  auto flagged = gather_inputs(o);
  ASSERT_TRUE(flagged.ok());
  EXPECT_EQ(flagged->config.ctx, 32768);
  EXPECT_EQ(flagged->config.ctx_origin, Origin::kFlag);

  // A FROM pointing at a GGUF file next to the Modelfile reads that file.
  const std::string tiny = test::fixture_model("qwen3moe-tiny");
  ASSERT_FALSE(tiny.empty());
  { std::ofstream(dir + "/local") << "FROM " << tiny << "\n"; }
  Options local;
  local.modelfile = dir + "/local";
  local.hardware = "h100";
  auto l = gather_inputs(local);
  ASSERT_TRUE(l.ok()) << l.message();
  EXPECT_EQ(l->model.arch, "qwen3moe");
  EXPECT_EQ(l->model_source, "file " + tiny);

  { std::ofstream(dir + "/unknown") << "FROM llama3.1:8b\n"; }
  Options unknown;
  unknown.modelfile = dir + "/unknown";
  unknown.hardware = "h100";
  auto u = gather_inputs(unknown);
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.message().find("llama3.1:8b"), std::string::npos) << u.message();
  EXPECT_NE(u.message().find("line 1"), std::string::npos) << u.message();
}

}  // namespace
}  // namespace hylo::doctor
