#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace hylo::runtime {

Status validate(const SamplingParams& p, int64_t n_vocab) {
  if (!std::isfinite(p.temperature) || p.temperature < 0 || p.temperature > 100)
    return make_error("[sampling] temperature {} must be in [0, 100]", p.temperature);
  if (p.top_k < 0) return make_error("[sampling] top_k {} must be ≥ 0 (0: off)", p.top_k);
  if (!std::isfinite(p.top_p) || p.top_p <= 0 || p.top_p > 1)
    return make_error("[sampling] top_p {} must be in (0, 1]", p.top_p);
  if (!std::isfinite(p.min_p) || p.min_p < 0 || p.min_p > 1)
    return make_error("[sampling] min_p {} must be in [0, 1]", p.min_p);
  if (!std::isfinite(p.repeat_penalty) || p.repeat_penalty <= 0 || p.repeat_penalty > 100)
    return make_error("[sampling] repeat_penalty {} must be in (0, 100]", p.repeat_penalty);
  if (p.repeat_last_n < -1) return make_error("[sampling] repeat_last_n {} must be ≥ -1", p.repeat_last_n);
  if (!std::isfinite(p.presence_penalty) || std::fabs(p.presence_penalty) > 100)
    return make_error("[sampling] presence_penalty {} must be in [-100, 100]", p.presence_penalty);
  if (!std::isfinite(p.frequency_penalty) || std::fabs(p.frequency_penalty) > 100)
    return make_error("[sampling] frequency_penalty {} must be in [-100, 100]", p.frequency_penalty);
  for (const auto& [id, bias] : p.logit_bias) {
    if (id < 0 || id >= n_vocab) return make_error("[sampling] logit_bias token {} outside [0, {})", id, n_vocab);
    if (std::isnan(bias) || bias == std::numeric_limits<float>::infinity())
      return make_error("[sampling] logit_bias of token {} must be a number or -inf", id);
  }
  return ok_status();
}

void softmax_candidates(std::vector<Candidate>& c) {
  std::sort(c.begin(), c.end(), [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  });
  if (c.empty()) return;
  const float mx = c[0].logit;
  double sum = 0;
  for (auto& x : c) {
    x.p = std::exp(x.logit - mx);
    sum += x.p;
  }
  for (auto& x : c) x.p = static_cast<float>(x.p / sum);
}

void top_k_filter(std::vector<Candidate>& c, int32_t k) {
  if (k > 0 && static_cast<size_t>(k) < c.size()) c.resize(k);
}

void top_p_filter(std::vector<Candidate>& c, float p) {
  if (p >= 1.0f) return;
  double cum = 0;
  size_t keep = c.size();
  for (size_t i = 0; i < c.size(); ++i) {
    cum += c[i].p;
    if (cum >= p) {
      keep = i + 1;
      break;
    }
  }
  c.resize(std::max<size_t>(1, keep));
}

void min_p_filter(std::vector<Candidate>& c, float p) {
  if (p <= 0.0f || c.empty()) return;
  const float threshold = p * c[0].p;
  size_t keep = 1;
  while (keep < c.size() && c[keep].p >= threshold) ++keep;
  c.resize(keep);
}

Sampler::Sampler(const SamplingParams& params, int64_t n_vocab) : p_(params), n_vocab_(n_vocab) {
  uint64_t seed = p_.seed;
  if (p_.random_seed) seed = std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32);
  p_.seed = seed;
  rng_.seed(seed);
}

void Sampler::apply_bias_and_penalties(std::span<const int32_t> history) {
  for (const auto& [id, bias] : p_.logit_bias) logits_[id] += bias;
  const bool penalties = p_.repeat_penalty != 1.0f || p_.presence_penalty != 0.0f || p_.frequency_penalty != 0.0f;
  if (!penalties || history.empty()) return;
  const size_t n = p_.repeat_last_n < 0 ? history.size()
                                        : std::min(history.size(), static_cast<size_t>(p_.repeat_last_n));
  std::unordered_map<int32_t, int> count;
  for (size_t i = history.size() - n; i < history.size(); ++i) count[history[i]]++;
  for (const auto& [id, c] : count) {
    if (id < 0 || id >= n_vocab_) continue;
    float& l = logits_[id];
    // Repetition penalty as in CTRL / llama.cpp: divide positive logits, multiply negative ones.
    if (p_.repeat_penalty != 1.0f) l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
    l -= static_cast<float>(c) * p_.frequency_penalty + (c > 0 ? p_.presence_penalty : 0.0f);
  }
}

