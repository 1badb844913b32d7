// The findings of `hylo doctor`: each names what will go wrong and the concrete change that
// avoids it, spelled for where the setting came from (a flag, a Modelfile line, a server flag).
#include <algorithm>
#include <cmath>

#include "base/strings.h"
#include "doctor/analysis.h"
#include "doctor/units.h"

namespace hylo::doctor {
namespace {

constexpr double kTimeoutMargin = 1.25;       // suggested timeout = 1.25 × expected time ...
constexpr double kTimeoutRounding = 60.0;     // ... rounded up to whole minutes
constexpr double kNearTimeoutFraction = 0.8;  // prefill above 80% of the timeout is fragile
constexpr double kLowDecodeTps = 5.0;         // below this, interactive use is painful
constexpr uint64_t kMinHeadroom = uint64_t{2} << 30;
constexpr double kMinHeadroomFraction = 0.05;  // of the machine's memory
constexpr int64_t kUsefulCtx = 8192;           // smallest context worth suggesting

int64_t round_up(int64_t v, int64_t step) { return (v + step - 1) / step * step; }

// The setting that changes the context, in the syntax of wherever the context was set.
std::string ctx_fix(const Config& c, int64_t ctx) {
  switch (c.ctx_origin) {
    case Origin::kModelfile:
      return fmt::format("PARAMETER num_ctx {}", ctx);
    case Origin::kOllama:
      return fmt::format("PARAMETER num_ctx {} in the model's Modelfile (or OLLAMA_CONTEXT_LENGTH={} for the server)",
                         ctx, ctx);
    case Origin::kLlamaServer:
      if (c.parallel > 1)
        return fmt::format("--ctx-size {} (llama-server splits it over its {} slots: {} each)", ctx * c.parallel,
                           c.parallel, ctx);
      return fmt::format("--ctx-size {}", ctx);
    case Origin::kFlag:
    case Origin::kDefault:
      break;
  }
  return fmt::format("--ctx {}", ctx);
}

// How to run past the trained context with YaRN: the model card's recipe when it reaches, else
// the smallest whole factor over the trained (or original) context.
std::string yarn_fix(const Report& r, int64_t needed) {
  const ModelDesc& m = r.inputs.model;
  const std::optional<RopeScaling>& recipe = r.inputs.yarn_recipe;
  int64_t orig = m.rope_scaling.original_ctx > 0 ? m.rope_scaling.original_ctx : m.n_ctx_train;
  if (recipe && recipe->original_ctx > 0) orig = recipe->original_ctx;
  double factor = std::ceil(static_cast<double>(needed) / static_cast<double>(orig));
  if (recipe && recipe->factor * static_cast<double>(orig) >= static_cast<double>(needed)) factor = recipe->factor;
  factor = std::max(factor, 2.0);
  return fmt::format(
      "enable YaRN rope scaling: --rope-scaling yarn --rope-scale {:g} --yarn-orig-ctx {} (llama.cpp flags; in a GGUF: "
      "{}.rope.scaling.type=yarn, {}.rope.scaling.factor={:g}, {}.rope.scaling.original_context_length={})",
      factor, orig, m.arch, m.arch, factor, m.arch, orig);
}

class Diagnosis {
 public:
  explicit Diagnosis(const Report& r) : r_(r), m_(r.inputs.model), c_(r.inputs.config), mem_(r.memory) {}

  std::vector<Finding> run() {
    memory();
    context();
    time();
    for (const std::string& note : m_.notes) add("model-assumption", Severity::kInfo, note, "");
    std::stable_sort(out_.begin(), out_.end(), [](const Finding& a, const Finding& b) {
      return static_cast<int>(a.severity) > static_cast<int>(b.severity);
    });
    return std::move(out_);
  }

 private:
  void add(std::string id, Severity s, std::string message, std::string fix) {
    out_.push_back({std::move(id), s, std::move(message), std::move(fix)});
  }

  bool fits_at(int64_t ctx) const {
    return total_bytes_at(r_, ctx, c_.kv_type, mem_.weights_bytes) <= mem_.available_bytes;
  }

