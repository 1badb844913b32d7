// Qwen3-Next (`qwen3next`): 3 of 4 blocks are Gated DeltaNet, every 4th is gated attention;
// every block has a 512-expert MoE with a gated shared expert (spec §3). Reads both GGUF layouts
// of the DeltaNet input projection (split attn_qkv + attn_gate, or legacy fused ssm_in).
#include <cmath>
#include <cstring>
#include <optional>

#include "base/check.h"
#include "base/huge_pages.h"
#include "base/log.h"
#include "kernels/vec.h"
#include "models/decoder.h"
#include "ops/delta_net.h"
#include "ops/dump.h"
#include "ops/profile.h"

namespace hylo::models {
namespace {

struct DeltaNetWeights {
  ops::Weight qkv, gate;          // split layout: attn_qkv [E → conv_dim], attn_gate [E → value_dim]
  ops::Weight ssm_in;             // legacy layout: [E → 2·key_dim + 2·value_dim], grouped per key head
  ops::Weight ba;                 // ssm_ba [E → 2·H_v], grouped per key head: [β (r) | α (r)]
  std::vector<float> conv_t;      // ssm_conv1d transposed to [K][conv_dim]
  std::vector<float> dt_bias, a;  // [H_v]
  std::vector<float> norm;        // [d_v]
  ops::Weight out;                // ssm_out [value_dim → E]
};

class Qwen3Next final : public DecoderModel {
 public:
  explicit Qwen3Next(gguf::File file) : DecoderModel(std::move(file)) {}

