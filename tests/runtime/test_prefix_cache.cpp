// The prefix cache and slot admission: a request served from the cache gives the same bits
// (tokens and log-probabilities) as the same request prefilled from scratch, also after eviction
// and under concurrent use; the byte budget holds under any pattern; a conversation keeps its
// slot when another one takes a turn in between.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <random>

#include "common/fixtures.h"
#include "models/model.h"
#include "runtime/engine.h"
#include "runtime/prefix_cache.h"
#include "tokenizer/tokenizer.h"

namespace hylo::runtime {
namespace {

struct Fixture {
  std::unique_ptr<models::Model> model;
  tokenizer::Tokenizer tok;
  std::unique_ptr<ThreadPool> pool;
  // The from-scratch reference runs beside the engine under test: a model (one engine each) and
  // a pool of its own.
  std::unique_ptr<models::Model> reference;
  std::unique_ptr<ThreadPool> reference_pool;
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
  auto ref = models::load_model(test::fixture_model(name));
  EXPECT_TRUE(ref.ok()) << ref.message();
  f.reference = std::move(*ref);
  f.reference_pool = std::make_unique<ThreadPool>(2);
  return cache.emplace(name, std::move(f)).first->second;
}

// What a request produced, down to the bits of each step's log-probabilities.
struct Outcome {
  RequestResult result;
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;  // per token: its own, then the top 3
};

std::shared_ptr<Request> greedy(std::vector<int32_t> prompt, int32_t max_tokens) {
  auto r = std::make_shared<Request>();
  r->prompt = std::move(prompt);
  r->sampling.temperature = 0;
  r->max_tokens = max_tokens;
  r->n_probs = 3;
  return r;
}

std::future<Outcome> start(Engine& e, std::shared_ptr<Request> r) {
  auto out = std::make_shared<Outcome>();
  auto done = std::make_shared<std::promise<Outcome>>();
  r->on_token = [out](const TokenEvent& ev) {
    if (ev.token < 0) return;
    out->tokens.push_back(ev.token);
    out->logprobs.push_back(ev.logprob);
    for (const TokenProb& t : ev.top) out->logprobs.push_back(t.logprob);
  };
  r->on_done = [out, done](const RequestResult& res) {
    out->result = res;
    done->set_value(*out);
  };
  auto fut = done->get_future();
  const SubmitError err = e.submit(r);
  EXPECT_EQ(err.kind, SubmitError::kNone) << err.message;
  return fut;
}

Outcome run(Engine& e, std::shared_ptr<Request> r) { return start(e, std::move(r)).get(); }

// Token ids drawn from the ordinary part of the vocabulary.
std::vector<int32_t> random_tokens(std::mt19937& rng, int n) {
  std::uniform_int_distribution<int32_t> d(1000, 20000);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

EngineOptions options(int slots, uint64_t cache_bytes, int32_t interval = 128) {
  EngineOptions eo;
  eo.n_ctx = 1024;
  eo.n_slots = slots;
  eo.n_batch = 256;
  eo.kv_type = TensorType::kF32;
  eo.cache.max_bytes = cache_bytes;
  eo.cache.interval = interval;
  return eo;
}

// The same request on a fresh engine without any cache.
Outcome from_scratch(Fixture& f, const std::vector<int32_t>& prompt, int32_t max_tokens) {
  Engine e(*f.reference, f.tok, *f.reference_pool, options(1, 0));
  return run(e, greedy(prompt, max_tokens));
}

void expect_same(const Outcome& a, const Outcome& b, const std::string& what) {
  EXPECT_EQ(a.tokens, b.tokens) << what;
  ASSERT_EQ(a.logprobs.size(), b.logprobs.size()) << what;
  for (size_t i = 0; i < a.logprobs.size(); ++i)
    ASSERT_EQ(a.logprobs[i], b.logprobs[i]) << what << ": log-probability " << i << " differs";
}

class PrefixCacheTest : public ::testing::TestWithParam<std::string> {};

// Conversations A and B take turns on two slots: A's next turn finds A's state in its own slot,
// because B went to the empty slot instead of A's.
TEST_P(PrefixCacheTest, AnotherConversationDoesNotTakeTheSlotOfTheFirst) {
  Fixture& f = fixture(GetParam());
  std::mt19937 rng(1);
  const auto a1 = random_tokens(rng, 150), b1 = random_tokens(rng, 150);
  Engine e(*f.model, f.tok, *f.pool, options(2, 0));
  run(e, greedy(a1, 4));
  run(e, greedy(b1, 4));
  // The identical prompt again is served whole from the slot (any model); an attention-only model
  // also continues a longer prompt from its slot's KV cache.
  Outcome again = run(e, greedy(a1, 4));
  EXPECT_EQ(again.result.n_cached, again.result.n_prompt);
  Outcome b_again = run(e, greedy(b1, 4));
  EXPECT_EQ(b_again.result.n_cached, b_again.result.n_prompt);
  if (!f.model->memory_layout().recurrent.empty()) return;
  Outcome a2 = run(e, greedy(concat(a1, random_tokens(rng, 20)), 4));
  EXPECT_EQ(a2.result.n_cached, 150);
}

// A client that gives up during a long prefill and sends the same request again: the first
// request is cancelled (the client left), but the checkpoints its prefill passed stay, so the
// retry resumes from the last one instead of prefilling from zero, with the bits of a full prefill.
TEST_P(PrefixCacheTest, ARetryAfterAnAbandonedPrefillResumesFromItsCheckpoints) {
  Fixture& f = fixture(GetParam());
  std::mt19937 rng(7);
  const auto prompt = random_tokens(rng, 700);
  Engine e(*f.model, f.tok, *f.pool, options(1, 64ull << 20));
  auto first = greedy(prompt, 4);
  std::weak_ptr<Request> weak = first;
  first->on_prefill = [weak](int32_t done, int32_t) {
    if (done >= 512)
      if (auto r = weak.lock()) r->cancelled = true;  // the client times out here
  };
  const Outcome abandoned = run(e, first);
  EXPECT_EQ(abandoned.result.reason, FinishReason::kCancelled);
  EXPECT_TRUE(abandoned.tokens.empty());
  const Outcome retry = run(e, greedy(prompt, 4));
  EXPECT_GE(retry.result.n_cached, 512);  // the checkpoint at the point the first one reached
  expect_same(retry, from_scratch(f, prompt, 4), "retry");
}

// The identical retry that arrives while the abandoned prefill is still going takes it over:
// every prompt token is prefilled once in all, without any prefix cache, and the answer has the
// bits of a prefill from scratch.
TEST_P(PrefixCacheTest, ARetryTakesOverTheAbandonedPrefill) {
  Fixture& f = fixture(GetParam());
  std::mt19937 rng(8);
  const auto prompt = random_tokens(rng, 700);
  Engine e(*f.model, f.tok, *f.pool, options(1, 0));
  auto first = greedy(prompt, 4);
  std::future<Outcome> retry;
  std::weak_ptr<Request> weak = first;
  first->on_prefill = [&, weak](int32_t done, int32_t) {
    if (done < 256 || retry.valid()) return;
    if (auto r = weak.lock()) r->cancelled = true;  // the client times out here and sends it again
    retry = start(e, greedy(prompt, 4));
  };
  const Outcome abandoned = run(e, first);
  EXPECT_EQ(abandoned.result.reason, FinishReason::kCancelled);
  EXPECT_TRUE(abandoned.tokens.empty());
  const Outcome o = retry.get();
  EXPECT_GE(o.result.n_cached, 256);
  EXPECT_LT(o.result.n_cached, static_cast<int32_t>(prompt.size()));  // taken over half-way
  EXPECT_EQ(e.stats().prefilled_tokens, prompt.size());
  EXPECT_EQ(e.stats().requests_done, 2u);
  expect_same(o, from_scratch(f, prompt, 4), "retry");
}

// The retry may reach the engine before the first request's cancellation does, and start in
// another slot: once the first is abandoned, the retry moves to its slot, where more is done.
TEST_P(PrefixCacheTest, ARetryThatCameFirstMovesToTheAbandonedPrefill) {
  Fixture& f = fixture(GetParam());
  std::mt19937 rng(10);
  const auto prompt = random_tokens(rng, 900);
  Engine e(*f.model, f.tok, *f.pool, options(2, 0));  // 256 prompt tokens a step
  auto first = greedy(prompt, 4);
  std::future<Outcome> retry;
  std::weak_ptr<Request> weak = first;
  first->on_prefill = [&, weak](int32_t done, int32_t) {
    if (done == 256) retry = start(e, greedy(prompt, 4));  // admitted beside the first
    if (done == 512)
      if (auto r = weak.lock()) r->cancelled = true;
  };
  EXPECT_EQ(run(e, first).result.reason, FinishReason::kCancelled);
  ASSERT_TRUE(retry.valid());
  const Outcome o = retry.get();
  EXPECT_EQ(o.result.n_cached, 512);
  EXPECT_EQ(e.stats().prefilled_tokens, prompt.size());
  expect_same(o, from_scratch(f, prompt, 4), "retry");
}

// An abandoned prefill goes on only while no other request wants its slot; once finished, the
// identical retry finds the whole prompt in the slot.
TEST_P(PrefixCacheTest, AnAbandonedPrefillYieldsItsSlotOrFinishesForTheRetry) {
  Fixture& f = fixture(GetParam());
  std::mt19937 rng(9);
  const auto prompt = random_tokens(rng, 700), other = random_tokens(rng, 100);
  {
    Engine e(*f.model, f.tok, *f.pool, options(1, 0));
    auto first = greedy(prompt, 4);
    std::future<Outcome> next;
    std::weak_ptr<Request> weak = first;
    first->on_prefill = [&, weak](int32_t done, int32_t) {
      if (done < 256 || next.valid()) return;
      if (auto r = weak.lock()) r->cancelled = true;
      next = start(e, greedy(other, 3));
    };
    run(e, first);
    const Outcome o = next.get();
    expect_same(o, from_scratch(f, other, 3), "the request that took the slot");
    EXPECT_EQ(o.result.n_cached, 0);
    EXPECT_LT(e.stats().prefilled_tokens, prompt.size() + other.size());  // the abandoned one stopped
  }
  Engine e(*f.model, f.tok, *f.pool, options(1, 0));
  auto first = greedy(prompt, 4);
  std::weak_ptr<Request> weak = first;
  first->on_prefill = [weak](int32_t done, int32_t) {
    if (done >= 256)
      if (auto r = weak.lock()) r->cancelled = true;
  };
  run(e, first);
  // Whether the retry comes before or after the abandoned prefill ends, nothing is computed twice.
  const Outcome retry = run(e, greedy(prompt, 4));
  EXPECT_GE(retry.result.n_cached, 256);
  EXPECT_EQ(e.stats().prefilled_tokens, prompt.size());
  expect_same(retry, from_scratch(f, prompt, 4), "retry");
}

// Each turn of a conversation restores the state of the previous turn's prompt from the cache,
// and the answer is bit for bit the one a prefill from scratch gives.
TEST_P(PrefixCacheTest, LaterTurnsReuseTheCacheWithTheSameBits) {
  Fixture& f = fixture(GetParam());
  std::mt19937 rng(2);
  Engine e(*f.model, f.tok, *f.pool, options(1, 64ull << 20));
  std::vector<int32_t> prompt = random_tokens(rng, 200);
  for (int turn = 0; turn < 3; ++turn) {
    Outcome o = run(e, greedy(prompt, 6));
    expect_same(o, from_scratch(f, prompt, 6), "turn " + std::to_string(turn));
    if (turn > 0) {
      // The previous prompt's last block boundary (or more, from the slot) was reused.
      EXPECT_GE(o.result.n_cached, 192) << "turn " << turn;
    }
    // Another conversation in between takes the slot.
    run(e, greedy(random_tokens(rng, 70), 2));
    prompt = concat(concat(prompt, o.tokens), random_tokens(rng, 90));
  }
  const EngineStats st = e.stats();
  EXPECT_GE(st.cache.hits, 2u);
  EXPECT_GE(st.cache.tokens_reused, 2u * 192);
  EXPECT_LE(st.cache.bytes, st.cache.max_bytes);
}

// An edit in the middle of a conversation reuses the checkpoint before the edit.
TEST_P(PrefixCacheTest, AnEditedEarlierMessageRestartsFromTheCheckpointBeforeIt) {
  Fixture& f = fixture(GetParam());
  std::mt19937 rng(3);
  Engine e(*f.model, f.tok, *f.pool, options(1, 64ull << 20));
  std::vector<int32_t> prompt = random_tokens(rng, 600);
  run(e, greedy(prompt, 2));
  run(e, greedy(random_tokens(rng, 30), 2));  // the slot goes to someone else
  prompt[300] = prompt[300] + 1;              // kept checkpoints: 128, 256, 384, 512, 576
  Outcome o = run(e, greedy(prompt, 5));
  EXPECT_EQ(o.result.n_cached, 256);
  expect_same(o, from_scratch(f, prompt, 5), "edited");
}

// A budget that holds a few checkpoints: it is never exceeded, old entries are evicted, and what
// is served after eviction still has the bits of a prefill from scratch.
TEST_P(PrefixCacheTest, TheBudgetHoldsAndEvictionKeepsReuseExact) {
  Fixture& f = fixture(GetParam());
  const models::MemoryLayout layout = f.model->memory_layout();
  // About two prompts' worth of checkpoints.
  const uint64_t per_token = layout.kv_bytes_per_token(TensorType::kF32);
  const uint64_t budget = 2 * (300 * per_token + 3 * layout.recurrent_bytes_per_sequence());
  Engine e(*f.model, f.tok, *f.pool, options(1, budget));
  std::mt19937 rng(4);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 6; ++i) {
    prompts.push_back(random_tokens(rng, 300));
    run(e, greedy(prompts.back(), 1));
    EXPECT_LE(e.stats().cache.bytes, budget) << "after prompt " << i;
  }
  EXPECT_GT(e.stats().cache.evictions, 0u);
  // The first prompts were evicted (fully or partly); the last one is cached.
  for (int i : {0, 5}) {
    const auto longer = concat(prompts[i], random_tokens(rng, 40));
    Outcome o = run(e, greedy(longer, 4));
    expect_same(o, from_scratch(f, longer, 4), "prompt " + std::to_string(i));
    if (i == 5) {
      EXPECT_EQ(o.result.n_cached, 256);
    }
    EXPECT_LE(e.stats().cache.bytes, budget);
  }
}

// Several slots restoring and saving at once, all sharing one system prompt.
TEST_P(PrefixCacheTest, ConcurrentRequestsGetTheirSoloBits) {
  Fixture& f = fixture(GetParam());
  std::mt19937 rng(5);
  const auto system = random_tokens(rng, 260);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 5; ++i) prompts.push_back(concat(system, random_tokens(rng, 30 + 40 * i)));
  Engine e(*f.model, f.tok, *f.pool, options(3, 64ull << 20));
  run(e, greedy(system, 1));
  std::vector<std::future<Outcome>> futs;
  for (const auto& p : prompts) futs.push_back(start(e, greedy(p, 5)));
  std::vector<Outcome> got;
  for (auto& fut : futs) got.push_back(fut.get());  // before another engine uses the model
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Outcome& o = got[i];
    expect_same(o, from_scratch(f, prompts[i], 5), "prompt " + std::to_string(i));
    EXPECT_GE(o.result.n_cached, 256) << "prompt " << i;
  }
}

