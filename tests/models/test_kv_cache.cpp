// The KV cache in every type it can hold (f32, f16, bf16, q8_0, q4_0): rows stored with the
// reference quantizers, attention over them against a scalar double-precision reference, memory
// per token against the doctor's arithmetic, and the logit error of the quantized caches against
// the f32 cache on the fixture models (the figures docs/ quote).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include "common/fixtures.h"
#include "doctor/model.h"
#include "kernels/quant.h"
#include "kernels/vec.h"
#include "models/model.h"
#include "ops/attention.h"
#include "ops/kv_cache.h"

namespace hylo {
namespace {

constexpr TensorType kTypes[] = {TensorType::kF32, TensorType::kF16, TensorType::kBF16, TensorType::kQ8_0,
                                 TensorType::kQ4_0};

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(KvCache, StoresRowsExactlyAsTheReferenceQuantizer) {
  constexpr int kHeads = 2, kDim = 64, kPositions = 300;  // two pages
  for (TensorType tk : kTypes)
    for (TensorType tv : {TensorType::kF16, TensorType::kQ8_0, TensorType::kQ4_0}) {
      SCOPED_TRACE(std::string(tensor_type_name(tk)) + "/" + std::string(tensor_type_name(tv)));
      ops::KvSeqCache cache(kHeads, kDim, tk, tv);
      const auto k = random_floats(kPositions * kHeads * kDim, 1), v = random_floats(kPositions * kHeads * kDim, 2);
      for (int p = 0; p < kPositions; ++p) cache.store(p, &k[p * kHeads * kDim], &v[p * kHeads * kDim]);
      ASSERT_EQ(cache.k_row_bytes(), row_bytes(tk, kDim));
      ASSERT_EQ(cache.v_row_bytes(), row_bytes(tv, kDim));
      // The float types are stored in stripes (kv_cache.h), the others as rows.
      ASSERT_EQ(cache.keys_striped(), tensor_type_info(tk).block_elems == 1);
      ASSERT_EQ(cache.values_striped(), tensor_type_info(tv).block_elems == 1);
      constexpr int S = ops::KvSeqCache::kStripe, P = ops::KvSeqCache::kPageTokens;
      const size_t ke = tensor_type_info(tk).block_bytes, ve = tensor_type_info(tv).block_bytes;
      std::vector<uint8_t> want_k(cache.k_row_bytes()), want_v(cache.v_row_bytes());
      std::vector<uint8_t> k_rows(kHeads * cache.k_row_bytes()), v_rows(kHeads * cache.v_row_bytes());
      for (int p : {0, 1, 31, 32, 255, 256, 299})
        for (int h = 0; h < kHeads; ++h) {
          const int page = p / P, slot = p % P;
          kernels::quantize_row(tk, &k[(p * kHeads + h) * kDim], want_k.data(), kDim);
          kernels::quantize_row(tv, &v[(p * kHeads + h) * kDim], want_v.data(), kDim);
          cache.read_rows(p, 1, k_rows.data(), v_rows.data());
          EXPECT_EQ(0, std::memcmp(want_k.data(), k_rows.data() + h * cache.k_row_bytes(), cache.k_row_bytes()))
              << "K at " << p << " head " << h;
          EXPECT_EQ(0, std::memcmp(want_v.data(), v_rows.data() + h * cache.v_row_bytes(), cache.v_row_bytes()))
              << "V at " << p << " head " << h;
          // Where the page holds them, written from the layout's definition.
          const auto* kp = static_cast<const uint8_t*>(cache.k_page(page, h));
          const auto* vp = static_cast<const uint8_t*>(cache.v_page(page, h));
          for (int i = 0; i < kDim; ++i) {
            const size_t k_at = cache.keys_striped() ? ((slot / S * kDim + i) * S + slot % S) * ke
                                                     : slot * cache.k_row_bytes() + i / 32 * ke;  // block i / 32
            const size_t v_at = cache.values_striped() ? (i / S * S * P + slot * S + i % S) * ve
                                                       : slot * cache.v_row_bytes() + i / 32 * ve;
            const size_t k_src = cache.keys_striped() ? i * ke : i / 32 * ke;
            const size_t v_src = cache.values_striped() ? i * ve : i / 32 * ve;
            EXPECT_EQ(0, std::memcmp(want_k.data() + k_src, kp + k_at, ke)) << "K at " << p << " element " << i;
            EXPECT_EQ(0, std::memcmp(want_v.data() + v_src, vp + v_at, ve)) << "V at " << p << " element " << i;
          }
        }
      // Two pages of 256 positions, each position K and V rows of every head.
      EXPECT_EQ(cache.bytes_allocated(), 2ull * 256 * kHeads * (row_bytes(tk, kDim) + row_bytes(tv, kDim)));
    }
}

TEST(KvCache, RejectsTypesAndShapesItCannotHold) {
  EXPECT_FALSE(ops::is_kv_cache_type(TensorType::kQ4_K));
  EXPECT_FALSE(ops::kv_cache_type_problem(TensorType::kQ4_K, 64).empty());
  EXPECT_NE(ops::kv_cache_type_problem(TensorType::kQ8_0, 48).find("48"), std::string::npos);
  EXPECT_TRUE(ops::kv_cache_type_problem(TensorType::kF16, 48).empty());
  models::MemoryLayout layout;
  layout.n_layer = 1;
  layout.kv.push_back({0, 2, 40});
  EXPECT_FALSE(layout.kv_type_problem(TensorType::kF16, TensorType::kQ4_0).empty());
  EXPECT_TRUE(layout.kv_type_problem(TensorType::kBF16, TensorType::kF32).empty());
}

// Causal attention of T query rows at positions pos0 … pos0+T−1 over the cache's keys, in double
// from the dequantized rows: softmax(scale · q·k) · v, written from the definition.
std::vector<float> reference_attention(const ops::KvSeqCache& cache, const std::vector<float>& q, int64_t T,
                                       int32_t pos0, const ops::AttentionShape& s) {
  const int group = s.n_head / s.n_kv_head, d = s.head_dim;
  std::vector<float> out(T * s.n_head * d);
  std::vector<float> krow(d), vrow(d);
  std::vector<uint8_t> k_rows(s.n_kv_head * cache.k_row_bytes()), v_rows(s.n_kv_head * cache.v_row_bytes());
  for (int64_t t = 0; t < T; ++t)
    for (int h = 0; h < s.n_head; ++h) {
      const int kvh = h / group;
      const float* qr = &q[(t * s.n_head + h) * d];
      const int64_t n_keys = pos0 + t + 1;
      std::vector<double> w(n_keys);
      double mx = -INFINITY;
      for (int64_t j = 0; j < n_keys; ++j) {
        cache.read_rows(static_cast<int32_t>(j), 1, k_rows.data(), v_rows.data());
        kernels::dequantize_row(cache.type_k(), k_rows.data() + kvh * cache.k_row_bytes(), krow.data(), d);
        double dot = 0;
        for (int c = 0; c < d; ++c) dot += static_cast<double>(qr[c]) * krow[c];
        w[j] = s.scale * dot;
        mx = std::max(mx, w[j]);
      }
      double sum = 0;
      for (double& x : w) sum += (x = std::exp(x - mx));
      std::vector<double> acc(d, 0.0);
      for (int64_t j = 0; j < n_keys; ++j) {
        cache.read_rows(static_cast<int32_t>(j), 1, k_rows.data(), v_rows.data());
        kernels::dequantize_row(cache.type_v(), v_rows.data() + kvh * cache.v_row_bytes(), vrow.data(), d);
        for (int c = 0; c < d; ++c) acc[c] += w[j] / sum * vrow[c];
      }
      for (int c = 0; c < d; ++c) out[(t * s.n_head + h) * d + c] = static_cast<float>(acc[c]);
    }
  return out;
}

TEST(KvCache, AttentionOverEveryTypeMatchesTheScalarReference) {
  const ops::AttentionShape shape{4, 2, 64, 0.125f};
  constexpr int32_t kKeys = 2100;  // past one split of 2,048 keys: the split-and-merge path too
  ThreadPool pool(2);
  for (TensorType t : kTypes) {
    SCOPED_TRACE(tensor_type_name(t));
    ops::KvSeqCache cache(shape.n_kv_head, shape.head_dim, t, t);
    const auto k = random_floats(size_t{kKeys} * 2 * 64, 3), v = random_floats(size_t{kKeys} * 2 * 64, 4);
    for (int32_t p = 0; p < kKeys; ++p) cache.store(p, &k[p * 128], &v[p * 128]);
    // A decode run of 2 rows at the end, and a prefill block of 40 rows in the middle.
    for (auto [T, pos0] : {std::pair<int64_t, int32_t>{2, kKeys - 2}, {40, 700}}) {
      const auto q = random_floats(T * 4 * 64, 5 + pos0);
      std::vector<float> out(T * 4 * 64);
      const ops::AttentionRun run{&cache, q.data(), out.data(), T, pos0};
      ops::attention(pool, {&run, 1}, shape);
      const auto ref = reference_attention(cache, q, T, pos0, shape);
      // f32 online softmax and sums of ≤ 2,100 terms against double: outputs are averages of
      // values of size ~1 (~3 for the q4_0 rows), so 2e-5 absolute is ~100 ulps of headroom.
      double worst = 0;
      for (size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::abs(double{out[i]} - ref[i]));
      EXPECT_LT(worst, 2e-5) << "rows " << T << " at " << pos0;
    }
  }
}

// Decode multiplies an f16 or f32 cache in place, a prefill block widens it into scratch first;
// both must give the last row the same bits (and the reference's values), also for a head size
// that leaves a narrow value stripe (48 = 32 + 16) and a page cut inside a key stripe.
TEST(KvCache, DecodeInPlaceEqualsThePrefillPath) {
  ThreadPool pool(2);
  for (int d : {48, 128})
    for (TensorType t : {TensorType::kF32, TensorType::kF16, TensorType::kBF16}) {
      SCOPED_TRACE(std::string(tensor_type_name(t)) + " d=" + std::to_string(d));
      const ops::AttentionShape shape{8, 1, d, 0.1f};  // one token's 8 query heads: decode's tile of rows
      constexpr int32_t kKeys = 2345;                  // past a split, the last page cut at 41 positions
      ops::KvSeqCache cache(1, d, t, t);
      const auto k = random_floats(size_t{kKeys} * d, 6), v = random_floats(size_t{kKeys} * d, 7);
      for (int32_t p = 0; p < kKeys; ++p)
        cache.store(p, &k[static_cast<size_t>(p) * d], &v[static_cast<size_t>(p) * d]);
      constexpr int64_t T = 8;
      const auto q = random_floats(T * 8 * d, 8);
      std::vector<float> block(T * 8 * d), one(8 * d);
      const ops::AttentionRun prefill{&cache, q.data(), block.data(), T, kKeys - T};
      ops::attention(pool, {&prefill, 1}, shape);
      const ops::AttentionRun decode{&cache, q.data() + (T - 1) * 8 * d, one.data(), 1, kKeys - 1};
      ops::attention(pool, {&decode, 1}, shape);
      EXPECT_EQ(0, std::memcmp(one.data(), block.data() + (T - 1) * 8 * d, one.size() * sizeof(float)));
      const auto ref = reference_attention(cache, q, T, kKeys - T, shape);
      double worst = 0;
      for (size_t i = 0; i < block.size(); ++i) worst = std::max(worst, std::abs(double{block[i]} - ref[i]));
      EXPECT_LT(worst, 2e-5);
    }
}

TEST(KvCache, MemoryPerTokenMatchesTheDoctor) {
  for (const char* name : {"qwen3next-tiny", "qwen3moe-tiny"}) {
    SCOPED_TRACE(name);
    auto model = models::load_model(test::fixture_model(name), {.repack = false});
    ASSERT_TRUE(model.ok()) << model.message();
    auto desc = doctor::describe_model(doctor::Metadata::from_gguf((*model)->file()));
    ASSERT_TRUE(desc.ok()) << desc.message();
    const models::MemoryLayout layout = (*model)->memory_layout();
    for (TensorType t : kTypes) {
      EXPECT_EQ(layout.kv_bytes_per_token(t), desc->kv_bytes_per_token(t)) << tensor_type_name(t);
      EXPECT_EQ(layout.recurrent_bytes_per_sequence(), desc->recurrent_bytes_per_sequence());
    }
    // q8_0 stores 34 bytes per 32 elements: 17/32 of f16 (24 GiB → 12.75 GiB).
    EXPECT_EQ(layout.kv_bytes_per_token(TensorType::kQ8_0) * 32, layout.kv_bytes_per_token(TensorType::kF16) * 17);
    EXPECT_EQ(layout.kv_bytes_per_token(TensorType::kQ4_0) * 32, layout.kv_bytes_per_token(TensorType::kF16) * 9);
    // And what a memory of those types really allocates: one page of 256 positions.
    models::MemoryOptions mo;
    mo.n_ctx = 256;
    mo.kv_type = TensorType::kQ8_0;
    mo.kv_type_v = TensorType::kQ4_0;
    models::Memory mem(layout, mo);
    std::vector<models::BatchRow> rows{{0, 0, 1, true}};
    std::vector<float> logits((*model)->info().n_vocab);
    ThreadPool pool(1);
    ASSERT_TRUE((*model)->forward(rows, mem, pool, logits.data()).ok());
    EXPECT_EQ(mem.bytes_allocated(), 256 * layout.kv_bytes_per_token(TensorType::kQ8_0, TensorType::kQ4_0) +
                                         layout.recurrent_bytes_per_sequence());
  }
}

// The logits of a fixture prompt (120 tokens in one prefill, then 8 decode steps) with each cache
// type, against the f32 cache: max and mean |Δlogit| over all positions and tokens, and how many
// positions change their top token. docs/memory.md quotes these figures; the bounds (measured,
// with about 1.5× headroom) keep them honest. qwen3moe-tiny amplifies small differences far more
// than qwen3next-tiny: all 4 of its layers attend (1 of 4 in qwen3next-tiny) and a changed hidden
// state can flip its top-8 of 128 experts, which moves the logits by whole units.
TEST(KvCache, LogitErrorOfQuantizedCachesOnTheFixtures) {
  struct Bound {
    const char* model;
    TensorType type;
    double max_abs, mean_abs;
  };
  const Bound bounds[] = {
      {"qwen3next-tiny", TensorType::kF16, 0.0015, 1e-4}, {"qwen3next-tiny", TensorType::kBF16, 0.01, 6e-4},
      {"qwen3next-tiny", TensorType::kQ8_0, 0.04, 2e-3},  {"qwen3next-tiny", TensorType::kQ4_0, 0.75, 0.03},
      {"qwen3moe-tiny", TensorType::kF16, 0.012, 1e-3},   {"qwen3moe-tiny", TensorType::kBF16, 0.8, 0.01},
      {"qwen3moe-tiny", TensorType::kQ8_0, 3.0, 0.04},    {"qwen3moe-tiny", TensorType::kQ4_0, 5.0, 0.45},
  };
  constexpr size_t kPrefill = 120, kDecode = 8;
  for (const char* name : {"qwen3next-tiny", "qwen3moe-tiny"}) {
    auto model = models::load_model(test::fixture_model(name));
    ASSERT_TRUE(model.ok()) << model.message();
    models::Model& m = **model;
    auto all = test::read_json_file(test::fixtures_dir() + "/logits/qwen3next-tiny/long-tech.json")["token_ids"]
                   .get<std::vector<int32_t>>();
    all.resize(kPrefill + kDecode);
    const int64_t V = m.info().n_vocab;
    ThreadPool pool(2);
    auto run = [&](TensorType t) {
      models::MemoryOptions mo;
      mo.n_ctx = 256;
      mo.kv_type = t;
      models::Memory mem(m.memory_layout(), mo);
      std::vector<float> logits(all.size() * V);
      std::vector<models::BatchRow> rows;
      for (size_t i = 0; i < kPrefill; ++i) rows.push_back({0, static_cast<int32_t>(i), all[i], true});
      EXPECT_TRUE(m.forward(rows, mem, pool, logits.data()).ok());
      for (size_t i = kPrefill; i < all.size(); ++i) {
        const models::BatchRow row{0, static_cast<int32_t>(i), all[i], true};
        EXPECT_TRUE(m.forward({&row, 1}, mem, pool, logits.data() + i * V).ok());
      }
      return logits;
    };
    const auto exact = run(TensorType::kF32);
    for (const Bound& b : bounds) {
      if (std::string(b.model) != name) continue;
      const auto got = run(b.type);
      double max_abs = 0, sum_abs = 0;
      int top_changed = 0;
      for (size_t p = 0; p < all.size(); ++p) {
        const float* e = exact.data() + p * V;
        const float* g = got.data() + p * V;
        for (int64_t i = 0; i < V; ++i) {
          const double d = std::abs(double{g[i]} - e[i]);
          max_abs = std::max(max_abs, d);
          sum_abs += d;
        }
        top_changed += (std::max_element(e, e + V) - e) != (std::max_element(g, g + V) - g);
      }
      const double mean_abs = sum_abs / static_cast<double>(exact.size());
      std::printf("[kv] %s %s: |dlogit| max %.3g mean %.3g vs the f32 cache; top-1 changed at %d of %zu\n", name,
                  std::string(tensor_type_name(b.type)).c_str(), max_abs, mean_abs, top_changed, all.size());
      EXPECT_LT(max_abs, b.max_abs) << name << " " << tensor_type_name(b.type);
      EXPECT_LT(mean_abs, b.mean_abs) << name << " " << tensor_type_name(b.type);
      EXPECT_GT(max_abs, 0.0) << "a lossy cache type must change something: is it really used?";
    }
  }
}

}  // namespace
}  // namespace hylo
