// The cost model: bytes a decoded token reads and FLOPs a prompt costs, from a model's shapes.
// `hylo bench` reports its speeds against these figures (fractions of the measured bandwidth and
// compute peak); tests check the arithmetic against an independent count.
#pragma once

#include <cstdint>

#include "base/tensor_type.h"
#include "models/model.h"

namespace hylo::models {

// One decoded token of one sequence whose KV cache holds n_ctx positions before it.
struct DecodeBytes {
  double weights = 0;  // the matrices it multiplies (the routed experts only) and one embedding row
  double kv = 0;       // K and V of every trunk attention layer: n_ctx positions read, its own written
  double state = 0;    // the recurrent layers' conv windows and delta-rule states, read and written
  double total() const { return weights + kv + state; }
};
DecodeBytes decode_bytes(const Model& model, double n_ctx, TensorType type_k, TensorType type_v);
inline DecodeBytes decode_bytes(const Model& model, double n_ctx, TensorType kv_type) {
  return decode_bytes(model, n_ctx, kv_type, kv_type);
}

// Mean decode bytes per token over n_gen tokens decoded after n_past positions already in the
// sequence.
DecodeBytes decode_bytes_mean(const Model& model, int64_t n_gen, TensorType type_k, TensorType type_v,
                              int64_t n_past = 0);
inline DecodeBytes decode_bytes_mean(const Model& model, int64_t n_gen, TensorType kv_type) {
  return decode_bytes_mean(model, n_gen, kv_type, kv_type);
}

// Resident memory of a run of n_seq sequences of n_ctx positions each. What the load-time check
// (`hylo run/serve`), the context choice and the doctor's advice compare with available memory.
struct MemoryNeed {
  uint64_t weights = 0;  // every tensor of the file (mapped or repacked: resident either way)
  uint64_t kv = 0;       // K and V of every attention layer (trunk and MTP) at n_ctx, in their types
  uint64_t state = 0;    // recurrent state per sequence, and one rollback snapshot of it
  uint64_t compute = 0;  // activation buffers of an n_batch-row step, logits, and a fixed 256 MiB
                         // for thread stacks, tokenizer and allocator slack (an estimate)
  uint64_t total() const { return weights + kv + state + compute; }
};
MemoryNeed memory_need(const Model& model, int64_t n_ctx, int n_seq, TensorType type_k, TensorType type_v,
                       int64_t n_batch);

// Speculative decoding with k MTP drafts per step and acceptance α per draft, when decode is
// bandwidth-bound. A verify step reads the dense weights and the LM head once, but the routed
// experts of k + 1 tokens: per layer E·(1 − (1 − u/E)^{k+1}) distinct experts of E when the router
// spreads tokens evenly (u used per token), up to k + 1 times one token's. Drafting reads the MTP
// block and the LM head k times. A step yields (1 − α^{k+1}) / (1 − α) tokens.
struct SpecEstimate {
  double tokens_per_step = 1;
  double bytes_plain = 0;  // one plain decode step
  double bytes_step = 0;   // one draft + verify step
  double speedup = 1;      // tokens per byte against plain decoding
};
// What the estimate weighs, however it was counted (a loaded model here, the doctor's tensor
// table there): bytes of one plain decode step split by how a verify step reads them.
struct SpecBytes {
  double dense = 0;          // trunk tensors other than routed experts, one embedding row
  double experts = 0;        // every routed-expert tensor of the trunk
  double expert_share = 1;   // u / E: the share of them one token reads
  double lm_head = 0;        // output.weight (token_embd when tied)
  double mtp_dense = 0;      // the MTP block's other tensors
  double mtp_experts = 0;    // its routed experts (read at expert_share per draft)
  double kv = 0, state = 0;  // DecodeBytes::kv and ::state of one token at the context considered
};
SpecEstimate speculative_estimate(const SpecBytes& b, int k, double alpha);
SpecBytes spec_bytes(const Model& model, double n_ctx, TensorType kv_type);
inline SpecEstimate speculative_estimate(const Model& model, int k, double alpha, double n_ctx, TensorType kv_type) {
  return speculative_estimate(spec_bytes(model, n_ctx, kv_type), k, alpha);
}

// FLOPs of one prefill of n_prompt tokens after n_past positions already in the sequence, that
// produces the last row's logits only: per token every trunk matrix product except the LM head
// (2 FLOPs per multiply-add), the delta rule, and attention over the positions up to and
// including its own; the LM head once.
double prefill_flops(const ModelInfo& info, int64_t n_prompt, int64_t n_past = 0);

}  // namespace hylo::models