  Status load() {
    const HparamReader hp(file_, "qwen3next");
    TensorLoader tl(file_, &images_);
    HYLO_ASSIGN_OR_RETURN(n_embd_, hp.get_int("embedding_length", 1, 1 << 20));
    HYLO_ASSIGN_OR_RETURN(int64_t n_block, hp.get_int("block_count", 1, 4096));
    HYLO_ASSIGN_OR_RETURN(int64_t n_mtp, hp.get_int_or("nextn_predict_layers", 0, 0, 16));
    if (n_mtp >= n_block)
      return make_error("[model] {}: nextn_predict_layers {} leaves no trunk blocks of {}", file_.path(), n_mtp,
                        n_block);
    n_layer_ = n_block - n_mtp;
    HYLO_ASSIGN_OR_RETURN(n_ctx_train_, hp.get_int("context_length", 1, int64_t{1} << 31));
    HYLO_ASSIGN_OR_RETURN(int64_t n_head, hp.get_int("attention.head_count", 1, 4096));
    HYLO_ASSIGN_OR_RETURN(int64_t n_head_kv, hp.get_int("attention.head_count_kv", 1, 4096));
    HYLO_ASSIGN_OR_RETURN(int64_t head_dim, hp.get_int("attention.key_length", 2, 4096));
    HYLO_ASSIGN_OR_RETURN(int64_t head_dim_v, hp.get_int_or("attention.value_length", head_dim, 1, 4096));
    HYLO_ASSIGN_OR_RETURN(norm_eps_, hp.get_float("attention.layer_norm_rms_epsilon"));
    HYLO_ASSIGN_OR_RETURN(int64_t n_rot, hp.get_int_or("rope.dimension_count", head_dim, 2, head_dim));
    HYLO_ASSIGN_OR_RETURN(n_expert_, hp.get_int("expert_count", 1, 1 << 16));
    HYLO_ASSIGN_OR_RETURN(n_expert_used_, hp.get_int("expert_used_count", 1, n_expert_));
    HYLO_ASSIGN_OR_RETURN(int64_t n_ff_exp, hp.get_int("expert_feed_forward_length", 1, 1 << 20));
    HYLO_ASSIGN_OR_RETURN(int64_t n_ff_shexp, hp.get_int_or("expert_shared_feed_forward_length", n_ff_exp, 1, 1 << 20));
    HYLO_ASSIGN_OR_RETURN(conv_kernel_, hp.get_int("ssm.conv_kernel", 2, 64));
    HYLO_ASSIGN_OR_RETURN(d_k_, hp.get_int("ssm.state_size", 1, 4096));
    HYLO_ASSIGN_OR_RETURN(h_k_, hp.get_int("ssm.group_count", 1, 4096));
    HYLO_ASSIGN_OR_RETURN(h_v_, hp.get_int("ssm.time_step_rank", 1, 4096));
    HYLO_ASSIGN_OR_RETURN(int64_t inner, hp.get_int("ssm.inner_size", 1, 1 << 24));
    HYLO_ASSIGN_OR_RETURN(int64_t interval, hp.get_int_or("full_attention_interval", 4, 1, 4096));
    if (n_head % n_head_kv != 0)
      return make_error("[model] {}: attention.head_count {} is not a multiple of head_count_kv {}", file_.path(),
                        n_head, n_head_kv);
    if (head_dim_v != head_dim)
      return make_error("[model] {}: attention.value_length {} differs from key_length {}", file_.path(), head_dim_v,
                        head_dim);
    if (n_rot % 2 != 0) return make_error("[model] {}: rope.dimension_count {} must be even", file_.path(), n_rot);
    if (h_v_ % h_k_ != 0 || inner % h_v_ != 0)
      return make_error(
          "[model] {}: ssm.time_step_rank {} must be a multiple of ssm.group_count {} and divide "
          "ssm.inner_size {}",
          file_.path(), h_v_, h_k_, inner);
    d_v_ = inner / h_v_;
    key_dim_ = h_k_ * d_k_;
    value_dim_ = h_v_ * d_v_;
    conv_dim_ = 2 * key_dim_ + value_dim_;
    const gguf::Array* tok = file_.get_array("tokenizer.ggml.tokens");
    n_vocab_ = tok ? static_cast<int64_t>(tok->strings.size()) : 0;
    if (const gguf::TensorInfo* t = file_.find_tensor("token_embd.weight")) n_vocab_ = t->ne[1];
    if (n_vocab_ <= 0) return make_error("[model] {}: cannot determine the vocabulary size", file_.path());

    // Layer kinds: an explicit recurrent_layers array wins over the interval rule (spec §3.2).
    recurrent_.assign(n_layer_, false);
    if (const gguf::Array* rl = file_.get_array(hp.name("attention.recurrent_layers"))) {
      if (rl->elem_type != gguf::ValueType::kBool || static_cast<int64_t>(rl->ints.size()) < n_layer_)
        return make_error("[model] {}: attention.recurrent_layers must be a bool array of ≥ {} entries", file_.path(),
                          n_layer_);
      for (int64_t il = 0; il < n_layer_; ++il) recurrent_[il] = rl->ints[il] != 0;
    } else {
      for (int64_t il = 0; il < n_layer_; ++il) recurrent_[il] = (il + 1) % interval != 0;
    }
    attn_dims_ = {static_cast<int>(n_head), static_cast<int>(n_head_kv), static_cast<int>(head_dim),
                  1.0f / std::sqrt(static_cast<float>(head_dim))};
    if (auto sc = hp.get_float_or("attention.scale", 0.0f); sc.ok() && *sc > 0.0f) attn_dims_.scale = *sc;
    HYLO_ASSIGN_OR_RETURN(rope_, read_rope_params(hp, file_, static_cast<int>(n_rot), n_ctx_train_));

    HYLO_TRY(load_common(tl, "post_attention_norm", /*shared_expert=*/true, n_ff_exp, n_ff_shexp));
    attn_.resize(n_layer_);
    delta_.resize(n_layer_);
    layout_.n_layer = static_cast<int>(n_layer_);
    for (int il = 0; il < n_layer_; ++il) {
      if (recurrent_[il]) {
        HYLO_TRY(load_delta_net(tl, il));
        layout_.recurrent.push_back({il, static_cast<int>(conv_kernel_ - 1), static_cast<int>(conv_dim_),
                                     static_cast<int>(h_v_), static_cast<int>(d_k_), static_cast<int>(d_v_)});
      } else {
        HYLO_ASSIGN_OR_RETURN(attn_[il], load_attention(tl, il, attn_dims_, /*gated=*/true));
        layout_.kv.push_back({il, attn_dims_.n_kv_head, attn_dims_.head_dim});
      }
    }
    if (n_mtp > 0)
      HYLO_TRY(
          load_nextn(tl, static_cast<int>(n_layer_), attn_dims_, "post_attention_norm", true, n_ff_exp, n_ff_shexp));
    if (n_mtp > 1) log_warn("[model] {}: only the first of {} MTP blocks is used", file_.path(), n_mtp);
    info_.has_mtp = n_mtp > 0;
    info_.attention_flops_per_key = layout_.kv.size() * 4ull * n_head * head_dim;
    info_.recurrent_flops_per_token = layout_.recurrent.size() * 8ull * h_v_ * d_k_ * d_v_;
    if (n_mtp > 0) info_.attention_flops_per_key -= 4ull * n_head * head_dim;  // the MTP block is not the trunk
    finish_info(tl);
    return ok_status();
  }

