// Model description from GGUF metadata (fixture models), the synthesized quantisation mixes, the
// profile tables, and the context/memory/time findings beyond the seed story.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "common/fixtures.h"
#include "doctor/doctor.h"
#include "doctor/profiles.h"
#include "doctor/quant_mix.h"
#include "gguf/gguf.h"

namespace hylo::doctor {
namespace {

const Finding* find(const Report& r, const std::string& id) {
  for (const Finding& f : r.findings)
    if (f.id == id) return &f;
  return nullptr;
}

Report run(const Options& o) {
  auto in = gather_inputs(o);
  EXPECT_TRUE(in.ok()) << in.message();
  return analyze(*in);
}

TEST(ModelFromGguf, QwenNextTinyArithmeticFromMetadata) {
  const std::string path = test::fixture_model("qwen3next-tiny");
  ASSERT_FALSE(path.empty());
  auto file = gguf::File::open(path);
  ASSERT_TRUE(file.ok()) << file.message();
  auto desc = describe_model(Metadata::from_gguf(*file));
  ASSERT_TRUE(desc.ok()) << desc.message();
  const ModelDesc& m = *desc;
  EXPECT_EQ(m.arch, "qwen3next");
  EXPECT_EQ(m.n_layer, 4);
  EXPECT_EQ(m.n_attn_layers(), 1);  // layer 3 (full_attention_interval 4)
  EXPECT_EQ(m.n_recurrent_layers(), 3);
  EXPECT_EQ(m.n_vocab, 151936);
  EXPECT_EQ(m.n_ctx_train, 262144);
  // 1 attention layer × 2 × 2 kv heads × 64 × 2 B
  EXPECT_EQ(m.kv_bytes_per_token(TensorType::kF16), 512u);
  EXPECT_EQ(m.kv_bytes_per_token(TensorType::kQ8_0), 2u * 128 / 32 * 34);
  // H_k 2, H_v 4, d 64: conv_dim = 2·2·64 + 4·64 = 512; 3 × (3 × 512 + 4 × 64 × 64) × 4 B
  EXPECT_EQ(m.ssm_conv_dim(), 512);
  EXPECT_EQ(m.recurrent_bytes_per_sequence(), 3u * (3 * 512 + 4 * 64 * 64) * 4);

  const WeightStats w = weight_stats(m, file->tensors());
  uint64_t sum = 0, params = 0;
  for (const auto& t : file->tensors()) {
    sum += t.n_bytes;
    params += static_cast<uint64_t>(t.n_elements());
  }
  EXPECT_EQ(w.total_bytes, sum);
  EXPECT_EQ(w.total_params, params);
  EXPECT_EQ(w.bytes_by_type.size(), 1u);  // an all-f32 file
  EXPECT_EQ(w.bytes_by_type.at("f32"), sum);
  // Tied embeddings: the LM head reads the whole table, plus the embedding row for the input.
  EXPECT_EQ(file->find_tensor("output.weight"), nullptr);
  EXPECT_EQ(w.lm_head_bytes, 128u * 151936 * 4);
  // Experts: 4 of 16 per layer; everything else in full.
  uint64_t expert = 0, other = 0;
  for (const auto& t : file->tensors()) {
    if (t.name.find("_exps") != std::string::npos)
      expert += t.n_bytes;
    else if (t.name != "token_embd.weight")
      other += t.n_bytes;
  }
  EXPECT_EQ(w.active_bytes_per_token, other + expert / 16 * 4 + 128 * 4 + w.lm_head_bytes);
}

TEST(ModelFromGguf, QwenMoeTinyHasOnlyAttentionLayers) {
  const std::string path = test::fixture_model("qwen3moe-tiny");
  ASSERT_FALSE(path.empty());
  Options o;
  o.model_path = path;
  o.hardware = "desktop-ddr5-32";
  const Report r = run(o);
  EXPECT_EQ(r.inputs.model.n_attn_layers(), 4);
  EXPECT_EQ(r.memory.recurrent_state_bytes, 0u);
  EXPECT_EQ(r.memory.kv_bytes_per_token, 4u * 2 * 2 * 64 * 2);
  EXPECT_EQ(r.ctx, 262144);  // default: the trained context
  EXPECT_EQ(r.inputs.model_source, "file " + path);
}

// The synthesized Q8_0 directory of the tiny model equals the real Q8_0 file, tensor by tensor.
TEST(QuantMix, SynthesizedQ8MatchesTheQ8Fixture) {
  const std::string path = test::fixture_model("qwen3next-tiny-q8");
  ASSERT_FALSE(path.empty());
  auto file = gguf::File::open(path);
  ASSERT_TRUE(file.ok()) << file.message();
  auto desc = describe_model(Metadata::from_gguf(*file));
  ASSERT_TRUE(desc.ok()) << desc.message();
  desc->tied_output = true;
  auto tensors = synthesize_tensors(*desc, QuantScheme::kQ8_0);
  ASSERT_TRUE(tensors.ok()) << tensors.message();
  std::map<std::string, const gguf::TensorInfo*> synth;
  for (const auto& t : *tensors) synth[t.name] = &t;
  ASSERT_EQ(synth.size(), file->tensors().size());
  for (const auto& t : file->tensors()) {
    auto it = synth.find(t.name);
    ASSERT_NE(it, synth.end()) << t.name;
    EXPECT_EQ(it->second->ne, t.ne) << t.name;
    EXPECT_EQ(it->second->type, t.type) << t.name;
    EXPECT_EQ(it->second->n_bytes, t.n_bytes) << t.name;
  }
}

std::map<std::string, int> type_counts(const std::vector<gguf::TensorInfo>& tensors, const std::string& part) {
  std::map<std::string, int> counts;
  for (const auto& t : tensors)
    if (t.name.find(part) != std::string::npos) ++counts[std::string(tensor_type_name(t.type))];
  return counts;
}

TensorType type_of(const std::vector<gguf::TensorInfo>& tensors, const std::string& name) {
  for (const auto& t : tensors)
    if (t.name == name) return t.type;
  ADD_FAILURE() << name << " missing";
  return TensorType::kF32;
}

TEST(QuantMix, Q4KMFollowsLlamaQuantizeRules) {
  auto profile = find_model_profile("qwen3-coder-30b-a3b");
  ASSERT_TRUE(profile.ok());
  auto desc = describe_model((*profile)->metadata);
  ASSERT_TRUE(desc.ok());
  auto t = synthesize_tensors(*desc, QuantScheme::kQ4_K_M);
  ASSERT_TRUE(t.ok()) << t.message();
  // use_more_bits over 48 layers: 0-5, 42-47 and every third between = 24 layers at Q6_K.
  EXPECT_EQ(type_counts(*t, "ffn_down_exps"), (std::map<std::string, int>{{"q4_K", 24}, {"q6_K", 24}}));
  EXPECT_EQ(type_counts(*t, "attn_v.weight"), (std::map<std::string, int>{{"q4_K", 24}, {"q6_K", 24}}));
  EXPECT_EQ(type_of(*t, "output.weight"), TensorType::kQ6_K);
  EXPECT_EQ(type_counts(*t, "token_embd"), (std::map<std::string, int>{{"q4_K", 1}}));
  EXPECT_EQ(type_counts(*t, "ffn_gate_inp"), (std::map<std::string, int>{{"f32", 48}}));
  EXPECT_EQ(type_counts(*t, "_norm"), (std::map<std::string, int>{{"f32", 48 * 4 + 1}}));

  auto next = describe_model((*find_model_profile("qwen3-next-80b-a3b"))->metadata);
  ASSERT_TRUE(next.ok());
  auto n = synthesize_tensors(*next, QuantScheme::kQ4_K_M);
  ASSERT_TRUE(n.ok()) << n.message();
  EXPECT_EQ(type_counts(*n, "attn_qkv"), (std::map<std::string, int>{{"q5_K", 36}}));
  // attn_v counted over the 48 attn_v + attn_qkv tensors: the 12 attn_v are the first 12 → 0-5, 8, 11.
  EXPECT_EQ(type_counts(*n, "attn_v.weight"), (std::map<std::string, int>{{"q4_K", 4}, {"q6_K", 8}}));
  EXPECT_EQ(type_counts(*n, "ssm_conv1d"), (std::map<std::string, int>{{"f32", 36}}));
  EXPECT_EQ(type_counts(*n, "ssm_a"), (std::map<std::string, int>{{"f32", 36}}));

  // Published file sizes (Qwen3-Coder-30B-A3B-Instruct GGUFs): Q4_K_M 18.6 GB, Q8_0 32.5 GB, BF16 61.1 GB.
  std::map<std::string, double> gb;
  for (const QuantOption& q : quant_options_for(*desc)) gb[q.name] = static_cast<double>(q.weights_bytes) / 1e9;
  EXPECT_NEAR(gb["Q4_K_M"], 18.6, 0.2);
  EXPECT_NEAR(gb["Q8_0"], 32.5, 0.2);
  EXPECT_NEAR(gb["BF16"], 61.1, 0.2);
  EXPECT_LT(gb["Q3_K_M"], gb["Q4_K_M"]);
  EXPECT_LT(gb["Q4_K_M"], gb["Q5_K_M"]);
  EXPECT_LT(gb["Q5_K_M"], gb["Q6_K"]);
}

TEST(QuantMix, NamesAndUnknownArchitectures) {
  EXPECT_EQ(quant_scheme_from_name("q4_k_m"), QuantScheme::kQ4_K_M);
  EXPECT_EQ(quant_scheme_from_name("Q4-K-M"), QuantScheme::kQ4_K_M);
  EXPECT_EQ(quant_scheme_from_name("bf16"), QuantScheme::kBF16);
  EXPECT_FALSE(quant_scheme_from_name("Q9_K").has_value());
  ModelDesc llama;
  llama.arch = "llama";
  auto r = synthesize_tensors(llama, QuantScheme::kQ4_K_M);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("llama"), std::string::npos);
}

TEST(Profiles, EmbeddedTablesParseAndMatchNames) {
  EXPECT_GE(model_profiles().size(), 3u);
  for (const char* name : {"qwen3-next-80b-a3b", "qwen3-coder-30b-a3b", "qwen3-30b-a3b"})
    EXPECT_TRUE(find_model_profile(name).ok()) << name;
  auto q3 = describe_model((*find_model_profile("qwen3-30b-a3b"))->metadata);
  ASSERT_TRUE(q3.ok());
  EXPECT_EQ(q3->n_layer, 48);
  EXPECT_EQ(q3->n_head, 32);
  EXPECT_EQ(q3->n_head_kv, 4);
  EXPECT_EQ(q3->head_dim_k, 128);
  EXPECT_EQ(q3->n_expert, 128);
  EXPECT_EQ(q3->n_expert_used, 8);
  EXPECT_EQ(q3->n_ff_exp, 768);
  EXPECT_EQ(q3->n_ctx_train, 40960);

  EXPECT_EQ(match_model_profile("qwen3-coder:30b")->name, "qwen3-coder-30b-a3b");
  EXPECT_EQ(match_model_profile("Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf")->name, "qwen3-coder-30b-a3b");
  EXPECT_EQ(match_model_profile("qwen3:30b-a3b-q8_0")->name, "qwen3-30b-a3b");
  EXPECT_EQ(match_model_profile("unsloth/Qwen3-Next-80B-A3B-Instruct-GGUF")->name, "qwen3-next-80b-a3b");
  EXPECT_EQ(match_model_profile("llama3.1:8b"), nullptr);
  EXPECT_EQ(match_quant_name("Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf"), "Q4_K_M");
  EXPECT_EQ(match_quant_name("model-BF16.gguf"), "BF16");
  EXPECT_EQ(match_quant_name("qwen3:30b"), "");
  EXPECT_FALSE(find_model_profile("qwen3-coder").ok());
  EXPECT_FALSE(find_hardware_profile("mac-studio").ok());
}

TEST(Profiles, BadTablesAreErrors) {
  EXPECT_FALSE(parse_model_profiles("not json").ok());
  EXPECT_FALSE(parse_model_profiles(R"({"models": 3})").ok());
  auto missing = parse_model_profiles(
      R"({"models": [{"name": "x", "display_name": "X", "default_quant": "Q4_K_M",
          "metadata": {"general.architecture": "qwen3moe"}}]})");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("block_count"), std::string::npos) << missing.message();
  EXPECT_FALSE(parse_model_profiles(R"({"models": [{"name": "Not Kebab"}]})").ok());
  EXPECT_FALSE(parse_hardware_profiles(R"({"hardware": [{"name": "a", "display_name": "A", "kind": "tpu",
      "memory_gib": 1, "os_reserve_gib": 0, "bandwidth_gbs": 1, "compute_tflops": 1}]})")
                   .ok());
  auto negative = parse_hardware_profiles(R"({"hardware": [{"name": "a", "display_name": "A", "kind": "cpu",
      "memory_gib": -4, "os_reserve_gib": 0, "bandwidth_gbs": 1, "compute_tflops": 1}]})");
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.message().find("memory_gib"), std::string::npos);
}

