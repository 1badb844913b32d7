// The tensor directory a GGUF would have for a model at a given quantisation, built from the
// hyper-parameters alone: tensor shapes per architecture (spec §7.4, §7.5) and the per-tensor type
// choices of llama.cpp's llama-quantize (its "mixes": Q4_K_M is not 4.5 bits everywhere).
// Used for built-in profiles and for "which quantisation would fit" advice; never touches weights.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "doctor/model.h"
#include "gguf/gguf.h"

namespace hylo::doctor {

enum class QuantScheme { kQ3_K_M, kQ4_0, kQ4_K_S, kQ4_K_M, kQ5_K_S, kQ5_K_M, kQ6_K, kQ8_0, kF16, kBF16 };

// Every scheme, smallest files first.
const std::vector<QuantScheme>& all_quant_schemes();
std::string_view quant_scheme_name(QuantScheme scheme);  // "Q4_K_M"
// Case-insensitive; '-' and '_' are interchangeable ("q4_k_m", "Q4-K-M").
std::optional<QuantScheme> quant_scheme_from_name(std::string_view name);

// Type rules (llama.cpp llama-quantize without an importance matrix, non-"pure"):
//  * never quantised, kept F32: 1-D tensors, *_norm.weight, ffn_gate_inp.weight (router),
//    ssm_conv1d.weight, and tensors whose name does not end in "weight" (ssm_a, ssm_dt.bias);
//  * F16/BF16: every other tensor in that type;
//  * output.weight (token_embd when tied): Q6_K, or Q8_0 for Q8_0;
//  * attn_v.weight: Q6_K in Q4_K_M/Q5_K_M on "more bits" layers (first and last eighth, every third
//    in between, counted over attn_v + attn_qkv tensors), Q5_K in the first four for Q4_K_S,
//    Q5_K/Q4_K in Q3_K_M; attn_qkv.weight: Q4_K (Q3_K_M), Q5_K (Q4_K_M), Q6_K (Q5_K_M);
//  * ffn_down* (routed and shared experts): Q6_K on "more bits" layers in Q4_K_M/Q5_K_M, Q5_K in the
//    first eighth for Q4_K_S, Q5_K in the first sixteenth and Q4_K elsewhere for Q3_K_M;
//  * attn_output.weight: Q4_K in Q3_K_M; the 8-expert special cases (attn_v/attn_k Q8_0,
//    attn_output Q5_K) are kept for completeness;
//  * a row length that is not a multiple of the block size falls back like llama.cpp
//    (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0, Q3_K→IQ4_NL, then F16).
// Errors for architectures whose tensor shapes are not known (anything but qwen3next/qwen3moe).
Result<std::vector<gguf::TensorInfo>> synthesize_tensors(const ModelDesc& model, QuantScheme scheme);

}  // namespace hylo::doctor
