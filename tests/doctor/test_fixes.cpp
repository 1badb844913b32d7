// The pieces behind pasteable fixes, labels, Apple's GPU limit, custom machines, several models
// and the prefill calibration, tested in process.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/fixtures.h"
#include "doctor/doctor.h"
#include "doctor/profiles.h"
#include "models/cost.h"
#include "models/model.h"

namespace hylo::doctor {
namespace {

constexpr double kGiB = 1073741824.0;

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

TEST(DoctorFixes, PatchModelfileKeepsEverythingElse) {
  const std::string text =
      "# my model\nFROM qwen3-coder:30b\nPARAMETER temperature 0.7\nPARAMETER num_ctx 131072\nSYSTEM \"\"\"be "
      "brief\n\"\"\"\n";
  const std::string patched = patch_modelfile(text, "num_ctx", "262144");
  EXPECT_EQ(patched,
            "# my model\nFROM qwen3-coder:30b\nPARAMETER temperature 0.7\nPARAMETER num_ctx 262144\nSYSTEM \"\"\"be "
            "brief\n\"\"\"\n");
  // No num_ctx yet: added right after FROM.
  EXPECT_EQ(patch_modelfile("FROM x\nPARAMETER top_k 20\n", "num_ctx", "8192"),
            "FROM x\nPARAMETER num_ctx 8192\nPARAMETER top_k 20\n");
  auto parsed = parse_modelfile(patched, "patched");
  ASSERT_TRUE(parsed.ok()) << parsed.message();
  EXPECT_EQ(parsed->find("num_ctx")->value, "262144");
  EXPECT_EQ(parsed->find("temperature")->value, "0.7");
}

TEST(DoctorFixes, PatchedModelfilesParseAndChangeOnlyTheParameter) {
  const char* const kCases[] = {
      "FROM qwen3-coder:30b\n",
      "FROM qwen3-coder:30b",  // no final newline
      "# comment\r\nFROM ./model.gguf\r\nparameter NUM_CTX 4096\r\n",
      "FROM x\nTEMPLATE \"\"\"{{ .Prompt }}\nPARAMETER num_ctx 1\n\"\"\"\nPARAMETER num_ctx 8192\nPARAMETER num_ctx "
      "16384\n",
      "FROM x\nSYSTEM \"\"\"\nPARAMETER num_ctx 2\n\"\"\"\n",
  };
  for (const char* text : kCases) {
    auto before = parse_modelfile(text, "before");
    ASSERT_TRUE(before.ok()) << before.message() << "\n" << text;
    const std::string patched = patch_modelfile(text, "num_ctx", "262144");
    auto after = parse_modelfile(patched, "after");
    ASSERT_TRUE(after.ok()) << after.message() << "\n" << patched;
    ASSERT_NE(after->find("num_ctx"), nullptr) << patched;
    EXPECT_EQ(after->find("num_ctx")->value, "262144") << patched;
    EXPECT_EQ(after->from, before->from);
    // The """ blocks are text: their lines stay as they were.
    EXPECT_EQ(patched.find("PARAMETER num_ctx 1\n") != std::string::npos,
              std::string(text).find("PARAMETER num_ctx 1\n") != std::string::npos);
    EXPECT_EQ(patched.find("PARAMETER num_ctx 2\n") != std::string::npos,
              std::string(text).find("PARAMETER num_ctx 2\n") != std::string::npos);
  }
}

TEST(DoctorFixes, ContextInNames) {
  auto v = context_in_name("v-128k");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->tokens, 131072);
  EXPECT_EQ(v->figure, "128k");
  EXPECT_TRUE(figure_matches(*v, 131072));
  EXPECT_TRUE(figure_matches(*v, 128000));
  EXPECT_FALSE(figure_matches(*v, 262144));
  EXPECT_TRUE(figure_matches(*context_in_name("qwen3-coder-262k"), 262144));
  EXPECT_TRUE(figure_matches(*context_in_name("x_256K"), 262144));
  EXPECT_EQ(context_in_name("qwen3-1m")->tokens, 1048576);
  for (const char* none :
       {"qwen3-coder:30b", "Qwen3-Next-80B-A3B-Instruct-Q4_K_M.gguf", "qwen3:30b-a3b-q8_0", "model128k", "v-12345k"})
    EXPECT_FALSE(context_in_name(none).has_value()) << none;
  EXPECT_EQ(rename_for_context("v-128k", 262144), "v-256k");
  EXPECT_EQ(rename_for_context("coder-128k-fast", 65536), "coder-64k-fast");
  EXPECT_EQ(rename_for_context("my-model", 262144), "my-model-256k");
}

TEST(DoctorFixes, AppleWiredLimitOn64GBAndTheQwenNextCase) {
  Options o;
  o.profile = "qwen3-next-80b-a3b";
  o.quant = "Q4_K_M";
  o.hardware = "mac-studio-m2-ultra-64";
  o.ctx = 262144;
  const Report r = run(o);
  ASSERT_TRUE(r.memory.gpu_limit_bytes.has_value());
  EXPECT_EQ(*r.memory.gpu_limit_bytes, uint64_t{48} << 30);  // 3/4 of 64 GiB
  EXPECT_NEAR(static_cast<double>(r.memory.total_bytes) / kGiB, 55.1, 0.05);
  EXPECT_TRUE(r.memory.fits);  // the machine has the memory; its GPU may not use it
  const Finding* f = find(r, "gpu-wired-limit");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->severity, Severity::kError);
  EXPECT_NE(f->message.find("48.0 GiB"), std::string::npos) << f->message;
  EXPECT_NE(f->message.find("3/4 of 64.0 GiB"), std::string::npos) << f->message;
  // The arithmetic: everything but the OS reserve is on the GPU.
  EXPECT_EQ(r.memory.gpu_working_set_bytes, r.memory.total_bytes - r.memory.reserve_bytes);
  bool sysctl = false;
  for (const Fix& x : f->fixes) {
    if (x.text.rfind("sudo sysctl iogpu.wired_limit_mb=", 0) != 0) continue;
    sysctl = true;
    const uint64_t mb = std::stoull(x.text.substr(x.text.find('=') + 1));
    EXPECT_GE(mb << 20, r.memory.gpu_working_set_bytes);
    EXPECT_LE((mb << 20) + (uint64_t{8} << 30), uint64_t{64} << 30);  // macOS keeps at least 8 GiB
    EXPECT_NE(x.title.find("freeze"), std::string::npos) << x.title;  // the risk is said
  }
  EXPECT_TRUE(sysctl);
  EXPECT_FALSE(r.verdict.hardware_problem) << r.verdict.headline;
  // A CPU machine has no such limit.
  o.hardware = "desktop-ddr5-96";
  EXPECT_EQ(find(run(o), "gpu-wired-limit"), nullptr);
}

