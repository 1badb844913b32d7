#include "doctor/quant_mix.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "base/strings.h"

namespace hylo::doctor {
namespace {

using TT = TensorType;

struct SchemeInfo {
  QuantScheme scheme;
  std::string_view name;
  TT base;  // the type most tensors get
};

// Smallest first (the order "which quantisation fits" advice walks).
constexpr std::array kSchemes = {
    SchemeInfo{QuantScheme::kQ3_K_M, "Q3_K_M", TT::kQ3_K}, SchemeInfo{QuantScheme::kQ4_0, "Q4_0", TT::kQ4_0},
    SchemeInfo{QuantScheme::kQ4_K_S, "Q4_K_S", TT::kQ4_K}, SchemeInfo{QuantScheme::kQ4_K_M, "Q4_K_M", TT::kQ4_K},
    SchemeInfo{QuantScheme::kQ5_K_S, "Q5_K_S", TT::kQ5_K}, SchemeInfo{QuantScheme::kQ5_K_M, "Q5_K_M", TT::kQ5_K},
    SchemeInfo{QuantScheme::kQ6_K, "Q6_K", TT::kQ6_K},     SchemeInfo{QuantScheme::kQ8_0, "Q8_0", TT::kQ8_0},
    SchemeInfo{QuantScheme::kF16, "F16", TT::kF16},        SchemeInfo{QuantScheme::kBF16, "BF16", TT::kBF16},
};

const SchemeInfo& info_of(QuantScheme s) {
  for (const auto& i : kSchemes)
    if (i.scheme == s) return i;
  return kSchemes[0];
}

// 2^48 elements (a 256 TiB tensor at one byte each): far beyond any checkpoint.
constexpr double kMaxTensorElements = 281474976710656.0;

struct Shape {
  std::string name;
  std::vector<int64_t> ne;  // GGUF order, innermost first
};

// Tensor shapes in file order (spec §7.4 for qwen3next, §7.5 for qwen3moe).
std::vector<Shape> tensor_shapes(const ModelDesc& m) {
  const int64_t E = m.n_embd, V = m.n_vocab;
  std::vector<Shape> out;
  out.push_back({"token_embd.weight", {E, V}});
  out.push_back({"output_norm.weight", {E}});
  if (!m.tied_output) out.push_back({"output.weight", {E, V}});

  const bool next = m.arch == "qwen3next";
  const int64_t q_rows = m.n_head * m.head_dim_k * (next ? 2 : 1);  // qwen3next: query + gate per head
  const int64_t kv_k = m.n_head_kv * m.head_dim_k, kv_v = m.n_head_kv * m.head_dim_v;
  const int64_t value_dim = m.ssm_inner_size, conv_dim = m.ssm_conv_dim();
  for (int64_t il = 0; il < m.n_layer + m.n_mtp_layers; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    const bool recurrent = il < m.n_layer && m.recurrent[static_cast<size_t>(il)];
    out.push_back({p + "attn_norm.weight", {E}});
    if (recurrent) {
      out.push_back({p + "attn_qkv.weight", {E, conv_dim}});
      out.push_back({p + "attn_gate.weight", {E, value_dim}});
      out.push_back({p + "ssm_ba.weight", {E, 2 * m.ssm_time_step_rank}});
      out.push_back({p + "ssm_conv1d.weight", {m.ssm_conv_kernel, conv_dim}});
      out.push_back({p + "ssm_dt.bias", {m.ssm_time_step_rank}});
      out.push_back({p + "ssm_a", {m.ssm_time_step_rank}});
      out.push_back({p + "ssm_norm.weight", {m.ssm_d_v()}});
      out.push_back({p + "ssm_out.weight", {value_dim, E}});
    } else {
      out.push_back({p + "attn_q.weight", {E, q_rows}});
      out.push_back({p + "attn_k.weight", {E, kv_k}});
      out.push_back({p + "attn_v.weight", {E, kv_v}});
      out.push_back({p + "attn_output.weight", {m.n_head * m.head_dim_v, E}});
      out.push_back({p + "attn_q_norm.weight", {m.head_dim_k}});
      out.push_back({p + "attn_k_norm.weight", {m.head_dim_k}});
    }
    out.push_back({p + (next ? "post_attention_norm.weight" : "ffn_norm.weight"), {E}});
    out.push_back({p + "ffn_gate_inp.weight", {E, m.n_expert}});
    out.push_back({p + "ffn_gate_exps.weight", {E, m.n_ff_exp, m.n_expert}});
    out.push_back({p + "ffn_up_exps.weight", {E, m.n_ff_exp, m.n_expert}});
    out.push_back({p + "ffn_down_exps.weight", {m.n_ff_exp, E, m.n_expert}});
    if (next && m.n_ff_shexp > 0) {
      out.push_back({p + "ffn_gate_inp_shexp.weight", {E}});
      out.push_back({p + "ffn_gate_shexp.weight", {E, m.n_ff_shexp}});
      out.push_back({p + "ffn_up_shexp.weight", {E, m.n_ff_shexp}});
      out.push_back({p + "ffn_down_shexp.weight", {m.n_ff_shexp, E}});
    }
    if (il >= m.n_layer) {  // MTP block (spec §5.2)
      out.push_back({p + "nextn.eh_proj.weight", {2 * E, E}});
      out.push_back({p + "nextn.enorm.weight", {E}});
      out.push_back({p + "nextn.hnorm.weight", {E}});
      out.push_back({p + "nextn.shared_head_norm.weight", {E}});
    }
  }
  return out;
}

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

bool quantizable(const Shape& t) {
  return ends_with(t.name, "weight") && t.ne.size() >= 2 && !contains(t.name, "_norm.weight") &&
         !contains(t.name, "ffn_gate_inp.weight") && !contains(t.name, "ssm_conv1d.weight");
}

// llama.cpp's use_more_bits: first and last eighth of the layers, and every third one between.
bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// llama.cpp's fallback when a row does not hold whole blocks of the chosen type.
TT fallback_type(TT t, int64_t row) {
  auto fits = [row](TT x) { return row % tensor_type_info(x).block_elems == 0; };
  if (fits(t)) return t;
  TT f = TT::kF16;
  switch (t) {
    case TT::kQ4_K:
      f = TT::kQ5_0;
      break;
    case TT::kQ5_K:
      f = TT::kQ5_1;
      break;
    case TT::kQ6_K:
      f = TT::kQ8_0;
      break;
    case TT::kQ2_K:
    case TT::kQ3_K:
      f = TT::kIQ4_NL;
      break;
    default:
      break;
  }
  return fits(f) ? f : TT::kF16;
}

struct MixState {
  int64_t n_attention_wv = 0;  // attn_v + attn_qkv tensors, as llama.cpp counts them
  int64_t i_attention_wv = 0;
  int64_t i_ffn_down = 0;
};

TT choose_type(const ModelDesc& m, QuantScheme s, const Shape& t, MixState& st) {
  using Q = QuantScheme;
  if (!quantizable(t)) return TT::kF32;
  const TT base = info_of(s).base;
  if (s == Q::kF16 || s == Q::kBF16) return base;
  const std::string_view name = t.name;
  const bool eight_experts = m.n_expert == 8;
  TT type = base;
  if (name == "output.weight" || (m.tied_output && name == "token_embd.weight")) {
    type = t.ne[0] % tensor_type_info(base).block_elems != 0 ? TT::kQ8_0 : (base == TT::kQ8_0 ? TT::kQ8_0 : TT::kQ6_K);
  } else if (name == "token_embd.weight") {
    // keeps the scheme's base type
  } else if (contains(name, "attn_v.weight")) {
    const int64_t i = st.i_attention_wv++;
    if (s == Q::kQ3_K_M)
      type = i < 2 ? TT::kQ5_K : TT::kQ4_K;
    else if ((s == Q::kQ4_K_M || s == Q::kQ5_K_M) && use_more_bits(i, st.n_attention_wv))
      type = TT::kQ6_K;
    else if (s == Q::kQ4_K_S && i < 4)
      type = TT::kQ5_K;
    if (eight_experts) type = TT::kQ8_0;
  } else if (contains(name, "attn_k.weight")) {
    if (eight_experts) type = TT::kQ8_0;
  } else if (contains(name, "ffn_down")) {
    // With experts llama.cpp takes the layer from the name; dense models count the tensors.
    const int64_t i = m.n_expert > 1 ? tensor_layer(name) : st.i_ffn_down;
    const int64_t n = m.n_layer;
    ++st.i_ffn_down;
    if (s == Q::kQ3_K_M)
      type = i < n / 16 ? TT::kQ5_K : TT::kQ4_K;
    else if ((s == Q::kQ4_K_M || s == Q::kQ5_K_M) && use_more_bits(i, n))
      type = TT::kQ6_K;
    else if (s == Q::kQ4_K_S && i < n / 8)
      type = TT::kQ5_K;
  } else if (contains(name, "attn_output.weight")) {
    if (eight_experts) {
      if (s == Q::kQ3_K_M || s == Q::kQ4_K_S || s == Q::kQ4_K_M) type = TT::kQ5_K;
    } else if (s == Q::kQ3_K_M) {
      type = TT::kQ4_K;
    }
  } else if (contains(name, "attn_qkv.weight")) {
    if (s == Q::kQ3_K_M)
      type = TT::kQ4_K;
    else if (s == Q::kQ4_K_M)
      type = TT::kQ5_K;
    else if (s == Q::kQ5_K_M)
      type = TT::kQ6_K;
  }
  return fallback_type(type, t.ne[0]);
}

}  // namespace

const std::vector<QuantScheme>& all_quant_schemes() {
  static const std::vector<QuantScheme> all = [] {
    std::vector<QuantScheme> v;
    for (const auto& i : kSchemes) v.push_back(i.scheme);
    return v;
  }();
  return all;
}

std::string_view quant_scheme_name(QuantScheme scheme) { return info_of(scheme).name; }

std::optional<QuantScheme> quant_scheme_from_name(std::string_view name) {
  std::string norm;
  for (char c : trim(name)) norm += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& i : kSchemes)
    if (norm == i.name) return i.scheme;
  return std::nullopt;
}

