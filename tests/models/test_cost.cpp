// The cost model behind `hylo bench` (models/cost.h), checked against a count made here from the
// file itself: every tensor's bytes and elements, the metadata's head counts and state sizes.
#include <gtest/gtest.h>

#include <string>

#include "common/fixtures.h"
#include "models/cost.h"
#include "models/model.h"

namespace hylo {
namespace {

struct Count {
  double weight_bytes = 0;  // read by one decoded token
  double macs = 0;          // multiply-adds of one token's matrix products, LM head included
  double lm_head_macs = 0;
};

// Independent of the loader: walks the GGUF tensors. Expert tensors (names with "_exps") count
// for n_used of n_expert experts; the embedding table for one row (plus all of it when it is the
// tied LM head); the MTP block (blocks from n_layer on) not at all.
Count count_tensors(const gguf::File& f, const std::string& arch, int64_t n_layer) {
  const double n_expert = static_cast<double>(*f.get_int(arch + ".expert_count"));
  const double n_used = static_cast<double>(*f.get_int(arch + ".expert_used_count"));
  Count c;
  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  const bool tied = f.find_tensor("output.weight") == nullptr;
  for (const auto& t : f.tensors()) {
    if (t.name.rfind("blk.", 0) == 0 && std::stoll(t.name.substr(4)) >= n_layer) continue;
    const double bytes = static_cast<double>(t.n_bytes), elems = static_cast<double>(t.n_elements());
    if (&t == embd || t.name == "token_embd.weight") {
      c.weight_bytes += bytes / static_cast<double>(t.ne[1]);
      if (tied) {
        c.weight_bytes += bytes;
        c.macs += elems;
        c.lm_head_macs += elems;
      }
      continue;
    }
    const double share = t.name.find("_exps") != std::string::npos ? n_used / n_expert : 1.0;
    c.weight_bytes += bytes * share;
    if (t.n_dims >= 2) c.macs += elems * share;
    if (t.name == "output.weight") c.lm_head_macs += elems;
  }
  return c;
}

class Cost : public ::testing::TestWithParam<std::string> {};

TEST_P(Cost, DecodeBytesAndPrefillFlops) {
  auto loaded = models::load_model(test::fixture_model(GetParam()), {.repack = false});
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  const models::Model& m = **loaded;
  const models::ModelInfo& info = m.info();
  const gguf::File& f = m.file();
  const std::string arch = info.arch;
  const Count c = count_tensors(f, arch, info.n_layer);

  // Attention layers and recurrent layers of the trunk, from the metadata alone.
  const int64_t n_head = *f.get_int(arch + ".attention.head_count");
  const int64_t n_kv = *f.get_int(arch + ".attention.head_count_kv");
  const int64_t head_dim = f.get_int(arch + ".attention.key_length").value_or(info.n_embd / n_head);
  int64_t n_attn = info.n_layer, n_rec = 0;
  double state_bytes = 0, rec_flops = 0;
  if (arch == "qwen3next") {
    const int64_t interval = f.get_int(arch + ".full_attention_interval").value_or(4);
    n_attn = info.n_layer / interval;
    n_rec = info.n_layer - n_attn;
    const int64_t d_k = *f.get_int(arch + ".ssm.state_size"), h_k = *f.get_int(arch + ".ssm.group_count");
    const int64_t h_v = *f.get_int(arch + ".ssm.time_step_rank"), inner = *f.get_int(arch + ".ssm.inner_size");
    const int64_t d_v = inner / h_v, k = *f.get_int(arch + ".ssm.conv_kernel");
    const int64_t conv_dim = 2 * h_k * d_k + inner;
    // conv window (k − 1 columns) and S (h_v · d_k · d_v), f32, read and written once per token
    state_bytes = 2.0 * 4.0 * static_cast<double>(n_rec * ((k - 1) * conv_dim + h_v * d_k * d_v));
    rec_flops = 8.0 * static_cast<double>(n_rec * h_v * d_k * d_v);
  }
  const double kv_per_pos = 2.0 * 2.0 * static_cast<double>(n_attn * n_kv * head_dim);  // K and V, f16

  // Decode at a context of 100 positions: 101 K/V rows per layer (its own included).
  const models::DecodeBytes d = models::decode_bytes(m, 100, TensorType::kF16);
  EXPECT_DOUBLE_EQ(d.weights, c.weight_bytes);
  EXPECT_DOUBLE_EQ(d.kv, kv_per_pos * 101);
  EXPECT_DOUBLE_EQ(d.state, state_bytes);
  // The mean over 64 tokens from an empty cache is the value at position 31.5.
  EXPECT_DOUBLE_EQ(models::decode_bytes_mean(m, 64, TensorType::kF16).kv, kv_per_pos * 32.5);
  // After 100 positions (bench -d 100): the value at position 131.5.
  EXPECT_DOUBLE_EQ(models::decode_bytes_mean(m, 64, TensorType::kF16, TensorType::kF16, 100).kv, kv_per_pos * 132.5);

  // Prefill of 10 tokens: 10 × (trunk MACs · 2 + delta rule) + attention over 1 + 2 + … + 10 keys
  // (QKᵀ and PV: 4 FLOPs per head-dim element per key) + the LM head once.
  const double n = 10, keys = 55;
  const double attn_per_key = 4.0 * static_cast<double>(n_attn * n_head * head_dim);
  const double want = n * (2.0 * (c.macs - c.lm_head_macs) + rec_flops) + attn_per_key * keys + 2.0 * c.lm_head_macs;
  EXPECT_NEAR(models::prefill_flops(info, 10), want, want * 1e-12);
  // The same 10 tokens after 90 already in the context (bench -d 90): keys 91 + 92 + … + 100.
  const double keys_after = 955;
  const double want_after =
      n * (2.0 * (c.macs - c.lm_head_macs) + rec_flops) + attn_per_key * keys_after + 2.0 * c.lm_head_macs;
  EXPECT_NEAR(models::prefill_flops(info, 10, 90), want_after, want_after * 1e-12);
  EXPECT_GT(c.lm_head_macs, 0);
}

// The speculative estimate: (1 − α^{k+1}) / (1 − α) tokens per step; a step reads more than one
// plain token (k + 1 tokens' experts, the MTP block and LM head per draft) but less than k + 1 of
// them; nothing accepted costs, everything accepted gains, and more acceptance never loses.
TEST(Cost, SpeculativeEstimate) {
  auto loaded = models::load_model(test::fixture_model("qwen3next-tiny-mtp"), {.repack = false});
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  const models::Model& m = **loaded;
  const auto none = models::speculative_estimate(m, 2, 0.0, 100, TensorType::kF16);
  const auto half = models::speculative_estimate(m, 2, 0.5, 100, TensorType::kF16);
  const auto all = models::speculative_estimate(m, 2, 1.0, 100, TensorType::kF16);
  EXPECT_DOUBLE_EQ(none.tokens_per_step, 1.0);
  EXPECT_DOUBLE_EQ(half.tokens_per_step, 1.75);
  EXPECT_DOUBLE_EQ(all.tokens_per_step, 3.0);
  EXPECT_GT(none.bytes_step, none.bytes_plain);
  EXPECT_LT(none.speedup, 1.0);
  EXPECT_LT(none.speedup, half.speedup);
  EXPECT_LT(half.speedup, all.speedup);
  EXPECT_DOUBLE_EQ(all.speedup, 3.0 * all.bytes_plain / all.bytes_step);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Cost,
                         ::testing::Values("qwen3next-tiny", "qwen3moe-tiny", "qwen3next-tiny-q8",
                                           "qwen3next-tiny-mtp"),
                         [](const auto& p) {
                           std::string s = p.param;
                           for (char& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace hylo