  // "--kv-type q8_0 ..." when a smaller cache type rescues the configuration.
  std::string kv_q8_option() const {
    if (c_.kv_type != TensorType::kF16 && c_.kv_type != TensorType::kBF16 && c_.kv_type != TensorType::kF32) return "";
    if (mem_.kv_bytes_per_token == 0) return "";
    const uint64_t at_ctx = total_bytes_at(r_, r_.ctx, TensorType::kQ8_0, mem_.weights_bytes);
    if (at_ctx <= mem_.available_bytes)
      return fmt::format("--kv-type q8_0 (KV cache {} instead of {}) fits at {} tokens",
                         format_bytes(r_.inputs.model.kv_bytes_per_token(TensorType::kQ8_0) *
                                      static_cast<uint64_t>(r_.ctx) * static_cast<uint64_t>(c_.parallel)),
                         format_bytes(mem_.kv_cache_bytes), tokens_str(r_.ctx));
    const int64_t q8 = largest_fitting_ctx(r_, TensorType::kQ8_0, mem_.weights_bytes);
    if (q8 > mem_.largest_ctx_that_fits) return fmt::format("--kv-type q8_0 with {}", ctx_fix(c_, q8));
    return "";
  }

  // The best-quality quantisation smaller than the current one that fits at the configured
  // context; failing that, the best one that fits with a useful context (its largest).
  std::string smaller_quant_option() const {
    std::vector<QuantOption> opts;
    for (const QuantOption& q : r_.inputs.quant_options)
      if (q.weights_bytes < mem_.weights_bytes) opts.push_back(q);
    std::sort(opts.begin(), opts.end(),
              [](const QuantOption& a, const QuantOption& b) { return a.weights_bytes > b.weights_bytes; });
    for (const QuantOption& q : opts) {
      const uint64_t total = total_bytes_at(r_, r_.ctx, c_.kv_type, q.weights_bytes);
      if (total <= mem_.available_bytes)
        return fmt::format("use {} weights ({}; total {}, {} free) at {} tokens", q.name, format_bytes(q.weights_bytes),
                           format_bytes(total), format_bytes(mem_.available_bytes - total), tokens_str(r_.ctx));
    }
    for (const QuantOption& q : opts) {
      const int64_t ctx = largest_fitting_ctx(r_, c_.kv_type, q.weights_bytes);
      if (ctx >= std::min(r_.ctx, kUsefulCtx))
        return fmt::format("use {} weights ({}) with {}", q.name, format_bytes(q.weights_bytes), ctx_fix(c_, ctx));
    }
    return "";
  }

  void memory() {
    const std::string machine = r_.inputs.machine.display_name;
    if (!mem_.fits) {
      std::vector<std::string> fixes;
      if (mem_.largest_ctx_that_fits > 0)
        fixes.push_back(fmt::format("{} (the largest context that fits)", ctx_fix(c_, mem_.largest_ctx_that_fits)));
      if (std::string kv = kv_q8_option(); !kv.empty()) fixes.push_back(kv);
      if (std::string q = smaller_quant_option(); !q.empty()) fixes.push_back(q);
      if (c_.parallel > 1) fixes.push_back(fmt::format("fewer parallel sequences than {}", c_.parallel));
      if (mem_.prefix_cache_bytes > 0)
        fixes.push_back(fmt::format("a smaller --cache-ram than {}", format_bytes(mem_.prefix_cache_bytes)));
      if (fixes.empty())
        fixes.push_back(
            fmt::format("a machine with more memory: the weights ({}) and reserve ({}) alone leave no room "
                        "(compare with hylo doctor --compare-hardware)",
                        format_bytes(mem_.weights_bytes), format_bytes(mem_.reserve_bytes)));
      std::string fix;
      for (const std::string& f : fixes) fix += (fix.empty() ? "" : "; or ") + f;
      add("does-not-fit", Severity::kError,
          fmt::format("needs {} but {} has {}: weights {} + KV cache {} ({} tokens × {} sequence(s)) + recurrent state "
                      "{} + compute {} + reserve {}; {} short",
                      format_bytes(mem_.total_bytes), machine, format_bytes(mem_.available_bytes),
                      format_bytes(mem_.weights_bytes), format_bytes(mem_.kv_cache_bytes), tokens_str(r_.ctx),
                      c_.parallel, format_bytes(mem_.recurrent_state_bytes), format_bytes(mem_.compute_bytes),
                      format_bytes(mem_.reserve_bytes), format_bytes(static_cast<uint64_t>(-mem_.headroom_bytes))),
          fix);
      return;
    }
    const uint64_t want_free =
        std::max(kMinHeadroom, static_cast<uint64_t>(kMinHeadroomFraction * static_cast<double>(mem_.available_bytes)));
    if (static_cast<uint64_t>(mem_.headroom_bytes) < want_free) {
      const int64_t safer = largest_fitting_ctx(r_, c_.kv_type, mem_.weights_bytes, want_free);
      std::string fix = "close other memory-hungry programs";
      if (safer > 0 && safer < r_.ctx)
        fix += fmt::format(", or {} to keep {} free", ctx_fix(c_, safer), format_bytes(want_free));
      add("low-headroom", Severity::kWarning,
          fmt::format("fits with only {} to spare on {} ({} of {}): a browser, a second model or a longer context "
                      "pushes the system into swapping",
                      format_bytes(static_cast<uint64_t>(mem_.headroom_bytes)), machine, format_bytes(mem_.total_bytes),
                      format_bytes(mem_.available_bytes)),
          fix);
    }
  }

