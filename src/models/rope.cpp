#include "models/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "base/strings.h"
#include "models/loader.h"

namespace hylo::models {

std::string_view rope_scaling_name(RopeScalingType type) {
  switch (type) {
    case RopeScalingType::kNone:
      return "none";
    case RopeScalingType::kLinear:
      return "linear";
    case RopeScalingType::kYarn:
      return "yarn";
  }
  return "none";
}

std::optional<RopeScalingType> rope_scaling_from_name(std::string_view name) {
  for (RopeScalingType t : {RopeScalingType::kNone, RopeScalingType::kLinear, RopeScalingType::kYarn})
    if (name == rope_scaling_name(t)) return t;
  return std::nullopt;
}

float RopeParams::mscale() const {
  return ext_factor != 0.0f ? attn_factor * (1.0f + 0.1f * std::log(1.0f / freq_scale)) : attn_factor;
}

int64_t RopeParams::reach() const {
  if (scaling == RopeScalingType::kNone) return n_ctx_orig;
  return std::max<int64_t>(n_ctx_orig, std::llround(static_cast<double>(n_ctx_orig) / freq_scale));
}

Result<RopeParams> read_rope_params(const HparamReader& hp, const gguf::File& file, int n_rot, int64_t n_ctx_train) {
  RopeParams p;
  p.n_rot = n_rot;
  HYLO_ASSIGN_OR_RETURN(p.freq_base, hp.get_float_or("rope.freq_base", 10000.0f));
  if (!(p.freq_base > 1.0f)) return make_error("[model] {}: rope.freq_base {} must be > 1", file.path(), p.freq_base);
  p.n_ctx_orig = n_ctx_train;
  const auto type = file.get_string(hp.name("rope.scaling.type"));
  if (type && *type == "yarn") {
    HYLO_ASSIGN_OR_RETURN(float factor, hp.get_float("rope.scaling.factor"));
    if (!(factor >= 1.0f)) return make_error("[model] {}: rope.scaling.factor {} must be ≥ 1", file.path(), factor);
    p.scaling = RopeScalingType::kYarn;
    p.freq_scale = 1.0f / factor;
    p.ext_factor = 1.0f;
    HYLO_ASSIGN_OR_RETURN(p.n_ctx_orig, hp.get_int_or("rope.scaling.original_context_length", n_ctx_train));
    if (p.n_ctx_orig <= 0)
      return make_error("[model] {}: rope.scaling.original_context_length must be > 0", file.path());
  } else if (type && *type != "none" && *type != "linear") {
    return make_error("[model] {}: rope scaling type '{}' is not supported (none, linear, yarn)", file.path(), *type);
  } else if (type && *type == "linear") {
    HYLO_ASSIGN_OR_RETURN(float factor, hp.get_float("rope.scaling.factor"));
    if (!(factor > 0.0f)) return make_error("[model] {}: rope.scaling.factor {} must be > 0", file.path(), factor);
    p.scaling = RopeScalingType::kLinear;
    p.freq_scale = 1.0f / factor;
  }
  return p;
}

namespace {

// YaRN correction range (spec §6): the pair index where the rotation count at n_ctx_orig crosses
// β turns.
float yarn_corr_dim(int n_dims, int64_t n_ctx_orig, float n_rot, float base) {
  return n_dims * std::log(static_cast<float>(n_ctx_orig) / (n_rot * 2 * std::numbers::pi_v<float>)) /
         (2 * std::log(base));
}

}  // namespace

void rope_tables(const RopeParams& p, int32_t pos, float* cos_out, float* sin_out) {
  const float theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_rot));
  float low = 0, high = 0;
  const float mscale = p.mscale();
  if (p.ext_factor != 0.0f) {
    low = std::max(0.0f, std::floor(yarn_corr_dim(p.n_rot, p.n_ctx_orig, p.beta_fast, p.freq_base)));
    high = std::min(static_cast<float>(p.n_rot - 1),
                    std::ceil(yarn_corr_dim(p.n_rot, p.n_ctx_orig, p.beta_slow, p.freq_base)));
  }
  float theta_extrap = static_cast<float>(pos);
  for (int i = 0; i < p.n_rot / 2; ++i) {
    const float theta_interp = p.freq_scale * theta_extrap;
    float theta = theta_interp;
    if (p.ext_factor != 0.0f) {
      const float y = (static_cast<float>(i) - low) / std::max(0.001f, high - low);
      const float ramp = (1.0f - std::min(1.0f, std::max(0.0f, y))) * p.ext_factor;
      theta = theta_interp * (1 - ramp) + theta_extrap * ramp;
    }
    cos_out[i] = std::cos(theta) * mscale;
    sin_out[i] = std::sin(theta) * mscale;
    theta_extrap *= theta_scale;
  }
}