TEST(DoctorFixes, CustomMachineFileAndFlags) {
  const std::string dir = test::scratch_path("doctor-machine");
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/box.json") << R"({"name": "my-box", "display_name": "My box", "kind": "gpu",
    "memory_gib": 48, "os_reserve_gib": 1, "bandwidth_gbs": 960, "compute_tflops": 120, "family": "amd",
    "devices": 2, "split": "layer", "link_bandwidth_gbs": 32})";
  Options o;
  o.profile = "qwen3-coder-30b-a3b";
  o.machine_file = dir + "/box.json";
  o.ctx = 65536;
  Report r = run(o);
  EXPECT_EQ(r.inputs.machine.name, "my-box");
  EXPECT_EQ(r.memory.available_bytes, uint64_t{96} << 30);
  EXPECT_EQ(r.memory.os_reserve_bytes, uint64_t{2} << 30);
  // A layer split reads the weights one device after the other: no faster than one device.
  const double one_device = 960e9 / static_cast<double>(r.time.active_bytes_per_token);
  EXPECT_LT(*r.time.decode_tps_bound, one_device);
  EXPECT_GT(*r.time.decode_tps_bound, 0.95 * one_device);

  o.machine_overrides.split = "tensor";
  r = run(o);
  EXPECT_GT(*r.time.decode_tps_bound, 1.8 * one_device);

  std::ofstream(dir + "/bad.json") << R"({"kind": "gpu", "memory_gib": -3})";
  o.machine_file = dir + "/bad.json";
  auto bad = gather_inputs(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("bad.json"), std::string::npos) << bad.message();

  Options flags;
  flags.profile = "qwen3-coder-30b-a3b";
  flags.hardware = "mac-studio-m2-ultra-64";
  flags.machine_overrides.memory_gib = 192;
  r = run(flags);
  EXPECT_EQ(r.memory.available_bytes, uint64_t{192} << 30);
  EXPECT_EQ(*r.memory.gpu_limit_bytes, uint64_t{144} << 30);  // the Apple limit follows the memory
  flags.machine_overrides.gpu_memory_gib = 100;
  EXPECT_EQ(*run(flags).memory.gpu_limit_bytes, uint64_t{100} << 30);
  flags.machine_overrides.gpu_memory_gib = 500;
  EXPECT_FALSE(gather_inputs(flags).ok());
}

