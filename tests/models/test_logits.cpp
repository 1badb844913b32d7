// The forward pass against llama.cpp's reference logits (fixtures/logits), in one batch, one
// token at a time, and in uneven prefill pieces; tolerances from fixtures/README.md §2.1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/npy.h"
#include "base/thread_pool.h"
#include "common/fixtures.h"
#include "models/model.h"

namespace hylo {
namespace {

struct Case {
  std::string model, name;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.model << "/" << c.name; }

std::vector<int32_t> vocab_subset() {
  static const std::vector<int32_t> ids = [] {
    auto j = test::read_json_file(test::fixtures_dir() + "/logits/vocab_subset.json");
    return j["ids"].get<std::vector<int32_t>>();
  }();
  return ids;
}

// Runs the tokens through the model in pieces of the given sizes; returns [n][n_vocab] logits.
std::vector<float> run_pieces(models::Model& m, const std::vector<int32_t>& tokens, const std::vector<int64_t>& pieces,
                              ThreadPool& pool) {
  models::MemoryOptions mo;
  mo.n_seq = 1;
  mo.n_ctx = static_cast<int32_t>(tokens.size());
  mo.kv_type = TensorType::kF32;
  models::Memory mem(m.memory_layout(), mo);
  const int64_t V = m.info().n_vocab;
  std::vector<float> logits(tokens.size() * V);
  int64_t done = 0;
  for (int64_t n : pieces) {
    std::vector<models::BatchRow> rows;
    for (int64_t i = 0; i < n; ++i) rows.push_back({0, static_cast<int32_t>(done + i), tokens[done + i], true});
    auto st = m.forward(rows, mem, pool, logits.data() + done * V);
    EXPECT_TRUE(st.ok()) << st.message();
    done += n;
  }
  return logits;
}

double logsumexp(const float* x, int64_t n) {
  const float mx = *std::max_element(x, x + n);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i]) - mx);
  return mx + std::log(s);
}