 public:
  bool has_mtp() const override { return nextn_.layer >= 0; }
  Status forward_mtp(std::span<const BatchRow> rows, const float* hidden, Memory& memory, ThreadPool& pool,
                     float* logits) override {
    return forward_nextn(rows, hidden, memory, pool, logits, attn_dims_);
  }
  int32_t mtp_len(const Memory& memory, int seq) const override {
    return nextn_.layer >= 0 ? memory.kv(nextn_.layer, seq).size() : 0;
  }

 protected:
  void mix(int il, const float* a, float* out, std::span<const SeqRun> runs, std::span<const BatchRow> rows,
           Memory& memory, ThreadPool& pool) override {
    if (recurrent_[il]) {
      delta_net(il, a, out, runs, rows, memory, pool);
    } else {
      attention(il, attn_[il], attn_dims_, a, out, runs, rows, memory, pool);
    }
  }

 private:
  Status load_delta_net(TensorLoader& tl, int il) {
    const std::string p = fmt::format("blk.{}.", il);
    DeltaNetWeights& w = delta_[il];
    if (tl.has(p + "ssm_in.weight")) {
      HYLO_ASSIGN_OR_RETURN(w.ssm_in, tl.matrix(p + "ssm_in.weight", n_embd_, 2 * key_dim_ + 2 * value_dim_));
    } else {
      HYLO_ASSIGN_OR_RETURN(w.qkv, tl.matrix(p + "attn_qkv.weight", n_embd_, conv_dim_));
      HYLO_ASSIGN_OR_RETURN(w.gate, tl.matrix(p + "attn_gate.weight", n_embd_, value_dim_));
    }
    HYLO_ASSIGN_OR_RETURN(w.ba, tl.matrix(p + "ssm_ba.weight", n_embd_, 2 * h_v_));
    HYLO_ASSIGN_OR_RETURN(ops::Weight conv, tl.table(p + "ssm_conv1d.weight", conv_kernel_, conv_dim_));
    w.conv_t.resize(conv_kernel_ * conv_dim_);
    std::vector<float> row(conv_kernel_);
    for (int64_t c = 0; c < conv_dim_; ++c) {
      kernels::dequantize_row(conv.type, conv.row(c), row.data(), conv_kernel_);
      for (int64_t i = 0; i < conv_kernel_; ++i) w.conv_t[i * conv_dim_ + c] = row[i];
    }
    HYLO_ASSIGN_OR_RETURN(w.dt_bias, tl.vector(p + "ssm_dt.bias", h_v_));
    HYLO_ASSIGN_OR_RETURN(w.a, tl.vector(p + "ssm_a", h_v_));
    HYLO_ASSIGN_OR_RETURN(w.norm, tl.vector(p + "ssm_norm.weight", d_v_));
    HYLO_ASSIGN_OR_RETURN(w.out, tl.matrix(p + "ssm_out.weight", value_dim_, n_embd_));
    return ok_status();
  }

