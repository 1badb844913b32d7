// The engine end to end on a fixture model: greedy generation equals the argmax of the logits
// step by step, EOS and context-full handling, stop strings, seeded determinism, cancellation,
// prefix reuse and queue limits.
#include <gtest/gtest.h>

#include <future>

#include "common/fixtures.h"
#include "models/model.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

namespace hylo::runtime {
namespace {

struct Fixture {
  std::unique_ptr<models::Model> model;
  tokenizer::Tokenizer tok;
  std::unique_ptr<ThreadPool> pool;
};

Fixture& fixture(const std::string& name) {
  static std::map<std::string, Fixture> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  Fixture f;
  auto m = models::load_model(test::fixture_model(name));
  EXPECT_TRUE(m.ok()) << m.message();
  f.model = std::move(*m);
  f.tok = *tokenizer::Tokenizer::from_gguf(f.model->file());
  f.pool = std::make_unique<ThreadPool>(2);
  return cache.emplace(name, std::move(f)).first->second;
}

struct Outcome {
  RequestResult result;
  std::vector<int32_t> tokens;
  std::string text;
};

Outcome run(Engine& e, std::shared_ptr<Request> r) {
  Outcome out;
  std::promise<RequestResult> done;
  r->on_token = [&](const TokenEvent& ev) {
    if (ev.token >= 0) out.tokens.push_back(ev.token);
    out.text += ev.text;
  };
  r->on_done = [&](const RequestResult& res) { done.set_value(res); };
  auto fut = done.get_future();
  const SubmitError err = e.submit(r);
  EXPECT_EQ(err.kind, SubmitError::kNone) << err.message;
  out.result = fut.get();
  return out;
}

std::shared_ptr<Request> greedy(std::vector<int32_t> prompt, int32_t max_tokens) {
  auto r = std::make_shared<Request>();
  r->prompt = std::move(prompt);
  r->sampling.temperature = 0;
  r->max_tokens = max_tokens;
  return r;
}

class EngineTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineTest, GreedyGenerationIsTheArgmaxOfTheLogits) {
  Fixture& f = fixture(GetParam());
  EngineOptions eo;
  eo.n_ctx = 256;
  eo.kv_type = TensorType::kF32;
  Engine e(*f.model, f.tok, *f.pool, eo);
  const std::vector<int32_t> prompt = f.tok.encode("<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", true);
  Outcome o = run(e, greedy(prompt, 12));
  ASSERT_EQ(o.result.reason, FinishReason::kLength);
  ASSERT_EQ(o.tokens.size(), 12u);
  // The same tokens from the logits of prompt + generated, one step at a time.
  models::MemoryOptions mo;
  mo.n_ctx = 256;
  mo.kv_type = TensorType::kF32;
  models::Memory mem(f.model->memory_layout(), mo);
  std::vector<float> logits(f.model->info().n_vocab);
  std::vector<int32_t> seq = prompt;
  for (size_t i = 0; i < o.tokens.size(); ++i) {
    std::vector<models::BatchRow> rows;
    const int32_t base = mem.seq_len(0);
    for (size_t j = base; j < seq.size(); ++j)
      rows.push_back({0, static_cast<int32_t>(j), seq[j], j + 1 == seq.size()});
    ASSERT_TRUE(f.model->forward(rows, mem, *f.pool, logits.data()).ok());
    const int32_t am = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(am, o.tokens[i]) << "step " << i;
    seq.push_back(am);
  }
}

TEST_P(EngineTest, EndOfGenerationStopsUnlessIgnored) {
  Fixture& f = fixture(GetParam());
  EngineOptions eo;
  eo.n_ctx = 128;
  Engine e(*f.model, f.tok, *f.pool, eo);
  const int32_t eos = f.tok.eos_id();
  auto r = greedy(f.tok.encode("Hi", true), 20);
  r->sampling.logit_bias[eos] = 1000.0f;
  Outcome o = run(e, r);
  EXPECT_EQ(o.result.reason, FinishReason::kStop);
  EXPECT_EQ(o.result.n_generated, 0);
  EXPECT_TRUE(o.text.empty());
  auto r2 = greedy(f.tok.encode("Hi", true), 5);
  r2->sampling.logit_bias[eos] = 1000.0f;
  r2->ignore_eos = true;
  Outcome o2 = run(e, r2);
  EXPECT_EQ(o2.result.reason, FinishReason::kLength);
  EXPECT_EQ(o2.result.n_generated, 5);
}

TEST_P(EngineTest, ContextFullEndsWithoutCrash) {
  Fixture& f = fixture(GetParam());
  EngineOptions eo;
  eo.n_ctx = 16;
  Engine e(*f.model, f.tok, *f.pool, eo);
  const std::vector<int32_t> prompt = f.tok.encode("one two three four five", true);
  Outcome o = run(e, greedy(prompt, -1));
  EXPECT_EQ(o.result.reason, FinishReason::kContext);
  // Tokens fed until every position is used, plus the last one sampled.
  EXPECT_EQ(o.result.n_generated, 16 - static_cast<int32_t>(prompt.size()) + 1);
  // A prompt that does not fit is refused with the numbers.
  std::vector<int32_t> too_long(16, 100);
  auto r = greedy(too_long, 1);
  const SubmitError err = e.submit(r);
  EXPECT_EQ(err.kind, SubmitError::kContextExceeded);
  EXPECT_EQ(err.n_prompt, 16);
  EXPECT_EQ(err.n_ctx, 16);
  EXPECT_EQ(err.message, "request (16 tokens) exceeds the available context size (16 tokens)");
}

TEST_P(EngineTest, StopStringsEndTheAnswerAndAreNotEmitted) {
  Fixture& f = fixture(GetParam());
  EngineOptions eo;
  eo.n_ctx = 128;
  Engine e(*f.model, f.tok, *f.pool, eo);
  const std::vector<int32_t> prompt = f.tok.encode("Tell me", true);
  Outcome free_run = run(e, greedy(prompt, 10));
  ASSERT_GE(free_run.text.size(), 6u);
  // Stop at a string that starts in the middle of the free-running output.
  const std::string stop = free_run.text.substr(free_run.text.size() / 2, 3);
  auto r = greedy(prompt, 10);
  r->stop = {stop};
  Outcome o = run(e, r);
  EXPECT_EQ(o.result.reason, FinishReason::kStop);
  EXPECT_EQ(o.result.stop_matched, stop);
  EXPECT_EQ(o.text, free_run.text.substr(0, free_run.text.find(stop)));
}

TEST_P(EngineTest, SeededSamplingIsReproducibleAndPrefixIsReused) {
  Fixture& f = fixture(GetParam());
  EngineOptions eo;
  eo.n_ctx = 128;
  Engine e(*f.model, f.tok, *f.pool, eo);
  auto make = [&](uint64_t seed) {
    auto r = std::make_shared<Request>();
    r->prompt = f.tok.encode("A story about a cat", true);
    r->sampling.temperature = 1.0f;
    r->sampling.seed = seed;
    r->max_tokens = 12;
    return r;
  };
  Outcome a = run(e, make(7));
  Outcome b = run(e, make(7));
  EXPECT_EQ(a.tokens, b.tokens);
  // The second run reuses the whole prompt (state and last logits) from the slot's cache.
  EXPECT_EQ(b.result.n_cached, b.result.n_prompt);
  Outcome c = run(e, make(8));
  EXPECT_NE(a.tokens, c.tokens);
}

TEST_P(EngineTest, ConcurrentRequestsMatchTheirSoloRuns) {
  Fixture& f = fixture(GetParam());
  EngineOptions eo;
  eo.n_ctx = 256;
  eo.n_slots = 4;
  const std::vector<std::string> prompts = {"first prompt", "a second, longer prompt with more words in it",
                                            "third", "the fourth one"};
  std::vector<Outcome> solo;
  {
    Engine e(*f.model, f.tok, *f.pool, eo);
    for (const auto& p : prompts) solo.push_back(run(e, greedy(f.tok.encode(p, true), 10)));
  }
  Engine e(*f.model, f.tok, *f.pool, eo);
  std::vector<std::future<Outcome>> futs;
  for (const auto& p : prompts)
    futs.push_back(std::async(std::launch::async, [&, p] { return run(e, greedy(f.tok.encode(p, true), 10)); }));
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(futs[i].get().tokens, solo[i].tokens) << prompts[i];
}

TEST_P(EngineTest, CancelledRequestEndsAndFreesItsSlot) {
  Fixture& f = fixture(GetParam());
  EngineOptions eo;
  eo.n_ctx = 4096;
  Engine e(*f.model, f.tok, *f.pool, eo);
  auto r = greedy(f.tok.encode("go on forever", true), -1);
  std::promise<void> first;
  bool signalled = false;
  std::promise<RequestResult> done;
  r->on_token = [&](const TokenEvent&) {
    if (!signalled) {
      signalled = true;
      first.set_value();
    }
  };
  r->on_done = [&](const RequestResult& res) { done.set_value(res); };
  ASSERT_EQ(e.submit(r).kind, SubmitError::kNone);
  first.get_future().wait();
  r->cancelled = true;
  e.poke();
  EXPECT_EQ(done.get_future().get().reason, FinishReason::kCancelled);
  Outcome next = run(e, greedy(f.tok.encode("next", true), 3));
  EXPECT_EQ(next.result.n_generated, 3);
}

INSTANTIATE_TEST_SUITE_P(Models, EngineTest, ::testing::Values("qwen3next-tiny", "qwen3moe-tiny"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) c = c == '-' ? '_' : c;
                           return s;
                         });

TEST(Engine, InvalidRequestsAreRefused) {
  Fixture& f = fixture("qwen3moe-tiny");
  EngineOptions eo;
  eo.n_ctx = 64;
  Engine e(*f.model, f.tok, *f.pool, eo);
  auto empty = std::make_shared<Request>();
  EXPECT_EQ(e.submit(empty).kind, SubmitError::kInvalid);
  auto bad_token = greedy({1, 2, 999999}, 1);
  EXPECT_EQ(e.submit(bad_token).kind, SubmitError::kInvalid);
  auto bad_temp = greedy({1, 2}, 1);
  bad_temp->sampling.temperature = -3;
  const SubmitError err = e.submit(bad_temp);
  EXPECT_EQ(err.kind, SubmitError::kInvalid);
  EXPECT_NE(err.message.find("temperature"), std::string::npos);
}

}  // namespace
}  // namespace hylo::runtime
