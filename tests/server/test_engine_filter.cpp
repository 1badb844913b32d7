// The engine's per-request token filter hook (runtime::TokenFilter), on a fixture model: the
// filter sees every draw with the right budget (max_tokens, or the end of the context) and every
// chosen token, and what it allows is what comes out.
#include <gtest/gtest.h>

#include <future>
#include <limits>

#include "common/fixtures.h"
#include "models/model.h"
#include "runtime/engine.h"
#include "server/token_filters.h"
#include "tokenizer/tokenizer.h"

namespace hylo::runtime {
namespace {

// Allows one fixed token and records the calls.
class Recorder : public TokenFilter {
 public:
  explicit Recorder(int32_t only) : only_(only) {}
  void mask(float* logits, int64_t n_vocab, int32_t tokens_left) override {
    budgets.push_back(tokens_left);
    for (int64_t i = 0; i < n_vocab; ++i)
      if (i != only_) logits[i] = -std::numeric_limits<float>::infinity();
  }
  void accept(int32_t token) override { accepted.push_back(token); }

  std::vector<int32_t> budgets, accepted;

 private:
  int32_t only_;
};

class EngineFilter : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = test::fixture_model("qwen3moe-tiny");
    ASSERT_FALSE(path.empty());
    auto model = models::load_model(path);
    ASSERT_TRUE(model.ok()) << model.message();
    model_ = std::move(*model);
    auto tok = tokenizer::Tokenizer::from_gguf(model_->file());
    ASSERT_TRUE(tok.ok()) << tok.message();
    tok_ = std::move(*tok);
    pool_ = std::make_unique<ThreadPool>(2);
    EngineOptions o;
    o.n_ctx = 48;
    engine_ = std::make_unique<Engine>(*model_, tok_, *pool_, o);
  }

  // Runs a request to its end; the tokens it produced.
  std::vector<int32_t> run(std::shared_ptr<Request> r, RequestResult* result) {
    std::vector<int32_t> out;
    std::promise<RequestResult> done;
    r->on_token = [&](const TokenEvent& e) {
      if (e.token >= 0) out.push_back(e.token);
    };
    r->on_done = [&](const RequestResult& res) { done.set_value(res); };
    r->sampling.temperature = 0;
    EXPECT_EQ(engine_->submit(r).kind, SubmitError::kNone);
    *result = done.get_future().get();
    return out;
  }

  std::unique_ptr<models::Model> model_;
  tokenizer::Tokenizer tok_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineFilter, SeesEveryDrawWithTheMaxTokensBudget) {
  const int32_t x = tok_.encode("x", false).at(0);
  auto filter = std::make_shared<Recorder>(x);
  auto r = std::make_shared<Request>();
  r->prompt = tok_.encode("hello there", false);
  r->max_tokens = 5;
  r->filter = filter;
  RequestResult res;
  EXPECT_EQ(run(r, &res), std::vector<int32_t>(5, x));
  EXPECT_EQ(res.reason, FinishReason::kLength);
  EXPECT_EQ(filter->budgets, (std::vector<int32_t>{5, 4, 3, 2, 1}));
  EXPECT_EQ(filter->accepted, std::vector<int32_t>(5, x));
}

TEST_F(EngineFilter, TheBudgetEndsWithTheContext) {
  const int32_t x = tok_.encode("x", false).at(0);
  auto filter = std::make_shared<Recorder>(x);
  auto r = std::make_shared<Request>();
  r->prompt = tok_.encode("one two three four", false);
  const auto n_prompt = static_cast<int32_t>(r->prompt.size());
  r->filter = filter;  // no max_tokens: until the 48-position context is full
  RequestResult res;
  const std::vector<int32_t> out = run(r, &res);
  EXPECT_EQ(res.reason, FinishReason::kContext);
  ASSERT_EQ(static_cast<int32_t>(out.size()), 48 - n_prompt + 1);
  ASSERT_EQ(filter->budgets.size(), out.size());
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(filter->budgets[i], static_cast<int32_t>(out.size() - i)) << i;
}

TEST_F(EngineFilter, ForcedOutputComesOutExactlyThenStops) {
  const std::vector<int32_t> forced = tok_.encode("{\"a\": [1, 2]}", false);
  auto r = std::make_shared<Request>();
  r->prompt = tok_.encode("say it", false);
  r->max_tokens = 40;
  r->filter = std::make_shared<server::ForcedOutputFilter>(forced, tok_.eos_id());
  RequestResult res;
  EXPECT_EQ(run(r, &res), forced);
  EXPECT_EQ(res.reason, FinishReason::kStop);  // the end-of-generation token came next
}

}  // namespace
}  // namespace hylo::runtime
