#include "doctor/model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace hylo::doctor {
namespace {

// Ceiling on anything a real checkpoint could have; larger values mean a corrupt or hostile
// file and would overflow the byte arithmetic.
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxDim = int64_t{1} << 22;
constexpr int64_t kMaxCtx = int64_t{1} << 32;

bool has_deltanet_schedule(std::string_view arch) {
  return arch == "qwen3next" || arch == "qwen35" || arch == "qwen35moe";
}

// Bytes of n elements of `type`, rounding a partial block up (KV rows are whole blocks).
uint64_t bytes_of(TensorType type, uint64_t n) {
  const TensorTypeInfo& info = tensor_type_info(type);
  return (n + info.block_elems - 1) / info.block_elems * info.block_bytes;
}

}  // namespace

Metadata Metadata::from_gguf(const gguf::File& file) {
  Metadata md;
  for (const auto& [key, v] : file.metadata()) {
    using gguf::ValueType;
    if (v.type == ValueType::kString) {
      md.set(key, v.s);
    } else if (v.type == ValueType::kF32 || v.type == ValueType::kF64) {
      md.set(key, v.f);
    } else if (v.type == ValueType::kArray && v.array) {
      const gguf::Array& a = *v.array;
      md.set_array_size(key, a.size());
      // Per-layer integer/bool arrays (head counts, recurrent_layers) are small and useful.
      if ((gguf::is_integer(a.elem_type) || a.elem_type == ValueType::kBool) && a.size() <= 65536) {
        std::vector<int64_t> ints(a.ints.begin(), a.ints.end());
        for (uint64_t u : a.uints) ints.push_back(static_cast<int64_t>(std::min<uint64_t>(u, INT64_MAX)));
        md.set(key, std::move(ints));
      }
    } else if (auto i = v.as_int()) {
      md.set(key, *i);
    }
  }
  return md;
}

std::optional<int64_t> Metadata::get_int(std::string_view key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  if (const auto* i = std::get_if<int64_t>(&it->second)) return *i;
  if (const auto* d = std::get_if<double>(&it->second)) {
    if (std::isfinite(*d) && std::floor(*d) == *d && std::fabs(*d) < 9e18) return static_cast<int64_t>(*d);
  }
  return std::nullopt;
}