TEST(Describe, ImplausibleMetadataIsAnError) {
  Metadata md;
  md.set("general.architecture", std::string("qwen3moe"));
  md.set("qwen3moe.block_count", int64_t{1} << 40);
  auto r = describe_model(md);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("block_count"), std::string::npos) << r.message();
  EXPECT_FALSE(describe_model(Metadata()).ok());
}

TEST(Describe, RecurrentLayersArrayOverridesTheInterval) {
  auto base = (*find_model_profile("qwen3-next-80b-a3b"))->metadata;
  std::vector<int64_t> flags(48, 0);
  flags[0] = flags[1] = 1;
  base.set("qwen3next.attention.recurrent_layers", flags);
  auto d = describe_model(base);
  ASSERT_TRUE(d.ok()) << d.message();
  EXPECT_EQ(d->n_recurrent_layers(), 2);
  EXPECT_EQ(d->kv_bytes_per_token(TensorType::kF16), 46u * 2 * 2 * 256 * 2);
}

TEST(Context, YarnAdviceAboveTheTrainedContext) {
  Options o;
  o.profile = "qwen3-30b-a3b";  // trained 40,960; the model card's YaRN recipe: factor 4 over 32,768
  o.hardware = "mac-studio-m3-ultra-256";
  o.ctx = 131072;
  o.prompt_tokens = 100000;
  const Report r = run(o);
  const Finding* above = find(r, "ctx-above-trained");
  ASSERT_NE(above, nullptr);
  EXPECT_NE(above->fix.find("--rope-scaling yarn --rope-scale 4 --yarn-orig-ctx 32768"), std::string::npos)
      << above->fix;
  EXPECT_NE(above->fix.find("-c 40960 (hylo serve)"), std::string::npos) << above->fix;
  const Finding* prompt = find(r, "prompt-exceeds-trained");
  ASSERT_NE(prompt, nullptr);
  EXPECT_EQ(prompt->severity, Severity::kError);
  EXPECT_EQ(find(r, "prompt-exceeds-ctx"), nullptr);

  // With YaRN in the metadata the supported context grows and the warning goes away.
  auto in = gather_inputs(o);
  ASSERT_TRUE(in.ok());
  in->model.rope_scaling = RopeScaling{"yarn", 4.0, 32768};
  EXPECT_EQ(in->model.max_supported_ctx(), 131072);
  const Report yarn = analyze(*in);
  EXPECT_EQ(find(yarn, "ctx-above-trained"), nullptr);
  EXPECT_EQ(find(yarn, "prompt-exceeds-trained"), nullptr);
}

