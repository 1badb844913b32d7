// `hylo doctor` end to end: the binary's JSON parsed back, the human report, and exit codes
// (0 report ran, 1 bad input, 2 usage).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/fixtures.h"

namespace hylo {
namespace {

using json = nlohmann::json;

int doctor(const std::string& args, std::string* out) {
  return test::run_command(test::hylo_binary() + " doctor " + args, out);
}

json doctor_json(const std::string& args) {
  std::string out;
  const int rc = doctor(args + " --json", &out);
  EXPECT_EQ(rc, 0) << out;
  json j = json::parse(out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << out;
  return j;
}

bool has_finding(const json& j, const std::string& id) {
  for (const json& f : j["findings"])
    if (f["id"] == id) return true;
  return false;
}

TEST(DoctorCli, SeedCaseAsJson) {
  const std::string dir = test::work_dir() + "/doctor-cli";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/Modelfile") << "FROM qwen3-coder:30b\nPARAMETER num_ctx 131072\n";
  const json j = doctor_json("--modelfile " + dir +
                             "/Modelfile --hardware mac-studio-m2-ultra-64 --prompt-tokens 146760 "
                             "--prefill-tps 400 --timeout 300");
  for (const char* key : {"weights_bytes", "kv_cache_bytes", "kv_bytes_per_token", "recurrent_state_bytes",
                          "compute_bytes", "reserve_bytes", "total_bytes", "available_bytes"})
    EXPECT_TRUE(j["memory"][key].is_number()) << key;
  EXPECT_EQ(j["memory"]["kv_bytes_per_token"], 98304);
  EXPECT_EQ(j["memory"]["kv_cache_bytes"], 98304LL * 131072);
  EXPECT_EQ(j["memory"]["available_bytes"], 64LL << 30);
  EXPECT_NEAR(j["time"]["prefill_seconds"].get<double>(), 366.9, 0.05);
  EXPECT_TRUE(j["time"]["decode_tps_bound"].is_number());
  EXPECT_TRUE(has_finding(j, "ctx-below-trained"));
  EXPECT_TRUE(has_finding(j, "prompt-exceeds-ctx"));
  EXPECT_TRUE(has_finding(j, "prefill-exceeds-timeout"));
  for (const json& f : j["findings"]) {
    for (const char* key : {"id", "severity", "message", "fix"}) EXPECT_TRUE(f[key].is_string()) << key;
    const std::string sev = f["severity"];
    EXPECT_TRUE(sev == "info" || sev == "warning" || sev == "error") << sev;
  }
}

TEST(DoctorCli, ProfileAt262kAndHumanReport) {
  const json j =
      doctor_json("--profile qwen3-coder-30b-a3b --ctx 256k --kv-type f16 --hardware mac-studio-m2-ultra-64");
  EXPECT_EQ(j["memory"]["kv_cache_bytes"], 24LL << 30);
  EXPECT_TRUE(j["memory"]["fits"].get<bool>());

  std::string out;
  ASSERT_EQ(doctor("--profile qwen3-coder-30b-a3b --ctx 262144 --hardware desktop-ddr5-32", &out), 0) << out;
  EXPECT_NE(out.find("Memory"), std::string::npos) << out;
  EXPECT_NE(out.find("█"), std::string::npos) << out;
  EXPECT_NE(out.find("does-not-fit"), std::string::npos) << out;
  EXPECT_NE(out.find("largest context that fits"), std::string::npos) << out;
}

TEST(DoctorCli, GgufFileQwenNext) {
  const std::string path = test::fixture_model("qwen3next-tiny");
  ASSERT_FALSE(path.empty());
  const json j = doctor_json("-m " + path + " --hardware h100 --ctx 4096 --parallel 2");
  EXPECT_EQ(j["model"]["arch"], "qwen3next");
  EXPECT_EQ(j["model"]["n_attn_layers"], 1);
  EXPECT_EQ(j["memory"]["kv_bytes_per_token"], 512);
  EXPECT_EQ(j["memory"]["kv_cache_bytes"], 512 * 4096 * 2);
  EXPECT_EQ(j["memory"]["recurrent_state_bytes"], 2 * 3 * (3 * 512 + 4 * 64 * 64) * 4);
}

TEST(DoctorCli, PrefixCacheBudgetIsCounted) {
  const std::string args = "--profile qwen3-coder-30b-a3b --ctx 64k --hardware desktop-ddr5-32";
  const json without = doctor_json(args);
  const json with = doctor_json(args + " --cache-ram 8G");
  EXPECT_EQ(with["memory"]["prefix_cache_bytes"], 8LL << 30);
  EXPECT_EQ(with["memory"]["total_bytes"].get<int64_t>() - without["memory"]["total_bytes"].get<int64_t>(), 8LL << 30);
  EXPECT_LT(with["memory"]["largest_ctx_that_fits"].get<int64_t>(),
            without["memory"]["largest_ctx_that_fits"].get<int64_t>());
  std::string out;
  EXPECT_EQ(doctor(args + " --cache-ram lots", &out), 2) << out;
  EXPECT_NE(out.find("lots"), std::string::npos) << out;
}

TEST(DoctorCli, CompareHardwareAndList) {
  const json j = doctor_json("--profile qwen3-next-80b-a3b --compare-hardware");
  ASSERT_TRUE(j["compare"].is_array());
  EXPECT_GE(j["compare"].size(), 10u);
  const double active = j["time"]["active_bytes_per_token"].get<double>();
  for (const json& row : j["compare"]) {
    if (row["devices"] != 1 || row["decode_tps_bound"].is_null()) continue;  // multi-device: test_seed_numbers
    const double bound = row["bandwidth_gbs"].get<double>() * 1e9 / active;
    EXPECT_NEAR(row["decode_tps_bound"].get<double>(), bound, 1e-9 * bound);
  }

  std::string out;
  ASSERT_EQ(doctor("--profile qwen3-next-80b-a3b --compare-hardware", &out), 0) << out;
  EXPECT_NE(out.find("dgx-spark"), std::string::npos) << out;
  ASSERT_EQ(doctor("--list", &out), 0) << out;
  for (const char* name : {"qwen3-next-80b-a3b", "qwen3-coder-30b-a3b", "qwen3-30b-a3b", "dgx-spark",
                           "mac-studio-m2-ultra-64", "mac-studio-m3-ultra-512", "rtx-4090", "h100", "h200", "mi300x"})
    EXPECT_NE(out.find(name), std::string::npos) << name;
}

TEST(DoctorCli, ExitCodes) {
  std::string out;
  EXPECT_EQ(doctor("--profile no-such-model --hardware h100", &out), 1) << out;
  EXPECT_NE(out.find("unknown model profile"), std::string::npos) << out;
  EXPECT_EQ(doctor("-m /nonexistent/model.gguf --hardware h100", &out), 1) << out;
  EXPECT_EQ(doctor("--profile qwen3-coder-30b-a3b --hardware no-such-machine", &out), 1) << out;
  EXPECT_EQ(doctor("--profile qwen3-coder-30b-a3b --ctx lots --hardware h100", &out), 2) << out;
  EXPECT_EQ(doctor("--profile qwen3-coder-30b-a3b --hardware h100 --detect", &out), 2) << out;
  // A file and a profile: two models loaded at once; a file that does not exist is bad input.
  EXPECT_EQ(doctor("--profile qwen3-coder-30b-a3b -m x.gguf", &out), 1) << out;
  EXPECT_EQ(doctor("--profile qwen3-coder-30b-a3b --hardware h100 --machine m.json", &out), 2) << out;
  EXPECT_EQ(doctor("--profile qwen3-coder-30b-a3b --devices many", &out), 2) << out;
  EXPECT_EQ(doctor("--profile qwen3-coder-30b-a3b --machine /nonexistent/m.json", &out), 1) << out;
  EXPECT_EQ(doctor("--profile qwen3-coder-30b-a3b --frobnicate", &out), 2) << out;
  // Error findings still mean the report ran.
  EXPECT_EQ(doctor("--profile qwen3-coder-30b-a3b --quant BF16 --hardware rtx-4090", &out), 0) << out;
}

// With a routes file the doctor says where typical requests would run, by the router's own
// policy: the podcast's prompt misses the 300 s timeout locally and goes to the cloud, a prompt
// over the local context too, small ones stay local, and a private one never leaves.
TEST(DoctorCli, RoutesFileSaysWhereRequestsRun) {
  const std::string dir = test::work_dir() + "/doctor-routes";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/routes.yaml") << "upstreams:\n  cloud:\n    url: https://api.example.com/v1\n"
                                         "    model: big\n    ctx: 1000000\n    key_env: CLOUD_API_KEY\n";
  const json j = doctor_json(
      "--profile qwen3-coder-30b-a3b --hardware mac-studio-m2-ultra-64 --prompt-tokens 146760 "
      "--prefill-tps 400 --timeout 300 --routes " +
      dir + "/routes.yaml");
  ASSERT_TRUE(j["routes"].is_array()) << j.dump();
  int seen = 0;
  for (const json& row : j["routes"]) {
    const int64_t n = row["prompt_tokens"];
    if (row["private"].get<bool>()) {
      EXPECT_NE(row["route"], "cloud") << row.dump();
      ++seen;
    } else if (n <= 32000) {
      EXPECT_EQ(row["route"], "local") << row.dump();
      ++seen;
    } else if (n == 146760) {
      EXPECT_EQ(row["route"], "cloud") << row.dump();
      EXPECT_NE(row["reason"].get<std::string>().find("366.9 s"), std::string::npos) << row.dump();
      ++seen;
    } else {
      EXPECT_EQ(n, 262145);
      EXPECT_EQ(row["route"], "cloud") << row.dump();
      ++seen;
    }
  }
  EXPECT_EQ(seen, 6);
  std::string out;
  EXPECT_EQ(
      doctor("--profile qwen3-coder-30b-a3b --hardware mac-studio-m2-ultra-64 --routes " + dir + "/missing.yaml", &out),
      2)
      << out;
}

}  // namespace
}  // namespace hylo
