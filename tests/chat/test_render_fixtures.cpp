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

}  // namespace
}  // namespace hylo::chat
