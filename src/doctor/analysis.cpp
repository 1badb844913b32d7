#include "doctor/analysis.h"

#include <algorithm>
#include <cmath>

#include "models/cost.h"

namespace hylo::doctor {
namespace {

// Attention streams the KV cache in tiles of this many positions (flash-style), so scores never
// exist for the whole context: one tile per query row and head is live at a time.
constexpr int64_t kAttnTile = 512;
// The chunked gated-delta-rule prefill (spec §3.6) works on chunks of 64 tokens.
constexpr int64_t kDeltaChunk = 64;

uint64_t u64(int64_t v) { return v > 0 ? static_cast<uint64_t>(v) : 0; }

// Saturating byte arithmetic: absurd inputs (a huge context times many sequences) give an absurdly
// large total that does not fit, never a wrapped-around small one that does.
constexpr uint64_t kMaxBytes = UINT64_MAX / 4;
uint64_t mul(uint64_t a, uint64_t b) { return a != 0 && b > kMaxBytes / a ? kMaxBytes : a * b; }
uint64_t add(uint64_t a, uint64_t b) { return std::min(kMaxBytes, a + std::min(b, kMaxBytes)); }

int64_t resolved_ctx(const Inputs& in) { return in.config.ctx > 0 ? in.config.ctx : in.model.n_ctx_train; }

}  // namespace

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      return "error";
  }
  return "?";
}

// Compute buffers for one micro-batch of `ubatch` tokens, in f32:
//  * activations: two live buffers (an op's input and output) of the widest per-token set:
//    residual + normed input (2·n_embd) plus the widest of
//      attention  q (×2 when gated, qwen3next) + K + V + attention output,
//      DeltaNet   mixed qkv (conv_dim) + z gate + output (2·value_dim) + β and g (2·H_v),
//      FFN / MoE  router logits + used experts × (gate, up) + shared expert (gate, up) + sum;
//  * logits: n_vocab floats for every row of the micro-batch (speculative verification and
//    prompt logits need them; decode uses one row);
//  * attention scratch: one tile of scores per query row and head (kAttnTile positions);
//  * DeltaNet chunk scratch: per value head, a chunk × chunk matrix and chunk-wide k/v copies.
ComputeBreakdown compute_buffers(const ModelDesc& m, const Config& c) {
  const int64_t ub = std::max<int64_t>(1, std::min(c.ubatch, c.batch));
  const bool gated_q = m.arch == "qwen3next";
  const int64_t attn = m.n_attn_layers() > 0 ? m.n_head * m.head_dim_k * (gated_q ? 2 : 1) +
                                                   m.n_head_kv * (m.head_dim_k + m.head_dim_v) + m.n_head * m.head_dim_v
                                             : 0;
  const int64_t delta =
      m.n_recurrent_layers() > 0 ? m.ssm_conv_dim() + 2 * m.ssm_inner_size + 2 * m.ssm_time_step_rank : 0;
  const int64_t ffn =
      m.n_expert > 0 ? m.n_expert + m.n_expert_used * 2 * m.n_ff_exp + 2 * m.n_ff_shexp + m.n_embd : 2 * m.n_ff;
  const int64_t per_token = 2 * m.n_embd + std::max({attn, delta, ffn});
  ComputeBreakdown b;
  b.activations = u64(2 * ub * per_token) * sizeof(float);
  b.logits = u64(m.n_vocab * ub) * sizeof(float);
  if (m.n_attn_layers() > 0) b.attention = u64(ub * m.n_head * kAttnTile) * sizeof(float);
  if (m.n_recurrent_layers() > 0)
    b.deltanet = u64(ub * m.ssm_time_step_rank * (kDeltaChunk + m.ssm_state_size + m.ssm_d_v())) * sizeof(float);
  return b;
}