// Compares against the case file; `strict` = f32 model tolerances, else the loose q8 checks.
void check_against_reference(const nlohmann::json& c, const std::vector<float>& logits, int64_t V,
                             const std::string& model_dir, bool strict, const std::string& what) {
  const auto& positions = c["positions"];
  const size_t n = positions.size();
  std::vector<float> ref;
  if (strict) {
    auto arr = read_npy(model_dir + "/" + c["logits_file"].get<std::string>());
    ASSERT_TRUE(arr.ok()) << arr.message();
    ref.assign(arr->f32(), arr->f32() + arr->numel());
  }
  const auto subset = vocab_subset();
  double max_diff = 0, max_lse = 0;
  int argmax_equal = 0;
  for (size_t p = 0; p < n; ++p) {
    const float* row = logits.data() + p * V;
    for (int64_t i = 0; i < V; ++i) ASSERT_TRUE(std::isfinite(row[i])) << what << " position " << p;
    const int32_t am = static_cast<int32_t>(std::max_element(row, row + V) - row);
    const int32_t ref_am = positions[p]["argmax"].get<int32_t>();
    const auto& top = positions[p]["top20_logits"];
    const double gap = top[0].get<double>() - top[1].get<double>();
    if (am == ref_am) {
      ++argmax_equal;
    } else if (strict) {
      EXPECT_LT(gap, 1e-3) << what << " position " << p << ": argmax " << am << " vs " << ref_am;
    }
    max_lse = std::max(max_lse, std::fabs(logsumexp(row, V) - positions[p]["logsumexp"].get<double>()));
    if (strict) {
      for (size_t j = 0; j < subset.size(); ++j)
        max_diff = std::max(max_diff, static_cast<double>(std::fabs(row[subset[j]] - ref[p * subset.size() + j])));
      // Top-20 overlap ≥ 19.
      std::vector<int32_t> order(V);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + 20, order.end(),
                        [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
      const auto ref_top = positions[p]["top20_ids"].get<std::vector<int32_t>>();
      int overlap = 0;
      for (int i = 0; i < 20; ++i) overlap += std::count(ref_top.begin(), ref_top.end(), order[i]) > 0;
      EXPECT_GE(overlap, 19) << what << " position " << p;
    }
  }
  if (strict) {
    EXPECT_LE(max_diff, 1e-3) << what;
    EXPECT_LE(max_lse, 1e-3) << what;
  } else {
    EXPECT_LE(max_lse, 0.05) << what;
    EXPECT_GE(argmax_equal, static_cast<int>(n) * 3 / 4) << what;
  }
  ::testing::Test::RecordProperty(what + "_max_abs_diff", std::to_string(max_diff));
}

class ReferenceLogits : public ::testing::TestWithParam<Case> {};

TEST_P(ReferenceLogits, BatchStepAndPieces) {
  const Case& tc = GetParam();
  const std::string path = test::fixture_model(tc.model);
  ASSERT_FALSE(path.empty());
  auto model = models::load_model(path);
  ASSERT_TRUE(model.ok()) << model.message();
  const std::string dir = test::fixtures_dir() + "/logits/" + tc.model;
  const auto c = test::read_json_file(dir + "/" + tc.name + ".json");
  const auto tokens = c["token_ids"].get<std::vector<int32_t>>();
  const bool strict = c.contains("logits_file");
  const int64_t V = (*model)->info().n_vocab;
  ASSERT_EQ(V, 151936);
  ThreadPool pool(2);
  const int64_t n = static_cast<int64_t>(tokens.size());

  auto batch = run_pieces(**model, tokens, {n}, pool);
  check_against_reference(c, batch, V, dir, strict, tc.model + "/" + tc.name + "/batch");
  auto step = run_pieces(**model, tokens, std::vector<int64_t>(n, 1), pool);
  check_against_reference(c, step, V, dir, strict, tc.model + "/" + tc.name + "/step");
  // Uneven pieces whose boundaries are not multiples of 64 (state and KV carried over).
  std::vector<int64_t> pieces;
  for (int64_t done = 0; done < n; done += 100) pieces.push_back(std::min<int64_t>(100, n - done));
  if (n < 100) pieces = {n / 3, n - n / 3 - 2, 2};
  auto split = run_pieces(**model, tokens, pieces, pool);
  check_against_reference(c, split, V, dir, strict, tc.model + "/" + tc.name + "/pieces");
}

std::vector<Case> all_cases() {
  std::vector<Case> out;
  const auto models = test::read_json_file(test::fixtures_dir() + "/models.json");
  for (const auto& m : models["models"])
    for (const auto& c : m["cases"]) out.push_back({m["name"].get<std::string>(), c.get<std::string>()});
  return out;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReferenceLogits, ::testing::ValuesIn(all_cases()), [](const auto& info) {
  std::string s = info.param.model + "_" + info.param.name;
  for (char& ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return s;
});

// The MTP file's trunk is bit-identical to the plain model (the MTP block is not part of it).
TEST(ReferenceLogits, MtpTrunkEqualsPlainModel) {
  auto plain = models::load_model(test::fixture_model("qwen3next-tiny"));
  auto mtp = models::load_model(test::fixture_model("qwen3next-tiny-mtp"));
  ASSERT_TRUE(plain.ok() && mtp.ok()) << mtp.message();
  EXPECT_TRUE((*mtp)->info().has_mtp);
  EXPECT_EQ((*mtp)->info().n_layer, 4);
  ThreadPool pool(2);
  const std::vector<int32_t> tokens = {785, 3974, 13876, 38835, 34208, 916, 279, 15678, 5562, 13};
  EXPECT_EQ(run_pieces(**plain, tokens, {10}, pool), run_pieces(**mtp, tokens, {10}, pool));
}

// The hylo logits command writes the same numbers as the library.
TEST(ReferenceLogits, CommandLineMatchesLibrary) {
  const std::string path = test::fixture_model("qwen3moe-tiny");
  const std::string out = test::scratch_path("cli_logits.npy");
  std::string log;
  ASSERT_EQ(test::run_command(test::hylo_binary() + " logits -m " + path + " --ids 785,3974,13876 -t 2 -o " + out, &log),
            0)
      << log;
  auto arr = read_npy(out);
  ASSERT_TRUE(arr.ok());
  ASSERT_EQ(arr->shape, (std::vector<int64_t>{3, 151936}));
  auto model = models::load_model(path);
  ThreadPool pool(2);
  auto logits = run_pieces(**model, {785, 3974, 13876}, {3}, pool);
  EXPECT_EQ(0, std::memcmp(logits.data(), arr->f32(), logits.size() * sizeof(float)));
}

}  // namespace
}  // namespace hylo

