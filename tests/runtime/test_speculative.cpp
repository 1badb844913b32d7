// Speculative decoding with the MTP head: the rollback of rejected drafts restores exactly the
// state of a run that never drafted; greedy output is bit for bit the same with and without drafts
// (alone and among concurrent streams); speculative sampling keeps the target distribution.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <future>
#include <map>
#include <random>

#include "common/fixtures.h"
#include "models/model.h"
#include "models/synthetic.h"
#include "runtime/engine.h"
#include "tokenizer/hf_import.h"
#include "tokenizer/tokenizer.h"

namespace hylo::runtime {
namespace {

// ---- speculative sampling on fixed distributions --------------------------------------------------

// Over many draws (draft d ~ q, then verify_draft) each token's frequency is p's within 5σ of the
// binomial standard deviation √(p(1−p)/N), and the acceptance rate is Σ min(p, q).
void check_distribution(const std::vector<Candidate>& p, const std::vector<Candidate>& q) {
  constexpr int kDraws = 200000;
  std::mt19937_64 rng(42), draft_rng(7);
  std::vector<double> q_weights;
  for (const auto& c : q) q_weights.push_back(c.p);
  std::discrete_distribution<int> pick_q(q_weights.begin(), q_weights.end());
  std::map<int32_t, int> count;
  int accepted = 0;
  for (int i = 0; i < kDraws; ++i) {
    const int32_t d = q[pick_q(draft_rng)].id;
    const DraftVerdict v = verify_draft(p, q, d, rng);
    if (v.accepted) {
      EXPECT_EQ(v.token, d);
      ++accepted;
    }
    count[v.token]++;
  }
  double overlap = 0;
  for (const auto& a : p)
    for (const auto& b : q)
      if (a.id == b.id) overlap += std::min(a.p, b.p);
  for (const auto& c : p) {
    const double freq = static_cast<double>(count[c.id]) / kDraws;
    const double sigma = std::sqrt(c.p * (1 - c.p) / kDraws);
    EXPECT_NEAR(freq, c.p, 5 * sigma + 1e-9) << "token " << c.id;
  }
  int outside = 0;  // tokens p gives no probability must never come out
  for (const auto& [id, n] : count) {
    bool in_p = false;
    for (const auto& c : p) in_p = in_p || (c.id == id && c.p > 0);
    if (!in_p) outside += n;
  }
  EXPECT_EQ(outside, 0);
  overlap = std::min(overlap, 1.0);
  EXPECT_NEAR(static_cast<double>(accepted) / kDraws, overlap, 5 * std::sqrt(overlap * (1 - overlap) / kDraws) + 1e-6);
}

TEST(SpeculativeSampling, OutputIsDistributedAsTheTarget) {
  // Overlapping supports, the proposal too flat in one place and too sharp in another.
  check_distribution({{0, 0, 0.5f}, {1, 0, 0.3f}, {2, 0, 0.15f}, {3, 0, 0.05f}},
                     {{0, 0, 0.2f}, {1, 0, 0.6f}, {2, 0, 0.1f}, {4, 0, 0.1f}});
  // The proposal proposes tokens the target excludes (e.g. masked by a filter).
  check_distribution({{5, 0, 0.7f}, {6, 0, 0.3f}}, {{5, 0, 0.25f}, {7, 0, 0.5f}, {8, 0, 0.25f}});
  // Identical distributions: every draft is kept.
  check_distribution({{1, 0, 0.6f}, {2, 0, 0.4f}}, {{1, 0, 0.6f}, {2, 0, 0.4f}});
}

TEST(SpeculativeSampling, GreedyKeepsOnlyTheArgmax) {
  std::mt19937_64 rng(1);
  const std::vector<Candidate> p = {{3, 0, 1.0f}}, q = {{3, 0, 1.0f}}, q_other = {{4, 0, 1.0f}};
  EXPECT_TRUE(verify_draft(p, q, 3, rng).accepted);
  const DraftVerdict v = verify_draft(p, q_other, 4, rng);
  EXPECT_FALSE(v.accepted);
  EXPECT_EQ(v.token, 3);
}

// ---- fixtures ----------------------------------------------------------------------------------

struct Fixture {
  std::string path;
  std::unique_ptr<models::Model> model;
  tokenizer::Tokenizer tok;
  std::unique_ptr<ThreadPool> pool;
};

// "agree": the synthetic model whose MTP drafts the trunk accepts (make-model --mtp-agree).
Fixture& fixture(const std::string& name) {
  static std::map<std::string, Fixture> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  Fixture f;
  f.pool = std::make_unique<ThreadPool>(2);
  std::string path;
  if (name == "agree" || name == "synthetic-mtp") {
    models::SyntheticSpec spec;
    spec.arch = "qwen3next";
    spec.preset = "tiny";
    spec.type = "q8_0";
    spec.seed = 3;
    spec.mtp = true;
    spec.mtp_agree = name == "agree";
    auto tok = tokenizer::import_hf_tokenizer(test::fixtures_dir() + "/tokenizer/qwen3", 151936);
    EXPECT_TRUE(tok.ok()) << tok.message();
    path = test::scratch_path("spec_" + name + ".gguf");
    auto size = models::write_synthetic_model(spec, path, *f.pool, [&](gguf::Writer& w) {
      tokenizer::add_tokenizer_metadata(w, *tok);
      return ok_status();
    });
    EXPECT_TRUE(size.ok()) << size.message();
  } else {
    path = test::fixture_model(name);
  }
  auto m = models::load_model(path);
  EXPECT_TRUE(m.ok()) << m.message();
  f.model = std::move(*m);
  f.path = path;
  f.tok = *tokenizer::Tokenizer::from_gguf(f.model->file());
  return cache.emplace(name, std::move(f)).first->second;
}

// ---- rollback ----------------------------------------------------------------------------------

// Every piece of per-sequence state: positions, conv windows and S matrices, K and V of every
// attention layer (the trunk's; the MTP head's cache is the engine's business).
void expect_same_state(const models::Model& m, const models::Memory& a, const models::Memory& b, int seq_a, int seq_b) {
  ASSERT_EQ(a.seq_len(seq_a), b.seq_len(seq_b));
  const models::MemoryLayout& layout = m.memory_layout();
  for (const auto& r : layout.recurrent) {
    auto& ra = const_cast<models::Memory&>(a).recurrent(r.layer, seq_a);
    auto& rb = const_cast<models::Memory&>(b).recurrent(r.layer, seq_b);
    EXPECT_EQ(0, std::memcmp(ra.conv.data(), rb.conv.data(), ra.conv.size() * sizeof(float))) << "conv " << r.layer;
    EXPECT_EQ(0, std::memcmp(ra.ssm.data(), rb.ssm.data(), ra.ssm.size() * sizeof(float))) << "ssm " << r.layer;
  }
  for (const auto& k : layout.kv) {
    if (k.layer >= m.info().n_layer) continue;  // the MTP head
    const ops::KvSeqCache& ka = a.kv(k.layer, seq_a);
    const ops::KvSeqCache& kb = b.kv(k.layer, seq_b);
    ASSERT_EQ(ka.size(), kb.size()) << "kv " << k.layer;
    // The stored rows of every position (read_rows gives them whatever the page layout).
    const int32_t n = ka.size();
    std::vector<uint8_t> k1(n * ka.k_position_bytes()), v1(n * ka.v_position_bytes());
    std::vector<uint8_t> k2(k1.size()), v2(v1.size());
    ka.read_rows(0, n, k1.data(), v1.data());
    kb.read_rows(0, n, k2.data(), v2.data());
    EXPECT_EQ(k1, k2) << "K " << k.layer;
    EXPECT_EQ(v1, v2) << "V " << k.layer;
  }
}

class Rollback : public ::testing::TestWithParam<std::string> {};

// A verify pass over [x, d1, d2, d3] rolled back to keep `accepted` drafts equals feeding
// x, d1 … d_accepted one token at a time; its logits rows are the sequential ones bit for bit;
// and the next step after the rollback gives the same logits as after the sequential run.
TEST_P(Rollback, RejectedDraftsLeaveNoTrace) {
  Fixture& f = fixture(GetParam());
  models::Model& m = *f.model;
  const int64_t V = m.info().n_vocab;
  models::MemoryOptions mo;
  mo.n_seq = 2;
  mo.n_ctx = 256;
  mo.kv_type = TensorType::kF16;
  const std::vector<int32_t> prompt = f.tok.encode("The rollback of a speculative draft", true);
  const std::vector<int32_t> verify = {f.tok.encode(" must", false)[0], 1234, 99, 4567};
  const int32_t P = static_cast<int32_t>(prompt.size());
  for (int accepted = 0; accepted <= 3; ++accepted) {
    models::Memory spec(m.memory_layout(), mo), plain(m.memory_layout(), mo);
    std::vector<float> logits(V);
    for (models::Memory* mem : {&spec, &plain}) {
      std::vector<models::BatchRow> rows;
      for (int32_t i = 0; i < P; ++i) rows.push_back({1, i, prompt[i], i + 1 == P});
      ASSERT_TRUE(m.forward(rows, *mem, *f.pool, logits.data()).ok());
    }
    // Sequential: one row per forward.
    std::vector<float> seq_logits(4 * V), next_plain(V), next_spec(V);
    for (int i = 0; i < 4; ++i) {
      const models::BatchRow row{1, P + i, verify[i], true};
      ASSERT_TRUE(m.forward(std::span(&row, 1), plain, *f.pool, seq_logits.data() + i * V).ok());
    }
    // Speculative: all four rows at once, checkpointed, then rolled back.
    ASSERT_TRUE(spec.arm_checkpoints(1, 4).ok());
    std::vector<models::BatchRow> rows;
    for (int i = 0; i < 4; ++i) rows.push_back({1, P + i, verify[i], true});
    std::vector<float> spec_logits(4 * V);
    ASSERT_TRUE(m.forward(rows, spec, *f.pool, spec_logits.data()).ok());
    EXPECT_EQ(0, std::memcmp(spec_logits.data(), seq_logits.data(), spec_logits.size() * sizeof(float)))
        << "verify rows differ from sequential decoding";
    ASSERT_TRUE(spec.rollback(1, P + 1 + accepted).ok());
    // Reference: a fresh run that fed exactly the kept tokens.
    models::Memory ref(m.memory_layout(), mo);
    {
      std::vector<models::BatchRow> r;
      for (int32_t i = 0; i < P; ++i) r.push_back({1, i, prompt[i], false});
      ASSERT_TRUE(m.forward(r, ref, *f.pool, logits.data()).ok());
      for (int i = 0; i <= accepted; ++i) {
        const models::BatchRow row{1, P + i, verify[i], false};
        ASSERT_TRUE(m.forward(std::span(&row, 1), ref, *f.pool, logits.data()).ok());
      }
    }
    expect_same_state(m, spec, ref, 1, 1);
    // And decoding continues identically.
    const models::BatchRow next{1, P + 1 + accepted, 777, true};
    ASSERT_TRUE(m.forward(std::span(&next, 1), spec, *f.pool, next_spec.data()).ok());
    ASSERT_TRUE(m.forward(std::span(&next, 1), ref, *f.pool, next_plain.data()).ok());
    EXPECT_EQ(0, std::memcmp(next_spec.data(), next_plain.data(), V * sizeof(float))) << "accepted " << accepted;
  }
  // Rolling back outside what the checkpoints cover is an error, not a corruption.
  models::Memory mem(m.memory_layout(), mo);
  EXPECT_FALSE(mem.rollback(0, 1).ok());
}

INSTANTIATE_TEST_SUITE_P(Models, Rollback, ::testing::Values("qwen3next-tiny-mtp", "synthetic-mtp"));

// ---- the engine --------------------------------------------------------------------------------

struct Outcome {
  RequestResult result;
  std::vector<int32_t> tokens;
  std::string text;
};

std::future<Outcome> start(Engine& e, std::shared_ptr<Request> r) {
  auto out = std::make_shared<Outcome>();
  auto done = std::make_shared<std::promise<Outcome>>();
  r->on_token = [out](const TokenEvent& ev) {
    if (ev.token >= 0) out->tokens.push_back(ev.token);
    out->text += ev.text;
  };
  r->on_done = [out, done](const RequestResult& res) {
    out->result = res;
    done->set_value(*out);
  };
  const SubmitError err = e.submit(r);
  EXPECT_EQ(err.kind, SubmitError::kNone) << err.message;
  return done->get_future();
}

std::shared_ptr<Request> request(const std::vector<int32_t>& prompt, int32_t max_tokens, int n_draft,
                                 float temperature = 0.0f, uint64_t seed = 1) {
  auto r = std::make_shared<Request>();
  r->prompt = prompt;
  r->sampling.temperature = temperature;
  r->sampling.seed = seed;
  r->max_tokens = max_tokens;
  r->n_draft = n_draft;
  r->ignore_eos = true;
  return r;
}

class SpecEngine : public ::testing::TestWithParam<std::string> {};

// Eight concurrent streams, every other one drafting (1, 2 or 3 tokens), each equal bit for bit to
// its greedy run alone without drafts.
TEST_P(SpecEngine, GreedyOutputIsUnchangedUnderConcurrentLoad) {
  Fixture& f = fixture(GetParam());
  const std::vector<std::string> prompts = {"one",
                                            "a second, longer prompt with more words in it",
                                            "three",
                                            "the fourth",
                                            "5",
                                            "six six six",
                                            "seventh prompt here",
                                            "8"};
  EngineOptions eo;
  eo.n_ctx = 128;
  std::vector<Outcome> solo;
  {
    Engine e(*f.model, f.tok, *f.pool, eo);
    for (const auto& p : prompts) solo.push_back(start(e, request(f.tok.encode(p, true), 16, 0)).get());
  }
  eo.n_slots = 8;
  Engine e(*f.model, f.tok, *f.pool, eo);
  std::vector<std::future<Outcome>> futs;
  for (size_t i = 0; i < prompts.size(); ++i)
    futs.push_back(
        start(e, request(f.tok.encode(prompts[i], true), 16, i % 2 == 0 ? 1 + static_cast<int>(i / 2) % 3 : 0)));
  int drafted = 0, accepted = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Outcome o = futs[i].get();
    EXPECT_EQ(o.tokens, solo[i].tokens) << prompts[i];
    EXPECT_EQ(o.text, solo[i].text) << prompts[i];
    EXPECT_EQ(o.result.n_drafted > 0, i % 2 == 0) << prompts[i];
    drafted += o.result.n_drafted;
    accepted += o.result.n_accepted;
  }
  const EngineStats st = e.stats();
  EXPECT_EQ(st.drafted_tokens, static_cast<uint64_t>(drafted));
  EXPECT_EQ(st.accepted_tokens, static_cast<uint64_t>(accepted));
  if (GetParam() == "agree") {
    EXPECT_GT(accepted, drafted * 9 / 10);  // the model built to agree
  }
}

// The engine default (n_draft in the options) applies to requests that do not choose; a request
// continuing a drafted conversation restores its prefix from the prefix cache, with the MTP head's
// state, so it drafts at once and still matches the plain run.
TEST_P(SpecEngine, EngineDefaultAndPrefixReuse) {
  Fixture& f = fixture(GetParam());
  EngineOptions eo;
  eo.n_ctx = 512;
  eo.cache.max_bytes = 64ull << 20;
  eo.cache.interval = 64;
  // The two engines are alive at once: one model and one pool each (a model runs one forward at
  // a time and keeps its results, a pool runs one caller's job at a time).
  auto spec_model = models::load_model(f.path);
  ASSERT_TRUE(spec_model.ok()) << spec_model.message();
  ThreadPool plain_pool(2), spec_pool(2);
  Engine plain(*f.model, f.tok, plain_pool, eo);
  eo.n_draft = 3;
  Engine spec(**spec_model, f.tok, spec_pool, eo);
  std::string text = "A conversation that goes on";
  for (int i = 0; i < 12; ++i) text += " and on, word " + std::to_string(i);
  std::vector<int32_t> prompt = f.tok.encode(text, true);
  ASSERT_GT(prompt.size(), 64u);  // a checkpoint boundary inside the first prompt
  for (int turn = 0; turn < 2; ++turn) {
    const Outcome a = start(plain, request(prompt, 12, -1)).get();
    const Outcome b = start(spec, request(prompt, 12, -1)).get();
    EXPECT_EQ(a.tokens, b.tokens) << "turn " << turn;
    EXPECT_EQ(a.result.n_drafted, 0);
    EXPECT_GT(b.result.n_drafted, 0) << "turn " << turn;
    if (turn == 1) {
      EXPECT_GE(b.result.n_cached, 64);
      EXPECT_GE(spec.stats().cache.hits, 1u);
    }
    prompt.insert(prompt.end(), b.tokens.begin(), b.tokens.end());
    const auto more = f.tok.encode(" and more", false);
    prompt.insert(prompt.end(), more.begin(), more.end());
  }
}

// A retry that takes over a prefill abandoned by its client drafts at once: the abandoned
// prefill kept the MTP head in step. Its tokens are those of a plain run.
TEST_P(SpecEngine, ARetryOfAnAbandonedPrefillDrafts) {
  Fixture& f = fixture(GetParam());
  std::string text = "A long question";
  for (int i = 0; i < 60; ++i) text += " with part " + std::to_string(i);
  const std::vector<int32_t> prompt = f.tok.encode(text, true);
  ASSERT_GT(prompt.size(), 200u);
  EngineOptions eo;
  eo.n_ctx = 512;
  eo.n_batch = 128;  // the prompt takes several steps
  Outcome plain;
  {
    Engine e(*f.model, f.tok, *f.pool, eo);
    plain = start(e, request(prompt, 10, 0)).get();
  }
  eo.n_draft = 2;
  Engine e(*f.model, f.tok, *f.pool, eo);
  auto first = request(prompt, 10, -1);
  std::future<Outcome> retry;
  std::weak_ptr<Request> weak = first;
  first->on_prefill = [&, weak](int32_t done, int32_t total) {
    if (done == total || retry.valid()) return;
    if (auto r = weak.lock()) r->cancelled = true;
    retry = start(e, request(prompt, 10, -1));
  };
  ASSERT_EQ(start(e, first).get().result.reason, FinishReason::kCancelled);
  ASSERT_TRUE(retry.valid());
  const Outcome o = retry.get();
  EXPECT_GT(o.result.n_cached, 0);
  EXPECT_EQ(e.stats().prefilled_tokens, prompt.size());
  EXPECT_EQ(o.tokens, plain.tokens);
  EXPECT_GT(o.result.n_drafted, 0);
}

// Sampling with drafts: the same seed gives the same tokens alone and beside other streams (drafts
// do not depend on the batch), and stop strings, max_tokens and logprobs behave as without drafts.
TEST_P(SpecEngine, SampledOutputIsBatchInvariant) {
  Fixture& f = fixture(GetParam());
  EngineOptions eo;
  eo.n_ctx = 128;
  eo.n_slots = 3;
  const std::vector<int32_t> prompt = f.tok.encode("Once upon a time", true);
  Outcome alone;
  {
    Engine e(*f.model, f.tok, *f.pool, eo);
    alone = start(e, request(prompt, 14, 2, 0.8f, 5)).get();
  }
  Engine e(*f.model, f.tok, *f.pool, eo);
  auto other1 = start(e, request(f.tok.encode("something else", true), 20, 3, 1.0f, 9));
  auto mine = start(e, request(prompt, 14, 2, 0.8f, 5));
  auto other2 = start(e, request(f.tok.encode("and another", true), 20, 0, 0.0f));
  const Outcome o = mine.get();
  other1.get();
  other2.get();
  EXPECT_EQ(o.tokens, alone.tokens);
  EXPECT_EQ(o.result.n_generated, 14);
  EXPECT_EQ(o.tokens.size(), 14u);
  EXPECT_GT(o.result.n_drafted, 0);
}

INSTANTIATE_TEST_SUITE_P(Models, SpecEngine, ::testing::Values("qwen3next-tiny-mtp", "agree"));

TEST(SpecEngine, ModelWithoutMtpIsAClearError) {
  Fixture& f = fixture("qwen3next-tiny");
  const Status st = check_speculative(*f.model, 2);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no MTP"), std::string::npos) << st.message();
  EngineOptions eo;
  eo.n_ctx = 64;
  Engine e(*f.model, f.tok, *f.pool, eo);
  const SubmitError err = e.submit(request(f.tok.encode("hi", true), 4, 2));
  EXPECT_EQ(err.kind, SubmitError::kInvalid);
  EXPECT_NE(err.message.find("no MTP"), std::string::npos) << err.message;
  EXPECT_FALSE(check_speculative(*fixture("qwen3next-tiny-mtp").model, kMaxDraft + 1).ok());
}

}  // namespace
}  // namespace hylo::runtime

