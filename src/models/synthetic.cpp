#include "models/synthetic.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <vector>

#include "kernels/quant.h"

namespace hylo::models {
namespace {

// ---- deterministic values: element i of a tensor depends only on (seed, tensor name, i) --------

uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

uint64_t stream_key(uint64_t seed, const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a of the name
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  return mix64(seed * 0x9e3779b97f4a7c15ull ^ h);
}

// Approximately standard normal (Irwin-Hall of four 16-bit uniforms, ±3.46σ): cheap and plenty
// for random weights.
float normal_at(uint64_t key, uint64_t i) {
  const uint64_t h = mix64(key + i * 0x9e3779b97f4a7c15ull);
  const float s = static_cast<float>((h & 0xffff) + ((h >> 16) & 0xffff) + ((h >> 32) & 0xffff) + (h >> 48));
  return (s * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

float uniform_at(uint64_t key, uint64_t i) {
  return static_cast<float>(mix64(key + i * 0x9e3779b97f4a7c15ull) >> 40) * (1.0f / 16777216.0f);
}

// ---- presets (the real models' per-layer shapes, fewer layers and experts) --------------------

struct Preset {
  int64_t n_embd, n_layer, n_head, n_head_kv, head_dim;
  int64_t rope_dims;                                      // qwen3next: partial rotary
  int64_t lin_k_heads, lin_v_heads, lin_head_dim, conv;   // qwen3next DeltaNet
  int64_t n_expert, n_expert_used, n_ff_exp, n_ff_shexp, n_ff;
  bool tie;
};

const std::map<std::string, Preset>& presets(const std::string& arch) {
  static const std::map<std::string, Preset> next = {
      {"tiny", {128, 4, 4, 2, 64, 16, 2, 4, 64, 4, 16, 4, 64, 64, 256, true}},
      {"small", {512, 8, 8, 2, 64, 16, 4, 8, 64, 4, 64, 10, 128, 128, 1024, false}},
      // Qwen3-Next-80B-A3B per layer: 2048 hidden, 16 q heads x 256 (2 kv), rope 64 of 256,
      // DeltaNet 16 k / 32 v heads x 128, expert FFN 512, top-10 (+ shared 512).
      {"bench", {2048, 8, 16, 2, 256, 64, 16, 32, 128, 4, 64, 10, 512, 512, 5120, false}},
  };
  static const std::map<std::string, Preset> moe = {
      {"tiny", {128, 4, 4, 2, 64, 64, 0, 0, 0, 0, 16, 4, 64, 0, 256, true}},
      {"small", {512, 8, 8, 4, 64, 64, 0, 0, 0, 0, 64, 8, 128, 0, 1024, false}},
      // Qwen3-Coder-30B-A3B per layer: 2048 hidden, 32 q heads x 128 (4 kv), 128 experts top-8 x 768.
      {"bench", {2048, 4, 32, 4, 128, 128, 0, 0, 0, 0, 128, 8, 768, 0, 6144, false}},
  };
  return arch == "qwen3next" ? next : moe;
}

constexpr int64_t kVocab = 151936;
constexpr int64_t kCtxTrain = 262144;
constexpr int64_t kAgreeTokens = 151643;  // ordinary tokens of the Qwen3 vocabulary (specials follow)

// ---- tensors ------------------------------------------------------------------------------------

struct TensorDef {
  std::string name;
  std::vector<int64_t> ne;
  TensorType type;
  // Fills row r (ne[0] floats).
  std::function<void(int64_t r, float* out)> row;
};

bool is_k_family(const std::string& t) { return t.size() >= 4 && t[0] == 'q' && t[2] == '_' && t[3] == 'k'; }

// The weight formats: name, storage type of the plain matrices, llama_ftype (general.file_type).
struct WeightFormat {
  const char* name;
  TensorType type;
  uint32_t file_type;
};
constexpr WeightFormat kWeightFormats[] = {
    {"f32", TensorType::kF32, 0},        {"f16", TensorType::kF16, 1},      {"bf16", TensorType::kBF16, 32},
    {"q8_0", TensorType::kQ8_0, 7},      {"q4_0", TensorType::kQ4_0, 2},    {"q4_1", TensorType::kQ4_1, 3},
    {"q5_0", TensorType::kQ5_0, 8},      {"q5_1", TensorType::kQ5_1, 9},    {"iq4_nl", TensorType::kIQ4_NL, 25},
    {"iq4_xs", TensorType::kIQ4_XS, 30}, {"q2_k", TensorType::kQ2_K, 10},   {"q3_k", TensorType::kQ3_K, 11},
    {"q4_k", TensorType::kQ4_K, 14},     {"q5_k", TensorType::kQ5_K, 16},   {"q6_k", TensorType::kQ6_K, 18},
    {"q3_k_m", TensorType::kQ3_K, 12},   {"q4_k_m", TensorType::kQ4_K, 15}, {"q5_k_m", TensorType::kQ5_K, 17}};

const WeightFormat* find_weight_format(const std::string& t) {
  for (const WeightFormat& f : kWeightFormats)
    if (t == f.name) return &f;
  return nullptr;
}

TensorType parse_weight_type(const std::string& t) { return find_weight_format(t)->type; }

// The type of one weight matrix: the mixes keep the most sensitive matrices in more bits (as
// llama.cpp's _M mixes do: q6_K for q4_k_m and q5_k_m; q4_K for q3_k_m, whose LM head is q6_K), and
// rows that do not fill a block fall back to q8_0 / f16.
TensorType weight_type(const SyntheticSpec& spec, const std::string& name, int64_t ne0) {
  TensorType t = parse_weight_type(spec.type);
  const bool mix = spec.type.ends_with("_k_m");
  const bool sensitive = name.find("ffn_down") != std::string::npos || name.find("attn_v.") != std::string::npos ||
                         name.find("ssm_out") != std::string::npos;
  if (mix && name == "output.weight")
    t = TensorType::kQ6_K;
  else if (mix && sensitive)
    t = spec.type == "q3_k_m" ? TensorType::kQ4_K : TensorType::kQ6_K;
  const TensorTypeInfo& info = tensor_type_info(t);
  if (ne0 % info.block_elems != 0) t = ne0 % 32 == 0 ? TensorType::kQ8_0 : TensorType::kF16;
  return t;
}

class Builder {
 public:
  Builder(const SyntheticSpec& spec) : spec_(spec) {}

  void normal(const std::string& name, std::vector<int64_t> ne, float std, float mean, bool force_f32) {
    const TensorType t = force_f32 || ne.size() == 1 ? TensorType::kF32 : weight_type(spec_, name, ne[0]);
    const uint64_t key = stream_key(spec_.seed, name);
    const int64_t ne0 = ne[0];
    defs_.push_back({name, std::move(ne), t, [key, ne0, std, mean](int64_t r, float* out) {
                       for (int64_t i = 0; i < ne0; ++i)
                         out[i] = normal_at(key, static_cast<uint64_t>(r * ne0 + i)) * std + mean;
                     }});
  }
  void norm(const std::string& name, int64_t n) { normal(name, {n}, 0.05f, 1.0f, true); }
  void lin(const std::string& name, int64_t n_in, int64_t n_out, float gain = 1.0f, bool force_f32 = false) {
    normal(name, {n_in, n_out}, gain / std::sqrt(static_cast<float>(n_in)), 0.0f, force_f32);
  }
  void custom(const std::string& name, std::vector<int64_t> ne, std::function<void(int64_t, float*)> row) {
    defs_.push_back({name, std::move(ne), TensorType::kF32, std::move(row)});
  }
  std::vector<TensorDef>& defs() { return defs_; }
  uint64_t seed() const { return spec_.seed; }

 private:
  const SyntheticSpec& spec_;
  std::vector<TensorDef> defs_;
};

}  // namespace

std::string weight_format_names() {
  std::string out;
  const size_t n = std::size(kWeightFormats);
  for (size_t i = 0; i < n; ++i)
    out += fmt::format("{}{}", i == 0 ? "" : (i + 1 == n ? " or " : ", "), kWeightFormats[i].name);
  return out;
}

bool is_weight_format(const std::string& type) { return find_weight_format(type) != nullptr; }

uint32_t llama_file_type(const std::string& type) {
  const WeightFormat* f = find_weight_format(type);
  return f == nullptr ? 0 : f->file_type;
}

Status validate(const SyntheticSpec& s) {
  if (s.arch != "qwen3next" && s.arch != "qwen3moe")
    return make_error("[make-model] --arch {}: expected qwen3next or qwen3moe", s.arch);
  if (!presets(s.arch).count(s.preset))
    return make_error("[make-model] --preset {}: expected tiny, small or bench", s.preset);
  if (find_weight_format(s.type) == nullptr)
    return make_error("[make-model] --type {}: expected {}", s.type, weight_format_names());
  for (TensorType t : {parse_weight_type(s.type), is_k_family(s.type) ? TensorType::kQ6_K : TensorType::kF32,
                       is_k_family(s.type) ? TensorType::kQ4_K : TensorType::kF32})
    if (!kernels::can_quantize(t))
      return make_error("[make-model] --type {}: this build cannot write {} tensors", s.type, tensor_type_name(t));
  if (s.layout != "split" && s.layout != "legacy")
    return make_error("[make-model] --layout {}: expected split or legacy", s.layout);
  if (s.arch != "qwen3next" && (s.layout != "split" || s.mtp || s.mtp_agree))
    return make_error("[make-model] --layout legacy, --mtp and --mtp-agree apply to qwen3next only");
  if (s.mtp_agree && !s.mtp) return make_error("[make-model] --mtp-agree needs --mtp");
  return ok_status();
}

Result<TensorType> matrix_type(const std::string& type, const std::string& name, int64_t ne0) {
  SyntheticSpec spec;
  spec.type = type;
  if (auto st = validate(spec); !st.ok()) return st.error();
  return weight_type(spec, name, ne0);
}

Result<uint64_t> write_synthetic_model(const SyntheticSpec& spec, const std::string& path, ThreadPool& pool,
                                       const std::function<Status(gguf::Writer&)>& add_tokenizer) {
  HYLO_TRY(validate(spec));
  const Preset& p = presets(spec.arch).at(spec.preset);
  const bool next = spec.arch == "qwen3next";
  const int64_t E = p.n_embd, L = p.n_layer;
  const bool mtp = next && spec.mtp;
  gguf::Writer w;
  const std::string a = spec.arch + ".";
  w.set_string("general.architecture", spec.arch);
  w.set_string("general.type", "model");
  w.set_string("general.name",
               fmt::format("hylo-{}-{}-random-s{}{}{}", spec.arch, spec.preset, spec.seed,
                           spec.layout == "legacy" ? "-legacy" : "", mtp && spec.mtp_agree ? "-agree" : ""));
  w.set_string("general.description",
               "Random weights written by hylo make-model: real tensor layout, meaningless output.");
  w.set_bool("hylo.random_weights", true);
  w.set_u32("general.file_type", llama_file_type(spec.type));
  w.set_u32("general.quantization_version", 2);
  w.set_u32(a + "vocab_size", kVocab);
  w.set_u32(a + "block_count", static_cast<uint32_t>(L + (mtp ? 1 : 0)));
  w.set_u32(a + "context_length", kCtxTrain);
  w.set_u32(a + "embedding_length", static_cast<uint32_t>(E));
  w.set_u32(a + "feed_forward_length", static_cast<uint32_t>(p.n_ff));
  w.set_u32(a + "attention.head_count", static_cast<uint32_t>(p.n_head));
  w.set_u32(a + "attention.head_count_kv", static_cast<uint32_t>(p.n_head_kv));
  w.set_u32(a + "attention.key_length", static_cast<uint32_t>(p.head_dim));
  w.set_u32(a + "attention.value_length", static_cast<uint32_t>(p.head_dim));
  w.set_f32(a + "rope.freq_base", 1.0e7f);
  w.set_f32(a + "attention.layer_norm_rms_epsilon", 1e-6f);
  w.set_u32(a + "expert_count", static_cast<uint32_t>(p.n_expert));
  w.set_u32(a + "expert_used_count", static_cast<uint32_t>(p.n_expert_used));
  w.set_u32(a + "expert_feed_forward_length", static_cast<uint32_t>(p.n_ff_exp));
  w.set_u32(a + "rope.dimension_count", static_cast<uint32_t>(p.rope_dims));
  const int64_t nk = p.lin_k_heads, nv = p.lin_v_heads, dk = p.lin_head_dim;
  const int64_t key_dim = nk * dk, value_dim = nv * dk, conv_dim = 2 * key_dim + value_dim;
  if (next) {
    w.set_u32(a + "expert_shared_feed_forward_length", static_cast<uint32_t>(p.n_ff_shexp));
    w.set_u32(a + "ssm.conv_kernel", static_cast<uint32_t>(p.conv));
    w.set_u32(a + "ssm.state_size", static_cast<uint32_t>(dk));
    w.set_u32(a + "ssm.group_count", static_cast<uint32_t>(nk));
    w.set_u32(a + "ssm.time_step_rank", static_cast<uint32_t>(nv));
    w.set_u32(a + "ssm.inner_size", static_cast<uint32_t>(value_dim));
    w.set_u32(a + "full_attention_interval", 4);
    if (mtp) w.set_u32(a + "nextn_predict_layers", 1);
  }
  HYLO_TRY(add_tokenizer(w));

  Builder b(spec);
  b.normal("token_embd.weight", {E, kVocab}, 2.0f / std::sqrt(static_cast<float>(E)), 0.0f, false);
  b.norm("output_norm.weight", E);
  const bool agree = mtp && spec.mtp_agree;
  if (agree) {
    // LM head row j = the embedding of the token before j in the chain t → t + 1 (over the
    // ordinary tokens; special tokens never come next): the residual stream that carries the
    // current token's embedding scores its successor highest (E_t·E_t ≈ E against ±√E·4.9).
    const uint64_t key = stream_key(spec.seed, "token_embd.weight");
    const float scale = 2.0f / std::sqrt(static_cast<float>(E));
    b.defs().push_back(
        {"output.weight", {E, kVocab}, weight_type(spec, "output.weight", E), [=](int64_t j, float* out) {
           if (j >= kAgreeTokens) {
             std::fill(out, out + E, 0.0f);
             return;
           }
           const int64_t prev = (j + kAgreeTokens - 1) % kAgreeTokens;
           for (int64_t i = 0; i < E; ++i) out[i] = normal_at(key, static_cast<uint64_t>(prev * E + i)) * scale;
         }});
  } else if (!p.tie) {
    b.normal("output.weight", {E, kVocab}, 2.0f / std::sqrt(static_cast<float>(E)), 0.0f, false);
  }

  auto attention = [&](const std::string& pre, bool gated) {
    b.lin(pre + "attn_q.weight", E, p.head_dim * p.n_head * (gated ? 2 : 1));
    b.lin(pre + "attn_k.weight", E, p.head_dim * p.n_head_kv);
    b.lin(pre + "attn_v.weight", E, p.head_dim * p.n_head_kv);
    b.lin(pre + "attn_output.weight", p.head_dim * p.n_head, E);
    b.norm(pre + "attn_q_norm.weight", p.head_dim);
    b.norm(pre + "attn_k_norm.weight", p.head_dim);
  };
  auto moe = [&](const std::string& pre) {
    b.lin(pre + "ffn_gate_inp.weight", E, p.n_expert, 2.0f, true);  // router logits ~ N(0, 4)
    const float s_in = 1.0f / std::sqrt(static_cast<float>(E)), s_ff = 1.0f / std::sqrt(static_cast<float>(p.n_ff_exp));
    b.normal(pre + "ffn_gate_exps.weight", {E, p.n_ff_exp, p.n_expert}, s_in, 0.0f, false);
    b.normal(pre + "ffn_up_exps.weight", {E, p.n_ff_exp, p.n_expert}, s_in, 0.0f, false);
    b.normal(pre + "ffn_down_exps.weight", {p.n_ff_exp, E, p.n_expert}, s_ff, 0.0f, false);
  };
  auto next_block = [&](int64_t il, bool recurrent) {
    const std::string pre = fmt::format("blk.{}.", il);
    b.norm(pre + "attn_norm.weight", E);
    b.norm(pre + "post_attention_norm.weight", E);
    if (recurrent) {
      const float s = 1.0f / std::sqrt(static_cast<float>(E));
      if (spec.layout == "legacy") {
        // ssm_in rows grouped per key head g: [q_g | k_g | v_g (r heads) | z_g (r heads)], drawn
        // from the split layout's streams so both layouts describe the same model.
        const uint64_t kq = stream_key(spec.seed, pre + "attn_qkv.weight");
        const uint64_t kz = stream_key(spec.seed, pre + "attn_gate.weight");
        const int64_t r = nv / nk, gw = 2 * dk + 2 * r * dk;
        const TensorType t = weight_type(spec, pre + "ssm_in.weight", E);
        b.defs().push_back({pre + "ssm_in.weight", {E, 2 * key_dim + 2 * value_dim}, t, [=](int64_t row, float* out) {
                              const int64_t g = row / gw, o = row % gw;
                              uint64_t key = kq;
                              int64_t src;
                              if (o < dk) src = g * dk + o;
                              else if (o < 2 * dk) src = key_dim + g * dk + (o - dk);
                              else if (o < 2 * dk + r * dk) src = 2 * key_dim + g * r * dk + (o - 2 * dk);
                              else {
                                key = kz;
                                src = g * r * dk + (o - 2 * dk - r * dk);
                              }
                              for (int64_t i = 0; i < E; ++i) out[i] = normal_at(key, static_cast<uint64_t>(src * E + i)) * s;
                            }});
      } else {
        b.lin(pre + "attn_qkv.weight", E, conv_dim);
        b.lin(pre + "attn_gate.weight", E, value_dim);
      }
      b.normal(pre + "ssm_conv1d.weight", {p.conv, conv_dim}, 1.0f / std::sqrt(static_cast<float>(p.conv)), 0.0f,
               true);
      // dt ~ logU(1e-3, 1e-1), dt_bias = softplus⁻¹(dt); A ~ U(1, 16), ssm_a = −A.
      const uint64_t kdt = stream_key(spec.seed, pre + "ssm_dt.bias"), ka = stream_key(spec.seed, pre + "ssm_a");
      b.custom(pre + "ssm_dt.bias", {nv}, [=](int64_t, float* out) {
        for (int64_t j = 0; j < nv; ++j) {
          const float dt = std::exp(std::log(1e-3f) + uniform_at(kdt, j) * (std::log(1e-1f) - std::log(1e-3f)));
          out[j] = dt + std::log(-std::expm1(-dt));
        }
      });
      b.custom(pre + "ssm_a", {nv}, [=](int64_t, float* out) {
        for (int64_t j = 0; j < nv; ++j) out[j] = -(1.0f + 15.0f * uniform_at(ka, j));
      });
      b.lin(pre + "ssm_ba.weight", E, 2 * nv);
      b.norm(pre + "ssm_norm.weight", dk);
      b.lin(pre + "ssm_out.weight", value_dim, E);
    } else {
      attention(pre, true);
    }
    moe(pre);
    b.normal(pre + "ffn_gate_inp_shexp.weight", {E}, 1.0f / std::sqrt(static_cast<float>(E)), 0.0f, true);
    b.lin(pre + "ffn_gate_shexp.weight", E, p.n_ff_shexp);
    b.lin(pre + "ffn_up_shexp.weight", E, p.n_ff_shexp);
    b.lin(pre + "ffn_down_shexp.weight", p.n_ff_shexp, E);
  };

  if (next) {
    for (int64_t il = 0; il < L; ++il) next_block(il, (il + 1) % 4 != 0);
    if (mtp) {
      next_block(L, false);
      const std::string pre = fmt::format("blk.{}.nextn.", L);
      b.lin(pre + "eh_proj.weight", 2 * E, E);
      b.norm(pre + "enorm.weight", E);
      b.norm(pre + "hnorm.weight", E);
      b.norm(pre + "shared_head_norm.weight", E);
    }
  } else {
    for (int64_t il = 0; il < L; ++il) {
      const std::string pre = fmt::format("blk.{}.", il);
      b.norm(pre + "attn_norm.weight", E);
      attention(pre, false);
      b.norm(pre + "ffn_norm.weight", E);
      moe(pre);
    }
  }

  if (agree) {
    for (TensorDef& d : b.defs()) {
      // Mixers and experts write nothing into the residual stream; the MTP input projection
      // passes the embedding half through (c = enorm(embedding)), so the head predicts t → t + 1
      // of the token it is given: the token after the trunk's next one.
      static const char* kZero[] = {"ssm_out.weight", "attn_output.weight", "ffn_down_exps.weight",
                                    "ffn_down_shexp.weight"};
      for (const char* z : kZero)
        if (d.name.size() > std::strlen(z) && d.name.ends_with(z)) {
          const int64_t ne0 = d.ne[0];
          d.row = [ne0](int64_t, float* out) { std::fill(out, out + ne0, 0.0f); };
        }
      if (d.name.ends_with("nextn.eh_proj.weight")) {
        const int64_t ne0 = d.ne[0];
        d.row = [ne0](int64_t r, float* out) {
          std::fill(out, out + ne0, 0.0f);
          out[r] = 1.0f;
        };
      }
    }
  }
  for (TensorDef& d : b.defs()) {
    const TensorType type = d.type;
    const int64_t ne0 = d.ne[0];
    const uint64_t rb = row_bytes(type, static_cast<uint64_t>(ne0));
    auto row_fn = d.row;
    w.add_tensor(d.name, type, d.ne, [&pool, row_fn, type, ne0, rb](uint8_t* dst, int64_t r0, int64_t r1) {
      pool.parallel_for(r1 - r0, 16, [&](int64_t b0, int64_t b1) {
        std::vector<float> buf(ne0);
        for (int64_t r = b0; r < b1; ++r) {
          row_fn(r0 + r, buf.data());
          kernels::quantize_row(type, buf.data(), dst + r * rb, ne0);
        }
      });
    });
  }
  HYLO_TRY(w.write(path));
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  return ec ? w.data_bytes() : size;
}

}  // namespace hylo::models
