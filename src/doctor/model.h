// What `hylo doctor` knows about a model: hyper-parameters read from GGUF-style metadata (a GGUF
// file, an Ollama /api/show model_info, or a built-in profile) and the weights' tensor directory.
// Pure description and arithmetic; nothing here reads weights or allocates model memory.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"
#include "base/tensor_type.h"
#include "gguf/gguf.h"

namespace hylo::doctor {

// GGUF-style key/value metadata, independent of where it came from. Strings, integers (bools as
// 0/1), floats and integer arrays are kept; other arrays only by their length (the tokenizer's
// 151,936 strings are never copied).
class Metadata {
 public:
  using Value = std::variant<int64_t, double, std::string, std::vector<int64_t>>;

  static Metadata from_gguf(const gguf::File& file);

  void set(std::string key, Value value) { values_[std::move(key)] = std::move(value); }
  void set_array_size(std::string key, size_t n) { array_sizes_[std::move(key)] = n; }
  bool contains(std::string_view key) const { return values_.find(key) != values_.end(); }
  bool empty() const { return values_.empty(); }

  // An integer, or a float with an integral value.
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  const std::vector<int64_t>* get_int_array(std::string_view key) const;
  std::optional<size_t> array_size(std::string_view key) const;

  const std::map<std::string, Value, std::less<>>& values() const { return values_; }

 private:
  std::map<std::string, Value, std::less<>> values_;
  std::map<std::string, size_t, std::less<>> array_sizes_;
};

struct RopeScaling {
  std::string type = "none";  // "none", "yarn", "linear", ... as written in <arch>.rope.scaling.type
  double factor = 1.0;
  int64_t original_ctx = 0;  // <arch>.rope.scaling.original_context_length (0: absent)
};

struct ModelDesc {
  std::string name;         // general.name, a profile's display name, or the endpoint's model id
  std::string arch;         // general.architecture
  std::string quant;        // "Q4_K_M", ... (from general.file_type or the chosen profile quant); may be ""
  bool known_arch = false;  // qwen3next / qwen3moe: layer schedule and tensor shapes are known

  int64_t n_layer = 0;          // trunk layers (block_count minus MTP/NextN blocks)
  int64_t n_mtp_layers = 0;     // nextn_predict_layers, appended after the trunk
  std::vector<bool> recurrent;  // [n_layer]: true for Gated-DeltaNet layers (spec §3.2)

  int64_t n_embd = 0, n_vocab = 0;
  int64_t n_head = 0, n_head_kv = 0, head_dim_k = 0, head_dim_v = 0, n_rot = 0;
  int64_t n_ff = 0, n_expert = 0, n_expert_used = 0, n_ff_exp = 0, n_ff_shexp = 0;

  // Gated DeltaNet (spec §3.5): H_k = ssm.group_count, H_v = ssm.time_step_rank,
  // d_k = ssm.state_size, d_v = ssm.inner_size / H_v, K = ssm.conv_kernel.
  int64_t ssm_conv_kernel = 0, ssm_state_size = 0, ssm_group_count = 0, ssm_time_step_rank = 0, ssm_inner_size = 0;

  int64_t n_ctx_train = 0;
  RopeScaling rope_scaling;
  bool tied_output = false;  // output.weight absent: the LM head reuses token_embd

  std::vector<std::string> notes;  // assumptions made while reading the metadata

  int64_t n_recurrent_layers() const;
  int64_t n_attn_layers() const { return n_layer - n_recurrent_layers(); }
  int64_t ssm_d_v() const { return ssm_time_step_rank > 0 ? ssm_inner_size / ssm_time_step_rank : 0; }
  int64_t ssm_conv_dim() const { return 2 * ssm_group_count * ssm_state_size + ssm_inner_size; }

  // Spec §4.2: n_attn_layers × (K + V rows of n_head_kv × head_dim) in the cache type; q8_0 rows
  // take 34 bytes per 32 elements. MTP layers are excluded (they only hold KV when drafting).
  uint64_t kv_bytes_per_token(TensorType kv_type) const;
  // Spec §4.1: n_recurrent × ((K−1) × conv_dim + H_v × d_k × d_v) × 4 bytes (f32), per sequence.
  uint64_t recurrent_bytes_per_sequence() const;
  // Largest context the model supports: trained, or original × factor with YaRN in the metadata.
  int64_t max_supported_ctx() const;
};

// Reads the hyper-parameters; errors name the missing or implausible key.
Result<ModelDesc> describe_model(const Metadata& md);

// Bytes of the weights and what one decoded token has to read.
struct WeightStats {
  uint64_t total_bytes = 0;
  uint64_t total_params = 0;
  std::map<std::string, uint64_t> bytes_by_type;  // ggml type name → bytes
  // Per decoded token (what decode streams from memory): one token_embd row, every non-expert
  // tensor of the trunk, n_expert_used / n_expert of each expert tensor, and the LM head
  // (output.weight, or all of token_embd when tied). MTP blocks are excluded.
  uint64_t active_bytes_per_token = 0;
  uint64_t active_params = 0;
  uint64_t expert_bytes = 0;      // all routed-expert tensors
  uint64_t mtp_bytes = 0;         // MTP/NextN blocks (in total_bytes, not active)
  uint64_t mtp_expert_bytes = 0;  // of which routed experts
  uint64_t lm_head_bytes = 0;     // output.weight (or token_embd when tied)
  uint64_t lm_head_params = 0;
};

WeightStats weight_stats(const ModelDesc& model, const std::vector<gguf::TensorInfo>& tensors);

// Layer index of "blk.N.…", or -1 for global tensors.
int tensor_layer(std::string_view name);

// llama.cpp's general.file_type (llama_ftype) as a quantisation name ("Q4_K_M"); "" if unknown.
std::string file_type_name(int64_t file_type);

}  // namespace hylo::doctor
