// Batch invariance: a sequence's logits do not depend on which other sequences share its batch,
// and a prompt prefilled in pieces split at multiples of the DeltaNet chunk gives the same bits
// as one piece. Also: the chunked and recurrent delta rule agree, and memory forks/rewinds.
#include <gtest/gtest.h>

#include <cmath>

#include "common/fixtures.h"
#include "kernels/quant.h"
#include "models/model.h"

namespace hylo {
namespace {

std::vector<int32_t> long_tech_tokens() {
  return test::read_json_file(test::fixtures_dir() + "/logits/qwen3next-tiny/long-tech.json")["token_ids"]
      .get<std::vector<int32_t>>();
}

// kv: invariance must hold for the default cache type (f16) and the quantized ones.
models::Memory make_memory(const models::Model& m, int n_seq, int32_t n_ctx = 512, TensorType kv = TensorType::kF16) {
  models::MemoryOptions mo;
  mo.n_seq = n_seq;
  mo.n_ctx = n_ctx;
  mo.kv_type = kv;
  return models::Memory(m.memory_layout(), mo);
}

// Feeds `tokens` to sequence `seq` in pieces; returns the logits of every position.
std::vector<float> feed(models::Model& m, models::Memory& mem, int seq, const std::vector<int32_t>& tokens,
                        const std::vector<int64_t>& pieces, ThreadPool& pool) {
  const int64_t V = m.info().n_vocab;
  std::vector<float> logits(tokens.size() * V);
  int64_t done = 0;
  for (int64_t n : pieces) {
    std::vector<models::BatchRow> rows;
    const int32_t base = mem.seq_len(seq);
    for (int64_t i = 0; i < n; ++i) rows.push_back({seq, base + static_cast<int32_t>(i), tokens[done + i], true});
    auto st = m.forward(rows, mem, pool, logits.data() + done * V);
    EXPECT_TRUE(st.ok()) << st.message();
    done += n;
  }
  return logits;
}

// Parameter: "model" or "model/kv-type".
class Invariance : public ::testing::TestWithParam<std::string> {
 protected:
  std::string model_name() const { return GetParam().substr(0, GetParam().find('/')); }
  TensorType kv() const {
    const size_t slash = GetParam().find('/');
    return slash == std::string::npos ? TensorType::kF16 : *tensor_type_from_name(GetParam().substr(slash + 1));
  }
};

TEST_P(Invariance, SequencesDoNotInfluenceEachOther) {
  auto model = models::load_model(test::fixture_model(model_name()));
  ASSERT_TRUE(model.ok()) << model.message();
  models::Model& m = **model;
  const int64_t V = m.info().n_vocab;
  ThreadPool pool(2);
  const auto all = long_tech_tokens();
  const std::vector<std::vector<int32_t>> prompts = {
      {all.begin(), all.begin() + 70}, {all.begin() + 70, all.begin() + 75}, {all.begin() + 100, all.begin() + 133}};

  // Alone: each sequence prefilled, then two decode steps, in a memory of its own.
  std::vector<std::vector<float>> alone;
  for (const auto& p : prompts) {
    auto mem = make_memory(m, 1, 512, kv());
    auto l = feed(m, mem, 0, p, {static_cast<int64_t>(p.size())}, pool);
    auto s1 = feed(m, mem, 0, {p[0]}, {1}, pool);
    auto s2 = feed(m, mem, 0, {p[1]}, {1}, pool);
    l.insert(l.end(), s1.begin(), s1.end());
    l.insert(l.end(), s2.begin(), s2.end());
    alone.push_back(std::move(l));
  }
  // Together: one batch with all three prompts, then batched decode steps.
  auto mem = make_memory(m, 3, 512, kv());
  std::vector<models::BatchRow> rows;
  for (int s = 0; s < 3; ++s)
    for (size_t i = 0; i < prompts[s].size(); ++i) rows.push_back({s, static_cast<int32_t>(i), prompts[s][i], true});
  std::vector<float> logits(rows.size() * V);
  ASSERT_TRUE(m.forward(rows, mem, pool, logits.data()).ok());
  size_t offset = 0;
  for (int s = 0; s < 3; ++s) {
    const size_t n = prompts[s].size() * V;
    EXPECT_EQ(0, std::memcmp(logits.data() + offset, alone[s].data(), n * sizeof(float)))
        << "prefill of sequence " << s;
    offset += n;
  }
  for (int step = 0; step < 2; ++step) {
    std::vector<models::BatchRow> dec;
    for (int s = 0; s < 3; ++s) dec.push_back({s, mem.seq_len(s), prompts[s][step], true});
    std::vector<float> out(3 * V);
    ASSERT_TRUE(m.forward(dec, mem, pool, out.data()).ok());
    for (int s = 0; s < 3; ++s)
      EXPECT_EQ(0, std::memcmp(out.data() + s * V, alone[s].data() + (prompts[s].size() + step) * V, V * sizeof(float)))
          << "decode step " << step << " of sequence " << s;
  }
}

// The load-time repack (interleaved images of the matrices) changes where the weights are read
// from, never the result: prefill and decode logits equal those of the weights in place.
TEST(Repack, RepackedWeightsGiveTheSameBits) {
  for (const char* name : {"qwen3next-tiny", "qwen3moe-tiny", "qwen3next-tiny-q8", "qwen3moe-tiny-q8"}) {
    SCOPED_TRACE(name);
    auto packed = models::load_model(test::fixture_model(name), {.repack = true});
    auto in_place = models::load_model(test::fixture_model(name), {.repack = false});
    ASSERT_TRUE(packed.ok() && in_place.ok());
    EXPECT_EQ((*in_place)->info().repacked_bytes, 0u);
    if (kernels::matmul_kernel(TensorType::kF32)->gemm_image != nullptr) {
      EXPECT_GT((*packed)->info().repacked_bytes, 0u);
    }
    ThreadPool pool(2);
    const auto all = long_tech_tokens();
    const std::vector<int32_t> tokens(all.begin(), all.begin() + 90);
    auto mem1 = make_memory(**packed, 1);
    auto mem2 = make_memory(**in_place, 1);
    const auto a = feed(**packed, mem1, 0, tokens, {80, 1, 1, 1, 7}, pool);
    const auto b = feed(**in_place, mem2, 0, tokens, {80, 1, 1, 1, 7}, pool);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
  }
}

TEST_P(Invariance, PrefillSplitAtChunkMultiplesIsBitIdentical) {
  auto model = models::load_model(test::fixture_model(model_name()));
  ASSERT_TRUE(model.ok());
  ThreadPool pool(2);
  const auto tokens = long_tech_tokens();
  auto mem1 = make_memory(**model, 1, 512, kv());
  auto whole = feed(**model, mem1, 0, tokens, {329}, pool);
  auto mem2 = make_memory(**model, 1, 512, kv());
  auto pieces = feed(**model, mem2, 0, tokens, {64, 128, 137}, pool);  // boundaries 64 and 192
  EXPECT_EQ(0, std::memcmp(whole.data(), pieces.data(), whole.size() * sizeof(float)));
}

TEST_P(Invariance, ForkedSequenceContinuesIdentically) {
  auto model = models::load_model(test::fixture_model(model_name()));
  ASSERT_TRUE(model.ok());
  ThreadPool pool(2);
  const auto tokens = long_tech_tokens();
  auto mem = make_memory(**model, 2, 512, kv());
  feed(**model, mem, 0, {tokens.begin(), tokens.begin() + 40}, {40}, pool);
  ASSERT_TRUE(mem.copy(0, 1).ok());
  EXPECT_EQ(mem.seq_len(1), 40);
  auto a = feed(**model, mem, 0, {tokens[40], tokens[41]}, {1, 1}, pool);
  auto b = feed(**model, mem, 1, {tokens[40], tokens[41]}, {1, 1}, pool);
  EXPECT_EQ(a, b);
  mem.clear(1);
  EXPECT_EQ(mem.seq_len(1), 0);
}

// The work of every product, attention and delta rule is split by the number of threads; each
// output is still computed by one thread in one order, so a machine with more cores gives the
// same tokens. 3 and 8 threads split the tiny model's rows, experts and heads unevenly, and 8
// leaves some threads without work in the small products.
TEST_P(Invariance, ThreadCountDoesNotChangeTheBits) {
  auto model = models::load_model(test::fixture_model(model_name()));
  ASSERT_TRUE(model.ok());
  const auto all = long_tech_tokens();
  const std::vector<int32_t> tokens(all.begin(), all.begin() + 100);
  std::vector<std::vector<float>> runs;
  for (int threads : {1, 3, 8}) {
    ThreadPool pool(threads);
    auto mem = make_memory(**model, 1, 512, kv());
    runs.push_back(feed(**model, mem, 0, tokens, {97, 1, 1, 1}, pool));  // prefill, then decode steps
  }
  for (size_t i = 1; i < runs.size(); ++i) {
    ASSERT_EQ(runs[0].size(), runs[i].size());
    EXPECT_EQ(0, std::memcmp(runs[0].data(), runs[i].data(), runs[0].size() * sizeof(float))) << "run " << i;
  }
}

std::string param_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& c : s) c = c == '-' || c == '/' ? '_' : c;
  return s;
}
INSTANTIATE_TEST_SUITE_P(Models, Invariance, ::testing::Values("qwen3next-tiny", "qwen3moe-tiny"), param_name);
INSTANTIATE_TEST_SUITE_P(QuantizedKv, Invariance, ::testing::Values("qwen3next-tiny/q8_0", "qwen3moe-tiny/q4_0"),
                         param_name);