// Prefill as a roofline: the larger of compute time and weight-streaming time.
//  * FLOPs: 2 per active weight per token (matmuls; the LM head only for the last token), plus
//    causal attention 2·n_head·(d_k + d_v) per (query, key) pair and layer, P(P+1)/2 pairs, plus
//    the chunked delta rule ~2·H_v·(3·d_k·d_v + chunk·(d_k + d_v)) per token and recurrent layer;
//    sustained at kPrefillEfficiency of the peak.
//  * Memory: every micro-batch streams the weights it touches once; with ubatch tokens each
//    picking n_used of n_expert experts, a fraction 1 − (1 − used/n_expert)^ubatch of the experts.
double estimate_prefill_seconds(const ModelDesc& m, const WeightStats& w, double compute_tflops,
                                std::optional<double> bandwidth_gbs, int64_t tokens, int64_t ubatch) {
  if (tokens <= 0) return 0.0;
  const double P = static_cast<double>(tokens);
  const double matmul_params =
      static_cast<double>(w.active_params) - static_cast<double>(w.lm_head_params) - static_cast<double>(m.n_embd);
  double flops = 2.0 * P * std::max(0.0, matmul_params) + 2.0 * static_cast<double>(w.lm_head_params);
  flops += 2.0 * static_cast<double>(m.n_attn_layers() * m.n_head * (m.head_dim_k + m.head_dim_v)) * P * (P + 1) / 2;
  flops += P * static_cast<double>(m.n_recurrent_layers() * m.ssm_time_step_rank) * 2.0 *
           static_cast<double>(3 * m.ssm_state_size * m.ssm_d_v() + kDeltaChunk * (m.ssm_state_size + m.ssm_d_v()));
  double seconds = compute_tflops > 0 ? flops / (kPrefillEfficiency * compute_tflops * 1e12) : 0.0;
  if (bandwidth_gbs && *bandwidth_gbs > 0) {
    const int64_t ub = std::max<int64_t>(1, ubatch);
    double expert_fraction = 1.0;
    if (m.n_expert > 0 && m.n_expert_used > 0)
      expert_fraction = 1.0 - std::pow(1.0 - static_cast<double>(m.n_expert_used) / static_cast<double>(m.n_expert),
                                       static_cast<double>(std::min(ub, tokens)));
    const double touched = static_cast<double>(w.total_bytes - w.expert_bytes - w.mtp_bytes) +
                           static_cast<double>(w.expert_bytes) * expert_fraction;
    const double n_ubatches = std::ceil(P / static_cast<double>(ub));
    seconds = std::max(seconds, n_ubatches * touched / (*bandwidth_gbs * 1e9));
  }
  return seconds;
}

// Speculative decoding with the model's MTP block: the cost model's bandwidth-bound estimate
// (models::speculative_estimate, the one `hylo bench --spec mtp` prints) on the doctor's byte
// counts. A file without MTP tensors is costed with a block the size of an average trunk layer.
TimeReport::Speculative speculative_time(const Inputs& in, const MemoryReport& mem, const TimeReport& t) {
  const WeightStats& w = in.weights;
  const ModelDesc& model = in.model;
  TimeReport::Speculative s;
  s.draft = in.config.spec_draft;
  s.acceptance = in.config.spec_acceptance;
  models::SpecBytes b;
  b.expert_share = model.n_expert > 0 && model.n_expert_used > 0
                       ? static_cast<double>(model.n_expert_used) / static_cast<double>(model.n_expert)
                       : 1.0;
  b.experts = static_cast<double>(w.expert_bytes);
  b.lm_head = static_cast<double>(w.lm_head_bytes);
  b.dense = std::max(0.0, static_cast<double>(w.active_bytes_per_token) - b.experts * b.expert_share - b.lm_head);
  s.model_has_mtp = model.n_mtp_layers > 0 && w.mtp_bytes > 0;
  if (s.model_has_mtp) {
    b.mtp_experts = static_cast<double>(w.mtp_expert_bytes);
    b.mtp_dense = static_cast<double>(w.mtp_bytes - w.mtp_expert_bytes);
  } else if (model.n_layer > 0) {
    const double layers = static_cast<double>(model.n_layer);
    b.mtp_experts = b.experts / layers;
    b.mtp_dense = b.dense / layers;
  }
  s.mtp_bytes_per_draft = static_cast<uint64_t>(b.mtp_dense + b.mtp_experts * b.expert_share + b.lm_head);
  b.kv = static_cast<double>(mem.kv_bytes_per_token) * static_cast<double>(t.decode_ctx);
  b.state = 2.0 * static_cast<double>(mem.recurrent_bytes_per_sequence);
  const models::SpecEstimate e = models::speculative_estimate(b, s.draft, s.acceptance);
  s.tokens_per_step = e.tokens_per_step;
  s.bytes_per_step = e.bytes_step;
  s.bytes_plain = e.bytes_plain;
  s.speedup = e.speedup;
  if (t.decode_tps_bound_at_ctx) s.decode_tps_bound_at_ctx = *t.decode_tps_bound_at_ctx * e.speedup;
  return s;
}

uint64_t total_bytes_at(const Report& r, int64_t ctx, TensorType kv_type, uint64_t weights_bytes) {
  const uint64_t parallel = u64(r.inputs.config.parallel);
  const uint64_t kv = mul(mul(r.inputs.model.kv_bytes_per_token(kv_type), u64(ctx)), parallel);
  return add(add(add(add(add(weights_bytes, kv), r.memory.recurrent_state_bytes), r.memory.compute_bytes),
                 r.memory.reserve_bytes),
             add(r.memory.other_models_bytes, r.memory.prefix_cache_bytes));
}