// The disk tier does not depend on the architecture: the hybrid model (KV and recurrent state) only.
class PrefixCacheDiskTest : public PrefixCacheTest {};

size_t checkpoint_files(const std::string& dir) {
  size_t n = 0;
  for (const auto& de : std::filesystem::directory_iterator(dir)) n += de.path().extension() == ".ckpt";
  return n;
}

// Checkpoints evicted from RAM go to disk and come back; what is in RAM at exit is written too,
// and read by the next engine (a restart). The bits stay those of a prefill from scratch.
TEST_P(PrefixCacheDiskTest, DiskTierRoundTripAlsoAcrossARestart) {
  Fixture& f = fixture(GetParam());
  const std::string dir = test::scratch_path("checkpoints-" + GetParam());
  std::filesystem::remove_all(dir);
  const models::MemoryLayout layout = f.model->memory_layout();
  // One prompt's worth of RAM: the next prompt pushes the previous one to disk.
  EngineOptions eo =
      options(1, 300 * layout.kv_bytes_per_token(TensorType::kF32) + 3 * layout.recurrent_bytes_per_sequence());
  eo.cache.dir = dir;
  eo.cache.disk_bytes = 1ull << 30;
  std::mt19937 rng(7);
  const auto a = random_tokens(rng, 300), b = random_tokens(rng, 300);
  const auto a2 = concat(a, random_tokens(rng, 40)), b2 = concat(b, random_tokens(rng, 40));
  {
    Engine e(*f.model, f.tok, *f.pool, eo);
    run(e, greedy(a, 1));
    run(e, greedy(b, 1));
    EXPECT_GE(e.stats().cache.disk_writes, 1u);
    Outcome o = run(e, greedy(a2, 4));
    EXPECT_EQ(o.result.n_cached, 256);
    EXPECT_EQ(e.stats().cache.disk_reads, 1u);
    expect_same(o, from_scratch(f, a2, 4), "a from disk");
  }
  EXPECT_GE(checkpoint_files(dir), 2u);
  Engine e(*f.model, f.tok, *f.pool, eo);
  for (const auto& p : {b2, a2}) {
    Outcome o = run(e, greedy(p, 4));
    EXPECT_GE(o.result.n_cached, 256);  // a2's own end (320) too, if it was still in RAM at exit
    expect_same(o, from_scratch(f, p, 4), "after the restart");
  }
  EXPECT_GE(e.stats().cache.disk_reads + e.stats().cache.hits, 2u);
  EXPECT_EQ(e.stats().cache.disk_rejected, 0u);
}

