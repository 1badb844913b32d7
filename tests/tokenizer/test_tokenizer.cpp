// Tokenizer against the reference ids (fixtures/tokenizer/cases.jsonl), plus special-token
// handling, invalid input, adversarial lengths and malformed vocabularies.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <random>
#include <thread>

#include "gguf/writer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/fixture_tokenizer.h"
#include "tokenizer/pretokenizer.h"

namespace hylo::tokenizer {
namespace {

using test::fixture_tokenizer;

std::vector<int32_t> ids_of(const nlohmann::ordered_json& j) { return j.get<std::vector<int32_t>>(); }

TEST(Tokenizer, FixtureCasesMatchReferenceIds) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  const auto cases = test::read_jsonl(test::fixtures_dir() + "/tokenizer/cases.jsonl");
  ASSERT_GE(cases.size(), 173u);
  for (const auto& c : cases) {
    const std::string text = c["text"];
    const std::vector<int32_t> ids = tok->encode(text, /*parse_special=*/true);
    EXPECT_EQ(ids, ids_of(c["expected_ids"])) << c["id"] << " (" << c["category"] << "): " << c["text"].dump();
    EXPECT_EQ(tok->decode(ids), c["lenml_decoded"].get<std::string>()) << c["id"];
  }
}

// The logits fixtures list the ids their texts were fed as.
TEST(Tokenizer, LogitsFixtureTexts) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(test::fixtures_dir() + "/logits/qwen3next-tiny")) {
    if (entry.path().extension() != ".json") continue;
    const nlohmann::json c = test::read_json_file(entry.path().string());
    EXPECT_EQ(tok->encode(c["text"].get<std::string>(), true), c["token_ids"].get<std::vector<int32_t>>())
        << entry.path().filename();
    ++n;
  }
  EXPECT_GE(n, 4);
}

TEST(Tokenizer, Metadata) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->n_vocab(), 151936);
  EXPECT_EQ(tok->eos_id(), 151645);
  EXPECT_EQ(tok->pad_id(), 151643);
  EXPECT_EQ(tok->bos_id(), 151643);
  EXPECT_FALSE(tok->add_bos());
  EXPECT_EQ(tok->pre_tokenizer(), PreTokenizerKind::kQwen2);
  EXPECT_EQ(tok->chat_template(), test::read_text_file(test::fixtures_dir() + "/chat/templates/Qwen-Qwen3-0.6B.jinja"));
  EXPECT_EQ(tok->token_type(151644), TokenType::kControl);
  EXPECT_EQ(tok->token_type(151667), TokenType::kUserDefined);
  EXPECT_EQ(tok->token_type(151700), TokenType::kUnused);
  EXPECT_EQ(tok->token_text(220), "Ġ");
  EXPECT_EQ(tok->token_to_piece(220), " ");
  EXPECT_EQ(tok->token_to_piece(151667), "<think>");
  EXPECT_EQ(tok->token_to_piece(151700), "");
  EXPECT_EQ(tok->token_to_piece(-1), "");
  EXPECT_EQ(tok->token_to_piece(1 << 30), "");
}

TEST(Tokenizer, FindToken) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->find_token("<think>"), 151667);
  EXPECT_EQ(tok->find_token("<|im_end|>"), 151645);
  EXPECT_EQ(tok->find_token(" world"), 1879);
  EXPECT_EQ(tok->find_token("Ġworld"), std::nullopt);  // vocabulary form is not the text
  EXPECT_EQ(tok->find_token(""), std::nullopt);
}

TEST(Tokenizer, EndOfGeneration) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  for (const char* name : {"<|im_end|>", "<|endoftext|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"}) {
    auto id = tok->find_token(name);
    ASSERT_TRUE(id.has_value()) << name;
    EXPECT_TRUE(tok->is_eog(*id)) << name;
  }
  EXPECT_FALSE(tok->is_eog(151644));  // <|im_start|>
  EXPECT_FALSE(tok->is_eog(128247));  // plain "</s>" entry: not EOG in HF
  EXPECT_FALSE(tok->is_eog(151668));  // </think>
  EXPECT_FALSE(tok->is_eog(-5));
  EXPECT_EQ(tok->eog_ids().size(), 5u);
}

