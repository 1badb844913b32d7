// Qwen3-MoE (`qwen3moe`, e.g. Qwen3-Coder-30B-A3B): every block is plain GQA attention with
// QK-norm and full NeoX RoPE, followed by a top-k MoE without shared expert (spec §3.9).
#include <cmath>

#include "models/decoder.h"

namespace hylo::models {
namespace {

class Qwen3Moe final : public DecoderModel {
 public:
  explicit Qwen3Moe(gguf::File file) : DecoderModel(std::move(file)) {}

  Status load() {
    const HparamReader hp(file_, "qwen3moe");
    TensorLoader tl(file_, &images_);
    HYLO_ASSIGN_OR_RETURN(n_embd_, hp.get_int("embedding_length", 1, 1 << 20));
    HYLO_ASSIGN_OR_RETURN(n_layer_, hp.get_int("block_count", 1, 4096));
    HYLO_ASSIGN_OR_RETURN(n_ctx_train_, hp.get_int("context_length", 1, int64_t{1} << 31));
    HYLO_ASSIGN_OR_RETURN(int64_t n_head, hp.get_int("attention.head_count", 1, 4096));
    HYLO_ASSIGN_OR_RETURN(int64_t n_head_kv, hp.get_int("attention.head_count_kv", 1, 4096));
    HYLO_ASSIGN_OR_RETURN(int64_t head_dim, hp.get_int_or("attention.key_length", n_embd_ / n_head, 2, 4096));
    HYLO_ASSIGN_OR_RETURN(int64_t head_dim_v, hp.get_int_or("attention.value_length", head_dim, 1, 4096));
    HYLO_ASSIGN_OR_RETURN(norm_eps_, hp.get_float("attention.layer_norm_rms_epsilon"));
    HYLO_ASSIGN_OR_RETURN(int64_t n_rot, hp.get_int_or("rope.dimension_count", head_dim, 2, head_dim));
    HYLO_ASSIGN_OR_RETURN(n_expert_, hp.get_int("expert_count", 1, 1 << 16));
    HYLO_ASSIGN_OR_RETURN(n_expert_used_, hp.get_int("expert_used_count", 1, n_expert_));
    HYLO_ASSIGN_OR_RETURN(int64_t n_ff_exp, hp.get_int("expert_feed_forward_length", 1, 1 << 20));
    if (n_head % n_head_kv != 0)
      return make_error("[model] {}: attention.head_count {} is not a multiple of head_count_kv {}", file_.path(),
                        n_head, n_head_kv);
    if (head_dim_v != head_dim || n_rot != head_dim)
      return make_error("[model] {}: qwen3moe needs value_length = key_length = rope.dimension_count (got {}, {}, {})",
                        file_.path(), head_dim_v, head_dim, n_rot);
    if (const gguf::TensorInfo* t = file_.find_tensor("token_embd.weight")) n_vocab_ = t->ne[1];
    if (n_vocab_ <= 0) return make_error("[model] {}: tensor token_embd.weight is missing", file_.path());
    dims_ = {static_cast<int>(n_head), static_cast<int>(n_head_kv), static_cast<int>(head_dim),
             1.0f / std::sqrt(static_cast<float>(head_dim))};
    HYLO_ASSIGN_OR_RETURN(rope_, read_rope_params(hp, file_, static_cast<int>(n_rot), n_ctx_train_));
    HYLO_TRY(load_common(tl, "ffn_norm", /*shared_expert=*/false, n_ff_exp, 0));
    layout_.n_layer = static_cast<int>(n_layer_);
    attn_.resize(n_layer_);
    for (int il = 0; il < n_layer_; ++il) {
      HYLO_ASSIGN_OR_RETURN(attn_[il], load_attention(tl, il, dims_, /*gated=*/false));
      layout_.kv.push_back({il, dims_.n_kv_head, dims_.head_dim});
    }
    info_.attention_flops_per_key = static_cast<uint64_t>(n_layer_) * 4ull * n_head * head_dim;
    finish_info(tl);
    return ok_status();
  }

 protected:
  void mix(int il, const float* a, float* out, std::span<const SeqRun> runs, std::span<const BatchRow> rows,
           Memory& memory, ThreadPool& pool) override {
    attention(il, attn_[il], dims_, a, out, runs, rows, memory, pool);
  }

 private:
  AttentionDims dims_{};
  std::vector<AttentionWeights> attn_;
};

}  // namespace

Result<std::unique_ptr<Model>> load_qwen3_moe(gguf::File file, const LoadOptions& options) {
  auto m = std::make_unique<Qwen3Moe>(std::move(file));
  m->set_load_options(options);
  HYLO_TRY(m->load());
  return std::unique_ptr<Model>(std::move(m));
}

}  // namespace hylo::models
