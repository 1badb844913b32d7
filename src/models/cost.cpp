#include "models/cost.h"

namespace hylo::models {

DecodeBytes decode_bytes(const Model& model, double n_ctx, TensorType kv_type) {
  const ModelInfo& info = model.info();
  const MemoryLayout layout = model.memory_layout();
  DecodeBytes b;
  b.weights = static_cast<double>(info.active_weight_bytes);
  const double elem = static_cast<double>(tensor_type_info(kv_type).block_bytes) /
                      static_cast<double>(tensor_type_info(kv_type).block_elems);
  for (const MemoryLayout::Kv& k : layout.kv) {
    if (k.layer >= info.n_layer) continue;  // the MTP block is not run by plain decoding
    b.kv += 2.0 * k.n_kv_head * k.head_dim * elem * (n_ctx + 1.0);
  }
  b.state = 2.0 * static_cast<double>(layout.recurrent_bytes_per_sequence());
  return b;
}

DecodeBytes decode_bytes_mean(const Model& model, int64_t n_gen, TensorType kv_type) {
  // Linear in n_ctx: the mean over positions 0 .. n_gen−1 is the value at their mean.
  return decode_bytes(model, n_gen > 0 ? (static_cast<double>(n_gen) - 1.0) / 2.0 : 0.0, kv_type);
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
