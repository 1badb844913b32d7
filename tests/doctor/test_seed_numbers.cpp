// The numbers of the seed story (issue "hylo doctor"), from the built-in profiles: Qwen3-Coder-30B-A3B
// at 262,144 tokens on 64 GB and 32 GB machines, the v-128k Modelfile, the 146,760-token prompt
// against a 300 s timeout, and Qwen3-Next-80B-A3B's hybrid memory.
#include <gtest/gtest.h>

#include <algorithm>

#include "doctor/doctor.h"
#include "doctor/profiles.h"

namespace hylo::doctor {
namespace {

constexpr double kGiB = 1073741824.0;

Report run(Options o) {
  auto in = gather_inputs(o);
  EXPECT_TRUE(in.ok()) << in.message();
  return analyze(*in);
}

Options coder(const std::string& hardware, int64_t ctx = 262144) {
  Options o;
  o.profile = "qwen3-coder-30b-a3b";
  o.quant = "Q4_K_M";
  o.hardware = hardware;
  o.ctx = ctx;
  return o;
}

const Finding* find(const Report& r, const std::string& id) {
  for (const Finding& f : r.findings)
    if (f.id == id) return &f;
  return nullptr;
}

TEST(SeedNumbers, CoderKvCacheIs96KiBPerTokenAndExactly24GiB) {
  const Report r = run(coder("mac-studio-m2-ultra-64"));
  EXPECT_EQ(r.memory.kv_bytes_per_token, 96u * 1024);  // 48 layers × 2 × 4 heads × 128 × 2 B
  EXPECT_EQ(r.memory.kv_cache_bytes, uint64_t{24} << 30);
  EXPECT_EQ(r.memory.recurrent_state_bytes, 0u);
  EXPECT_EQ(r.inputs.model.n_attn_layers(), 48);
}

TEST(SeedNumbers, CoderFitsA64GBMachineWithHeadroom) {
  const Report r = run(coder("mac-studio-m2-ultra-64"));
  const double weights = static_cast<double>(r.memory.weights_bytes);
  EXPECT_GT(weights, 15e9);  // "~15–19 GB depending on the quantisation mix"
  EXPECT_LT(weights, 19e9);
  const double total_gib = static_cast<double>(r.memory.total_bytes) / kGiB;
  EXPECT_GE(total_gib, 44.0);
  EXPECT_LE(total_gib, 48.0);
  EXPECT_TRUE(r.memory.fits);
  const double headroom_gib = static_cast<double>(r.memory.headroom_bytes) / kGiB;
  EXPECT_GE(headroom_gib, 16.0);
  EXPECT_LE(headroom_gib, 20.0);
  EXPECT_EQ(r.memory.largest_ctx_that_fits, 262144);
  EXPECT_EQ(find(r, "does-not-fit"), nullptr);
  EXPECT_EQ(find(r, "ctx-below-trained"), nullptr);
  // The total is the sum of its parts.
  EXPECT_EQ(r.memory.total_bytes, r.memory.weights_bytes + r.memory.kv_cache_bytes + r.memory.recurrent_state_bytes +
                                      r.memory.compute_bytes + r.memory.reserve_bytes);
}

TEST(SeedNumbers, CoderDoesNotFitA32GBMachineAndSaysWhatWould) {
  const Report r = run(coder("desktop-ddr5-32"));
  EXPECT_FALSE(r.memory.fits);
  EXPECT_LT(r.memory.headroom_bytes, 0);
  const int64_t largest = r.memory.largest_ctx_that_fits;
  ASSERT_GT(largest, 65536);
  ASSERT_LT(largest, 262144);
  EXPECT_EQ(largest % kCtxStep, 0);
  EXPECT_LE(total_bytes_at(r, largest, TensorType::kF16, r.memory.weights_bytes), r.memory.available_bytes);
  EXPECT_GT(total_bytes_at(r, largest + kCtxStep, TensorType::kF16, r.memory.weights_bytes), r.memory.available_bytes);
  const Finding* f = find(r, "does-not-fit");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->severity, Severity::kError);
  EXPECT_NE(f->fix.find("-c " + std::to_string(largest) + " (hylo serve)"), std::string::npos) << f->fix;
  EXPECT_NE(f->fix.find("KV cache in q8_0 (-ctk q8_0 -ctv q8_0"), std::string::npos) << f->fix;
  // Spelled out to paste: hylo serve at the largest context, and with a q8_0 cache.
  bool hylo_ctx = false, hylo_q8 = false;
  for (const Fix& x : f->fixes) {
    hylo_ctx |= x.text == "hylo serve -m MODEL.gguf -c " + std::to_string(largest);
    hylo_q8 |= x.kind == "hylo" && x.text.find("-ctk q8_0 -ctv q8_0") != std::string::npos;
  }
  EXPECT_TRUE(hylo_ctx);
  EXPECT_TRUE(hylo_q8);
  // Running with the suggested context fits.
  Options smaller = coder("desktop-ddr5-32", largest);
  EXPECT_TRUE(run(smaller).memory.fits);
}

TEST(SeedNumbers, V128kModelfileCapsTheTrainedContextAndThePromptExceedsIt) {
  auto parsed = parse_modelfile("FROM qwen3-coder:30b\nPARAMETER num_ctx 131072\n", "v-128k");
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  Inputs in;
  {
    Options o = coder("mac-studio-m2-ultra-64");
    o.ctx.reset();
    o.prompt_tokens = 146760;
    auto g = gather_inputs(o);
    ASSERT_TRUE(g.ok()) << g.message();
    in = *g;
  }
  ASSERT_TRUE(apply_modelfile(*parsed, &in.config).ok());
  const Report r = analyze(in);
  EXPECT_EQ(r.ctx, 131072);
  const Finding* cap = find(r, "ctx-below-trained");
  ASSERT_NE(cap, nullptr);
  EXPECT_EQ(cap->severity, Severity::kWarning);
  EXPECT_NE(cap->message.find("262,144"), std::string::npos) << cap->message;
  EXPECT_NE(cap->fix.find("PARAMETER num_ctx 262144"), std::string::npos) << cap->fix;
  const Finding* prompt = find(r, "prompt-exceeds-ctx");
  ASSERT_NE(prompt, nullptr);
  EXPECT_EQ(prompt->severity, Severity::kError);
  EXPECT_NE(prompt->message.find("146,760"), std::string::npos) << prompt->message;
  EXPECT_EQ(prompt->fix, "PARAMETER num_ctx 262144");
  EXPECT_EQ(find(r, "prompt-exceeds-trained"), nullptr);
}

TEST(SeedNumbers, PrefillOfTheLongPromptExceedsA300SecondTimeout) {
  Options o = coder("mac-studio-m2-ultra-64");
  o.prompt_tokens = 146760;
  o.prefill_tps = 400;
  o.timeout_seconds = 300;
  const Report r = run(o);
  EXPECT_NEAR(r.time.prefill_seconds, 366.9, 0.05);
  EXPECT_NEAR(r.time.ttft_seconds, 366.9, 0.05);
  EXPECT_EQ(r.time.prefill_tps_source, "given");
  const Finding* f = find(r, "prefill-exceeds-timeout");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->severity, Severity::kError);
  EXPECT_NE(f->message.find("367 s"), std::string::npos) << f->message;
  // 1.25 × 366.9 s = 458.6 s, rounded up to whole minutes.
  EXPECT_NE(f->fix.find("at least 480 s"), std::string::npos) << f->fix;
  // Raising the timeout to the suggestion clears the finding.
  o.timeout_seconds = 480;
  EXPECT_EQ(find(run(o), "prefill-exceeds-timeout"), nullptr);
}