TEST(DeltaRule, ChunkedAndRecurrentFormsAgree) {
  auto model = models::load_model(test::fixture_model("qwen3next-tiny"));
  ASSERT_TRUE(model.ok());
  ThreadPool pool(2);
  const auto tokens = long_tech_tokens();
  (*model)->options().delta_mode = ops::DeltaMode::kRecurrent;
  auto mem1 = make_memory(**model, 1);
  auto rec = feed(**model, mem1, 0, tokens, {329}, pool);
  (*model)->options().delta_mode = ops::DeltaMode::kChunked;
  auto mem2 = make_memory(**model, 1);
  auto chk = feed(**model, mem2, 0, tokens, {329}, pool);
  double max_diff = 0;
  for (size_t i = 0; i < rec.size(); ++i)
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(rec[i] - chk[i])));
  // Same math, other summation order; logits are O(10) and each form is within 2.4e-4 of
  // llama.cpp on this case (its own step-vs-batch difference is 5.3e-5).
  EXPECT_LT(max_diff, 5e-4);
  EXPECT_GT(max_diff, 0.0);  // and the chunked form really ran
}

TEST(Memory, RecurrentModelsRewindOnlyToSnapshots) {
  auto model = models::load_model(test::fixture_model("qwen3next-tiny"));
  ASSERT_TRUE(model.ok());
  ThreadPool pool(2);
  const auto tokens = long_tech_tokens();
  auto mem = make_memory(**model, 1);
  feed(**model, mem, 0, {tokens.begin(), tokens.begin() + 10}, {10}, pool);
  mem.snapshot(0);
  auto next = feed(**model, mem, 0, {tokens[10]}, {1}, pool);
  auto bad = mem.truncate(0, 5);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("snapshot"), std::string::npos) << bad.message();
  ASSERT_TRUE(mem.truncate(0, 10).ok());
  EXPECT_EQ(mem.seq_len(0), 10);
  EXPECT_EQ(feed(**model, mem, 0, {tokens[10]}, {1}, pool), next);  // rewound state gives the same bits
}