TEST(DoctorFixes, MultiDeviceProfiles) {
  struct Want {
    const char* name;
    int devices;
    double gib_each;
    const char* split;
  };
  for (const Want& w : {Want{"dgx-spark-x2", 2, 128, "layer"}, Want{"rx-7900-xtx-x2", 2, 24, "layer"},
                        Want{"a100-80gb-x4", 4, 80, "tensor"}}) {
    auto h = find_hardware_profile(w.name);
    ASSERT_TRUE(h.ok()) << h.message();
    EXPECT_EQ((*h)->devices, w.devices) << w.name;
    EXPECT_EQ((*h)->memory_bytes, static_cast<uint64_t>(w.gib_each * kGiB)) << w.name;
    EXPECT_EQ((*h)->split, w.split) << w.name;
    EXPECT_GT((*h)->link_bandwidth_gbs, 0) << w.name;
  }
  Options o;
  o.profile = "qwen3-next-80b-a3b";
  o.quant = "BF16";
  o.hardware = "a100-80gb-x4";
  const Report r = run(o);
  EXPECT_EQ(r.memory.available_bytes, uint64_t{320} << 30);
  EXPECT_TRUE(r.memory.fits);
}

TEST(DoctorFixes, TwoModelsLoadedAtOnce) {
  Options o;
  o.profile = "qwen3-next-80b-a3b";
  o.extra_models = {"qwen3-coder-30b-a3b"};
  o.hardware = "mac-studio-m2-ultra-192";
  o.ctx = 65536;
  const Report both = run(o);
  ASSERT_EQ(both.inputs.residents.size(), 1u);
  const ResidentModel& coder = both.inputs.residents[0];
  EXPECT_EQ(coder.ctx, 65536);
  EXPECT_EQ(coder.kv_cache_bytes, uint64_t{96} * 1024 * 65536);
  EXPECT_EQ(both.memory.other_models_bytes, coder.total_bytes());
  o.extra_models.clear();
  const Report alone = run(o);
  EXPECT_EQ(both.memory.total_bytes, alone.memory.total_bytes + coder.total_bytes());
  EXPECT_LT(both.memory.largest_ctx_that_fits, alone.memory.largest_ctx_that_fits + 1);
  o.extra_models = {"no-such-model"};
  EXPECT_FALSE(gather_inputs(o).ok());
}