int64_t largest_fitting_ctx(const Report& r, TensorType kv_type, uint64_t weights_bytes, uint64_t keep_free) {
  const uint64_t fixed = total_bytes_at(r, 0, kv_type, weights_bytes) + keep_free;
  if (fixed >= r.memory.available_bytes) return 0;
  const int64_t cap = r.inputs.model.max_supported_ctx();
  const uint64_t per_ctx = mul(r.inputs.model.kv_bytes_per_token(kv_type), u64(r.inputs.config.parallel));
  if (per_ctx == 0) return cap;
  const uint64_t n = (r.memory.available_bytes - fixed) / per_ctx;
  if (n >= u64(cap)) return cap;
  return static_cast<int64_t>(n) / kCtxStep * kCtxStep;
}

Report analyze(const Inputs& in) {
  Report r;
  r.inputs = in;
  r.ctx = resolved_ctx(in);
  const ModelDesc& model = in.model;
  const Config& cfg = in.config;

  MemoryReport& mem = r.memory;
  mem.weights_bytes = in.weights.total_bytes;
  mem.kv_bytes_per_token = model.kv_bytes_per_token(cfg.kv_type);
  mem.kv_cache_bytes = mul(mul(mem.kv_bytes_per_token, u64(r.ctx)), u64(cfg.parallel));
  mem.recurrent_bytes_per_sequence = model.recurrent_bytes_per_sequence();
  mem.recurrent_state_bytes = mul(mem.recurrent_bytes_per_sequence, u64(cfg.parallel));
  mem.prefix_cache_bytes = cfg.cache_bytes;
  mem.compute = compute_buffers(model, cfg);
  mem.compute_bytes = mem.compute.total();
  mem.os_reserve_bytes = in.machine.total_os_reserve_bytes();
  mem.runtime_reserve_bytes = kRuntimeReserveBytes;
  mem.reserve_bytes = mem.os_reserve_bytes + mem.runtime_reserve_bytes;
  for (const ResidentModel& other : in.residents)
    mem.other_models_bytes = add(mem.other_models_bytes, other.total_bytes());
  mem.total_bytes =
      add(add(add(add(add(mem.weights_bytes, mem.kv_cache_bytes), mem.recurrent_state_bytes), mem.compute_bytes),
              mem.reserve_bytes),
          add(mem.other_models_bytes, mem.prefix_cache_bytes));
  mem.available_bytes = in.machine.total_memory_bytes();
  mem.gpu_working_set_bytes = mem.total_bytes - mem.reserve_bytes;
  if (in.machine.gpu_memory_bytes)
    mem.gpu_limit_bytes = *in.machine.gpu_memory_bytes * static_cast<uint64_t>(in.machine.devices);
  mem.headroom_bytes = mem.total_bytes <= mem.available_bytes
                           ? static_cast<int64_t>(mem.available_bytes - mem.total_bytes)
                           : -static_cast<int64_t>(mem.total_bytes - mem.available_bytes);
  mem.fits = mem.headroom_bytes >= 0;
  mem.largest_ctx_that_fits = largest_fitting_ctx(r, cfg.kv_type, mem.weights_bytes);

  TimeReport& t = r.time;
  const Machine& mc = in.machine;
  const double n_dev = static_cast<double>(std::max(1, mc.devices));
  const bool tensor_split = mc.devices > 1 && mc.split == "tensor";
  t.prefill_tokens = cfg.prompt_tokens ? *cfg.prompt_tokens : r.ctx;
  t.prefill_basis = cfg.prompt_tokens ? "prompt" : "full context";
  t.bandwidth_gbs = in.measured.bandwidth_gbs ? in.measured.bandwidth_gbs : mc.bandwidth_gbs;
  if (cfg.prefill_tps) {
    t.prefill_tps = *cfg.prefill_tps;
    t.prefill_tps_source = "given";
  } else if (in.measured.prefill_tps) {
    t.prefill_tps = *in.measured.prefill_tps;
    t.prefill_tps_source = "measured";
  }
  if (t.prefill_tps > 0) {
    t.prefill_seconds = static_cast<double>(t.prefill_tokens) / t.prefill_tps;
    t.prefill_tps_low = t.prefill_tps_high = t.prefill_tps;
  } else {
    // Tensor split multiplies compute and bandwidth; a layer split runs one device at a time.
    std::optional<double> bw = t.bandwidth_gbs;
    if (bw && tensor_split) *bw *= n_dev;
    const double tflops = mc.compute_tflops.value_or(0) * (tensor_split ? n_dev : 1.0);
    const double base = estimate_prefill_seconds(model, in.weights, tflops, bw, t.prefill_tokens, cfg.ubatch);
    const PrefillCalibration cal = in.calibration.value_or(PrefillCalibration{});
    const double base_tps = base > 0 ? static_cast<double>(t.prefill_tokens) / base : 0;
    t.prefill_tps = base_tps * cal.typical;
    t.prefill_tps_low = base_tps * cal.low;
    t.prefill_tps_high = base_tps * cal.high;
    t.prefill_seconds = t.prefill_tps > 0 ? static_cast<double>(t.prefill_tokens) / t.prefill_tps : 0;
    t.prefill_tps_source = "estimated";
    t.prefill_calibration = cal.basis;
  }
  t.prefill_seconds_fast =
      t.prefill_tps_high > 0 ? static_cast<double>(t.prefill_tokens) / t.prefill_tps_high : t.prefill_seconds;
  t.prefill_seconds_slow =
      t.prefill_tps_low > 0 ? static_cast<double>(t.prefill_tokens) / t.prefill_tps_low : t.prefill_seconds;
  t.ttft_seconds = t.prefill_seconds;
  t.active_bytes_per_token = in.weights.active_bytes_per_token;
  t.decode_ctx = cfg.prompt_tokens ? std::min(*cfg.prompt_tokens, r.ctx) : r.ctx;
  if (t.bandwidth_gbs && *t.bandwidth_gbs > 0 && t.active_bytes_per_token > 0) {
    const double bw = *t.bandwidth_gbs * 1e9 * (tensor_split ? n_dev : 1.0);
    // Between devices each token moves activations: a layer split hands one n_embd row (f32) to
    // the next device; a tensor split all-reduces twice per layer (ring: 2(N−1)/N of a bf16 row).
    double link_seconds = 0;
    if (mc.devices > 1 && mc.link_bandwidth_gbs && *mc.link_bandwidth_gbs > 0) {
      const double row = static_cast<double>(model.n_embd);
      const double bytes = tensor_split ? 2.0 * static_cast<double>(model.n_layer) * 2.0 * (n_dev - 1) / n_dev * row * 2
                                        : (n_dev - 1) * row * 4;
      link_seconds = bytes / (*mc.link_bandwidth_gbs * 1e9);
    }
    t.decode_tps_bound = 1.0 / (static_cast<double>(t.active_bytes_per_token) / bw + link_seconds);
    // Each token also reads the KV cache of its context and reads and writes the recurrent state.
    const double per_token = static_cast<double>(t.active_bytes_per_token) +
                             static_cast<double>(mem.kv_bytes_per_token) * static_cast<double>(t.decode_ctx) +
                             2.0 * static_cast<double>(mem.recurrent_bytes_per_sequence);
    t.decode_tps_bound_at_ctx = 1.0 / (per_token / bw + link_seconds);
  }
  if (cfg.spec_draft > 0) t.speculative = speculative_time(in, mem, t);

  r.findings = diagnose(r);
  r.verdict = verdict_of(r);
  return r;
}

