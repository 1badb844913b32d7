// RoPE and YaRN: the cos/sin tables against the formula computed directly in double (spec §6,
// llama.cpp's rope_yarn), the choice between the file's scaling, llama-server's flags and the
// automatic YaRN, and a file whose metadata asks for YaRN running exactly as the same weights
// with the flags.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numbers>

#include "base/thread_pool.h"
#include "common/fixtures.h"
#include "models/model.h"
#include "models/rope.h"
#include "models/synthetic.h"

namespace hylo {
namespace {

// The formula of spec §6 written out in double, angles from pos · b^(−2i/n) directly (ggml
// multiplies θ incrementally in f32; that is the only difference the tolerance covers).
struct YarnRef {
  double low = 0, high = 0, mscale = 1;
  std::vector<double> cos, sin;
};
YarnRef yarn_reference(int n, double base, double s, double L, double ext, double attn, double beta_fast,
                       double beta_slow, int pos) {
  YarnRef r;
  auto corr = [&](double beta) { return n * std::log(L / (beta * 2 * std::numbers::pi)) / (2 * std::log(base)); };
  if (ext != 0) {
    r.low = std::max(0.0, std::floor(corr(beta_fast)));
    r.high = std::min(n - 1.0, std::ceil(corr(beta_slow)));
  }
  r.mscale = ext != 0 ? attn * (1 + 0.1 * std::log(s)) : attn;
  for (int i = 0; i < n / 2; ++i) {
    const double extrap = pos * std::pow(base, -2.0 * i / n);
    const double interp = extrap / s;
    double theta = interp;
    if (ext != 0) {
      const double ramp = (1 - std::clamp((i - r.low) / std::max(0.001, r.high - r.low), 0.0, 1.0)) * ext;
      theta = interp * (1 - ramp) + extrap * ramp;
    }
    r.cos.push_back(std::cos(theta) * r.mscale);
    r.sin.push_back(std::sin(theta) * r.mscale);
  }
  return r;
}

TEST(Rope, WorkedExampleOfTheSpec) {
  // Qwen3-Next, s = 4, L = 262,144, n = 64: (low, high) = (14, 23) for b = 5e6, (14, 22) for 1e7.
  const YarnRef a = yarn_reference(64, 5e6, 4, 262144, 1, 1, 32, 1, 0);
  EXPECT_EQ(a.low, 14);
  EXPECT_EQ(a.high, 23);
  const YarnRef b = yarn_reference(64, 1e7, 4, 262144, 1, 1, 32, 1, 0);
  EXPECT_EQ(b.low, 14);
  EXPECT_EQ(b.high, 22);
  EXPECT_NEAR(a.mscale, 1.13863, 1e-5);
  models::RopeParams p;
  p.n_rot = 64;
  p.freq_scale = 0.25f;
  p.ext_factor = 1;
  EXPECT_NEAR(p.mscale(), 1.13863, 1e-5);
}

TEST(Rope, TablesMatchTheFormula) {
  struct Case {
    int n;
    float base, factor, ext, attn, beta_fast, beta_slow;
    int64_t orig;
  };
  const Case cases[] = {
      {64, 1e7f, 1, 0, 1, 32, 1, 262144},       // plain RoPE
      {64, 1e7f, 4, 1, 1, 32, 1, 262144},       // Qwen3-Next's YaRN recipe
      {128, 1e7f, 4, 1, 1, 32, 1, 262144},      // Qwen3-MoE (full rotary)
      {64, 5e6f, 8, 1, 1, 32, 1, 32768},        // other factor and original context
      {64, 1e7f, 4, 0.5f, 1.2f, 16, 2, 65536},  // every YaRN flag away from its default
      {64, 1e7f, 2, 0, 1, 32, 1, 262144},       // linear
  };
  for (const Case& c : cases) {
    models::RopeParams p;
    p.n_rot = c.n;
    p.freq_base = c.base;
    p.freq_scale = 1.0f / c.factor;
    p.ext_factor = c.ext;
    p.attn_factor = c.attn;
    p.beta_fast = c.beta_fast;
    p.beta_slow = c.beta_slow;
    p.n_ctx_orig = c.orig;
    std::vector<float> cs(c.n / 2), sn(c.n / 2);
    for (int pos : {0, 1, 7, 100, 1000, 4000}) {
      rope_tables(p, pos, cs.data(), sn.data());
      const YarnRef r = yarn_reference(c.n, c.base, c.factor, static_cast<double>(c.orig), c.ext, c.attn, c.beta_fast,
                                       c.beta_slow, pos);
      for (int i = 0; i < c.n / 2; ++i) {
        // ggml's θ is pos · Π(b^(−2/n)) in f32: relative error ≤ (i + 2)·2⁻²⁴ (one rounding per
        // product, one for pos·scale), then at most three roundings mixing extrap and interp;
        // cos/sin in f32 add 2 ulps. Scaled by mscale.
        const double theta_err = pos * (i + 6) * std::ldexp(1.0, -24);
        const double tol = r.mscale * (theta_err + std::ldexp(1.0, -21));
        ASSERT_NEAR(cs[i], r.cos[i], tol) << "n " << c.n << " factor " << c.factor << " pos " << pos << " pair " << i;
        ASSERT_NEAR(sn[i], r.sin[i], tol) << "n " << c.n << " factor " << c.factor << " pos " << pos << " pair " << i;
      }
    }
  }
}

models::RopeParams plain(int64_t trained) {
  models::RopeParams p;
  p.n_rot = 64;
  p.freq_base = 1e7f;
  p.n_ctx_orig = trained;
  return p;
}

TEST(Rope, AutomaticYarnBeyondTheTrainedContext) {
  const models::RopeParams file = plain(262144);
  auto within = models::choose_rope(file, {}, 262144);
  ASSERT_TRUE(within.ok());
  EXPECT_EQ(within->params.scaling, models::RopeScalingType::kNone);
  EXPECT_EQ(within->params.ext_factor, 0.0f);
  EXPECT_FALSE(within->automatic);

  auto beyond = models::choose_rope(file, {}, 1048576);
  ASSERT_TRUE(beyond.ok());
  EXPECT_TRUE(beyond->automatic);
  EXPECT_EQ(beyond->params.scaling, models::RopeScalingType::kYarn);
  EXPECT_EQ(beyond->params.factor(), 4.0f);
  EXPECT_EQ(beyond->params.ext_factor, 1.0f);
  EXPECT_EQ(beyond->params.n_ctx_orig, 262144);
  EXPECT_NE(beyond->reason.find("automatically"), std::string::npos) << beyond->reason;
  EXPECT_NE(beyond->reason.find("factor 4"), std::string::npos) << beyond->reason;

  models::RopeRequest none;
  none.scaling = models::RopeScalingType::kNone;
  auto off = models::choose_rope(file, none, 1048576);
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off->params.scaling, models::RopeScalingType::kNone);
  EXPECT_EQ(off->params.freq_scale, 1.0f);
  EXPECT_EQ(off->params.ext_factor, 0.0f);
}

TEST(Rope, FileScalingAndFlags) {
  models::RopeParams file = plain(262144);
  file.scaling = models::RopeScalingType::kYarn;
  file.freq_scale = 0.25f;
  file.ext_factor = 1;
  // The file's YaRN reaches 1M: kept as it is below that, widened (automatically) above.
  auto kept = models::choose_rope(file, {}, 1048576);
  ASSERT_TRUE(kept.ok());
  EXPECT_FALSE(kept->automatic);
  EXPECT_EQ(kept->params.factor(), 4.0f);
  EXPECT_NE(kept->reason.find("model file"), std::string::npos) << kept->reason;
  auto wider = models::choose_rope(file, {}, 2097152);
  ASSERT_TRUE(wider.ok());
  EXPECT_TRUE(wider->automatic);
  EXPECT_EQ(wider->params.factor(), 8.0f);

  // Flags override field by field, as llama.cpp's.
  models::RopeRequest r;
  r.scaling = models::RopeScalingType::kYarn;
  r.factor = 2;
  r.orig_ctx = 131072;
  r.ext_factor = 0.5f;
  r.attn_factor = 1.5f;
  r.beta_fast = 16;
  r.beta_slow = 2;
  auto flagged = models::choose_rope(plain(262144), r, 4096);
  ASSERT_TRUE(flagged.ok());
  const models::RopeParams& p = flagged->params;
  EXPECT_EQ(p.scaling, models::RopeScalingType::kYarn);
  EXPECT_EQ(p.freq_scale, 0.5f);
  EXPECT_EQ(p.n_ctx_orig, 131072);
  EXPECT_EQ(p.ext_factor, 0.5f);
  EXPECT_EQ(p.attn_factor, 1.5f);
  EXPECT_EQ(p.beta_fast, 16.0f);
  EXPECT_EQ(p.beta_slow, 2.0f);
  EXPECT_FALSE(flagged->automatic);

  // --rope-scaling yarn without a factor: the one the context needs.
  models::RopeRequest yarn_only;
  yarn_only.scaling = models::RopeScalingType::kYarn;
  auto needed = models::choose_rope(plain(32768), yarn_only, 131072);
  ASSERT_TRUE(needed.ok());
  EXPECT_EQ(needed->params.factor(), 4.0f);
  // linear: no YaRN ramp or mscale.
  models::RopeRequest linear;
  linear.scaling = models::RopeScalingType::kLinear;
  linear.factor = 2;
  auto lin = models::choose_rope(plain(32768), linear, 65536);
  ASSERT_TRUE(lin.ok());
  EXPECT_EQ(lin->params.ext_factor, 0.0f);
  EXPECT_EQ(lin->params.mscale(), 1.0f);

  // Contradictions and nonsense are refused with the flag's name.
  models::RopeRequest bad;
  bad.scaling = models::RopeScalingType::kNone;
  bad.factor = 4;
  auto e1 = models::choose_rope(file, bad, 4096);
  ASSERT_FALSE(e1.ok());
  EXPECT_NE(e1.message().find("--rope-scale"), std::string::npos);
  models::RopeRequest betas;
  betas.beta_fast = 1;
  betas.beta_slow = 4;
  auto e2 = models::choose_rope(file, betas, 4096);
  ASSERT_FALSE(e2.ok());
  EXPECT_NE(e2.message().find("beta"), std::string::npos);
}

// A file whose metadata asks for YaRN runs exactly as the same weights without it plus the
// flags (metadata and flags agree), and differently from plain RoPE.
TEST(Rope, YarnMetadataEqualsYarnFlags) {
  ThreadPool pool(2);
  models::SyntheticSpec spec;
  spec.arch = "qwen3moe";
  spec.type = "q8_0";
  spec.seed = 5;
  auto write = [&](const std::string& name, bool yarn) {
    const std::string path = test::scratch_path(name);
    auto size = models::write_synthetic_model(spec, path, pool, [&](gguf::Writer& w) {
      if (yarn) {
        w.set_string("qwen3moe.rope.scaling.type", "yarn");
        w.set_f32("qwen3moe.rope.scaling.factor", 4.0f);
        w.set_u32("qwen3moe.rope.scaling.original_context_length", 65536);
      }
      return ok_status();
    });
    EXPECT_TRUE(size.ok()) << size.message();
    return path;
  };
  auto with_meta = models::load_model(write("rope_yarn_meta.gguf", true));
  auto without = models::load_model(write("rope_plain.gguf", false));
  ASSERT_TRUE(with_meta.ok()) << with_meta.message();
  ASSERT_TRUE(without.ok()) << without.message();
  const models::RopeParams& meta = (*with_meta)->rope();
  EXPECT_EQ(meta.scaling, models::RopeScalingType::kYarn);
  EXPECT_EQ(meta.factor(), 4.0f);
  EXPECT_EQ(meta.n_ctx_orig, 65536);

  auto logits_at = [&](models::Model& m, int32_t pos0) {
    models::MemoryOptions mo;
    mo.n_ctx = 64;
    models::Memory mem(m.memory_layout(), mo);
    std::vector<models::BatchRow> rows;
    for (int32_t i = 0; i < 24; ++i) rows.push_back({0, i, 100 + 37 * i, i == 23});
    std::vector<float> out(m.info().n_vocab);
    EXPECT_TRUE(m.forward(rows, mem, pool, out.data()).ok());
    return out;
  };
  const auto plain_logits = logits_at(**without, 0);
  models::RopeRequest r;
  r.scaling = models::RopeScalingType::kYarn;
  r.factor = 4;
  r.orig_ctx = 65536;
  auto choice = models::choose_rope((*without)->rope(), r, 262144);
  ASSERT_TRUE(choice.ok());
  (*without)->set_rope(choice->params);
  const auto flag_logits = logits_at(**without, 0);
  const auto meta_logits = logits_at(**with_meta, 0);
  EXPECT_EQ(0, std::memcmp(flag_logits.data(), meta_logits.data(), flag_logits.size() * sizeof(float)));
  EXPECT_NE(0, std::memcmp(plain_logits.data(), meta_logits.data(), plain_logits.size() * sizeof(float)));
}

}  // namespace
}  // namespace hylo