TEST(Memory, LowHeadroomAndKvQuantisation) {
  Options o;
  o.profile = "qwen3-coder-30b-a3b";
  o.hardware = "desktop-ddr5-32";
  o.ctx = 122880;
  const Report r = run(o);
  ASSERT_TRUE(r.memory.fits);
  const Finding* low = find(r, "low-headroom");
  ASSERT_NE(low, nullptr);
  EXPECT_EQ(low->severity, Severity::kWarning);

  o.kv_type = TensorType::kQ8_0;
  const Report q8 = run(o);
  EXPECT_EQ(q8.memory.kv_bytes_per_token, 48u * 2 * (512 / 32 * 34));
  EXPECT_EQ(find(q8, "low-headroom"), nullptr);
}

TEST(Memory, SmallerQuantisationIsSuggestedWhenWeightsDoNotFit) {
  Options o;
  o.profile = "qwen3-coder-30b-a3b";
  o.quant = "BF16";
  o.hardware = "rtx-5090";
  o.ctx = 32768;
  const Report r = run(o);
  const Finding* f = find(r, "does-not-fit");
  ASSERT_NE(f, nullptr);
  // Q8_0 (30.2 GiB) leaves no room for the 3 GiB KV cache; Q6_K is the best that fits.
  EXPECT_NE(f->fix.find("use Q6_K weights"), std::string::npos) << f->fix;
}

