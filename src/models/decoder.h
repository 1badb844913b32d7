// What the supported architectures share: token embedding, a stack of pre-norm blocks
// x → x + Mixer(norm(x)) → h + MoE(norm(h)), the final norm and the LM head, batch validation
// and the gated/plain attention mixer. Architectures supply their mixers (qwen3_next.cpp,
// qwen3_moe.cpp); nothing here asks which architecture it runs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/loader.h"
#include "models/model.h"
#include "ops/matmul.h"
#include "ops/moe.h"

namespace hylo::models {

// The rows of one sequence inside a batch.
struct SeqRun {
  int32_t seq;
  int64_t row0;  // first row in the batch
  int64_t n;     // number of rows
  int32_t pos0;  // position of the first row
};

// Self-attention with QK-norm and NeoX RoPE; `gated` = Qwen3-Next's per-head [query | gate]
// projection and sigmoid output gate.
struct AttentionWeights {
  ops::Weight q, k, v, out;
  std::vector<float> q_norm, k_norm;
  bool gated = false;
};

struct AttentionDims {
  int n_head, n_kv_head, head_dim;
  float scale;
};

// The NextN / MTP head (spec §5.3): one more gated-attention + MoE block whose input mixes the
// embedding of the token with the trunk's hidden state.
struct NextNWeights {
  int layer = -1;       // block index (after the trunk); -1: none
  ops::Weight eh_proj;  // [2·n_embd → n_embd], input [embedding | hidden]
  std::vector<float> enorm, hnorm, shared_head_norm;
  AttentionWeights attn;
};

struct Workspace;

class DecoderModel : public Model {
 public:
  MemoryLayout memory_layout() const override { return layout_; }
  Status forward(std::span<const BatchRow> rows, Memory& memory, ThreadPool& pool, float* logits) override;
  const std::vector<float>& last_hidden() const override { return hidden_out_; }
  const std::vector<float>& all_hidden() const override { return all_hidden_; }
  // Before load(): whether matrices get their interleaved image.
  void set_load_options(const LoadOptions& options);

 protected:
  explicit DecoderModel(gguf::File file);
  ~DecoderModel() override;

  // Mixer of layer il: out = Mixer(a); a, out: [n_rows][n_embd].
  virtual void mix(int il, const float* a, float* out, std::span<const SeqRun> runs, std::span<const BatchRow> rows,
                   Memory& memory, ThreadPool& pool) = 0;

  // Loads token_embd, output_norm, output (or the tied embedding) and per-layer norms + MoE.
  Status load_common(TensorLoader& tl, const std::string& ffn_norm_name, bool shared_expert, int64_t n_ff_exp,
                     int64_t n_ff_shexp);
  // Norms and MoE of block il into layers_[il] (layers_ must be large enough).
  Status load_block_ffn(TensorLoader& tl, int64_t il, const std::string& ffn_norm_name, bool shared_expert,
                        int64_t n_ff_exp, int64_t n_ff_shexp);
  Result<AttentionWeights> load_attention(TensorLoader& tl, int il, const AttentionDims& d, bool gated);
  void attention(int il, const AttentionWeights& w, const AttentionDims& d, const float* a, float* out,
                 std::span<const SeqRun> runs, std::span<const BatchRow> rows, Memory& memory, ThreadPool& pool);
  void finish_info(const TensorLoader& tl);
  Status load_nextn(TensorLoader& tl, int layer, const AttentionDims& d, const std::string& ffn_norm_name,
                    bool shared_expert, int64_t n_ff_exp, int64_t n_ff_shexp);
  Status forward_nextn(std::span<const BatchRow> rows, const float* hidden, Memory& memory, ThreadPool& pool,
                       float* logits, const AttentionDims& d);
  NextNWeights nextn_;

  // Hyper-parameters every architecture has.
  int64_t n_embd_ = 0, n_vocab_ = 0, n_layer_ = 0, n_ctx_train_ = 0;
  int64_t n_expert_ = 0, n_expert_used_ = 0;
  float norm_eps_ = 1e-6f;
  MemoryLayout layout_;

  ops::Weight token_embd_, output_;
  std::vector<float> output_norm_;
  struct Layer {
    std::vector<float> attn_norm, ffn_norm;
    ops::MoeWeights moe;
  };
  std::vector<Layer> layers_;
  ops::WeightImages images_;  // the matrices' load-time repack (before every loader use)
  std::unique_ptr<Workspace> ws_;
  std::vector<float> hidden_out_;
  std::vector<float> all_hidden_;  // [n_rows][n_embd] with options_.keep_all_hidden

 private:
  Result<std::vector<SeqRun>> validate(std::span<const BatchRow> rows, const Memory& memory) const;
};

}  // namespace hylo::models
