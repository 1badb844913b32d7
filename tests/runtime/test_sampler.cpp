// Every sampler stage against its definition on fixed logits, and seeded determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "runtime/sampler.h"

namespace hylo::runtime {
namespace {

std::vector<Candidate> cands(std::vector<float> logits) {
  std::vector<Candidate> c;
  for (size_t i = 0; i < logits.size(); ++i) c.push_back({static_cast<int32_t>(i), logits[i]});
  softmax_candidates(c);
  return c;
}

TEST(Sampler, SoftmaxSortsAndNormalises) {
  auto c = cands({1.0f, 3.0f, 2.0f});
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].id, 1);
  EXPECT_EQ(c[1].id, 2);
  EXPECT_EQ(c[2].id, 0);
  const double z = std::exp(1.0) + std::exp(3.0) + std::exp(2.0);
  EXPECT_NEAR(c[0].p, std::exp(3.0) / z, 1e-6);
  EXPECT_NEAR(c[2].p, std::exp(1.0) / z, 1e-6);
}

TEST(Sampler, TopKKeepsTheKLargest) {
  auto c = cands({0, 5, 1, 4, 2});
  top_k_filter(c, 2);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].id, 1);
  EXPECT_EQ(c[1].id, 3);
  auto all = cands({0, 1, 2});
  top_k_filter(all, 0);  // off
  EXPECT_EQ(all.size(), 3u);
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  // p = 0.5, 0.3, 0.2 (logits log p)
  auto c = cands({std::log(0.5f), std::log(0.3f), std::log(0.2f)});
  auto a = c;
  top_p_filter(a, 0.5f);  // 0.5 already reaches 0.5
  EXPECT_EQ(a.size(), 1u);
  auto b = c;
  top_p_filter(b, 0.75f);  // 0.5 + 0.3 = 0.8 ≥ 0.75
  EXPECT_EQ(b.size(), 2u);
  auto d = c;
  top_p_filter(d, 1.0f);  // off
  EXPECT_EQ(d.size(), 3u);
}

TEST(Sampler, MinPKeepsTokensAboveAFractionOfTheBest) {
  auto c = cands({std::log(0.6f), std::log(0.25f), std::log(0.1f), std::log(0.05f)});
  min_p_filter(c, 0.2f);  // threshold 0.12: keeps 0.6 and 0.25
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[1].id, 1);
}

TEST(Sampler, GreedyTakesTheArgmaxAfterBiasAndPenalties) {
  SamplingParams p;
  p.temperature = 0;
  Sampler s(p, 4);
  const float logits[] = {1.0f, 3.0f, 2.9f, -1.0f};
  EXPECT_EQ(s.sample(logits, {}), 1);
  SamplingParams biased = p;
  biased.logit_bias[3] = 10.0f;
  Sampler sb(biased, 4);
  EXPECT_EQ(sb.sample(logits, {}), 3);
  SamplingParams banned = p;
  banned.logit_bias[1] = -INFINITY;
  Sampler sn(banned, 4);
  EXPECT_EQ(sn.sample(logits, {}), 2);
}

TEST(Sampler, PenaltiesFollowTheirDefinitions) {
  SamplingParams p;
  p.temperature = 0;
  p.repeat_penalty = 2.0f;  // positive logits divided, negative multiplied
  Sampler s(p, 4);
  const float logits[] = {4.0f, 3.0f, -1.0f, 0.0f};
  const std::vector<int32_t> history = {0, 2};
  EXPECT_EQ(s.sample(logits, history), 1);  // 4 → 2 < 3
  EXPECT_NEAR(s.logprob(0) - s.logprob(1), 2.0 - 3.0, 1e-6);
  EXPECT_NEAR(s.logprob(2) - s.logprob(3), -2.0, 1e-6);  // -1 → -2

  SamplingParams f;
  f.temperature = 0;
  f.frequency_penalty = 0.5f;
  f.presence_penalty = 0.25f;
  Sampler sf(f, 3);
  const float l2[] = {2.0f, 1.5f, 0.0f};
  const std::vector<int32_t> h2 = {0, 0, 0, 1};  // token 0 three times, token 1 once
  sf.sample(l2, h2);
  // token 0: 2 - 3·0.5 - 0.25 = 0.25; token 1: 1.5 - 0.5 - 0.25 = 0.75
  EXPECT_NEAR(sf.logprob(1) - sf.logprob(0), 0.5, 1e-6);
  EXPECT_NEAR(sf.logprob(1) - sf.logprob(2), 0.75, 1e-6);

  SamplingParams w;
  w.temperature = 0;
  w.repeat_penalty = 100.0f;
  w.repeat_last_n = 1;  // only the last token is penalised
  Sampler sw(w, 3);
  const float l3[] = {5.0f, 4.0f, 0.0f};
  EXPECT_EQ(sw.sample(l3, std::vector<int32_t>{0, 1}), 0);
}

TEST(Sampler, SameSeedSameDraws) {
  std::vector<float> logits(50);
  for (int i = 0; i < 50; ++i) logits[i] = std::sin(static_cast<float>(i)) * 2;
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.seed = 77;
  Sampler a(p, 50), b(p, 50);
  std::vector<int32_t> da, db;
  for (int i = 0; i < 200; ++i) {
    da.push_back(a.sample(logits.data(), {}));
    db.push_back(b.sample(logits.data(), {}));
  }
  EXPECT_EQ(da, db);
  p.seed = 78;
  Sampler c(p, 50);
  std::vector<int32_t> dc;
  for (int i = 0; i < 200; ++i) dc.push_back(c.sample(logits.data(), {}));
  EXPECT_NE(da, dc);
}

TEST(Sampler, DrawsFollowTheDistribution) {
  // Two tokens with p = 0.8 / 0.2 at temperature 1.
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.seed = 5;
  Sampler s(p, 2);
  const float logits[] = {std::log(0.8f), std::log(0.2f)};
  int zeros = 0;
  for (int i = 0; i < 4000; ++i) zeros += s.sample(logits, {}) == 0;
  EXPECT_NEAR(zeros / 4000.0, 0.8, 0.03);  // 4.7 standard deviations
  // Low temperature sharpens towards the argmax.
  p.temperature = 0.25f;
  Sampler cold(p, 2);
  zeros = 0;
  for (int i = 0; i < 4000; ++i) zeros += cold.sample(logits, {}) == 0;
  EXPECT_GT(zeros / 4000.0, 0.98);  // 0.8^4 / (0.8^4 + 0.2^4) = 0.996
}

TEST(Sampler, ValidationNamesTheParameter) {
  SamplingParams p;
  p.temperature = -1;
  EXPECT_NE(validate(p, 10).message().find("temperature"), std::string::npos);
  p = {};
  p.top_p = 1.5f;
  EXPECT_NE(validate(p, 10).message().find("top_p"), std::string::npos);
  p = {};
  p.logit_bias[11] = 1.0f;
  EXPECT_NE(validate(p, 10).message().find("logit_bias"), std::string::npos);
  EXPECT_TRUE(validate(SamplingParams{}, 10).ok());
}

}  // namespace
}  // namespace hylo::runtime
