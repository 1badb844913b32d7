// Deterministic random-weight models with the real architectures' tensor names, shapes and
// metadata (`hylo make-model`, the built-in default model, benchmarks). Values are scaled so
// activations stay finite; the text such a model writes is meaningless by construction.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "base/result.h"
#include "base/tensor_type.h"
#include "base/thread_pool.h"
#include "gguf/writer.h"

namespace hylo::models {

struct SyntheticSpec {
  std::string arch = "qwen3next";  // qwen3next | qwen3moe
  std::string preset = "tiny";     // tiny | small | bench
  // Weight format (weight_format_names()): "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
  // "iq4_nl", "iq4_xs", "q2_k" … "q6_k",
  // or the llama.cpp style mixes "q3_k_m", "q4_k_m", "q5_k_m" (weight_type in synthetic.cpp).
  std::string type = "q8_0";
  uint64_t seed = 42;
  std::string layout = "split";  // qwen3next DeltaNet input: split (attn_qkv + attn_gate) | legacy (ssm_in)
  bool mtp = false;              // qwen3next: append one MTP block
  // qwen3next with mtp: weights whose greedy next token is a fixed function of the current one
  // (token t → t + 1 over the ordinary tokens) and whose MTP block predicts the token after it, so
  // speculative drafts are accepted; every mixer and expert output is zero, the cost per token
  // stays that of the random model.
  bool mtp_agree = false;
};

// The weight formats make-model and quantize accept, as "f32, f16, … or q5_k_m".
std::string weight_format_names();
bool is_weight_format(const std::string& type);
// llama.cpp's general.file_type (llama_ftype) of a weight format; 0 (all f32) if unknown.
uint32_t llama_file_type(const std::string& type);

// Checks the spec; the error names the bad field and the accepted values.
Status validate(const SyntheticSpec& spec);

// The storage type of weight matrix `name` (rows of ne0 values) in a file of weight format `type`
// (as SyntheticSpec::type): the _m mixes keep ffn_down, attn_v, ssm_out and the LM head
// (output.weight) in more bits (q6_K; q4_K with a q6_K LM head for q3_k_m); rows that do not fill a block fall back to
// q8_0, else f16. Used by make-model and by `hylo quantize`.
Result<TensorType> matrix_type(const std::string& type, const std::string& name, int64_t ne0);

// Writes the model to `path`. `add_tokenizer` adds the tokenizer.* metadata (vocabulary size
// must be 151936, the Qwen3 vocabulary). Returns the file size.
Result<uint64_t> write_synthetic_model(const SyntheticSpec& spec, const std::string& path, ThreadPool& pool,
                                       const std::function<Status(gguf::Writer&)>& add_tokenizer);

}  // namespace hylo::models