std::optional<double> Metadata::get_float(std::string_view key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  if (const auto* d = std::get_if<double>(&it->second)) return *d;
  if (const auto* i = std::get_if<int64_t>(&it->second)) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<std::string> Metadata::get_string(std::string_view key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  if (const auto* s = std::get_if<std::string>(&it->second)) return *s;
  return std::nullopt;
}

const std::vector<int64_t>* Metadata::get_int_array(std::string_view key) const {
  auto it = values_.find(key);
  if (it == values_.end()) return nullptr;
  return std::get_if<std::vector<int64_t>>(&it->second);
}

std::optional<size_t> Metadata::array_size(std::string_view key) const {
  if (auto it = array_sizes_.find(key); it != array_sizes_.end()) return it->second;
  if (const auto* a = get_int_array(key)) return a->size();
  return std::nullopt;
}

int64_t ModelDesc::n_recurrent_layers() const {
  return static_cast<int64_t>(std::count(recurrent.begin(), recurrent.end(), true));
}

uint64_t ModelDesc::kv_bytes_per_token(TensorType kv_type) const {
  const uint64_t k_row = bytes_of(kv_type, static_cast<uint64_t>(n_head_kv * head_dim_k));
  const uint64_t v_row = bytes_of(kv_type, static_cast<uint64_t>(n_head_kv * head_dim_v));
  return static_cast<uint64_t>(n_attn_layers()) * (k_row + v_row);
}

uint64_t ModelDesc::recurrent_bytes_per_sequence() const {
  if (n_recurrent_layers() == 0) return 0;
  const uint64_t conv = static_cast<uint64_t>((ssm_conv_kernel - 1) * ssm_conv_dim());
  const uint64_t state = static_cast<uint64_t>(ssm_time_step_rank * ssm_state_size * ssm_d_v());
  return static_cast<uint64_t>(n_recurrent_layers()) * (conv + state) * sizeof(float);
}

int64_t ModelDesc::max_supported_ctx() const {
  if (rope_scaling.type == "yarn" && rope_scaling.factor > 1.0) {
    const int64_t orig = rope_scaling.original_ctx > 0 ? rope_scaling.original_ctx : n_ctx_train;
    return std::max(n_ctx_train, static_cast<int64_t>(std::llround(static_cast<double>(orig) * rope_scaling.factor)));
  }
  return n_ctx_train;
}

Result<ModelDesc> describe_model(const Metadata& md) {
  ModelDesc m;
  const auto arch = md.get_string("general.architecture");
  if (!arch || arch->empty()) return make_error("[doctor] model metadata: general.architecture is missing");
  m.arch = *arch;
  m.name = md.get_string("general.name").value_or(m.arch);
  if (auto ft = md.get_int("general.file_type")) m.quant = file_type_name(*ft);
  m.known_arch = m.arch == "qwen3next" || m.arch == "qwen3moe";
  const std::string p = m.arch + ".";

  // Reads <arch>.<key> as an integer in [lo, hi]; `fallback` when absent (nullopt: required).
  // Per-layer arrays (some architectures write head counts per layer) count by their maximum.
  auto read = [&](const std::string& key, int64_t lo, int64_t hi, std::optional<int64_t> fallback) -> Result<int64_t> {
    std::optional<int64_t> v = md.get_int(p + key);
    if (!v) {
      if (const auto* arr = md.get_int_array(p + key); arr && !arr->empty())
        v = *std::max_element(arr->begin(), arr->end());
    }
    if (!v) {
      if (fallback) return *fallback;
      return make_error("[doctor] model metadata: {}{} is missing", p, key);
    }
    if (*v < lo || *v > hi)
      return make_error("[doctor] model metadata: {}{} = {} is outside [{}, {}]", p, key, *v, lo, hi);
    return *v;
  };

  HYLO_ASSIGN_OR_RETURN(const int64_t block_count, read("block_count", 1, kMaxLayers, std::nullopt));
  HYLO_ASSIGN_OR_RETURN(m.n_mtp_layers, read("nextn_predict_layers", 0, block_count - 1, 0));
  m.n_layer = block_count - m.n_mtp_layers;
  HYLO_ASSIGN_OR_RETURN(m.n_embd, read("embedding_length", 1, kMaxDim, std::nullopt));
  HYLO_ASSIGN_OR_RETURN(m.n_head, read("attention.head_count", 1, kMaxDim, std::nullopt));
  HYLO_ASSIGN_OR_RETURN(m.n_head_kv, read("attention.head_count_kv", 0, m.n_head, m.n_head));
  HYLO_ASSIGN_OR_RETURN(m.head_dim_k,
                        read("attention.key_length", 1, kMaxDim, std::max<int64_t>(1, m.n_embd / m.n_head)));
  HYLO_ASSIGN_OR_RETURN(m.head_dim_v, read("attention.value_length", 1, kMaxDim, m.head_dim_k));
  HYLO_ASSIGN_OR_RETURN(m.n_rot, read("rope.dimension_count", 0, kMaxDim, m.head_dim_k));
  HYLO_ASSIGN_OR_RETURN(m.n_ctx_train, read("context_length", 1, kMaxCtx, std::nullopt));
  HYLO_ASSIGN_OR_RETURN(m.n_ff, read("feed_forward_length", 0, kMaxDim, 0));
  HYLO_ASSIGN_OR_RETURN(m.n_expert, read("expert_count", 0, 65536, 0));
  HYLO_ASSIGN_OR_RETURN(m.n_expert_used, read("expert_used_count", 0, std::max<int64_t>(m.n_expert, 0), 0));
  HYLO_ASSIGN_OR_RETURN(m.n_ff_exp, read("expert_feed_forward_length", 0, kMaxDim, 0));
  // qwen3moe GGUFs carry expert_shared_feed_forward_length = 0 and no shared expert (spec §7.2).
  if (m.arch != "qwen3moe") {
    HYLO_ASSIGN_OR_RETURN(m.n_ff_shexp, read("expert_shared_feed_forward_length", 0, kMaxDim, 0));
  }
  if (m.n_expert > 0 && m.n_expert_used == 0)
    return make_error("[doctor] model metadata: {}expert_count = {} but expert_used_count is missing or 0", p,
                      m.n_expert);

  const int64_t vocab =
      md.get_int(p + "vocab_size").value_or(static_cast<int64_t>(md.array_size("tokenizer.ggml.tokens").value_or(0)));
  if (vocab < 0 || vocab > kMaxDim)
    return make_error("[doctor] model metadata: vocabulary size {} is implausible", vocab);
  m.n_vocab = vocab;

  m.recurrent.assign(static_cast<size_t>(m.n_layer), false);
  if (has_deltanet_schedule(m.arch)) {
    HYLO_ASSIGN_OR_RETURN(m.ssm_conv_kernel, read("ssm.conv_kernel", 2, 64, std::nullopt));
    HYLO_ASSIGN_OR_RETURN(m.ssm_state_size, read("ssm.state_size", 1, kMaxDim, std::nullopt));
    HYLO_ASSIGN_OR_RETURN(m.ssm_group_count, read("ssm.group_count", 1, kMaxDim, std::nullopt));
    HYLO_ASSIGN_OR_RETURN(m.ssm_time_step_rank, read("ssm.time_step_rank", 1, kMaxDim, std::nullopt));
    HYLO_ASSIGN_OR_RETURN(m.ssm_inner_size, read("ssm.inner_size", 1, kMaxDim, std::nullopt));
    if (m.ssm_inner_size % m.ssm_time_step_rank != 0)
      return make_error("[doctor] model metadata: {}ssm.inner_size {} is not a multiple of ssm.time_step_rank {}", p,
                        m.ssm_inner_size, m.ssm_time_step_rank);
    // Spec §3.2: an explicit per-layer array wins; else every interval-th layer is attention.
    if (const auto* arr = md.get_int_array(p + "attention.recurrent_layers")) {
      if (arr->size() < static_cast<size_t>(m.n_layer))
        return make_error("[doctor] model metadata: {}attention.recurrent_layers has {} entries for {} layers", p,
                          arr->size(), m.n_layer);
      for (int64_t il = 0; il < m.n_layer; ++il)
        m.recurrent[static_cast<size_t>(il)] = (*arr)[static_cast<size_t>(il)] != 0;
    } else {
      const std::optional<int64_t> given = md.get_int(p + "full_attention_interval");
      if (!given) m.notes.push_back("full_attention_interval absent: assumed 4 (every 4th layer is attention)");
      const int64_t interval = given.value_or(4);
      if (interval < 1 || interval > kMaxLayers)
        return make_error("[doctor] model metadata: {}full_attention_interval = {} is implausible", p, interval);
      for (int64_t il = 0; il < m.n_layer; ++il) m.recurrent[static_cast<size_t>(il)] = (il + 1) % interval != 0;
    }
  } else if (!m.known_arch) {
    m.notes.push_back(fmt::format("architecture {} is not one hylo runs; assuming every layer is attention", m.arch));
  }
  // Products the memory arithmetic multiplies further must stay far from overflow.
  if (m.n_head * std::max(m.head_dim_k, m.head_dim_v) > kMaxDim || m.ssm_group_count * m.ssm_state_size > kMaxDim ||
      m.ssm_state_size > 65536)
    return make_error("[doctor] model metadata: head or state dimensions of {} are implausibly large", m.arch);
  if (m.n_attn_layers() > 0 && m.n_head_kv == 0)
    return make_error("[doctor] model metadata: {}attention.head_count_kv is 0 but the model has attention layers", p);

  if (auto type = md.get_string(p + "rope.scaling.type")) m.rope_scaling.type = *type;
  m.rope_scaling.factor = md.get_float(p + "rope.scaling.factor").value_or(1.0);
  m.rope_scaling.original_ctx = md.get_int(p + "rope.scaling.original_context_length").value_or(0);
  if (!std::isfinite(m.rope_scaling.factor) || m.rope_scaling.factor <= 0 || m.rope_scaling.factor > 1024 ||
      m.rope_scaling.original_ctx < 0 || m.rope_scaling.original_ctx > kMaxCtx)
    return make_error("[doctor] model metadata: rope scaling factor {} / original context {} is implausible",
                      m.rope_scaling.factor, m.rope_scaling.original_ctx);
  return m;
}

int tensor_layer(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  int layer = 0;
  size_t i = 4;
  if (i >= name.size() || name[i] < '0' || name[i] > '9') return -1;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9'; ++i)
    layer = std::min(layer * 10 + (name[i] - '0'), 1 << 20);
  return i < name.size() && name[i] == '.' ? layer : -1;
}

WeightStats weight_stats(const ModelDesc& model, const std::vector<gguf::TensorInfo>& tensors) {
  WeightStats s;
  const gguf::TensorInfo* token_embd = nullptr;
  bool has_output = false;
  for (const gguf::TensorInfo& t : tensors) {
    const uint64_t params = static_cast<uint64_t>(t.n_elements());
    s.total_bytes += t.n_bytes;
    s.total_params += params;
    s.bytes_by_type[std::string(tensor_type_name(t.type))] += t.n_bytes;
    const int layer = tensor_layer(t.name);
    if (layer >= model.n_layer) {
      s.mtp_bytes += t.n_bytes;
      if (t.name.find("_exps") != std::string::npos) s.mtp_expert_bytes += t.n_bytes;
      continue;
    }
    if (t.name == "token_embd.weight") {
      // Decode gathers a single row of the embedding table.
      token_embd = &t;
      const uint64_t rows = static_cast<uint64_t>(std::max<int64_t>(1, t.ne[1]));
      s.active_bytes_per_token += t.n_bytes / rows;
      s.active_params += params / rows;
    } else if (t.name.find("_exps") != std::string::npos) {
      const int64_t n_expert = model.n_expert > 0 ? model.n_expert : std::max<int64_t>(1, t.ne[2]);
      const int64_t used = model.n_expert_used > 0 ? model.n_expert_used : n_expert;
      s.expert_bytes += t.n_bytes;
      s.active_bytes_per_token += t.n_bytes / static_cast<uint64_t>(n_expert) * static_cast<uint64_t>(used);
      s.active_params += params / static_cast<uint64_t>(n_expert) * static_cast<uint64_t>(used);
    } else {
      if (t.name == "output.weight") {
        has_output = true;
        s.lm_head_bytes = t.n_bytes;
        s.lm_head_params = params;
      }
      s.active_bytes_per_token += t.n_bytes;
      s.active_params += params;
    }
  }
  if (!has_output && token_embd != nullptr) {  // tied: the LM head reads the whole table
    s.lm_head_bytes = token_embd->n_bytes;
    s.lm_head_params = static_cast<uint64_t>(token_embd->n_elements());
    s.active_bytes_per_token += s.lm_head_bytes;
    s.active_params += s.lm_head_params;
  }
  return s;
}

std::string file_type_name(int64_t file_type) {
  switch (file_type) {
    case 0:
      return "F32";
    case 1:
      return "F16";
    case 2:
      return "Q4_0";
    case 3:
      return "Q4_1";
    case 7:
      return "Q8_0";
    case 8:
      return "Q5_0";
    case 9:
      return "Q5_1";
    case 10:
      return "Q2_K";
    case 11:
      return "Q3_K_S";
    case 12:
      return "Q3_K_M";
    case 13:
      return "Q3_K_L";
    case 14:
      return "Q4_K_S";
    case 15:
      return "Q4_K_M";
    case 16:
      return "Q5_K_S";
    case 17:
      return "Q5_K_M";
    case 18:
      return "Q6_K";
    case 19:
      return "IQ2_XXS";
    case 20:
      return "IQ2_XS";
    case 21:
      return "Q2_K_S";
    case 22:
      return "IQ3_XS";
    case 23:
      return "IQ3_XXS";
    case 24:
      return "IQ1_S";
    case 25:
      return "IQ4_NL";
    case 26:
      return "IQ3_S";
    case 27:
      return "IQ3_M";
    case 28:
      return "IQ2_S";
    case 29:
      return "IQ2_M";
    case 30:
      return "IQ4_XS";
    case 31:
      return "IQ1_M";
    case 32:
      return "BF16";
    case 36:
      return "TQ1_0";
    case 37:
      return "TQ2_0";
    case 38:
      return "MXFP4_MOE";
    default:
      return "";
  }
}

}  // namespace hylo::doctor