// A damaged file, a foreign one and one that is not a checkpoint at all: each is reported and
// ignored, and the request is served exactly by prefilling.
TEST_P(PrefixCacheDiskTest, CorruptAndForeignFilesAreIgnored) {
  Fixture& f = fixture(GetParam());
  const std::string dir = test::scratch_path("corrupt-" + GetParam());
  std::filesystem::remove_all(dir);
  EngineOptions eo = options(1, 64ull << 20);
  eo.cache.dir = dir;
  eo.cache.disk_bytes = 1ull << 30;
  std::mt19937 rng(8);
  const auto a = random_tokens(rng, 300), b = random_tokens(rng, 200);
  {
    Engine e(*f.model, f.tok, *f.pool, eo);
    run(e, greedy(a, 1));
    run(e, greedy(b, 1));
  }
  ASSERT_EQ(checkpoint_files(dir), 2u);
  std::vector<std::filesystem::path> files;
  for (const auto& de : std::filesystem::directory_iterator(dir)) files.push_back(de.path());
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    const auto size = std::filesystem::file_size(path);
    std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
    char c = 0;
    if (path.string().ends_with("-256.ckpt")) {  // a's: one bit of its state flipped near the end
      io.seekg(static_cast<std::streamoff>(size - 100));
      io.get(c);
      io.seekp(static_cast<std::streamoff>(size - 100));
      io.put(static_cast<char>(c ^ 1));
    } else {  // b's: written for another model
      io.seekp(8);
      io.put('x');
    }
  }
  std::ofstream(dir + "/junk.ckpt") << "not a checkpoint";
  Engine e(*f.model, f.tok, *f.pool, eo);
  EXPECT_EQ(e.stats().cache.disk_rejected, 2u);  // the foreign file and the junk, at start
  for (const auto& p : {concat(a, random_tokens(rng, 10)), concat(b, random_tokens(rng, 10))}) {
    Outcome o = run(e, greedy(p, 4));
    EXPECT_EQ(o.result.n_cached, 0);
    expect_same(o, from_scratch(f, p, 4), "ignored file");
  }
  EXPECT_EQ(e.stats().cache.disk_rejected, 3u);  // and the damaged one, when read
  EXPECT_EQ(e.stats().cache.disk_reads, 0u);
}

