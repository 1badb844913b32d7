// Every case of fixtures/chat/cases.jsonl renders byte-identical to Python jinja2 (or raises the
// expected error), and the reference token ids equal our tokenization of the rendering.
#include <gtest/gtest.h>

#include "chat/chat_fixtures.h"
#include "tokenizer/fixture_tokenizer.h"

namespace hylo::chat {
namespace {

TEST(ChatFixtures, RenderByteIdentical) {
  const auto cases = test::read_jsonl(test::fixtures_dir() + "/chat/cases.jsonl");
  ASSERT_GE(cases.size(), 28u);
  const tokenizer::Tokenizer* tok = test::fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  int n_errors = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c["id"].get<std::string>());
    const std::string source = test::read_text_file(test::fixtures_dir() + "/" + c["template"].get<std::string>());
    ASSERT_FALSE(source.empty());
    auto out = render_chat(source, c["messages"], c["tools"], c["add_generation_prompt"].get<bool>(),
                           test::optional_bool(c["enable_thinking"]), test::qwen_special_tokens());
    if (!c["error"].is_null()) {
      ++n_errors;
      ASSERT_FALSE(out.ok()) << "expected error " << c["error"];
      EXPECT_NE(out.message().find(c["error"].get<std::string>()), std::string::npos) << out.message();
      continue;
    }
    ASSERT_TRUE(out.ok()) << out.message();
    EXPECT_EQ(*out, c["expected"].get<std::string>());
    EXPECT_EQ(tok->encode(*out, true), c["expected_ids"].get<std::vector<int32_t>>());
  }
  EXPECT_GE(n_errors, 1);
}

TEST(ChatTemplate, ChatmlFallback) {
  const auto messages = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image"}, {"type": "text", "text": "!"}]},
    {"role": "assistant", "content": null}])");
  auto out = render_chat(chatml_fallback_template(), messages, nullptr, true, std::nullopt, {});
  ASSERT_TRUE(out.ok()) << out.message();
  EXPECT_EQ(*out,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n"
            "<|im_start|>assistant\n<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, SpecialTokensAndInputChecks) {
  const tokenizer::Tokenizer* tok = test::fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  const SpecialTokens s = special_tokens_of(*tok);
  EXPECT_EQ(s.eos, "<|im_end|>");
  EXPECT_EQ(s.pad, "<|endoftext|>");
  EXPECT_EQ(s.bos, "");  // the Qwen vocabulary does not add a BOS, and HF passes none
  auto t = ChatTemplate::parse("{{ eos_token }}|{{ bos_token is defined }}|{{ enable_thinking is defined }}|{{ x }}");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->tool_call_format(), ToolCallFormat::kHermesJson);
  auto out = t->render(nlohmann::ordered_json::array(), nullptr, false, std::nullopt, s, {{"x", 7}});
  ASSERT_TRUE(out.ok()) << out.message();
  EXPECT_EQ(*out, "<|im_end|>|False|False|7");
  EXPECT_FALSE(t->render(nlohmann::ordered_json::object(), nullptr, false, std::nullopt, s).ok());
  EXPECT_FALSE(t->render(nlohmann::ordered_json::array(), "tools", false, std::nullopt, s).ok());
  EXPECT_FALSE(ChatTemplate::parse("{% if %}").ok());
}

}  // namespace
}  // namespace hylo::chat