Result<RopeChoice> choose_rope(const RopeParams& from_file, const RopeRequest& req, int64_t n_ctx) {
  RopeChoice c;
  RopeParams& p = c.params;
  p = from_file;
  auto bad = [](std::string_view flag, double v, std::string_view want) {
    return make_error("[rope] {} {}: must be {}", flag, v, want);
  };
  if (req.orig_ctx) {
    if (*req.orig_ctx < 0 || *req.orig_ctx > (int64_t{1} << 30))
      return bad("--yarn-orig-ctx", *req.orig_ctx, "0 … 2^30");
    if (*req.orig_ctx > 0) p.n_ctx_orig = *req.orig_ctx;
  }
  if (req.factor && !(std::isfinite(*req.factor) && *req.factor > 0 && *req.factor <= 1024))
    return bad("--rope-scale", *req.factor, "in (0, 1024]");
  if (req.attn_factor && !(std::isfinite(*req.attn_factor) && *req.attn_factor > 0 && *req.attn_factor <= 100))
    return bad("--yarn-attn-factor", *req.attn_factor, "in (0, 100]");
  if (req.beta_fast && !(std::isfinite(*req.beta_fast) && *req.beta_fast > 0))
    return bad("--yarn-beta-fast", *req.beta_fast, "> 0");
  if (req.beta_slow && !(std::isfinite(*req.beta_slow) && *req.beta_slow > 0))
    return bad("--yarn-beta-slow", *req.beta_slow, "> 0");
  if (req.ext_factor && !(std::isfinite(*req.ext_factor) && *req.ext_factor <= 1))
    return bad("--yarn-ext-factor", *req.ext_factor, "at most 1 (negative: the mode's default)");
  if (req.scaling == RopeScalingType::kNone && req.factor && *req.factor != 1.0f)
    return make_error("[rope] --rope-scale {} asks for scaling, --rope-scaling none for none: choose one", *req.factor);

  const bool file_scaled = from_file.scaling != RopeScalingType::kNone;
  std::string source = file_scaled ? "the model file" : "";
  if (req.scaling) {
    p.scaling = *req.scaling;
    source = "--rope-scaling";
    if (p.scaling == RopeScalingType::kNone) p.freq_scale = 1.0f;
  } else if (req.factor && p.scaling == RopeScalingType::kNone) {
    p.scaling = RopeScalingType::kLinear;  // llama.cpp: a frequency scale without a type is linear
    source = "--rope-scale";
  }
  if (req.factor) {
    p.freq_scale = 1.0f / *req.factor;
    source = req.scaling ? "--rope-scaling and --rope-scale" : "--rope-scale";
  } else if (req.scaling && p.scaling != RopeScalingType::kNone && !file_scaled) {
    // --rope-scaling yarn|linear without a factor: the one the context needs (1 if it fits).
    p.freq_scale = n_ctx > p.n_ctx_orig ? static_cast<float>(static_cast<double>(p.n_ctx_orig) / n_ctx) : 1.0f;
  }
  // The automatic mode: a context beyond what the file's RoPE reaches, and no --rope-scaling.
  if (!req.scaling && !req.factor && n_ctx > p.reach()) {
    if (p.scaling == RopeScalingType::kNone) p.scaling = RopeScalingType::kYarn;
    p.freq_scale = static_cast<float>(static_cast<double>(p.n_ctx_orig) / static_cast<double>(n_ctx));
    c.automatic = true;
  }
  // llama.cpp: ext_factor < 0 (unset) means 1 for YaRN, 0 otherwise.
  const float ext = req.ext_factor.value_or(-1.0f);
  p.ext_factor = ext >= 0 ? ext : (p.scaling == RopeScalingType::kYarn ? 1.0f : 0.0f);
  if (p.scaling == RopeScalingType::kNone) p.ext_factor = req.ext_factor && ext >= 0 ? ext : 0.0f;
  if (req.attn_factor) p.attn_factor = *req.attn_factor;
  if (req.beta_fast) p.beta_fast = *req.beta_fast;
  if (req.beta_slow) p.beta_slow = *req.beta_slow;
  if (p.ext_factor != 0 && !(p.beta_fast > p.beta_slow))
    return make_error("[rope] YaRN needs --yarn-beta-fast ({}) above --yarn-beta-slow ({})", p.beta_fast, p.beta_slow);

  const std::string what = describe_rope(p);
  if (c.automatic)
    c.reason = fmt::format(
        "rope: context {} is beyond the {} the model reaches: {} turned on automatically "
        "(--rope-scaling none keeps plain RoPE)",
        format_count(static_cast<uint64_t>(n_ctx)), format_count(static_cast<uint64_t>(from_file.reach())), what);
  else if (!source.empty())
    c.reason = fmt::format("rope: {} (from {})", what, source);
  else
    c.reason = fmt::format("rope: {}", what);
  return c;
}

std::string describe_rope(const RopeParams& p) {
  if (p.scaling == RopeScalingType::kNone && p.ext_factor == 0 && p.freq_scale == 1.0f && p.attn_factor == 1.0f)
    return fmt::format("none (trained context {})", format_count(static_cast<uint64_t>(p.n_ctx_orig)));
  std::string s = fmt::format("{} (factor {:g}, original context {}", rope_scaling_name(p.scaling), p.factor(),
                              format_count(static_cast<uint64_t>(p.n_ctx_orig)));
  if (p.scaling == RopeScalingType::kYarn || p.ext_factor != 0)
    s += fmt::format(", ext {:g}, attn {:g}, beta {:g}/{:g}, mscale {:.5g}", p.ext_factor, p.attn_factor, p.beta_fast,
                     p.beta_slow, p.mscale());
  return s + ")";
}

}  // namespace hylo::models
