// The doctor's arithmetic: memory (weights, KV cache, recurrent state, compute buffers, reserve)
// against the machine, context limits, prefill and decode time, and findings with concrete fixes.
// Pure functions of their inputs, so the same analysis serves the CLI, `hylo bench` (which can pass
// measured bandwidth and prefill speed) and `--compare-hardware`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "doctor/config.h"
#include "doctor/fixes.h"
#include "doctor/machine.h"
#include "doctor/model.h"

namespace hylo::doctor {

// The model's weights at another quantisation, for "a smaller quantisation would fit" advice.
struct QuantOption {
  std::string name;  // "Q3_K_M"
  uint64_t weights_bytes = 0;
  uint64_t active_bytes_per_token = 0;
};

// Values measured by the engine on this machine; each overrides the profile or estimate.
struct Measurements {
  std::optional<double> bandwidth_gbs;
  std::optional<double> prefill_tps;
};

// Another model loaded at the same time (Ollama keeps several; `-m a.gguf -m b.gguf`): what it holds.
struct ResidentModel {
  std::string name, source;
  int64_t ctx = 0;
  uint64_t weights_bytes = 0, kv_cache_bytes = 0, recurrent_state_bytes = 0, compute_bytes = 0;
  uint64_t total_bytes() const { return weights_bytes + kv_cache_bytes + recurrent_state_bytes + compute_bytes; }
};

// How far published measurements put real prefill speeds from the roofline estimate on machines
// of one family (data/doctor/prefill.json): the estimate is multiplied by `typical`, and the range
// spans [low, high].
struct PrefillCalibration {
  double low = 1.0, typical = 1.0, high = 1.0;
  int points = 0;     // measurements behind it (0: uncalibrated family, a wide default range)
  std::string basis;  // "4 published measurements on apple machines"
};

struct Inputs {
  ModelDesc model;
  std::string model_source;  // "profile qwen3-coder-30b-a3b (Q4_K_M)", "file model.gguf", ...
  WeightStats weights;
  std::vector<QuantOption> quant_options;  // may be empty (unknown architecture)
  std::optional<RopeScaling> yarn_recipe;  // the model card's recipe, when a profile knows it
  Config config;
  Machine machine;
  Measurements measured;
  std::vector<ResidentModel> residents;  // other models loaded beside this one
  std::optional<PrefillCalibration> calibration;
};

enum class Severity { kInfo, kWarning, kError };
const char* severity_name(Severity s);

struct Finding {
  std::string id;  // stable, kebab case: "ctx-below-trained", "prefill-exceeds-timeout", ...
  Severity severity = Severity::kInfo;
  std::string message;
  std::string fix;         // one line: what to change (a flag, a Modelfile line, a timeout, a context, a quantisation)
  std::string title;       // a few words for the verdict: "context capped at 131,072"
  bool hardware = false;   // no configuration avoids it: the machine is the problem
  std::vector<Fix> fixes;  // the same, spelled out to paste (Modelfile, commands, client settings)
};

// One or two lines before everything else: what is wrong and whether the hardware is to blame.
struct Verdict {
  std::string headline;  // "The hardware is fine: 3 configuration problems, all fixable — see below."
  std::string detail;    // the problems in a few words each
  bool hardware_problem = false;
  int problems = 0;  // errors and warnings
};

// Compute buffers (activations of one micro-batch, logits, attention and DeltaNet scratch),
// documented in analysis.cpp next to the formula.
struct ComputeBreakdown {
  uint64_t activations = 0, logits = 0, attention = 0, deltanet = 0;
  uint64_t total() const { return activations + logits + attention + deltanet; }
};

struct MemoryReport {
  uint64_t weights_bytes = 0;
  uint64_t kv_bytes_per_token = 0;
  uint64_t kv_cache_bytes = 0;  // per token × ctx × parallel
  uint64_t recurrent_bytes_per_sequence = 0;
  uint64_t recurrent_state_bytes = 0;  // per sequence × parallel
  uint64_t prefix_cache_bytes = 0;     // hylo's prefix cache budget (--cache-ram)
  ComputeBreakdown compute;
  uint64_t compute_bytes = 0;
  uint64_t os_reserve_bytes = 0;
  uint64_t runtime_reserve_bytes = 0;
  uint64_t reserve_bytes = 0;       // OS + runtime
  uint64_t other_models_bytes = 0;  // residents: other models loaded at the same time
  uint64_t total_bytes = 0;
  // What a GPU has to hold (everything but the OS and runtime reserve) against what it may use,
  // when the machine limits it (Apple's wired limit, --gpu-memory).
  uint64_t gpu_working_set_bytes = 0;
  std::optional<uint64_t> gpu_limit_bytes;
  uint64_t available_bytes = 0;  // the machine's memory
  int64_t headroom_bytes = 0;    // available − total (negative: does not fit)
  bool fits = false;
  int64_t largest_ctx_that_fits = 0;  // per sequence, capped at the model's supported context; 0: none
};

struct TimeReport {
  int64_t prefill_tokens = 0;
  std::string prefill_basis;  // "prompt" or "full context"
  double prefill_tps = 0;
  std::string prefill_tps_source;  // "given", "measured", "estimated"
  double prefill_seconds = 0;
  // The range published measurements allow (estimated speeds only; else equal to the point):
  // fast = the highest speed, so the shortest time.
  double prefill_tps_low = 0, prefill_tps_high = 0;
  double prefill_seconds_fast = 0, prefill_seconds_slow = 0;
  std::string prefill_calibration;  // how the range was found
  double ttft_seconds = 0;          // time to first token ≈ prefill time
  uint64_t active_bytes_per_token = 0;
  std::optional<double> bandwidth_gbs;
  std::optional<double> decode_tps_bound;         // bandwidth ÷ active weight bytes per token
  std::optional<double> decode_tps_bound_at_ctx;  // also reading the KV cache and recurrent state
  int64_t decode_ctx = 0;                         // the context that bound assumes
  // --spec mtp: the cost model's estimate (models/cost.h) for this model at decode_ctx.
  struct Speculative {
    int draft = 0;
    double acceptance = 0;
    bool model_has_mtp = false;  // false: estimated with an MTP block the size of one trunk layer
    uint64_t mtp_bytes_per_draft = 0;
    double tokens_per_step = 1, bytes_per_step = 0, bytes_plain = 0, speedup = 1;
    std::optional<double> decode_tps_bound_at_ctx;  // the plain bound × speedup
  };
  std::optional<Speculative> speculative;
};

struct Report {
  Inputs inputs;
  int64_t ctx = 0;  // resolved (0 in the config means the trained context)
  MemoryReport memory;
  TimeReport time;
  std::vector<Finding> findings;  // errors first, then warnings, then information
  Verdict verdict;
};

Report analyze(const Inputs& inputs);
// The findings for a report whose memory and time are filled in (analyze() calls it).
std::vector<Finding> diagnose(const Report& report);
Verdict verdict_of(const Report& report);

// What-if arithmetic on a report: total memory at another context, KV type or weight size, and
// the largest context (per sequence, a multiple of kCtxStep, capped at the model's supported
// context) that fits the machine, 0 if none does. `keep_free` is subtracted from the memory.
uint64_t total_bytes_at(const Report& report, int64_t ctx, TensorType kv_type, uint64_t weights_bytes);
int64_t largest_fitting_ctx(const Report& report, TensorType kv_type, uint64_t weights_bytes, uint64_t keep_free = 0);

// Model constants, exposed for tests and for `hylo bench`.
// The hylo process beyond weights, caches and compute buffers: code, tokenizer tables, the HTTP
// server, thread stacks and allocator slack. The OS share comes from the machine (profile or
// detection).
inline constexpr uint64_t kRuntimeReserveBytes = uint64_t{512} << 20;
inline constexpr double kPrefillEfficiency = 0.35;  // fraction of peak FLOP/s prefill sustains
inline constexpr int64_t kCtxStep = 1024;           // suggested contexts are multiples of this

ComputeBreakdown compute_buffers(const ModelDesc& model, const Config& config);
// Prefill seconds for `tokens` prompt tokens from the compute model (see analysis.cpp).
double estimate_prefill_seconds(const ModelDesc& model, const WeightStats& weights, double compute_tflops,
                                std::optional<double> bandwidth_gbs, int64_t tokens, int64_t ubatch);

// One row of `--compare-hardware`.
struct CompareRow {
  std::string hardware, display_name, kind;
  uint64_t available_bytes = 0, total_bytes = 0;
  int64_t headroom_bytes = 0;
  bool fits = false;
  int64_t largest_ctx_that_fits = 0;
  double bandwidth_gbs = 0;
  std::optional<double> decode_tps_bound;         // weights only
  std::optional<double> decode_tps_bound_at_ctx;  // at the same context as the single-machine view
  int64_t decode_ctx = 0;
  double prefill_tps = 0;  // estimated, at the prompt (or full-context) length
  double prefill_seconds = 0;
  double prefill_seconds_fast = 0, prefill_seconds_slow = 0;
  std::optional<bool> within_timeout;  // the fast end of prefill against the client timeout
  std::optional<uint64_t> gpu_limit_bytes;
  uint64_t gpu_working_set_bytes = 0;
  int devices = 1;
  int problems = 0;  // errors and warnings the full analysis finds on this machine
  std::string verdict;
};
// The given inputs on every machine: the same context, prompt size, timeout and models as the
// single-machine view; only the machine (and its prefill calibration) changes. `own`, when given,
// is the user's machine and comes first.
std::vector<CompareRow> compare_hardware(const Inputs& inputs, const std::vector<HardwareProfile>& hardware);
CompareRow compare_row(const Inputs& inputs, const Machine& machine);

// The calibration of prefill estimates for a machine's family (data/doctor/prefill.json).
PrefillCalibration prefill_calibration_for(const Machine& machine);

}  // namespace hylo::doctor