TEST(Memory, AttentionModelsTruncateAnywhere) {
  auto model = models::load_model(test::fixture_model("qwen3moe-tiny"));
  ASSERT_TRUE(model.ok());
  ThreadPool pool(2);
  const auto tokens = long_tech_tokens();
  auto mem = make_memory(**model, 1);
  auto first = feed(**model, mem, 0, {tokens.begin(), tokens.begin() + 12}, {12}, pool);
  ASSERT_TRUE(mem.truncate(0, 7).ok());
  auto again = feed(**model, mem, 0, {tokens.begin() + 7, tokens.begin() + 12}, {5}, pool);
  const int64_t V = (*model)->info().n_vocab;
  EXPECT_EQ(0, std::memcmp(again.data(), first.data() + 7 * V, 5 * V * sizeof(float)));
}

}  // namespace
}  // namespace hylo

namespace hylo {
namespace {

// Past 2,048 keys attention works in splits; decode rows compute them on separate threads and
// merge, prefill blocks one after another. Both must give the same bits: prefilling 2,200 tokens
// at once equals prefilling 2,176 and decoding the last 24 one by one (their DeltaNet positions
// fall in a partial chunk, which is recurrent either way).
TEST_P(Invariance, LongContextDecodeEqualsPrefill) {
  auto model = models::load_model(test::fixture_model(model_name()));
  ASSERT_TRUE(model.ok());
  models::Model& m = **model;
  ThreadPool pool(2);
  std::vector<int32_t> tokens(2200);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 7919 + 13) % 150000);
  const int64_t V = m.info().n_vocab;
  auto run = [&](const std::vector<int64_t>& pieces) {
    auto mem = make_memory(m, 1, 4096, kv());
    std::vector<float> out;
    int32_t done = 0;
    for (int64_t n : pieces) {
      std::vector<models::BatchRow> rows;
      for (int64_t i = 0; i < n; ++i, ++done) rows.push_back({0, done, tokens[done], done >= 2176});
      const auto n_logits = std::count_if(rows.begin(), rows.end(), [](const auto& r) { return r.logits; });
      std::vector<float> logits(V * n_logits);
      EXPECT_TRUE(m.forward(rows, mem, pool, logits.data()).ok());
      out.insert(out.end(), logits.begin(), logits.end());
    }
    return out;
  };
  const auto whole = run({2200});
  std::vector<int64_t> pieces = {2176};
  for (int i = 0; i < 24; ++i) pieces.push_back(1);
  const auto stepped = run(pieces);
  ASSERT_EQ(whole.size(), 24u * V);
  ASSERT_EQ(stepped.size(), whole.size());
  EXPECT_EQ(0, std::memcmp(whole.data(), stepped.data(), whole.size() * sizeof(float)));
}

}  // namespace
}  // namespace hylo
