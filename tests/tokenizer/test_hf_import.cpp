// HF tokenizer.json import: the GGUF arrays must equal those of the fixture model (which the
// independent generator built from the same directory), also after a write / read round trip.
#include <gtest/gtest.h>

#include "gguf/writer.h"
#include "tokenizer/fixture_tokenizer.h"
#include "tokenizer/hf_import.h"

namespace hylo::tokenizer {
namespace {

TEST(HfImport, MatchesFixtureModelVocabulary) {
  const std::string model_path = test::fixture_model("qwen3next-tiny");
  ASSERT_FALSE(model_path.empty());
  auto model = gguf::File::open(model_path);
  ASSERT_TRUE(model.ok()) << model.message();

  auto data = import_hf_tokenizer(test::fixtures_dir() + "/tokenizer/qwen3", 151936);
  ASSERT_TRUE(data.ok()) << data.message();

  gguf::Writer w;
  add_tokenizer_metadata(w, *data);
  const std::string out = test::work_dir() + "/hf_import_vocab.gguf";
  ASSERT_TRUE(w.write(out).ok());
  auto written = gguf::File::open(out);
  ASSERT_TRUE(written.ok()) << written.message();

  for (const char* key : {"tokenizer.ggml.tokens", "tokenizer.ggml.merges"}) {
    ASSERT_NE(written->get_array(key), nullptr) << key;
    ASSERT_NE(model->get_array(key), nullptr) << key;
    EXPECT_TRUE(written->get_array(key)->strings == model->get_array(key)->strings) << key;
  }
  EXPECT_EQ(written->get_array("tokenizer.ggml.token_type")->ints, model->get_array("tokenizer.ggml.token_type")->ints);
  for (const char* key : {"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.chat_template"})
    EXPECT_EQ(written->get_string(key), model->get_string(key)) << key;
  for (const char* key :
       {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id", "tokenizer.ggml.bos_token_id"})
    EXPECT_EQ(written->get_int(key), model->get_int(key)) << key;
  EXPECT_EQ(written->get_bool("tokenizer.ggml.add_bos_token"), model->get_bool("tokenizer.ggml.add_bos_token"));
  // Same value types as the generator wrote them.
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.token_type"})
    EXPECT_EQ(written->find(key)->type, model->find(key)->type) << key;

  auto tok = Tokenizer::from_gguf(*written);
  ASSERT_TRUE(tok.ok()) << tok.message();
  EXPECT_EQ(tok->encode("Hello world", true), (std::vector<int32_t>{9707, 1879}));
}

TEST(HfImport, Errors) {
  auto missing = import_hf_tokenizer(test::work_dir() + "/no-such-dir");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("tokenizer.json"), std::string::npos);
  auto too_small = import_hf_tokenizer(test::fixtures_dir() + "/tokenizer/qwen3", 1000);
  ASSERT_FALSE(too_small.ok());
  EXPECT_NE(too_small.message().find("does not fit"), std::string::npos);
}

}  // namespace
}  // namespace hylo::tokenizer