TEST(SeedNumbers, QwenNextHybridMemory) {
  Options o;
  o.profile = "qwen3-next-80b-a3b";
  o.hardware = "dgx-spark";
  const Report r = run(o);
  const ModelDesc& m = r.inputs.model;
  EXPECT_EQ(m.n_attn_layers(), 12);
  EXPECT_EQ(m.n_recurrent_layers(), 36);
  for (int il = 0; il < 48; ++il) EXPECT_EQ(m.recurrent[il], (il + 1) % 4 != 0) << il;
  EXPECT_EQ(r.memory.kv_bytes_per_token, 24u * 1024);  // 12 × 2 × 2 × 256 × 2 B
  EXPECT_EQ(r.memory.kv_cache_bytes, uint64_t{6} << 30);
  // Spec §4.1: 36 × (3 × 8192 + 32 × 128 × 128) × 4 B = 79,036,416 B ≈ 75.4 MiB.
  EXPECT_EQ(r.memory.recurrent_bytes_per_sequence, 79036416u);
  EXPECT_NEAR(static_cast<double>(r.memory.recurrent_bytes_per_sequence) / (1 << 20), 75.4, 0.05);
  // Active weights per token: one embedding row + all non-expert weights + 10/512 of the experts +
  // the LM head = 3,563,766,528; the spec's 3.87 B also counts the whole embedding table.
  EXPECT_EQ(r.inputs.weights.active_params, 3563766528u);
  EXPECT_NEAR(static_cast<double>(r.inputs.weights.active_params), 3.56e9, 0.02 * 3.56e9);
  EXPECT_EQ(r.inputs.weights.total_params, 79674391296u);
  EXPECT_EQ(r.inputs.weights.active_params + uint64_t{151935} * 2048, 3874929408u);
}