TEST(Tokenizer, SpecialParsingOff) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  // CONTROL tokens become plain text: "<|im_start" + "|>" split exactly like the partial case f150.
  const auto plain = tok->encode("<|im_start|>", false);
  auto expected = tok->encode("<|im_start", true);
  const auto tail = tok->encode("|>", true);
  expected.insert(expected.end(), tail.begin(), tail.end());
  EXPECT_EQ(plain, expected);
  EXPECT_EQ(tok->encode("<|im_start|>", true), std::vector<int32_t>{151644});
  for (const char* text : {"<|im_start|>user\nHi<|im_end|>\n", "x<|endoftext|>y", "<|fim_prefix|>a<|fim_suffix|>"}) {
    const auto ids = tok->encode(text, false);
    for (int32_t id : ids) EXPECT_FALSE(tok->is_control(id)) << text;
    EXPECT_EQ(tok->decode(ids), text);
  }
  // USER_DEFINED tokens (<think>, <tool_call>, ...) are matched either way, as in llama.cpp.
  EXPECT_EQ(tok->encode("<think>hi</think>", false), tok->encode("<think>hi</think>", true));
  EXPECT_EQ(tok->encode("<tool_call>", false), std::vector<int32_t>{151657});
}

TEST(Tokenizer, DecodeHidesControlTokensOnRequest) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->encode("<|im_start|>assistant\n<think>\nok\n</think>\n\nHi<|im_end|>", true);
  EXPECT_EQ(tok->decode(ids, false), "assistant\n<think>\nok\n</think>\n\nHi");
  EXPECT_EQ(tok->decode(ids, true), "<|im_start|>assistant\n<think>\nok\n</think>\n\nHi<|im_end|>");
  const std::vector<int32_t> odd = {-1, 151700, 9707, 1 << 30};
  EXPECT_EQ(tok->decode(odd), "Hello");
}

TEST(Tokenizer, InvalidUtf8RoundTrips) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  const std::string texts[] = {std::string("\xff\xfe abc"), std::string("caf\xc3"),
                               std::string("a\x80\x80z"),   std::string("\xed\xa0\x80 surrogate"),
                               std::string("x\0y", 3),      std::string("\xe4\xb8\xad\xe4\xb8")};
  for (const std::string& t : texts) EXPECT_EQ(tok->decode(tok->encode(t, true)), t);
}

TEST(Tokenizer, RandomBytesRoundTrip) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  std::mt19937 rng(7);
  const std::string alphabet[] = {
      "a", "Z", " ",          "\n",      "\t",       "'s",           "é",    "e\xcc\x81", "中", "😀", "\xf0\x9f",
      "1", "!", "<|im_end|>", "<think>", "\xc2\x85", "\xef\xbb\xbf", "\r\n", "\xa0"};
  for (int round = 0; round < 200; ++round) {
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      if (rng() % 5 == 0) {
        text += static_cast<char>(rng() & 0xFF);
      } else {
        text += alphabet[rng() % std::size(alphabet)];
      }
    }
    // NFC may change valid text, so compare against its normalised form piecewise: here we
    // only check that nothing is lost or invented when the text is already NFC.
    const auto ids = tok->encode(text, true);
    if (!may_need_nfc(text)) {
      EXPECT_EQ(tok->decode(ids), text);
    }
    for (int32_t id : ids) EXPECT_TRUE(id >= 0 && id < tok->n_vocab());
  }
}

TEST(Tokenizer, LongAdversarialInputs) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  const std::string inputs[] = {std::string(1 << 20, 'a'),
                                std::string(200000, ' '),
                                std::string(100000, '!') + "\n",
                                std::string(50000, '\n') + "x",
                                std::string(60000, '1'),
                                std::string(30000, '\t') + " \n a",
                                [] {
                                  std::string s;
                                  for (int i = 0; i < 40000; ++i) s += "\xc2\x85 ";
                                  return s;
                                }(),
                                [] {
                                  std::string s;
                                  for (int i = 0; i < 20000; ++i) s += "<|im_end";
                                  return s;
                                }()};
  for (const std::string& in : inputs) {
    const auto ids = tok->encode(in, true);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(tok->decode(ids), in) << "input of " << in.size() << " bytes starting " << in.substr(0, 8);
  }
}

