// Token sampling: logit bias, repetition / presence / frequency penalties over the last n tokens,
// top-k, top-p, min-p, temperature, then a draw from a seeded generator (same seed + same logits
// = same token). Temperature ≤ 0 is greedy (argmax after bias and penalties).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

#include "base/result.h"

namespace hylo::runtime {

struct SamplingParams {
  float temperature = 0.7f;
  int32_t top_k = 20;          // ≤ 0: off
  float top_p = 0.8f;          // ≥ 1: off
  float min_p = 0.0f;          // ≤ 0: off
  float repeat_penalty = 1.0f; // 1: off; > 1 makes recent tokens less likely
  int32_t repeat_last_n = 64;  // window for all three penalties; -1: the whole history
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  std::unordered_map<int32_t, float> logit_bias;  // added to the logits; -inf bans a token
  uint64_t seed = 0;           // 0 with random_seed: pick one
  bool random_seed = false;
};

// Clear error naming the parameter for values that make no sense.
Status validate(const SamplingParams& p, int64_t n_vocab);

struct TokenProb {
  int32_t id;
  float logprob;
};

// The definitions, exposed for tests (each works on a candidate list sorted by logit, descending).
struct Candidate {
  int32_t id;
  float logit;
  float p = 0;
};

// Standard speculative sampling (Leviathan et al. 2023; Chen et al. 2023): a draft token drawn
// from the proposal q is kept with probability min(1, p(d)/q(d)); otherwise the token is drawn
// from the residual max(0, p − q) / Σ. Either way the result is distributed exactly as p.
// p and q list the tokens with non-zero probability (any order, ids unique).
struct DraftVerdict {
  bool accepted = false;
  int32_t token = -1;
};
DraftVerdict verify_draft(std::span<const Candidate> p, std::span<const Candidate> q, int32_t draft,
                          std::mt19937_64& rng);

class Sampler {
 public:
  Sampler(const SamplingParams& params, int64_t n_vocab);

  // Chooses the next token from raw logits; `history` = prompt + generated so far.
  int32_t sample(const float* logits, std::span<const int32_t> history);

  // The final distribution sample() draws from (after bias, penalties, truncation and temperature;
  // one token with p = 1 when greedy), without drawing.
  const std::vector<Candidate>& distribution(const float* logits, std::span<const int32_t> history);
  // A draw from the last distribution().
  int32_t draw();
  // Speculative verification against the last distribution(): see verify_draft().
  DraftVerdict verify(std::span<const Candidate> q, int32_t draft) { return verify_draft(dist_, q, draft, rng_); }

  // The distribution the last draw came from, before truncation (log-softmax of the biased,
  // penalised logits at temperature 1): log-probability of `id` and the n most likely tokens.
  float logprob(int32_t id) const;
  std::vector<TokenProb> top(int n) const;

  const SamplingParams& params() const { return p_; }

 private:
  void apply_bias_and_penalties(std::span<const int32_t> history);

  SamplingParams p_;
  int64_t n_vocab_;
  std::mt19937_64 rng_;
  std::vector<float> logits_;     // working copy (biased + penalised)
  double log_norm_ = 0;           // log Σ exp(logits_) for logprob()
  std::vector<int32_t> idx_;
  std::vector<float> probs_;
  std::vector<Candidate> dist_;  // the last distribution()
  bool must_draw_ = false;       // the last distribution() has more than its argmax to choose from
};
void softmax_candidates(std::vector<Candidate>& c);  // sets p, sorted descending
void top_k_filter(std::vector<Candidate>& c, int32_t k);
void top_p_filter(std::vector<Candidate>& c, float p);   // smallest prefix with Σp ≥ p (keeps ≥ 1)
void min_p_filter(std::vector<Candidate>& c, float p);   // keeps p_i ≥ p · p_max

}  // namespace hylo::runtime