TEST(Memory, ComputeBufferFormula) {
  Options o;
  o.profile = "qwen3-coder-30b-a3b";
  o.hardware = "h100";
  const Report r = run(o);
  // 2 buffers × 512 tokens × (2·2048 + router 128 + 8 experts × 2 × 768 + 2048) floats
  EXPECT_EQ(r.memory.compute.activations, 2u * 512 * (4096 + 128 + 8 * 2 * 768 + 2048) * 4);
  EXPECT_EQ(r.memory.compute.logits, 151936u * 512 * 4);
  EXPECT_EQ(r.memory.compute.attention, 512u * 32 * 512 * 4);
  EXPECT_EQ(r.memory.compute.deltanet, 0u);
  EXPECT_EQ(r.memory.reserve_bytes, r.memory.os_reserve_bytes + kRuntimeReserveBytes);
}

TEST(Time, MeasurementsOverrideEstimatesAndGivenValuesOverrideMeasurements) {
  Options o;
  o.profile = "qwen3-coder-30b-a3b";
  o.hardware = "dgx-spark";
  o.prompt_tokens = 10000;
  const Report estimated = run(o);
  EXPECT_EQ(estimated.time.prefill_tps_source, "estimated");
  EXPECT_GT(estimated.time.prefill_seconds, 0);
  const Finding* ttft = find(estimated, "time-to-first-token");
  ASSERT_NE(ttft, nullptr);
  EXPECT_NE(ttft->fix.find("estimate"), std::string::npos);

  o.measured.prefill_tps = 1000;
  o.measured.bandwidth_gbs = 200;
  const Report measured = run(o);
  EXPECT_EQ(measured.time.prefill_tps_source, "measured");
  EXPECT_DOUBLE_EQ(measured.time.prefill_seconds, 10.0);
  EXPECT_DOUBLE_EQ(*measured.time.decode_tps_bound, 200e9 / static_cast<double>(measured.time.active_bytes_per_token));

  o.prefill_tps = 500;
  EXPECT_DOUBLE_EQ(run(o).time.prefill_seconds, 20.0);
}

