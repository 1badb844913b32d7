// Model definitions and models directories (server/model_catalog.h): what a hand-written file
// may say, and errors that name the line and the key; `hylo models import` of an Ollama Modelfile.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/fixtures.h"
#include "server/model_catalog.h"

namespace hylo::test {
namespace {

namespace fs = std::filesystem;
using server::ModelDefinition;

Result<std::vector<ModelDefinition>> parse(const std::string& text) {
  return server::parse_model_definitions(text, "models.yaml", "/srv/models");
}

TEST(ModelCatalog, ReadsEveryKeyAndTheDefaults) {
  auto defs = parse(R"(
defaults:
  keep_alive: 10m
  parallel: 2
models:
  v-128k:
    file: coder.gguf
    context: 131072
    kv_type: q8_0
    temperature: 0.6
    top_p: 0.95
    top_k: 20
    min_p: 0
    repeat_penalty: 1.05
    chat_template: coder.jinja
    thinking: false
    spec: mtp
    draft: 3
    keep_alive: -1
  262k: /data/coder.gguf
)");
  ASSERT_TRUE(defs.ok()) << defs.message();
  ASSERT_EQ(defs->size(), 2u);
  const ModelDefinition& a = (*defs)[0];
  EXPECT_EQ(a.name, "v-128k");
  EXPECT_EQ(a.file, "/srv/models/coder.gguf");  // relative to the file's folder
  EXPECT_EQ(a.source, "models.yaml line 6");
  EXPECT_EQ(a.ctx, 131072);
  EXPECT_EQ(a.cache_type_k, "q8_0");
  EXPECT_EQ(a.cache_type_v, "q8_0");
  EXPECT_EQ(a.parallel, 2);  // from defaults
  EXPECT_FLOAT_EQ(*a.temperature, 0.6f);
  EXPECT_EQ(*a.top_k, 20);
  EXPECT_EQ(a.chat_template_file, "/srv/models/coder.jinja");
  EXPECT_EQ(*a.thinking, false);
  EXPECT_EQ(a.spec, "mtp");
  EXPECT_EQ(a.draft, 3);
  EXPECT_LT(*a.keep_alive, 0);
  const ModelDefinition& b = (*defs)[1];
  EXPECT_EQ(b.name, "262k");
  EXPECT_EQ(b.file, "/data/coder.gguf");
  EXPECT_EQ(b.ctx, 0);
  EXPECT_DOUBLE_EQ(*b.keep_alive, 600);
}

TEST(ModelCatalog, ErrorsNameTheLineAndTheKey) {
  struct Case {
    const char* text;
    const char* expected;
  };
  const Case cases[] = {
      {"models:\n  a:\n    file: a.gguf\n    contxt: 4096\n", "line 4, key models.a.contxt: unknown key"},
      {"models:\n  a:\n    file: a.gguf\n    context: lots\n", "line 4, key models.a.context: 'lots' is not an integer"},
      {"models:\n  a:\n    file: a.gguf\n    context: 100\n", "line 4, key models.a.context: 100 is outside [256"},
      {"models:\n  a:\n    context: 4096\n", "line 2, key models.a: file is required"},
      {"models:\n  a:\n    file: a.gguf\n    kv_type: q3\n", "line 4, key models.a.kv_type: 'q3' is not a KV cache type"},
      {"models:\n  a:\n    file: a.gguf\n    keep_alive: soon\n", "line 4, key models.a.keep_alive: keep_alive"},
      {"models:\n  a:\n    file: a.gguf\n    temperature: 300\n", "line 4, key models.a.temperature: 300 is outside"},
      {"models:\n  a:\n    file: a.gguf\n    spec: eagle\n", "line 4, key models.a.spec: 'eagle' is not none or mtp"},
      {"models:\n  bad name:\n    file: a.gguf\n", "line 2, key models.bad name: a name of letters"},
      {"models:\n  a: a.gguf\n  a: b.gguf\n", "line 3, key models.a: the name is defined twice"},
      {"model:\n  a: a.gguf\n", "line 1, key model: unknown key (known: defaults, models)"},
      {"models:\n  a: [1, 2\n", "models.yaml: line"},
      {"defaults:\n  file: a.gguf\n", "line 2, key defaults.file: each model names its own file"},
  };
  for (const Case& c : cases) {
    auto defs = parse(c.text);
    ASSERT_FALSE(defs.ok()) << c.text;
    EXPECT_NE(defs.message().find(c.expected), std::string::npos) << defs.message();
    EXPECT_EQ(defs.message().rfind("[models] models.yaml", 0), 0u) << defs.message();
  }
}

TEST(ModelCatalog, DirectoryScanNamesFilesByTheirStem) {
  const fs::path dir = scratch_path("catalog-dir");
  fs::create_directories(dir / "sub" / "deeper");
  std::ofstream(dir / "alpha.gguf") << "x";
  std::ofstream(dir / "sub" / "deeper" / "beta.gguf") << "x";
  std::ofstream(dir / "notes.txt") << "x";
  auto defs = server::scan_models_dir(dir.string());
  ASSERT_TRUE(defs.ok()) << defs.message();
  ASSERT_EQ(defs->size(), 2u);
  EXPECT_EQ((*defs)[0].name, "alpha");
  EXPECT_EQ((*defs)[1].name, "beta");
  EXPECT_NE((*defs)[1].file.find("deeper"), std::string::npos);
  EXPECT_EQ((*defs)[0].source, "--models-dir " + dir.string());

  std::ofstream(dir / "sub" / "alpha.gguf") << "x";  // a second "alpha"
  auto twice = server::scan_models_dir(dir.string());
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.message().find("two files are named alpha"), std::string::npos) << twice.message();
  EXPECT_FALSE(server::scan_models_dir((dir / "missing").string()).ok());