TEST(SeedNumbers, RecurrentStateAndKvScaleWithParallelSequences) {
  Options o;
  o.profile = "qwen3-next-80b-a3b";
  o.hardware = "dgx-spark";
  o.ctx = 65536;
  o.parallel = 4;
  const Report r = run(o);
  EXPECT_EQ(r.memory.recurrent_state_bytes, uint64_t{4} * 79036416);
  EXPECT_EQ(r.memory.kv_cache_bytes, uint64_t{4} * 65536 * 24576);
}

TEST(SeedNumbers, DecodeBoundIsBandwidthOverActiveBytesOnEveryProfile) {
  Options o;
  o.profile = "qwen3-next-80b-a3b";
  o.hardware = "h100";
  auto in = gather_inputs(o);
  ASSERT_TRUE(in.ok()) << in.message();
  const double active = static_cast<double>(in->weights.active_bytes_per_token);
  const auto rows = compare_hardware(*in, hardware_profiles());
  ASSERT_EQ(rows.size(), hardware_profiles().size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const HardwareProfile& h = hardware_profiles()[i];
    ASSERT_TRUE(rows[i].decode_tps_bound.has_value()) << h.name;
    EXPECT_EQ(rows[i].available_bytes, h.memory_bytes * static_cast<uint64_t>(h.devices)) << h.name;
    const double one = h.bandwidth_gbs * 1e9 / active;
    if (h.devices == 1) {
      EXPECT_NEAR(*rows[i].decode_tps_bound, one, 1e-9 * one) << h.name;
    } else if (h.split == "layer") {  // one device at a time, plus the hand-over between them
      EXPECT_LT(*rows[i].decode_tps_bound, one) << h.name;
      EXPECT_GT(*rows[i].decode_tps_bound, 0.9 * one) << h.name;
    } else {  // tensor split: every device reads its share at once, less the all-reduces
      EXPECT_LT(*rows[i].decode_tps_bound, h.devices * one) << h.name;
      EXPECT_GT(*rows[i].decode_tps_bound, 0.5 * h.devices * one) << h.name;
    }
  }
  const Report r = analyze(*in);
  EXPECT_NEAR(*r.time.decode_tps_bound, 3350e9 / active, 1e-9 * 3350e9 / active);
  // Reading the KV cache and the recurrent state as well can only be slower.
  EXPECT_LT(*r.time.decode_tps_bound_at_ctx, *r.time.decode_tps_bound);
}

TEST(SeedNumbers, IssueHardwareProfilesExist) {
  struct Want {
    const char* name;
    double gib, gbs;
  };
  for (const Want& w :
       {Want{"dgx-spark", 128, 273}, Want{"mac-studio-m2-ultra-64", 64, 800}, Want{"mac-studio-m2-ultra-192", 192, 800},
        Want{"mac-studio-m3-ultra-96", 96, 819}, Want{"mac-studio-m3-ultra-256", 256, 819},
        Want{"mac-studio-m3-ultra-512", 512, 819}, Want{"ryzen-ai-max-395-128", 128, 256}, Want{"rtx-4090", 24, 1008},
        Want{"rtx-5090", 32, 1792}, Want{"h100", 80, 3350}, Want{"h200", 141, 4800}, Want{"mi300x", 192, 5300}}) {
    auto h = find_hardware_profile(w.name);
    ASSERT_TRUE(h.ok()) << h.message();
    EXPECT_EQ((*h)->memory_bytes, static_cast<uint64_t>(w.gib * kGiB)) << w.name;
    EXPECT_DOUBLE_EQ((*h)->bandwidth_gbs, w.gbs) << w.name;
    EXPECT_GT((*h)->compute_tflops, 0) << w.name;
  }
}

}  // namespace
}  // namespace hylo::doctor
