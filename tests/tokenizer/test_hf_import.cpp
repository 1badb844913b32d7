// HF tokenizer.json import: the GGUF arrays must equal those of the fixture model (which the
// independent generator built from the same directory), also after a write / read round trip.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "gguf/writer.h"
#include "tokenizer/byte_level.h"
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
  const std::string out = test::scratch_path("hf_import_vocab.gguf");
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

// A small synthetic tokenizer directory: byte tokens, one merge, two added tokens.
std::string write_small_tokenizer(const std::string& name, const std::string& model_patch,
                                  const std::string& regex = "") {
  const std::string dir = test::work_dir() + "/hf_" + name;
  std::filesystem::create_directories(dir);
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level_encode(std::string(1, static_cast<char>(b)))] = b;
  vocab["ab"] = 256;
  nlohmann::ordered_json tj = {
      {"added_tokens",
       {{{"id", 258}, {"content", "<|im_end|>"}, {"special", true}},
        {{"id", 259}, {"content", "<think>"}, {"special", false}}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern",
            {{"Regex",
              regex.empty()
                  ? R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"
                  : regex}}}}}}}},
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", nlohmann::ordered_json::array({nlohmann::ordered_json::array({"a", "b"})})}}}};
  if (!model_patch.empty()) tj["model"].merge_patch(nlohmann::ordered_json::parse(model_patch));
  std::ofstream(dir + "/tokenizer.json") << tj.dump();
  std::ofstream(dir + "/tokenizer_config.json") << R"({"eos_token": "<|im_end|>", "chat_template": "{{ x }}"})";
  return dir;
}

TEST(HfImport, SmallVocabulary) {
  auto d = import_hf_tokenizer(write_small_tokenizer("ok", ""), 264);
  ASSERT_TRUE(d.ok()) << d.message();
  ASSERT_EQ(d->tokens.size(), 264u);
  EXPECT_EQ(d->tokens[257], "[PAD257]");
  EXPECT_EQ(d->token_types[257], static_cast<int32_t>(TokenType::kUnused));
  EXPECT_EQ(d->token_types[258], static_cast<int32_t>(TokenType::kControl));
  EXPECT_EQ(d->token_types[259], static_cast<int32_t>(TokenType::kUserDefined));
  EXPECT_EQ(d->token_types[256], static_cast<int32_t>(TokenType::kNormal));
  EXPECT_EQ(d->merges, std::vector<std::string>{"a b"});
  EXPECT_EQ(d->eos_id, 258);
  EXPECT_EQ(d->pad_id, -1);  // no pad_token and no <|endoftext|>
  EXPECT_EQ(d->chat_template, "{{ x }}");
  EXPECT_EQ(d->pre, "qwen2");
  auto tok = Tokenizer::from_vocab(*d);
  ASSERT_TRUE(tok.ok()) << tok.message();
  EXPECT_EQ(tok->encode("ab<think>", true), (std::vector<int32_t>{256, 259}));
}

TEST(HfImport, Errors) {
  auto expect_error = [](const Result<HfTokenizerData>& r, const std::string& fragment) {
    ASSERT_FALSE(r.ok()) << "expected an error mentioning " << fragment;
    EXPECT_NE(r.message().find(fragment), std::string::npos) << r.message();
  };
  expect_error(import_hf_tokenizer(test::work_dir() + "/no-such-dir"), "tokenizer.json");
  expect_error(import_hf_tokenizer(write_small_tokenizer("small", ""), 100), "does not fit");
  expect_error(import_hf_tokenizer(write_small_tokenizer("wordpiece", R"({"type": "WordPiece"})")), "not BPE");
  expect_error(import_hf_tokenizer(write_small_tokenizer("badmerge", R"({"merges": [["a", "b", "c"]]})")),
               "malformed merge");
  expect_error(import_hf_tokenizer(write_small_tokenizer("regex", "", R"(\w+)")), "unsupported pre-tokenizer");
  const std::string dir = test::work_dir() + "/hf_badjson";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tokenizer.json") << "{not json";
  expect_error(import_hf_tokenizer(dir), "invalid JSON");
}

}  // namespace
}  // namespace hylo::tokenizer