  // Gated DeltaNet mixer (spec §3.5) for all rows of the batch.
  void delta_net(int il, const float* a, float* out, std::span<const SeqRun> runs, std::span<const BatchRow> rows,
                 Memory& memory, ThreadPool& pool) {
    const kernels::VecKernels& K = kernels::vec();
    const DeltaNetWeights& w = delta_[il];
    const int64_t T = static_cast<int64_t>(rows.size());
    const int64_t r = h_v_ / h_k_;  // value heads per key head
    mixed_.resize(T * conv_dim_);
    z_.resize(T * value_dim_);
    ba_.resize(T * 2 * h_v_);

    // Projections: m = [q | k | v] (conv input), z (output gate), ba (β and decay logits).
    ops::convert_rows(pool, *w.ba.kernel, a, T, n_embd_, n_embd_, &act_);
    if (w.ssm_in.valid()) {
      legacy_.resize(T * (2 * key_dim_ + 2 * value_dim_));
      HYLO_CHECK(w.ssm_in.kernel->act == w.ba.kernel->act, "ssm_in and ssm_ba need the same activation format");
      const ops::MatmulJob jobs[] = {{&w.ssm_in, &act_, legacy_.data(), 2 * key_dim_ + 2 * value_dim_},
                                     {&w.ba, &act_, ba_.data(), 2 * h_v_}};
      ops::matmul(pool, jobs);
      // Legacy rows are grouped per key head g: [q_g | k_g | v_g (r heads) | z_g (r heads)].
      const int64_t gw = 2 * d_k_ + 2 * r * d_v_;
      for (int64_t t = 0; t < T; ++t) {
        const float* src = legacy_.data() + t * (2 * key_dim_ + 2 * value_dim_);
        float* m = mixed_.data() + t * conv_dim_;
        float* z = z_.data() + t * value_dim_;
        for (int64_t g = 0; g < h_k_; ++g) {
          const float* grp = src + g * gw;
          std::memcpy(m + g * d_k_, grp, sizeof(float) * d_k_);
          std::memcpy(m + key_dim_ + g * d_k_, grp + d_k_, sizeof(float) * d_k_);
          std::memcpy(m + 2 * key_dim_ + g * r * d_v_, grp + 2 * d_k_, sizeof(float) * r * d_v_);
          std::memcpy(z + g * r * d_v_, grp + 2 * d_k_ + r * d_v_, sizeof(float) * r * d_v_);
        }
      }
    } else {
      HYLO_CHECK(w.qkv.kernel->act == w.ba.kernel->act && w.gate.kernel->act == w.ba.kernel->act,
                 "attn_qkv, attn_gate and ssm_ba need the same activation format");
      const ops::MatmulJob jobs[] = {{&w.qkv, &act_, mixed_.data(), conv_dim_},
                                     {&w.gate, &act_, z_.data(), value_dim_},
                                     {&w.ba, &act_, ba_.data(), 2 * h_v_}};
      ops::matmul(pool, jobs);
    }
    ops::dump(ops::layer_name("linear_attn_qkv_mixed", il), mixed_.data(), {T, conv_dim_});
    ops::dump(ops::layer_name("z", il), z_.data(), {T, value_dim_});
    ops::dump(ops::layer_name("linear_attn_mixed_ba", il), ba_.data(), {T, 2 * h_v_});

    // β = σ(b), g = ssm_a · softplus(α + dt_bias); value head j = g·r + i.
    beta_.resize(T * h_v_);
    decay_.resize(T * h_v_);
    for (int64_t t = 0; t < T; ++t) {
      const float* ba = ba_.data() + t * 2 * h_v_;
      for (int64_t g = 0; g < h_k_; ++g)
        for (int64_t i = 0; i < r; ++i) {
          const int64_t j = g * r + i;
          beta_[t * h_v_ + j] = 1.0f / (1.0f + std::exp(-ba[g * 2 * r + i]));
          decay_[t * h_v_ + j] = w.a[j] * kernels::softplus_ref(ba[g * 2 * r + r + i] + w.dt_bias[j]);
        }
    }
    ops::dump(ops::layer_name("gate", il), decay_.data(), {T, h_v_});

    // Causal conv (kernel K) over [conv state | m], SiLU; the state keeps the last K−1 raw rows.
    conv_out_.resize(T * conv_dim_);
    const int64_t win = conv_kernel_ - 1;
    std::optional<ops::PhaseTimer> conv_timer(std::in_place, ops::Phase::kConv);
    for (const SeqRun& run : runs) {
      ops::RecurrentSeqState& st = memory.recurrent(il, run.seq);
      if (run.pos0 == 0) st.clear();  // a new sequence starts from zero state
      const float* m = mixed_.data() + run.row0 * conv_dim_;
      pool.parallel_for(run.n, 8, [&](int64_t b, int64_t e) {
        const float* inputs[64];  // conv_kernel_ ≤ 64 (checked at load)
        for (int64_t t = b; t < e; ++t) {
          for (int64_t i = 0; i < conv_kernel_; ++i) {
            const int64_t src = t - win + i;  // index into m; negative = from the conv state
            inputs[i] = src >= 0 ? m + src * conv_dim_ : st.conv.data() + (win + src) * conv_dim_;
          }
          float* y = conv_out_.data() + (run.row0 + t) * conv_dim_;
          K.conv1d(inputs, w.conv_t.data(), static_cast<int>(conv_kernel_), y, conv_dim_);
          K.silu(y, y, conv_dim_);
        }
      });
      // Speculative verification: the conv state after each row but the last, for rollback.
      if (ops::RecurrentSeqState* cps = memory.checkpoints(il, run.seq, run.pos0, run.n))
        for (int64_t t = 0; t + 1 < run.n; ++t)
          for (int64_t i = 0; i < win; ++i) {
            const int64_t src = t + 1 - win + i;
            const float* row = src >= 0 ? m + src * conv_dim_ : st.conv.data() + (win + src) * conv_dim_;
            std::memcpy(cps[t].conv.data() + i * conv_dim_, row, sizeof(float) * conv_dim_);
          }
      // New state: the last K−1 rows of [state | m].
      // (Built aside, then swapped in: the two buffers trade places every step, nothing is allocated.)
      conv_next_.resize(win * conv_dim_);
      for (int64_t i = 0; i < win; ++i) {
        const int64_t src = run.n - win + i;
        const float* row = src >= 0 ? m + src * conv_dim_ : st.conv.data() + (win + src) * conv_dim_;
        std::memcpy(conv_next_.data() + i * conv_dim_, row, sizeof(float) * conv_dim_);
      }
      std::swap(st.conv, conv_next_);
    }
    conv_timer.reset();
    ops::dump(ops::layer_name("conv_output_silu", il), conv_out_.data(), {T, conv_dim_});

    // L2-normalise q and k per head.
    qk_.resize(T * 2 * key_dim_);
    pool.parallel_for(T, 16, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t)
        for (int64_t h = 0; h < 2 * h_k_; ++h)
          K.l2_norm(conv_out_.data() + t * conv_dim_ + h * d_k_, qk_.data() + t * 2 * key_dim_ + h * d_k_, d_k_,
                    norm_eps_);
    });

