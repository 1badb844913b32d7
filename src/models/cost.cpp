#include "models/cost.h"

#include <algorithm>

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

DecodeBytes decode_bytes_mean(const Model& model, int64_t n_gen, TensorType type_k, TensorType type_v) {
  // Linear in n_ctx: the mean over positions 0 .. n_gen−1 is the value at their mean.
  return decode_bytes(model, n_gen > 0 ? (static_cast<double>(n_gen) - 1.0) / 2.0 : 0.0, type_k, type_v);
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
  m.compute = 4ull * rows * 24 * static_cast<uint64_t>(info.n_embd) + 4ull * seqs * static_cast<uint64_t>(info.n_vocab) +
              (256ull << 20);
  return m;
}

double prefill_flops(const ModelInfo& info, int64_t n_prompt) {
  if (n_prompt <= 0) return 0;
  const double n = static_cast<double>(n_prompt);
  const double trunk_params = static_cast<double>(info.active_params - info.lm_head_params);
  const double keys = n * (n + 1.0) / 2.0;  // token i attends to positions 0 .. i
  return n * (2.0 * trunk_params + static_cast<double>(info.recurrent_flops_per_token)) +
         static_cast<double>(info.attention_flops_per_key) * keys + 2.0 * static_cast<double>(info.lm_head_params);
}

}  // namespace hylo::models