  void context() {
    const int64_t trained = m_.n_ctx_train, supported = m_.max_supported_ctx();
    const std::string source = c_.ctx_source.empty() ? "default" : c_.ctx_source;
    if (r_.ctx < trained) {
      std::string fix;
      Severity s = Severity::kWarning;
      if (fits_at(trained)) {
        fix = fmt::format("{} (the trained context; it fits: total {})", ctx_fix(c_, trained),
                          format_bytes(total_bytes_at(r_, trained, c_.kv_type, mem_.weights_bytes)));
      } else if (mem_.largest_ctx_that_fits > r_.ctx) {
        fix = fmt::format("{} (the largest that fits; the trained {} would need {})",
                          ctx_fix(c_, mem_.largest_ctx_that_fits), tokens_str(trained),
                          format_bytes(total_bytes_at(r_, trained, c_.kv_type, mem_.weights_bytes)));
      } else {
        s = Severity::kInfo;
        fix = fmt::format("none needed unless longer prompts come: the trained {} would need {}", tokens_str(trained),
                          format_bytes(total_bytes_at(r_, trained, c_.kv_type, mem_.weights_bytes)));
      }
      add("ctx-below-trained", s,
          fmt::format("context capped at {} tokens ({}) while {} was trained for {}: longer requests fail or are "
                      "truncated",
                      tokens_str(r_.ctx), source, m_.name, tokens_str(trained)),
          fix);
    }
    if (r_.ctx > supported) {
      const bool has_yarn = supported > trained;
      add("ctx-above-trained", Severity::kWarning,
          has_yarn ? fmt::format("context {} ({}) exceeds the {} tokens the file's YaRN scaling (factor {:g}) reaches",
                                 tokens_str(r_.ctx), source, tokens_str(supported), m_.rope_scaling.factor)
                   : fmt::format("context {} ({}) exceeds the trained {} and the model enables no rope scaling: "
                                 "positions past {} are untrained and output degrades there",
                                 tokens_str(r_.ctx), source, tokens_str(trained), tokens_str(trained)),
          fmt::format("{}; or {}", yarn_fix(r_, r_.ctx), ctx_fix(c_, supported)));
    }
    if (!c_.prompt_tokens) return;
    const int64_t prompt = *c_.prompt_tokens;
    const int64_t answer = c_.num_predict.value_or(0);
    const int64_t needed = round_up(prompt + answer, kCtxStep);
    if (prompt > r_.ctx) {
      std::string fix;
      if (needed <= supported && needed <= trained && fits_at(trained)) {
        fix = ctx_fix(c_, trained);
      } else if (needed <= supported && fits_at(needed)) {
        fix = ctx_fix(c_, needed);
      } else if (needed <= supported) {
        fix = fmt::format("{} tokens need {} (more than {}): shorten the prompt to at most {} tokens",
                          tokens_str(needed), format_bytes(total_bytes_at(r_, needed, c_.kv_type, mem_.weights_bytes)),
                          format_bytes(mem_.available_bytes),
                          tokens_str(std::max<int64_t>(0, mem_.largest_ctx_that_fits - answer)));
        if (std::string kv = kv_q8_option(); !kv.empty()) fix += "; or " + kv;
      } else {
        fix = fmt::format("shorten the prompt to at most {} tokens (see prompt-exceeds-trained)",
                          tokens_str(supported - answer));
      }
      add("prompt-exceeds-ctx", Severity::kError,
          fmt::format("a {}-token prompt does not fit the {}-token context ({}): the request fails or the start of the "
                      "prompt is dropped",
                      tokens_str(prompt), tokens_str(r_.ctx), source),
          fix);
    } else if (prompt + answer > r_.ctx) {
      add("answer-exceeds-ctx", Severity::kWarning,
          fmt::format("a {}-token prompt plus a {}-token answer exceeds the {}-token context: the answer is cut short",
                      tokens_str(prompt), tokens_str(answer), tokens_str(r_.ctx)),
          needed <= supported ? ctx_fix(c_, needed) : std::string("a shorter prompt or a smaller num_predict"));
    }
    if (prompt > supported) {
      add("prompt-exceeds-trained", Severity::kError,
          fmt::format("a {}-token prompt is longer than the {} tokens {} supports{}", tokens_str(prompt),
                      tokens_str(supported), m_.name,
                      supported > trained ? " with its YaRN scaling" : " (its trained context)"),
          fmt::format("shorten the prompt below {} tokens; or {} with {}", tokens_str(supported - answer),
                      yarn_fix(r_, needed), ctx_fix(c_, needed)));
    }
  }

