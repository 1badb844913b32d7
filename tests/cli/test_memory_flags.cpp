// The context and memory flags end to end through the hylo binary: KV cache types as llama-server
// spells them (-ctk/-ctv), the automatic YaRN, and the memory check that refuses a model larger
// than the memory a test sets (HYLO_MEMORY_AVAILABLE) with the numbers and the options.
#include <gtest/gtest.h>

#include "common/fixtures.h"

namespace hylo {
namespace {

struct Outcome {
  int status;
  std::string out;
};
Outcome hylo(const std::string& args, const std::string& env = "") {
  Outcome r;
  r.status = test::run_command(env + " '" + test::hylo_binary() + "' " + args, &r.out);
  return r;
}

std::string model() { return "-m '" + test::fixture_model("qwen3moe-tiny") + "'"; }

TEST(KvFlags, EveryCacheTypeRunsInRunAndLogits) {
  const Outcome r = hylo("-v run " + model() + " -n 3 --raw -ctk q8_0 -ctv q4_0 -t 2 hello");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("KV cache K q8_0 V q4_0"), std::string::npos) << r.out;
  for (const char* t : {"f32", "f16", "bf16", "q8_0", "q4_0"}) {
    const std::string out = test::scratch_path(std::string("kv_logits_") + t + ".npy");
    const Outcome l =
        hylo("logits " + model() + " --prompt hello -t 2 --cache-type-k " + t + " -ctv=" + t + " -o '" + out + "'");
    EXPECT_EQ(l.status, 0) << t << ": " << l.out;
  }
  const Outcome bad = hylo("run " + model() + " -ctk q4_K hello");
  EXPECT_EQ(bad.status, 2) << bad.out;
  EXPECT_NE(bad.out.find("q4_K"), std::string::npos) << bad.out;
}

TEST(RopeFlags, AutomaticYarnAndConflicts) {
  // 524,288 positions is twice the trained 262,144: YaRN with factor 2, said so.
  const Outcome a = hylo("run " + model() + " -n 2 --raw -t 2 -c 524288 hello");
  EXPECT_EQ(a.status, 0) << a.out;
  EXPECT_NE(a.out.find("turned on automatically"), std::string::npos) << a.out;
  EXPECT_NE(a.out.find("yarn (factor 2"), std::string::npos) << a.out;
  const Outcome off = hylo("run " + model() + " -n 2 --raw -t 2 -c 524288 --rope-scaling none hello");
  EXPECT_EQ(off.status, 0) << off.out;
  EXPECT_EQ(off.out.find("automatically"), std::string::npos) << off.out;
  const Outcome bad = hylo("run " + model() + " -n 2 --raw --rope-scaling none --rope-scale 4 hello");
  EXPECT_EQ(bad.status, 1) << bad.out;
  EXPECT_NE(bad.out.find("--rope-scale"), std::string::npos) << bad.out;
}

// qwen3moe-tiny: 91 MB of weights, 2 KiB of f16 KV cache per token (4 layers × 2 heads × 64 × K,V).
TEST(MemoryCheck, RefusesWithTheNumbersAndTheOptions) {
  // 50 MB: not even the weights fit. Nothing heavy happens, the options are named.
  const Outcome r = hylo("run " + model() + " -n 2 --raw hello", "HYLO_MEMORY_AVAILABLE=50000000");
  EXPECT_EQ(r.status, 1) << r.out;
  for (const char* want : {"does not fit in memory", "weights", "KV cache", "recurrent state", "compute buffers",
                           "smaller quantization", "--mmap", "Nothing was loaded"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  // With --mmap it goes ahead, streaming, and says so.
  const Outcome go = hylo("run " + model() + " -n 2 --raw --mmap -t 2 hello", "HYLO_MEMORY_AVAILABLE=50000000");
  EXPECT_EQ(go.status, 0) << go.out;
  EXPECT_NE(go.out.find("streamed from disk"), std::string::npos) << go.out;
  // --no-mmap cannot stream.
  const Outcome no = hylo("run " + model() + " -n 2 --raw --no-mmap hello", "HYLO_MEMORY_AVAILABLE=50000000");
  EXPECT_EQ(no.status, 1) << no.out;
}

TEST(MemoryCheck, SuggestsTheKvCacheTypeOrContextThatFits) {
  // At 262,144 positions the f16 cache takes 512 MiB: 700 MB is too little with it, enough at q8_0.
  const std::string env = "HYLO_MEMORY_AVAILABLE=700000000";
  const Outcome r = hylo("run " + model() + " -c 262144 -n 2 --raw hello", env);
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("hylo run -ctk q8_0 -ctv q8_0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("hylo run -c "), std::string::npos) << r.out;
  const Outcome q8 = hylo("run " + model() + " -c 262144 -n 2 --raw -t 2 -ctk q8_0 -ctv q8_0 hello", env);
  EXPECT_EQ(q8.status, 0) << q8.out;
  // And the same machine with no context given picks one that fits, without refusing.
  const Outcome dflt = hylo("run " + model() + " -n 2 --raw -t 2 hello", env);
  EXPECT_EQ(dflt.status, 0) << dflt.out;
  // --no-mmap and --mlock load normally when it fits (a failed lock is a warning, not an error).
  const Outcome no = hylo("run " + model() + " -n 2 --raw -t 2 --no-mmap --mlock hello");
  EXPECT_EQ(no.status, 0) << no.out;
}

}  // namespace
}  // namespace hylo
