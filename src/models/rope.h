// RoPE parameters of a model (spec §2.5, §6): what the file says, what the user asks for with
// llama-server's flags, and the automatic YaRN for contexts beyond the trained one; the cos/sin
// tables as ggml computes them. The rotation itself is a kernel (kernels/vec.h rope_neox).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "gguf/gguf.h"

namespace hylo::models {

class HparamReader;

enum class RopeScalingType { kNone, kLinear, kYarn };
std::string_view rope_scaling_name(RopeScalingType type);
std::optional<RopeScalingType> rope_scaling_from_name(std::string_view name);

// The parameters every RoPE call gets (llama.cpp's ggml_rope_ext arguments). YaRN is active when
// ext_factor != 0; the cos/sin scale is attn_factor · (1 + 0.1·ln(1/freq_scale)) then.
struct RopeParams {
  int n_rot = 0;
  float freq_base = 10000.0f;
  RopeScalingType scaling = RopeScalingType::kNone;
  float freq_scale = 1.0f;  // 1 / factor
  float ext_factor = 0.0f;
  float attn_factor = 1.0f;
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
  int64_t n_ctx_orig = 0;  // the context the model was trained for (YaRN's original context)

  float factor() const { return 1.0f / freq_scale; }
  // The cos/sin magnitude scale YaRN applies (1 without YaRN).
  float mscale() const;
  // Positions the scaling is meant to reach: n_ctx_orig · factor for linear and YaRN.
  int64_t reach() const;
};

// From `<arch>.rope.*` (freq_base, scaling.type/factor/original_context_length). The qwen3
// loaders of llama.cpp read no `rope.scaling.yarn_*` keys: ext 1, attn 1, β 32/1 (spec §6).
Result<RopeParams> read_rope_params(const HparamReader& hp, const gguf::File& file, int n_rot, int64_t n_ctx_train);

// cos/sin of the n_rot/2 rotation angles at position pos, as ggml computes them (f32, incremental θ).
void rope_tables(const RopeParams& p, int32_t pos, float* cos_out, float* sin_out);

// llama-server's flags; unset fields keep the file's values (or llama.cpp's defaults).
struct RopeRequest {
  std::optional<RopeScalingType> scaling;  // --rope-scaling
  std::optional<float> factor;             // --rope-scale
  std::optional<int64_t> orig_ctx;         // --yarn-orig-ctx (0: the model's)
  std::optional<float> ext_factor;         // --yarn-ext-factor (< 0: 1 for YaRN, else 0)
  std::optional<float> attn_factor;        // --yarn-attn-factor
  std::optional<float> beta_fast;          // --yarn-beta-fast
  std::optional<float> beta_slow;          // --yarn-beta-slow
  bool any() const {
    return scaling || factor || orig_ctx || ext_factor || attn_factor || beta_fast || beta_slow;
  }
};

struct RopeChoice {
  RopeParams params;
  bool automatic = false;  // YaRN turned on (or widened) because n_ctx exceeds what the file reaches
  std::string reason;      // one sentence for the log: what is used and why
};

// The RoPE the run uses for a context of n_ctx positions per sequence (0: not known yet):
//  * flags override the file's values field by field (llama.cpp's order);
//  * without --rope-scaling, a context beyond what the file reaches turns YaRN on with
//    factor n_ctx / n_ctx_orig (or widens the file's YaRN to it), and says so;
//  * --rope-scaling none keeps plain RoPE whatever the context.
Result<RopeChoice> choose_rope(const RopeParams& from_file, const RopeRequest& request, int64_t n_ctx);

// "yarn (factor 4, original context 262,144, ext 1, attn 1, β 32/1, mscale 1.1386)", "none".
std::string describe_rope(const RopeParams& p);

}  // namespace hylo::models