INSTANTIATE_TEST_SUITE_P(Models, PrefixCacheTest, ::testing::Values("qwen3next-tiny", "qwen3moe-tiny"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) c = c == '-' ? '_' : c;
                           return s;
                         });
INSTANTIATE_TEST_SUITE_P(Models, PrefixCacheDiskTest, ::testing::Values("qwen3next-tiny"), [](const auto& info) {
  std::string s = info.param;
  for (char& c : s) c = c == '-' ? '_' : c;
  return s;
});

// The cache on its own, over a synthetic memory: random prompts sharing prefixes, inserted at
// random block boundaries; the budget holds after every insert, and every restore rebuilds the
// exact KV rows and recurrent state that were saved.
TEST(PrefixCache, BudgetHoldsUnderRandomPatternsAndRestoresAreExact) {
  models::MemoryLayout layout;
  layout.n_layer = 2;
  layout.kv.push_back({0, 2, 8});
  layout.recurrent.push_back({1, 3, 16, 2, 4, 4});
  models::MemoryOptions mo;
  mo.n_seq = 2;
  mo.n_ctx = 2048;
  mo.kv_type = TensorType::kF32;
  models::Memory mem(layout, mo);
  // The state after token t is a function of the tokens so far, like a model's.
  auto fill = [&](int seq, const std::vector<int32_t>& tokens, int32_t n) {
    mem.clear(seq);
    ops::KvSeqCache& kv = mem.kv(0, seq);
    ops::RecurrentSeqState& rs = mem.recurrent(1, seq);
    float acc = 0;
    for (int32_t p = 0; p < n; ++p) {
      acc = acc * 0.5f + static_cast<float>(tokens[p] % 97);
      std::vector<float> k(16, acc), v(16, -acc);
      kv.store(p, k.data(), v.data());
    }
    std::fill(rs.conv.begin(), rs.conv.end(), acc);
    std::fill(rs.ssm.begin(), rs.ssm.end(), acc + 1);
    mem.set_seq_len(seq, n);
  };
  PrefixCacheOptions po;
  po.max_bytes = 120000;
  po.interval = 128;
  PrefixCache cache(po);
  std::mt19937 rng(6);
  std::vector<std::vector<int32_t>> stems;
  for (int i = 0; i < 4; ++i) stems.push_back(random_tokens(rng, 256));
  for (int iter = 0; iter < 200; ++iter) {
    std::vector<int32_t> tokens = stems[rng() % stems.size()];
    tokens.resize(64 * (1 + rng() % 4));
    tokens = concat(tokens, random_tokens(rng, 64 * (1 + static_cast<int>(rng() % 6))));
    const auto hashes = PrefixCache::block_hashes(tokens);
    const int32_t n = static_cast<int32_t>(tokens.size());
    const PrefixCache::Match m = cache.lookup(tokens, hashes, n);
    if (m.n_tokens > 0) {
      ASSERT_TRUE(cache.restore(m, tokens, hashes, mem, 1).ok());
      fill(0, tokens, m.n_tokens);
      ASSERT_EQ(mem.seq_len(1), m.n_tokens);
      std::vector<float> want(m.n_tokens * 16), got(m.n_tokens * 16), want_v(want.size()), got_v(got.size());
      mem.kv(0, 0).read_rows(0, m.n_tokens, reinterpret_cast<uint8_t*>(want.data()),
                             reinterpret_cast<uint8_t*>(want_v.data()));
      mem.kv(0, 1).read_rows(0, m.n_tokens, reinterpret_cast<uint8_t*>(got.data()),
                             reinterpret_cast<uint8_t*>(got_v.data()));
      ASSERT_EQ(want, got) << "iteration " << iter;
      ASSERT_EQ(want_v, got_v) << "iteration " << iter;
      ASSERT_EQ(mem.recurrent(1, 0).ssm, mem.recurrent(1, 1).ssm) << "iteration " << iter;
      ASSERT_EQ(mem.recurrent(1, 0).conv, mem.recurrent(1, 1).conv) << "iteration " << iter;
    }
    for (int32_t b = cache.next_boundary(m.n_tokens, n); b > 0; b = cache.next_boundary(b, n)) {
      fill(0, tokens, b);
      cache.insert(tokens, hashes, mem, 0);
      ASSERT_LE(cache.stats().bytes, po.max_bytes) << "iteration " << iter;
    }
  }
  const PrefixCacheStats st = cache.stats();
  EXPECT_GT(st.hits, 10u);
  EXPECT_GT(st.evictions, 10u);
  EXPECT_GT(st.nodes, 0u);
}

}  // namespace
}  // namespace hylo::runtime