CompareRow compare_row(const Inputs& inputs, const Machine& machine) {
  Inputs in = inputs;
  const bool same_machine = machine.name == inputs.machine.name && machine.display_name == inputs.machine.display_name;
  in.machine = machine;
  if (!same_machine) {
    in.measured = {};
    in.config.prefill_tps.reset();  // a speed measured elsewhere says nothing about this machine
  }
  in.calibration = prefill_calibration_for(machine);
  const Report r = analyze(in);
  CompareRow row;
  row.hardware = machine.name;
  row.display_name = machine.display_name;
  row.kind = machine.kind;
  row.devices = machine.devices;
  row.available_bytes = r.memory.available_bytes;
  row.total_bytes = r.memory.total_bytes;
  row.headroom_bytes = r.memory.headroom_bytes;
  row.fits = r.memory.fits;
  row.largest_ctx_that_fits = r.memory.largest_ctx_that_fits;
  row.bandwidth_gbs = machine.bandwidth_gbs.value_or(0);
  row.decode_tps_bound = r.time.decode_tps_bound;
  row.decode_tps_bound_at_ctx = r.time.decode_tps_bound_at_ctx;
  row.decode_ctx = r.time.decode_ctx;
  row.prefill_tps = r.time.prefill_tps;
  row.prefill_seconds = r.time.prefill_seconds;
  row.prefill_seconds_fast = r.time.prefill_seconds_fast;
  row.prefill_seconds_slow = r.time.prefill_seconds_slow;
  if (in.config.timeout_seconds) row.within_timeout = r.time.prefill_seconds_fast <= *in.config.timeout_seconds;
  row.gpu_limit_bytes = r.memory.gpu_limit_bytes;
  row.gpu_working_set_bytes = r.memory.gpu_working_set_bytes;
  row.problems = r.verdict.problems;
  row.verdict = r.verdict.headline;
  return row;
}

std::vector<CompareRow> compare_hardware(const Inputs& inputs, const std::vector<HardwareProfile>& hardware) {
  std::vector<CompareRow> rows;
  for (const HardwareProfile& h : hardware) rows.push_back(compare_row(inputs, machine_from_profile(h)));
  return rows;
}

}  // namespace hylo::doctor