TEST(Time, PrefillEstimateGrowsFasterThanLinearWithAttention) {
  auto profile = find_model_profile("qwen3-coder-30b-a3b");
  auto desc = describe_model((*profile)->metadata);
  ASSERT_TRUE(desc.ok());
  auto tensors = synthesize_tensors(*desc, QuantScheme::kQ4_K_M);
  ASSERT_TRUE(tensors.ok());
  const WeightStats w = weight_stats(*desc, *tensors);
  const double t1 = estimate_prefill_seconds(*desc, w, 100, std::nullopt, 16384, 512);
  const double t8 = estimate_prefill_seconds(*desc, w, 100, std::nullopt, 8 * 16384, 512);
  EXPECT_GT(t8, 8 * t1);
  // Compute-bound at 100 TFLOPS: 2 FLOPs per active weight per token dominate a short prompt.
  const double linear =
      2.0 * static_cast<double>(w.active_params - w.lm_head_params) * 512 / (kPrefillEfficiency * 100e12);
  EXPECT_NEAR(estimate_prefill_seconds(*desc, w, 100, std::nullopt, 512, 512), linear, 0.1 * linear);
}

TEST(Time, DecodeBoundLowAndUnknownBandwidth) {
  Options o;
  o.profile = "qwen3-235b-a22b-2507";
  o.quant = "BF16";
  o.hardware = "desktop-ddr5-192";
  const Report slow = run(o);
  const Finding* low = find(slow, "decode-bound-low");
  ASSERT_NE(low, nullptr);
  EXPECT_NE(low->fix.find("Q3_K_M"), std::string::npos) << low->fix;

  Options detected;
  detected.profile = "qwen3-coder-30b-a3b";
  const Report r = run(detected);  // this machine, bandwidth not measured
  EXPECT_FALSE(r.time.decode_tps_bound.has_value());
  EXPECT_NE(find(r, "bandwidth-unknown"), nullptr);
  EXPECT_GT(r.memory.available_bytes, 0u);
  EXPECT_GE(r.memory.os_reserve_bytes, uint64_t{2} << 30);
}

}  // namespace
}  // namespace hylo::doctor