TEST(DoctorFixes, PrefillCalibratedOnPublishedMeasurements) {
  Options o;
  o.profile = "qwen3-coder-30b-a3b";
  o.quant = "Q4_K_M";
  o.hardware = "mac-studio-m2-ultra-64";
  o.ctx = 262144;
  o.prompt_tokens = 146760;
  const Report r = run(o);
  EXPECT_EQ(r.time.prefill_tps_source, "estimated");
  // The fast end is the observed ~400 tok/s (a calibration point), the slow end the published
  // llama.cpp measurements extrapolated by the roofline; the uncalibrated estimate was ~151.
  EXPECT_NEAR(r.time.prefill_tps_high, 400, 1);
  EXPECT_NEAR(r.time.prefill_seconds_fast, 366.9, 0.5);
  EXPECT_GT(r.time.prefill_tps_low, 151);
  EXPECT_LT(r.time.prefill_tps_low, 300);
  EXPECT_GE(r.time.prefill_tps, r.time.prefill_tps_low);
  EXPECT_LE(r.time.prefill_tps, r.time.prefill_tps_high);
  EXPECT_NE(r.time.prefill_calibration.find("published"), std::string::npos);
  // No measurement for the family: the wide default range, said to be uncalibrated.
  o.hardware = "rtx-4090";
  const Report g = run(o);
  EXPECT_NEAR(g.time.prefill_tps_high / g.time.prefill_tps_low, 3.0, 1e-6);
  EXPECT_NE(g.time.prefill_calibration.find("uncalibrated"), std::string::npos);
}

// --spec mtp: the cost model's estimate on the doctor's byte counts. Tokens per verify step are
// (1 − α^{k+1}) / (1 − α); a plain step is the bytes behind the decode bound at the context; the
// estimate for a GGUF with an MTP block equals what `hylo bench --spec mtp` computes from the
// loaded model (one cost model).
TEST(DoctorSpeculative, EstimateFollowsTheCostModel) {
  Options o;
  o.profile = "qwen3-next-80b-a3b";
  o.hardware = "mac-studio-m2-ultra-64";
  o.ctx = 65536;
  o.spec_draft = 2;
  o.spec_acceptance = 0.7;
  const Report r = run(o);
  ASSERT_TRUE(r.time.speculative.has_value());
  const auto& s = *r.time.speculative;
  EXPECT_FALSE(s.model_has_mtp);  // the profile describes the published GGUFs, without MTP tensors
  EXPECT_NEAR(s.tokens_per_step, (1 - 0.7 * 0.7 * 0.7) / 0.3, 1e-12);
  const double bw = *r.time.bandwidth_gbs * 1e9;
  EXPECT_NEAR(bw / s.bytes_plain, *r.time.decode_tps_bound_at_ctx, 1e-6 * *r.time.decode_tps_bound_at_ctx);
  EXPECT_GT(s.bytes_per_step, s.bytes_plain);
  EXPECT_LT(s.bytes_per_step, 3 * s.bytes_plain);
  EXPECT_NEAR(s.speedup, s.tokens_per_step * s.bytes_plain / s.bytes_per_step, 1e-12);
  EXPECT_NEAR(*s.decode_tps_bound_at_ctx, *r.time.decode_tps_bound_at_ctx * s.speedup, 1e-9);
  o.spec_acceptance = 1e-9;
  EXPECT_LT(run(o).time.speculative->speedup, 1.0);  // drafts nobody accepts only cost
  o.spec_acceptance = 1.0;
  EXPECT_DOUBLE_EQ(run(o).time.speculative->tokens_per_step, 3.0);

  Options f;
  f.model_path = test::fixture_model("qwen3next-tiny-mtp");
  f.hardware = "mac-studio-m2-ultra-64";
  f.ctx = 1000;
  f.prompt_tokens = 1000;
  f.spec_draft = 3;
  f.spec_acceptance = 0.5;
  const Report g = run(f);
  ASSERT_TRUE(g.time.speculative.has_value());
  EXPECT_TRUE(g.time.speculative->model_has_mtp);
  auto loaded = models::load_model(f.model_path, {.repack = false});
  ASSERT_TRUE(loaded.ok()) << loaded.message();
  const models::SpecEstimate e = models::speculative_estimate(**loaded, 3, 0.5, 1000, TensorType::kF16);
  // The same bytes, except that bench also counts the KV row a token writes (one row of 512 bytes).
  const double row = static_cast<double>(g.memory.kv_bytes_per_token);
  EXPECT_NEAR(g.time.speculative->bytes_plain, e.bytes_plain, row);
  EXPECT_NEAR(g.time.speculative->bytes_per_step, e.bytes_step, row);
  EXPECT_NEAR(g.time.speculative->speedup, e.speedup, 1e-5);
}

}  // namespace
}  // namespace hylo::doctor
