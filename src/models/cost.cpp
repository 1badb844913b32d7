#include "models/cost.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

namespace hylo::models {

DecodeBytes decode_bytes(const Model& model, double n_ctx, TensorType type_k, TensorType type_v) {
  const ModelInfo& info = model.info();
  const MemoryLayout layout = model.memory_layout();
  DecodeBytes b;
  b.weights = static_cast<double>(info.active_weight_bytes);
  auto elem = [](TensorType t) {
    return static_cast<double>(tensor_type_info(t).block_bytes) / static_cast<double>(tensor_type_info(t).block_elems);
  };
  for (const MemoryLayout::Kv& k : layout.kv) {
    if (k.layer >= info.n_layer) continue;  // the MTP block is not run by plain decoding
    b.kv += static_cast<double>(k.n_kv_head) * k.head_dim * (elem(type_k) + elem(type_v)) * (n_ctx + 1.0);
  }
  b.state = 2.0 * static_cast<double>(layout.recurrent_bytes_per_sequence());
  return b;
}

DecodeBytes decode_bytes_mean(const Model& model, int64_t n_gen, TensorType type_k, TensorType type_v, int64_t n_past) {
  // Linear in n_ctx: the mean over positions n_past .. n_past + n_gen − 1 is the value at their mean.
  const double past = static_cast<double>(std::max<int64_t>(0, n_past));
  return decode_bytes(model, past + (n_gen > 0 ? (static_cast<double>(n_gen) - 1.0) / 2.0 : 0.0), type_k, type_v);
}

MemoryNeed memory_need(const Model& model, int64_t n_ctx, int n_seq, TensorType type_k, TensorType type_v,
                       int64_t n_batch) {
  const ModelInfo& info = model.info();
  const MemoryLayout layout = model.memory_layout();
  const auto seqs = static_cast<uint64_t>(std::max(1, n_seq));
  MemoryNeed m;
  m.weights = info.weight_bytes;
  m.kv = layout.kv_bytes_per_token(type_k, type_v) * static_cast<uint64_t>(std::max<int64_t>(0, n_ctx)) * seqs;
  m.state = 2 * layout.recurrent_bytes_per_sequence() * seqs;
  // About two dozen [n_batch][n_embd] f32 buffers are live in a step (residual, norms,
  // projections, attention and MoE scratch), and one row of logits per sequence.
  const auto rows = static_cast<uint64_t>(std::max<int64_t>(1, n_batch));
  m.compute = 4ull * rows * 24 * static_cast<uint64_t>(info.n_embd) +
              4ull * seqs * static_cast<uint64_t>(info.n_vocab) + (256ull << 20);
  return m;
}

SpecBytes spec_bytes(const Model& model, double n_ctx, TensorType kv_type) {
  const ModelInfo& info = model.info();
  SpecBytes b;
  for (const auto& t : model.file().tensors()) {
    const bool expert = t.name.find("_exps.") != std::string::npos;
    const double bytes = static_cast<double>(t.n_bytes);
    if (t.name == "token_embd.weight") {
      b.dense += bytes / static_cast<double>(info.n_vocab);  // one row looked up
      continue;
    }
    if (t.name == "output.weight") {
      b.lm_head += bytes;
      continue;
    }
    const bool mtp = t.name.rfind("blk.", 0) == 0 && std::atoll(t.name.c_str() + 4) >= info.n_layer;
    (mtp ? (expert ? b.mtp_experts : b.mtp_dense) : (expert ? b.experts : b.dense)) += bytes;
  }
  if (b.lm_head == 0) b.lm_head = static_cast<double>(model.file().find_tensor("token_embd.weight")->n_bytes);  // tied
  b.expert_share = info.n_expert > 0 ? static_cast<double>(info.n_expert_used) / static_cast<double>(info.n_expert) : 1;
  const DecodeBytes one = decode_bytes(model, n_ctx, kv_type);
  b.kv = one.kv;
  b.state = one.state;
  return b;
}

SpecEstimate speculative_estimate(const SpecBytes& b, int k, double alpha) {
  const double used = b.expert_share;
  const double rest = b.kv + b.state;  // per token (read once per step; written per row)
  SpecEstimate e;
  e.bytes_plain = b.dense + b.lm_head + b.experts * used + rest;
  const double distinct = 1.0 - std::pow(1.0 - used, k + 1);
  // Verify: dense + LM head once, distinct experts, the caches read once and k + 1 rows written;
  // checkpoints write the recurrent state k more times.
  e.bytes_step = b.dense + b.lm_head + b.experts * distinct + rest + k * (b.state / 2.0) +
                 k * (b.mtp_dense + b.mtp_experts * used + b.lm_head);
  e.tokens_per_step = alpha >= 1 ? k + 1.0 : (1.0 - std::pow(alpha, k + 1)) / (1.0 - alpha);
  e.speedup = e.bytes_step > 0 ? e.tokens_per_step * e.bytes_plain / e.bytes_step : 1;
  return e;
}

double prefill_flops(const ModelInfo& info, int64_t n_prompt, int64_t n_past) {
  if (n_prompt <= 0) return 0;
  const double n = static_cast<double>(n_prompt), past = static_cast<double>(std::max<int64_t>(0, n_past));
  const double trunk_params = static_cast<double>(info.active_params - info.lm_head_params);
  const double keys = n * past + n * (n + 1.0) / 2.0;  // token i attends to positions 0 .. past + i
  return n * (2.0 * trunk_params + static_cast<double>(info.recurrent_flops_per_token)) +
         static_cast<double>(info.attention_flops_per_key) * keys + 2.0 * static_cast<double>(info.lm_head_params);
}

}  // namespace hylo::models