TEST(Tokenizer, ConcurrentEncodeIsConsistent) {
  const Tokenizer* tok = fixture_tokenizer();
  ASSERT_NE(tok, nullptr);
  const std::string text = "The quick brown fox jumps over the lazy dog. Der Bäcker öffnet um sechs Uhr! 你好，世界 ";
  std::string big;
  for (int i = 0; i < 50; ++i) big += text + std::to_string(i);
  const auto expected = tok->encode(big, true);
  std::vector<std::thread> threads;
  std::vector<bool> ok(4, false);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      bool all = true;
      for (int i = 0; i < 20; ++i) all = all && tok->encode(big, true) == expected;
      ok[t] = all;
    });
  for (auto& th : threads) th.join();
  for (bool b : ok) EXPECT_TRUE(b);
}

TEST(PreTokenizer, OnigurumaWhitespaceAndQwen35Marks) {
  auto split = [](PreTokenizerKind kind, std::string_view text) {
    auto p = PreTokenizer::create(kind);
    EXPECT_TRUE(p.ok());
    std::vector<std::string_view> pieces;
    p->split(text, &pieces);
    return std::vector<std::string>(pieces.begin(), pieces.end());
  };
  using V = std::vector<std::string>;
  // U+FEFF is not whitespace, U+0085 is.
  EXPECT_EQ(split(PreTokenizerKind::kQwen2, "Hello \xef\xbb\xbfworld"), (V{"Hello", " \xef\xbb\xbf", "world"}));
  EXPECT_EQ(split(PreTokenizerKind::kQwen2,
                  " \xc2\x85"
                  "a"),
            (V{" ",
               "\xc2\x85"
               "a"}));
  EXPECT_EQ(split(PreTokenizerKind::kQwen2, "don't  stop\n\n 42"),
            (V{"don", "'t", " ", " stop", "\n\n", " ", "4", "2"}));
  // Combining marks: qwen2 breaks the word at U+0308 (which then leads the next letter run),
  // qwen35 keeps it whole.
  EXPECT_EQ(split(PreTokenizerKind::kQwen2, "nai\xcc\x88ve"), (V{"nai", "\xcc\x88ve"}));
  EXPECT_EQ(split(PreTokenizerKind::kQwen35, "nai\xcc\x88ve"), (V{"nai\xcc\x88ve"}));
  EXPECT_FALSE(pre_tokenizer_kind("llama3").ok());
  EXPECT_NE(pre_tokenizer_kind("llama3").message().find("llama3"), std::string::npos);
}

TEST(Nfc, ComposesOnlyWhenNeeded) {
  EXPECT_EQ(nfc_normalize("cafe\xcc\x81"), "caf\xc3\xa9");
  EXPECT_EQ(nfc_normalize("\xe2\x84\xab"), "\xc3\x85");  // ANGSTROM SIGN
  EXPECT_EQ(nfc_normalize("plain ascii"), "plain ascii");
  EXPECT_FALSE(may_need_nfc("Grüße"));
  EXPECT_TRUE(may_need_nfc("e\xcc\x81"));
}

// A small byte-level vocabulary: the 256 byte tokens plus whatever `extra` adds.
Vocab small_vocab(const std::vector<std::string>& extra, const std::vector<std::string>& merges) {
  Vocab v;
  for (int b = 0; b < 256; ++b) v.tokens.push_back(byte_level_encode(std::string(1, static_cast<char>(b))));
  for (const auto& e : extra) v.tokens.push_back(e);
  v.token_types.assign(v.tokens.size(), 1);
  v.merges = merges;
  return v;
}

TEST(Tokenizer, MergeOrderLeftmostOnTies) {
  auto tok = Tokenizer::from_vocab(small_vocab({"aa", "aaaa"}, {"a a", "aa aa"}));
  ASSERT_TRUE(tok.ok()) << tok.message();
  const int32_t a = 'a', aa = 256, aaaa = 257;
  EXPECT_EQ(tok->encode("aaa", false), (std::vector<int32_t>{aa, a}));
  EXPECT_EQ(tok->encode("aaaaa", false), (std::vector<int32_t>{aaaa, a}));
  // Long words take the priority-queue path; it must agree with the short-word scan.
  std::vector<int32_t> expected(25, aaaa);
  expected.push_back(a);
  EXPECT_EQ(tok->encode(std::string(101, 'a'), false), expected);
}