  void time() {
    const TimeReport& t = r_.time;
    const bool from_prompt = t.prefill_basis == "prompt";
    const std::string what = from_prompt
                                 ? fmt::format("a {}-token prompt", tokens_str(t.prefill_tokens))
                                 : fmt::format("filling the whole {}-token context", tokens_str(t.prefill_tokens));
    const std::string speed = fmt::format("{} tok/s ({})", rate_str(t.prefill_tps), t.prefill_tps_source);
    if (c_.timeout_seconds && t.prefill_seconds > 0) {
      const double timeout = *c_.timeout_seconds;
      double expected = t.prefill_seconds;
      if (c_.num_predict && t.decode_tps_bound_at_ctx)
        expected += static_cast<double>(*c_.num_predict) / *t.decode_tps_bound_at_ctx;
      const double suggest = std::ceil(expected * kTimeoutMargin / kTimeoutRounding) * kTimeoutRounding;
      const int64_t max_prompt = static_cast<int64_t>(timeout / kTimeoutMargin * t.prefill_tps);
      const std::string fix = fmt::format(
          "set the client timeout to at least {:.0f} s (e.g. timeout={:.0f} in the OpenAI client; re-check with "
          "--timeout {:.0f}); or keep prompts under {} tokens",
          suggest, suggest, suggest, tokens_str(max_prompt));
      if (t.prefill_seconds > timeout) {
        add("prefill-exceeds-timeout", from_prompt ? Severity::kError : Severity::kWarning,
            fmt::format("{} takes {} to prefill at {}, longer than the {} client timeout: the client gives up before "
                        "the first token arrives",
                        what, seconds_str(t.prefill_seconds), speed, seconds_str(timeout)),
            fix);
      } else if (t.prefill_seconds > kNearTimeoutFraction * timeout) {
        add("prefill-near-timeout", Severity::kWarning,
            fmt::format("{} takes {} to prefill at {}, close to the {} client timeout", what,
                        seconds_str(t.prefill_seconds), speed, seconds_str(timeout)),
            fix);
      }
    }
    if (from_prompt) {
      add("time-to-first-token", Severity::kInfo,
          fmt::format("time to first token ≈ {} ({} tokens at {})", seconds_str(t.ttft_seconds),
                      tokens_str(t.prefill_tokens), speed),
          t.prefill_tps_source == "estimated"
              ? "the prefill speed is an estimate from the compute peak; measure it (hylo bench) and pass --prefill-tps"
              : "");
    }
    if (!t.decode_tps_bound) {
      add("bandwidth-unknown", Severity::kInfo, "memory bandwidth unknown, so no decode-speed bound",
          "--detect to measure this machine's bandwidth, or --hardware NAME for a known machine");
      return;
    }
    if (*t.decode_tps_bound < kLowDecodeTps) {
      std::string fix = "a machine with faster memory (hylo doctor --compare-hardware)";
      for (const QuantOption& q : r_.inputs.quant_options) {
        if (q.active_bytes_per_token == 0 || q.active_bytes_per_token >= t.active_bytes_per_token) continue;
        const double faster = *t.bandwidth_gbs * 1e9 / static_cast<double>(q.active_bytes_per_token);
        fix = fmt::format("{} weights read {} per token (≤ {} tok/s); or {}", q.name,
                          format_bytes(q.active_bytes_per_token), rate_str(faster), fix);
        break;  // options are smallest first: the fastest one
      }
      add("decode-bound-low", Severity::kWarning,
          fmt::format("decode cannot exceed {} tok/s here: {:.1f} GB/s ÷ {} of active weights per token",
                      rate_str(*t.decode_tps_bound), *t.bandwidth_gbs, format_bytes(t.active_bytes_per_token)),
          fix);
    }
  }

  const Report& r_;
  const ModelDesc& m_;
  const Config& c_;
  const MemoryReport& mem_;
  std::vector<Finding> out_;
};

}  // namespace

std::vector<Finding> diagnose(const Report& report) { return Diagnosis(report).run(); }

}  // namespace hylo::doctor