    // Gated delta rule per sequence run.
    core_.resize(T * value_dim_);
    std::vector<ops::DeltaRun> druns;
    state_after_.clear();
    for (const SeqRun& run : runs)
      if (ops::RecurrentSeqState* cps = memory.checkpoints(il, run.seq, run.pos0, run.n)) {
        for (int64_t t = 0; t + 1 < run.n; ++t) state_after_.push_back(cps[t].ssm.data());
        state_after_.push_back(nullptr);  // the state after the last row is the live one
      }
    size_t next_after = 0;
    for (const SeqRun& run : runs) {
      ops::RecurrentSeqState& st = memory.recurrent(il, run.seq);
      ops::DeltaRun d;
      d.q = qk_.data() + run.row0 * 2 * key_dim_;
      d.k = d.q + key_dim_;
      d.v = conv_out_.data() + run.row0 * conv_dim_ + 2 * key_dim_;
      d.g = decay_.data() + run.row0 * h_v_;
      d.beta = beta_.data() + run.row0 * h_v_;
      d.state = st.ssm.data();
      d.out = core_.data() + run.row0 * value_dim_;
      d.qk_stride = 2 * key_dim_;
      d.v_stride = conv_dim_;
      d.out_stride = value_dim_;
      d.n_tokens = run.n;
      d.pos0 = run.pos0;
      if (memory.checkpoints(il, run.seq, run.pos0, run.n) != nullptr) {
        d.state_after = state_after_.data() + next_after;
        next_after += static_cast<size_t>(run.n);
      }
      druns.push_back(d);
    }
    const ops::DeltaNetShape shape{static_cast<int>(h_k_), static_cast<int>(h_v_), static_cast<int>(d_k_),
                                   static_cast<int>(d_v_), false};
    ops::gated_delta_rule(pool, druns, shape, options_.delta_mode);
    ops::dump(ops::layer_name("attn_output", il), core_.data(), {T, h_v_, d_v_});

    // Gated RMSNorm per value head (norm first, then ⊙ silu(z)), output projection.
    pool.parallel_for(T, 16, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t)
        for (int64_t j = 0; j < h_v_; ++j) {
          float* o = core_.data() + t * value_dim_ + j * d_v_;
          K.rms_norm(o, w.norm.data(), o, d_v_, norm_eps_);
          K.mul_silu(o, z_.data() + t * value_dim_ + j * d_v_, o, d_v_);
        }
    });
    ops::dump(ops::layer_name("final_output", il), core_.data(), {T, value_dim_});
    ops::matmul(pool, w.out, core_.data(), T, out, &act_);
    ops::dump(ops::layer_name("linear_attn_out", il), out, {T, n_embd_});
  }

  int64_t conv_kernel_ = 4, d_k_ = 0, d_v_ = 0, h_k_ = 0, h_v_ = 0;
  int64_t key_dim_ = 0, value_dim_ = 0, conv_dim_ = 0;
  std::vector<bool> recurrent_;
  AttentionDims attn_dims_{};
  std::vector<AttentionWeights> attn_;
  std::vector<DeltaNetWeights> delta_;
  // Work buffers of the DeltaNet mixer.
  LargeVector<float> mixed_, z_, ba_, legacy_, beta_, decay_, conv_out_, qk_, core_;
  std::vector<float> conv_next_;     // swapped with a sequence's conv state (same type)
  std::vector<float*> state_after_;  // [rows of checkpointed runs] where the delta rule saves S
  ops::ActRows act_;
};

}  // namespace

Result<std::unique_ptr<Model>> load_qwen3_next(gguf::File file, const LoadOptions& options) {
  auto m = std::make_unique<Qwen3Next>(std::move(file));
  m->set_load_options(options);
  HYLO_TRY(m->load());
  return std::unique_ptr<Model>(std::move(m));
}

}  // namespace hylo::models