namespace hylo {
namespace {

// The MTP (NextN) head against llama.cpp's draft-mtp feeding: row k = (token x_k, trunk h_nextn
// of position k-1; zeros for k = 0), all rows in one batch, then one row at a time.
class MtpHead : public ::testing::TestWithParam<std::string> {};

TEST_P(MtpHead, MatchesReference) {
  auto model = models::load_model(test::fixture_model("qwen3next-tiny-mtp"));
  ASSERT_TRUE(model.ok()) << model.message();
  models::Model& m = **model;
  ASSERT_TRUE(m.has_mtp());
  const std::string dir = test::fixtures_dir() + "/logits/qwen3next-tiny-mtp";
  const auto c = test::read_json_file(dir + "/" + GetParam() + ".json");
  const auto tokens = c["token_ids"].get<std::vector<int32_t>>();
  const int64_t T = static_cast<int64_t>(tokens.size()), V = m.info().n_vocab, E = m.info().n_embd;
  ThreadPool pool(2);
  models::MemoryOptions mo;
  mo.n_ctx = 512;
  mo.kv_type = TensorType::kF32;
  models::Memory mem(m.memory_layout(), mo);
  std::vector<models::BatchRow> rows;
  for (int64_t i = 0; i < T; ++i) rows.push_back({0, static_cast<int32_t>(i), tokens[i], true});
  std::vector<float> logits(T * V);
  ASSERT_TRUE(m.forward(rows, mem, pool, logits.data()).ok());
  std::vector<float> shifted(T * E, 0.0f);  // row k gets h_nextn of position k-1
  std::copy(m.last_hidden().begin(), m.last_hidden().end() - E, shifted.begin() + E);
  auto ref = read_npy(dir + "/" + c["mtp_head"]["logits_file"].get<std::string>());
  ASSERT_TRUE(ref.ok()) << ref.message();
  const auto subset = vocab_subset();
  auto compare = [&](const std::vector<float>& mtp, const char* what) {
    double max_diff = 0;
    for (int64_t k = 0; k < T; ++k) {
      const float* row = mtp.data() + k * V;
      const int32_t am = static_cast<int32_t>(std::max_element(row, row + V) - row);
      EXPECT_EQ(am, c["mtp_head"]["rows"][k]["argmax"].get<int32_t>()) << what << " row " << k;
      for (size_t j = 0; j < subset.size(); ++j)
        max_diff = std::max(max_diff, static_cast<double>(std::fabs(row[subset[j]] - ref->f32()[k * subset.size() + j])));
    }
    EXPECT_LE(max_diff, 1e-3) << what;
  };
  std::vector<float> mtp(T * V);
  ASSERT_TRUE(m.forward_mtp(rows, shifted.data(), mem, pool, mtp.data()).ok());
  compare(mtp, "batch");
  EXPECT_EQ(m.mtp_len(mem, 0), T);
  // One row per call (as a drafter runs), on a fresh MTP cache.
  models::Memory mem2(m.memory_layout(), mo);
  std::vector<float> step(T * V);
  for (int64_t k = 0; k < T; ++k)
    ASSERT_TRUE(m.forward_mtp(std::span<const models::BatchRow>(&rows[k], 1), shifted.data() + k * E, mem2, pool,
                              step.data() + k * V)
                    .ok());
  compare(step, "step");
}

INSTANTIATE_TEST_SUITE_P(Cases, MtpHead, ::testing::Values("chat", "german", "code", "long-tech"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s) ch = ch == '-' ? '_' : ch;
                           return s;
                         });

}  // namespace
}  // namespace hylo