Result<std::vector<gguf::TensorInfo>> synthesize_tensors(const ModelDesc& m, QuantScheme scheme) {
  if (!m.known_arch)
    return make_error(
        "[doctor] cannot derive weight sizes for architecture '{}' (known: qwen3next, qwen3moe); "
        "give the GGUF file with -m",
        m.arch);
  if (m.n_vocab <= 0) return make_error("[doctor] cannot derive weight sizes: the vocabulary size is unknown");
  if (m.n_expert <= 0 || m.n_ff_exp <= 0)
    return make_error("[doctor] cannot derive weight sizes: {} needs expert_count and expert_feed_forward_length",
                      m.arch);
  const std::vector<Shape> shapes = tensor_shapes(m);
  MixState st;
  for (const Shape& t : shapes)
    if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight")) ++st.n_attention_wv;

  std::vector<gguf::TensorInfo> out;
  out.reserve(shapes.size());
  for (const Shape& t : shapes) {
    double elements = 1;
    for (int64_t d : t.ne) elements *= static_cast<double>(std::max<int64_t>(d, 0));
    if (elements > kMaxTensorElements)
      return make_error("[doctor] {} would have {:.3g} elements: the model's dimensions are implausible", t.name,
                        elements);
    gguf::TensorInfo info;
    info.name = t.name;
    info.n_dims = static_cast<uint32_t>(t.ne.size());
    for (size_t d = 0; d < t.ne.size(); ++d) info.ne[d] = t.ne[d];
    info.type = choose_type(m, scheme, t, st);
    info.n_bytes = row_bytes(info.type, static_cast<uint64_t>(info.ne[0])) *
                   static_cast<uint64_t>(info.ne[1] * info.ne[2] * info.ne[3]);
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace hylo::doctor