namespace hylo::runtime {
namespace {

// `hylo run --spec mtp`: the same text as without drafts, the summary reports the drafts; a model
// without an MTP block is refused with a message that says why.
TEST(SpecCli, RunWithMtpMatchesRunWithout) {
  const std::string model = test::fixture_model("qwen3next-tiny-mtp");
  const std::string base = test::hylo_binary() + " run -m " + model + " -t 2 -c 256 --temp 0 -n 24 --raw 'Hello there'";
  std::string plain, spec, refused;
  // run_command adds 2>&1 to the whole line: the subshells choose the stream kept.
  ASSERT_EQ(test::run_command("(" + base + " 2>/dev/null)", &plain), 0) << plain;
  ASSERT_EQ(test::run_command("(" + base + " --spec mtp --draft 3 2>&1 >/dev/null)", &spec), 0) << spec;
  EXPECT_NE(spec.find("drafted"), std::string::npos) << spec;
  std::string spec_out;
  ASSERT_EQ(test::run_command("(" + base + " --enable-mtp 2>/dev/null)", &spec_out), 0);
  EXPECT_EQ(spec_out, plain);
  EXPECT_NE(test::run_command(
                test::hylo_binary() + " run -m " + test::fixture_model("qwen3next-tiny") + " -n 4 --raw --spec mtp hi",
                &refused),
            0);
  EXPECT_NE(refused.find("no MTP"), std::string::npos) << refused;
}

}  // namespace
}  // namespace hylo::runtime