const std::vector<Candidate>& Sampler::distribution(const float* logits, std::span<const int32_t> history) {
  logits_.assign(logits, logits + n_vocab_);
  apply_bias_and_penalties(history);
  const float mx = *std::max_element(logits_.begin(), logits_.end());
  double sum = 0;
  for (float l : logits_) sum += std::exp(static_cast<double>(l) - mx);
  log_norm_ = mx + std::log(sum);
  dist_.clear();
  must_draw_ = false;

  if (p_.temperature <= 0.0f) {
    const auto best = std::max_element(logits_.begin(), logits_.end());
    dist_.push_back({static_cast<int32_t>(best - logits_.begin()), *best, 1.0f});
    return dist_;
  }

  // Candidates: top-k first keeps the sort cheap (k = 0 means the whole vocabulary).
  std::vector<Candidate>& c = dist_;
  const size_t k = p_.top_k > 0 ? static_cast<size_t>(p_.top_k) : static_cast<size_t>(n_vocab_);
  idx_.resize(n_vocab_);
  std::iota(idx_.begin(), idx_.end(), 0);
  auto better = [&](int32_t a, int32_t b) { return logits_[a] > logits_[b] || (logits_[a] == logits_[b] && a < b); };
  if (k < idx_.size()) {
    std::partial_sort(idx_.begin(), idx_.begin() + k, idx_.end(), better);
    idx_.resize(k);
  }
  c.reserve(idx_.size());
  for (int32_t id : idx_)
    if (std::isfinite(logits_[id])) c.push_back({id, logits_[id]});
  if (c.empty()) {
    c.push_back({idx_.empty() ? 0 : idx_[0], 0.0f, 1.0f});
    return dist_;
  }
  softmax_candidates(c);
  top_p_filter(c, p_.top_p);
  min_p_filter(c, p_.min_p);
  // Temperature on the surviving candidates.
  for (auto& x : c) x.logit /= p_.temperature;
  softmax_candidates(c);
  must_draw_ = true;
  return dist_;
}

int32_t Sampler::draw() {
  if (!must_draw_) return dist_.empty() ? 0 : dist_[0].id;
  const double u = std::generate_canonical<double, 53>(rng_);
  double cum = 0;
  for (const auto& x : dist_) {
    cum += x.p;
    if (u < cum) return x.id;
  }
  return dist_.back().id;
}

int32_t Sampler::sample(const float* logits, std::span<const int32_t> history) {
  distribution(logits, history);
  return draw();
}

DraftVerdict verify_draft(std::span<const Candidate> p, std::span<const Candidate> q, int32_t draft,
                          std::mt19937_64& rng) {
  std::unordered_map<int32_t, double> q_of;
  for (const Candidate& c : q) q_of[c.id] = c.p;
  auto prob_q = [&](int32_t id) {
    const auto it = q_of.find(id);
    return it == q_of.end() ? 0.0 : it->second;
  };
  double pd = 0;
  for (const Candidate& c : p)
    if (c.id == draft) pd = c.p;
  const double qd = prob_q(draft);
  const double u = std::generate_canonical<double, 53>(rng);
  if (qd > 0 && u * qd < pd) return {true, draft};  // u < min(1, p/q)
  // Residual max(0, p − q); q is zero outside its list, so only p's tokens can remain.
  std::vector<double> r(p.size());
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    r[i] = std::max(0.0, static_cast<double>(p[i].p) - prob_q(p[i].id));
    sum += r[i];
  }
  if (!(sum > 0)) {  // p ≤ q everywhere (equal up to rounding): the residual is p itself
    sum = 0;
    for (size_t i = 0; i < p.size(); ++i) sum += r[i] = p[i].p;
  }
  const double v = std::generate_canonical<double, 53>(rng) * sum;
  double cum = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    cum += r[i];
    if (v < cum) return {false, p[i].id};
  }
  return {false, p.empty() ? draft : p.back().id};
}

float Sampler::logprob(int32_t id) const {
  if (id < 0 || id >= static_cast<int32_t>(logits_.size())) return -INFINITY;
  return static_cast<float>(logits_[id] - log_norm_);
}

std::vector<TokenProb> Sampler::top(int n) const {
  std::vector<int32_t> idx(logits_.size());
  std::iota(idx.begin(), idx.end(), 0);
  n = std::min<int>(n, static_cast<int>(idx.size()));
  std::partial_sort(idx.begin(), idx.begin() + n, idx.end(), [&](int32_t a, int32_t b) {
    return logits_[a] > logits_[b] || (logits_[a] == logits_[b] && a < b);
  });
  std::vector<TokenProb> out;
  for (int i = 0; i < n; ++i) out.push_back({idx[i], logprob(idx[i])});
  return out;
}

}  // namespace hylo::runtime