TEST(Tokenizer, MalformedVocabularies) {
  auto expect_error = [](Vocab v, const std::string& fragment) {
    auto t = Tokenizer::from_vocab(std::move(v));
    ASSERT_FALSE(t.ok()) << "expected an error mentioning " << fragment;
    EXPECT_NE(t.message().find(fragment), std::string::npos) << t.message();
  };
  Vocab v = small_vocab({"ab"}, {"a b"});
  v.token_types.pop_back();
  expect_error(v, "token_type has 256 entries");
  expect_error(small_vocab({}, {"a q"}), "merged token 'aq'");
  expect_error(small_vocab({}, {"a xyz"}), "unknown token 'xyz'");
  expect_error(small_vocab({}, {"abc"}), "not of the form");
  v = small_vocab({}, {});
  v.model = "llama";
  expect_error(v, "tokenizer.ggml.model 'llama'");
  v = small_vocab({}, {});
  v.pre = "gpt4o";
  expect_error(v, "gpt4o");
  v = small_vocab({}, {});
  v.eos_id = 300;
  expect_error(v, "eos_token_id = 300");
  v = small_vocab({}, {});
  v.token_types[5] = 42;
  expect_error(v, "unknown token type 42");
  v = small_vocab({}, {});
  v.tokens[65] = "not-a-byte";
  expect_error(v, "byte 0x41");
  expect_error(Vocab{}, "tokens is missing or empty");
}

TEST(Tokenizer, MalformedGgufMetadata) {
  const Vocab v = small_vocab({"ab"}, {"a b"});
  auto write = [&](const std::string& name, const std::function<void(gguf::Writer&)>& edit) {
    gguf::Writer w;
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", "qwen2");
    w.set_strings("tokenizer.ggml.tokens", v.tokens);
    w.set_i32s("tokenizer.ggml.token_type", v.token_types);
    w.set_strings("tokenizer.ggml.merges", v.merges);
    w.set_u32("tokenizer.ggml.eos_token_id", 256);
    edit(w);
    const std::string path = test::scratch_path("tok_" + name + ".gguf");
    EXPECT_TRUE(w.write(path).ok());
    return Tokenizer::from_gguf_file(path);
  };
  auto ok = write("ok", [](gguf::Writer&) {});
  ASSERT_TRUE(ok.ok()) << ok.message();
  EXPECT_EQ(ok->encode("ab", true), std::vector<int32_t>{256});
  EXPECT_EQ(ok->eos_id(), 256);
  EXPECT_EQ(ok->chat_template(), "");
  const std::pair<const char*, std::function<void(gguf::Writer&)>> broken[] = {
      {"tokenizer.ggml.merges", [](gguf::Writer& w) { w.set_i32s("tokenizer.ggml.merges", {1}); }},
      {"tokenizer.ggml.token_type", [](gguf::Writer& w) { w.set_strings("tokenizer.ggml.token_type", {"x"}); }},
      {"tokenizer.ggml.pre", [](gguf::Writer& w) { w.set_u32("tokenizer.ggml.pre", 1); }},
      {"eos_token_id", [](gguf::Writer& w) { w.set_u32("tokenizer.ggml.eos_token_id", 5000); }},
      {"'bert'", [](gguf::Writer& w) { w.set_string("tokenizer.ggml.model", "bert"); }},
      {"tokenizer.ggml.tokens",
       [](gguf::Writer& w) {
         w.set_i32s("tokenizer.ggml.tokens", {1, 2});
       }},
  };
  int i = 0;
  for (const auto& [fragment, edit] : broken) {
    auto t = write("broken" + std::to_string(i++), edit);
    ASSERT_FALSE(t.ok()) << fragment;
    EXPECT_NE(t.message().find(fragment), std::string::npos) << t.message();
  }
}

}  // namespace
}  // namespace hylo::tokenizer
