// StreamDecoder: multi-byte characters split across tokens, invalid bytes, special tokens.
#include <gtest/gtest.h>

#include "tokenizer/fixture_tokenizer.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/utf8.h"

namespace hylo::tokenizer {
namespace {

using test::fixture_tokenizer;

int32_t byte_token(const Tokenizer& tok, uint8_t b) {
  auto id = tok.find_token(std::string(1, static_cast<char>(b)));
  EXPECT_TRUE(id.has_value());
  return id.value_or(0);
}

TEST(StreamDecoder, SplitCharactersAreHeldBack) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  const std::string text = "𠀀𠀁 rare 👨\u200d👩\u200d👧 emoji, 中文 and ﾀ<|im_end|>";
  const auto ids = tok->encode(text, true);
  StreamDecoder dec(*tok);
  std::string out;
  int held = 0;
  for (int32_t id : ids) {
    const std::string piece = dec.push(id);
    EXPECT_TRUE(utf8_is_valid(piece)) << "token " << id;
    if (piece.empty()) ++held;
    out += piece;
  }
  out += dec.flush();
  EXPECT_EQ(out, text);
  EXPECT_GT(held, 0);  // at least one character spans several tokens
}

TEST(StreamDecoder, ByteTokensOneAtATime) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  StreamDecoder dec(*tok);
  EXPECT_EQ(dec.push(byte_token(*tok, 0xF0)), "");
  EXPECT_EQ(dec.push(byte_token(*tok, 0x9F)), "");
  EXPECT_EQ(dec.push(byte_token(*tok, 0x98)), "");
  EXPECT_EQ(dec.pending_bytes(), 3u);
  EXPECT_EQ(dec.push(byte_token(*tok, 0x80)), "😀");
  EXPECT_EQ(dec.pending_bytes(), 0u);
}

TEST(StreamDecoder, InvalidBytesBecomeReplacementCharacters) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  StreamDecoder dec(*tok);
  EXPECT_EQ(dec.push(byte_token(*tok, 0xFF)), "\xEF\xBF\xBD");
  EXPECT_EQ(dec.push(byte_token(*tok, 0xE4)), "");
  EXPECT_EQ(dec.push(byte_token(*tok, 'a')),
            "\xEF\xBF\xBD"
            "a");
  EXPECT_EQ(dec.push(byte_token(*tok, 0xE4)), "");
  EXPECT_EQ(dec.push(byte_token(*tok, 0xB8)), "");
  EXPECT_EQ(dec.flush(), "\xEF\xBF\xBD");  // one replacement for the truncated sequence
  EXPECT_EQ(dec.flush(), "");
}

TEST(StreamDecoder, SpecialTokensShownOrHidden) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->encode("<think>\nhm\n</think>\n\nok<|im_end|>", true);
  for (bool show : {true, false}) {
    StreamDecoder dec(*tok, show);
    std::string out;
    for (int32_t id : ids) out += dec.push(id);
    out += dec.flush();
    EXPECT_EQ(out, show ? "<think>\nhm\n</think>\n\nok<|im_end|>" : "<think>\nhm\n</think>\n\nok");
  }
}

TEST(Utf8, IncompleteTailAndSanitize) {
  EXPECT_EQ(utf8_incomplete_tail("abc"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("a\xe4"), 1u);
  EXPECT_EQ(utf8_incomplete_tail("a\xe4\xb8"), 2u);
  EXPECT_EQ(utf8_incomplete_tail("a\xe4\xb8\xad"), 0u);
  EXPECT_EQ(utf8_incomplete_tail("\xf0\x9f\x98"), 3u);
  EXPECT_EQ(utf8_incomplete_tail("\xe0\x80"), 0u);  // overlong: can never complete
  EXPECT_EQ(utf8_incomplete_tail("\xed\xa0"), 0u);  // surrogate
  EXPECT_EQ(utf8_incomplete_tail("\x80\x80"), 0u);
  EXPECT_EQ(utf8_sanitize("a\xff"
                          "b\xe4\xb8"
                          "c"),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD"
            "c");
  EXPECT_EQ(utf8_length("a中😀"), 3u);
}

}  // namespace
}  // namespace hylo::tokenizer