  // A definition may give a directory's file another name; a definition's name wins.
  ModelDefinition d;
  d.name = "alpha";
  d.file = "/elsewhere/alpha.gguf";
  auto merged = server::merge_catalog({d}, *defs);
  ASSERT_TRUE(merged.ok());
  ASSERT_EQ(merged->size(), 2u);
  EXPECT_EQ((*merged)[0].file, "/elsewhere/alpha.gguf");
  EXPECT_FALSE(server::merge_catalog({d, d}, {}).ok());
}

TEST(ModelCatalog, ImportsAnOllamaModelfile) {
  const fs::path dir = scratch_path("import");
  fs::create_directories(dir);
  std::ofstream(dir / "coder.gguf") << "x";
  std::ofstream(dir / "v-128k") << "FROM ./coder.gguf\nPARAMETER num_ctx 131072\nPARAMETER temperature 0.7\n"
                                   "PARAMETER stop <|im_end|>\nTEMPLATE \"\"\"{{ .Prompt }}\"\"\"\n";
  std::string out;
  ASSERT_EQ(run_command(hylo_binary() + " models import " + (dir / "v-128k").string() + " 2>&1", &out), 0) << out;
  EXPECT_NE(out.find("PARAMETER stop"), std::string::npos) << out;   // named as not carried over
  EXPECT_NE(out.find("Go template"), std::string::npos) << out;
  auto defs = server::parse_model_definitions(out, "imported", dir.string());
  ASSERT_TRUE(defs.ok()) << defs.message() << "\n" << out;
  ASSERT_EQ(defs->size(), 1u);
  EXPECT_EQ((*defs)[0].name, "v-128k");
  EXPECT_EQ((*defs)[0].ctx, 131072);
  EXPECT_FLOAT_EQ(*(*defs)[0].temperature, 0.7f);
  EXPECT_EQ(fs::path((*defs)[0].file).filename(), "coder.gguf");
  EXPECT_TRUE(fs::path((*defs)[0].file).is_absolute());

  std::ofstream(dir / "Bad") << "FROM ./coder.gguf\nPARAMETER num_ctx many\n";
  EXPECT_NE(run_command(hylo_binary() + " models import " + (dir / "Bad").string() + " 2>&1", &out), 0);
  EXPECT_NE(out.find("num_ctx"), std::string::npos) << out;
}

}  // namespace
}  // namespace hylo::test
