// The findings of `hylo doctor`: each names what will go wrong and the concrete change that
// avoids it, spelled for where the setting came from (a flag, a Modelfile line, a server flag).
#include <algorithm>
#include <cmath>

#include "base/strings.h"
#include "doctor/analysis.h"
#include "doctor/fixes.h"
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
// What a raised Apple GPU limit must leave to macOS and other programs.
constexpr uint64_t kAppleKeepFree = uint64_t{8} << 30;

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
  return fmt::format("{} {} (hylo serve)", hylo_flags::kCtx, ctx);
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
      "enable YaRN rope scaling: {} yarn {} {:g} {} {} (hylo serve and llama-server; in a GGUF: "
      "{}.rope.scaling.type=yarn, {}.rope.scaling.factor={:g}, {}.rope.scaling.original_context_length={})",
      hylo_flags::kRopeScaling, hylo_flags::kRopeScale, factor, hylo_flags::kYarnOrigCtx, orig, m.arch, m.arch, factor,
      m.arch, orig);
}

Change to_ctx(int64_t ctx) {
  Change c;
  c.ctx = ctx;
  return c;
}

// The YaRN change yarn_fix() describes, for change_fixes().
Change yarn_change(const Report& r, int64_t needed) {
  const ModelDesc& m = r.inputs.model;
  const std::optional<RopeScaling>& recipe = r.inputs.yarn_recipe;
  int64_t orig = m.rope_scaling.original_ctx > 0 ? m.rope_scaling.original_ctx : m.n_ctx_train;
  if (recipe && recipe->original_ctx > 0) orig = recipe->original_ctx;
  double factor = std::ceil(static_cast<double>(needed) / static_cast<double>(orig));
  if (recipe && recipe->factor * static_cast<double>(orig) >= static_cast<double>(needed)) factor = recipe->factor;
  Change ch;
  ch.ctx = needed;
  ch.yarn_factor = std::max(factor, 2.0);
  ch.yarn_orig_ctx = orig;
  return ch;
}

std::string kv_flags(TensorType t) {
  std::string name(tensor_type_name(t));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return fmt::format("{} {} {} {} for hylo serve and llama-server, OLLAMA_KV_CACHE_TYPE={} for Ollama",
                     hylo_flags::kCacheTypeK, name, hylo_flags::kCacheTypeV, name, name);
}

class Diagnosis {
 public:
  explicit Diagnosis(const Report& r) : r_(r), m_(r.inputs.model), c_(r.inputs.config), mem_(r.memory) {}

  std::vector<Finding> run() {
    memory();
    context();
    names();
    time();
    for (const std::string& note : m_.notes) add("model-assumption", Severity::kInfo, note, "");
    std::stable_sort(out_.begin(), out_.end(), [](const Finding& a, const Finding& b) {
      return static_cast<int>(a.severity) > static_cast<int>(b.severity);
    });
    return std::move(out_);
  }

 private:
  Finding& add(std::string id, Severity s, std::string message, std::string fix) {
    Finding f;
    f.id = std::move(id);
    f.severity = s;
    f.message = std::move(message);
    f.fix = std::move(fix);
    out_.push_back(std::move(f));
    return out_.back();
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
      return fmt::format("KV cache in q8_0 ({}): {} instead of {}, fits at {} tokens", kv_flags(TensorType::kQ8_0),
                         format_bytes(r_.inputs.model.kv_bytes_per_token(TensorType::kQ8_0) *
                                      static_cast<uint64_t>(r_.ctx) * static_cast<uint64_t>(c_.parallel)),
                         format_bytes(mem_.kv_cache_bytes), tokens_str(r_.ctx));
    const int64_t q8 = largest_fitting_ctx(r_, TensorType::kQ8_0, mem_.weights_bytes);
    if (q8 > mem_.largest_ctx_that_fits)
      return fmt::format("KV cache in q8_0 ({}) with {}", kv_flags(TensorType::kQ8_0), ctx_fix(c_, q8));
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

  std::string others() const {
    if (mem_.other_models_bytes == 0) return "";
    std::string names;
    for (const ResidentModel& m : r_.inputs.residents) names += (names.empty() ? "" : ", ") + m.name;
    return fmt::format(" + other models {} ({})", format_bytes(mem_.other_models_bytes), names);
  }

  void memory() {
    const std::string machine = r_.inputs.machine.display_name;
    if (!mem_.fits) {
      std::vector<std::string> fixes;
      std::vector<Fix> pasteable;
      const int64_t wanted = std::min(c_.prompt_tokens.value_or(r_.ctx), std::max<int64_t>(kUsefulCtx, 1));
      if (mem_.largest_ctx_that_fits > 0) {
        fixes.push_back(fmt::format("{} (the largest context that fits)", ctx_fix(c_, mem_.largest_ctx_that_fits)));
        pasteable = change_fixes(r_, to_ctx(mem_.largest_ctx_that_fits));
      }
      if (std::string kv = kv_q8_option(); !kv.empty()) {
        fixes.push_back(kv);
        const int64_t q8 = fits_at_kv(r_.ctx, TensorType::kQ8_0)
                               ? r_.ctx
                               : largest_fitting_ctx(r_, TensorType::kQ8_0, mem_.weights_bytes);
        Change q8_change;
        if (q8 != r_.ctx) q8_change.ctx = q8;
        q8_change.kv_type = TensorType::kQ8_0;
        for (Fix& f : change_fixes(r_, q8_change)) pasteable.push_back(std::move(f));
      }
      if (std::string q = smaller_quant_option(); !q.empty()) fixes.push_back(q);
      if (c_.parallel > 1) fixes.push_back(fmt::format("fewer parallel sequences than {}", c_.parallel));
      if (mem_.prefix_cache_bytes > 0)
        fixes.push_back(fmt::format("a smaller --cache-ram than {}", format_bytes(mem_.prefix_cache_bytes)));
      const bool hardware = fixes.empty() || mem_.largest_ctx_that_fits < wanted;
      if (fixes.empty())
        fixes.push_back(
            fmt::format("a machine with more memory: the weights ({}) and reserve ({}) alone leave no room "
                        "(compare with hylo doctor --compare-hardware)",
                        format_bytes(mem_.weights_bytes), format_bytes(mem_.reserve_bytes)));
      std::string fix;
      for (const std::string& f : fixes) fix += (fix.empty() ? "" : "; or ") + f;
      Finding& f = add(
          "does-not-fit", Severity::kError,
          fmt::format("needs {} but {} has {}: weights {} + KV cache {} ({} tokens × {} sequence(s)) + recurrent state "
                      "{} + compute {} + reserve {}{}; {} short",
                      format_bytes(mem_.total_bytes), machine, format_bytes(mem_.available_bytes),
                      format_bytes(mem_.weights_bytes), format_bytes(mem_.kv_cache_bytes), tokens_str(r_.ctx),
                      c_.parallel, format_bytes(mem_.recurrent_state_bytes), format_bytes(mem_.compute_bytes),
                      format_bytes(mem_.reserve_bytes), others(),
                      format_bytes(static_cast<uint64_t>(-mem_.headroom_bytes))),
          fix);
      f.title = fmt::format("needs {}, {} has {}", format_bytes(mem_.total_bytes), machine,
                            format_bytes(mem_.available_bytes));
      f.hardware = hardware;
      f.fixes = std::move(pasteable);
      return;
    }
    gpu_limit();
    const uint64_t want_free =
        std::max(kMinHeadroom, static_cast<uint64_t>(kMinHeadroomFraction * static_cast<double>(mem_.available_bytes)));
    if (static_cast<uint64_t>(mem_.headroom_bytes) < want_free) {
      const int64_t safer = largest_fitting_ctx(r_, c_.kv_type, mem_.weights_bytes, want_free);
      std::string fix = "close other memory-hungry programs";
      if (safer > 0 && safer < r_.ctx)
        fix += fmt::format(", or {} to keep {} free", ctx_fix(c_, safer), format_bytes(want_free));
      Finding& f =
          add("low-headroom", Severity::kWarning,
              fmt::format("fits with only {} to spare on {} ({} of {}): a browser, a second model or a longer context "
                          "pushes the system into swapping",
                          format_bytes(static_cast<uint64_t>(mem_.headroom_bytes)), machine,
                          format_bytes(mem_.total_bytes), format_bytes(mem_.available_bytes)),
              fix);
      f.title = fmt::format("only {} of memory to spare", format_bytes(static_cast<uint64_t>(mem_.headroom_bytes)));
      if (safer > 0 && safer < r_.ctx) f.fixes = change_fixes(r_, to_ctx(safer));
    }
  }

  std::string model_path() const { return c_.model_ref.empty() ? std::string("MODEL.gguf") : c_.model_ref; }

  bool fits_at_kv(int64_t ctx, TensorType kv) const {
    return total_bytes_at(r_, ctx, kv, mem_.weights_bytes) <= mem_.available_bytes;
  }

  // A GPU that may use less than the machine's memory: Apple's default wired limit (about 3/4 of
  // unified memory) or a given --gpu-memory. Everything but the OS reserve must fit in it.
  void gpu_limit() {
    if (!mem_.gpu_limit_bytes || mem_.gpu_working_set_bytes <= *mem_.gpu_limit_bytes) return;
    const Machine& mc = r_.inputs.machine;
    const uint64_t limit = *mem_.gpu_limit_bytes;
    const uint64_t need = mem_.gpu_working_set_bytes;
    const bool apple = mc.gpu_limit == "apple-wired";
    // Largest context whose GPU working set fits under the limit: the OS reserve is not on the GPU.
    const int64_t ctx_fits = largest_fitting_ctx(r_, c_.kv_type, mem_.weights_bytes,
                                                 mem_.available_bytes > limit + mem_.reserve_bytes
                                                     ? mem_.available_bytes - limit - mem_.reserve_bytes
                                                     : mem_.available_bytes);
    std::vector<Fix> fixes;
    std::string fix;
    bool hardware = false;
    if (apple) {
      // Room for the set plus 1 GiB, in whole GiB; macOS keeps at least kAppleKeepFree.
      const uint64_t gib = uint64_t{1} << 30;
      const uint64_t limit_bytes = (need + gib + gib - 1) / gib * gib;
      if (limit_bytes + kAppleKeepFree <= mc.memory_bytes) {
        const uint64_t mb = limit_bytes >> 20;
        fixes.push_back(apple_wired_limit_fix(mb, mc.memory_bytes));
        fix = fmt::format(
            "sudo sysctl iogpu.wired_limit_mb={} (leaves {} for macOS; too little freezes the machine; "
            "lasts until reboot)",
            mb, format_bytes(mc.memory_bytes - limit_bytes));
      } else {
        hardware = ctx_fits < std::min(c_.prompt_tokens.value_or(r_.ctx), kUsefulCtx);
        fix = fmt::format("raising the limit would leave macOS less than {}: not advisable",
                          format_bytes(kAppleKeepFree));
      }
    } else {
      hardware = ctx_fits < std::min(c_.prompt_tokens.value_or(r_.ctx), kUsefulCtx);
      fix = "keep some layers on the CPU (Ollama PARAMETER num_gpu, llama-server -ngl), at a cost in speed";
    }
    if (ctx_fits > 0 && ctx_fits < r_.ctx) {
      fix += fmt::format("; or a context of {} (fits under the limit)", tokens_str(ctx_fits));
      Change ch = to_ctx(ctx_fits);
      ch.gpu_engines = true;
      for (Fix& f : change_fixes(r_, ch)) {
        f.title = "or, without touching the limit: " + f.title;
        fixes.push_back(std::move(f));
      }
    }
    // The best-quality smaller quantisation whose GPU share fits at this context.
    std::vector<QuantOption> smaller;
    for (const QuantOption& q : r_.inputs.quant_options)
      if (q.weights_bytes < mem_.weights_bytes) smaller.push_back(q);
    std::sort(smaller.begin(), smaller.end(),
              [](const QuantOption& a, const QuantOption& b) { return a.weights_bytes > b.weights_bytes; });
    for (const QuantOption& q : smaller) {
      const uint64_t gpu = total_bytes_at(r_, r_.ctx, c_.kv_type, q.weights_bytes) - mem_.reserve_bytes;
      if (gpu > limit) continue;
      fix += fmt::format("; or {} weights ({}; the GPU's share {}) at {} tokens", q.name, format_bytes(q.weights_bytes),
                         format_bytes(gpu), tokens_str(r_.ctx));
      break;
    }
    Finding& f =
        add(apple ? "gpu-wired-limit" : "gpu-memory-limit", apple ? Severity::kError : Severity::kWarning,
            fmt::format(
                "the GPU must hold {} (weights {} + KV cache {} + recurrent state {} + compute {}{}) but {}: "
                "{} short. The total with the OS is {} of {}. On the GPU (Ollama, llama.cpp Metal, LM Studio) the "
                "model then loads partly on the CPU (much slower) or fails to allocate{}",
                format_bytes(need), format_bytes(mem_.weights_bytes), format_bytes(mem_.kv_cache_bytes),
                format_bytes(mem_.recurrent_state_bytes), format_bytes(mem_.compute_bytes), others(),
                apple ? fmt::format("macOS lets the GPU wire only {} by default ({} of {})", format_bytes(limit),
                                    mc.memory_bytes > kAppleSmallMemory ? "3/4" : "2/3", format_bytes(mc.memory_bytes))
                      : fmt::format("the GPU may use {} (--gpu-memory)", format_bytes(limit)),
                format_bytes(need - limit), format_bytes(mem_.total_bytes), format_bytes(mem_.available_bytes),
                apple ? "; hylo runs on the CPU and is not limited" : ""),
            fix);
    f.title = fmt::format("{} for the GPU, over its {} limit", format_bytes(need), format_bytes(limit));
    f.hardware = hardware;
    f.fixes = std::move(fixes);
  }

  void context() {
    const int64_t trained = m_.n_ctx_train, supported = m_.max_supported_ctx();
    const std::string source = c_.ctx_source.empty() ? "default" : c_.ctx_source;
    if (r_.ctx < trained) {
      std::string fix;
      Severity s = Severity::kWarning;
      std::optional<int64_t> to;
      if (fits_at(trained)) {
        to = trained;
        fix = fmt::format("{} (the trained context; it fits: total {})", ctx_fix(c_, trained),
                          format_bytes(total_bytes_at(r_, trained, c_.kv_type, mem_.weights_bytes)));
      } else if (mem_.largest_ctx_that_fits > r_.ctx) {
        to = mem_.largest_ctx_that_fits;
        fix = fmt::format("{} (the largest that fits; the trained {} would need {})",
                          ctx_fix(c_, mem_.largest_ctx_that_fits), tokens_str(trained),
                          format_bytes(total_bytes_at(r_, trained, c_.kv_type, mem_.weights_bytes)));
      } else {
        s = Severity::kInfo;
        fix = fmt::format("none needed unless longer prompts come: the trained {} would need {}", tokens_str(trained),
                          format_bytes(total_bytes_at(r_, trained, c_.kv_type, mem_.weights_bytes)));
      }
      Finding& f = add("ctx-below-trained", s,
                       fmt::format("context capped at {} tokens ({}) while {} was trained for {}: longer requests fail "
                                   "or are truncated",
                                   tokens_str(r_.ctx), source, m_.name, tokens_str(trained)),
                       fix);
      f.title = fmt::format("context capped at {} ({})", tokens_str(r_.ctx), source);
      if (to) f.fixes = change_fixes(r_, to_ctx(*to));
    }
    if (r_.ctx > supported) {
      const bool has_yarn = supported > trained;
      Finding& f = add(
          "ctx-above-trained", Severity::kWarning,
          has_yarn ? fmt::format("context {} ({}) exceeds the {} tokens the file's YaRN scaling (factor {:g}) reaches",
                                 tokens_str(r_.ctx), source, tokens_str(supported), m_.rope_scaling.factor)
                   : fmt::format("context {} ({}) exceeds the trained {} and the model enables no rope scaling: "
                                 "positions past {} are untrained and output degrades there",
                                 tokens_str(r_.ctx), source, tokens_str(trained), tokens_str(trained)),
          fmt::format("{}; or {}", yarn_fix(r_, r_.ctx), ctx_fix(c_, supported)));
      f.title = fmt::format("context {} beyond the model's {}", tokens_str(r_.ctx), tokens_str(supported));
      f.fixes = change_fixes(r_, yarn_change(r_, r_.ctx));
    }
    if (!c_.prompt_tokens) return;
    const int64_t prompt = *c_.prompt_tokens;
    const int64_t answer = c_.num_predict.value_or(0);
    const int64_t needed = round_up(prompt + answer, kCtxStep);
    if (prompt > r_.ctx) {
      std::string fix;
      std::optional<int64_t> to;
      if (needed <= supported && needed <= trained && fits_at(trained)) {
        fix = ctx_fix(c_, trained);
        to = trained;
      } else if (needed <= supported && fits_at(needed)) {
        fix = ctx_fix(c_, needed);
        to = needed;
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
      Finding& f = add("prompt-exceeds-ctx", Severity::kError,
                       fmt::format("a {}-token prompt does not fit the {}-token context ({}): the request fails or the "
                                   "start of the prompt is dropped",
                                   tokens_str(prompt), tokens_str(r_.ctx), source),
                       fix);
      f.title = fmt::format("a {}-token prompt does not fit", tokens_str(prompt));
      if (to) f.fixes = change_fixes(r_, to_ctx(*to));
    } else if (prompt + answer > r_.ctx) {
      Finding& f =
          add("answer-exceeds-ctx", Severity::kWarning,
              fmt::format("a {}-token prompt plus a {}-token answer exceeds the {}-token context: the answer is cut "
                          "short",
                          tokens_str(prompt), tokens_str(answer), tokens_str(r_.ctx)),
              needed <= supported ? ctx_fix(c_, needed) : std::string("a shorter prompt or a smaller num_predict"));
      f.title = "the answer is cut short";
      if (needed <= supported) f.fixes = change_fixes(r_, to_ctx(needed));
    }
    if (prompt > supported) {
      Finding& f = add("prompt-exceeds-trained", Severity::kError,
                       fmt::format("a {}-token prompt is longer than the {} tokens {} supports{}", tokens_str(prompt),
                                   tokens_str(supported), m_.name,
                                   supported > trained ? " with its YaRN scaling" : " (its trained context)"),
                       fmt::format("shorten the prompt below {} tokens; or {} with {}", tokens_str(supported - answer),
                                   yarn_fix(r_, needed), ctx_fix(c_, needed)));
      f.title = fmt::format("the prompt is longer than the model's {}", tokens_str(supported));
      f.fixes = change_fixes(r_, yarn_change(r_, needed));
    }
  }

  // A name that promises a context (a Modelfile "v-128k", a tag "...-256k") other than the one
  // configured, or other than the one the model has: whoever reads the name is misled.
  void names() {
    const int64_t trained = m_.n_ctx_train, supported = m_.max_supported_ctx();
    for (const Config::Name& n : c_.names) {
      const auto named = context_in_name(n.name);
      if (!named) continue;
      const bool matches_config = figure_matches(*named, r_.ctx);
      const bool matches_model = figure_matches(*named, trained) || figure_matches(*named, supported);
      if (matches_config && matches_model) continue;
      std::string why;
      if (!matches_config)
        why = fmt::format("but the context is {} ({})", tokens_str(r_.ctx),
                          c_.ctx_source.empty() ? "default" : c_.ctx_source);
      else if (named->tokens < trained)
        why = fmt::format(
            "which is the cap it sets, not the model's: {} was trained for {}; whoever picks the model "
            "by its name will believe {} is its limit",
            m_.name, tokens_str(trained), named->figure);
      else
        why = fmt::format("more than {} supports ({})", m_.name, tokens_str(supported));
      // The context the name should carry: the one a fix elsewhere moves to (the trained one when
      // it fits), else the configured one.
      const int64_t target = r_.ctx < trained && fits_at(trained) ? trained : std::min(r_.ctx, supported);
      Finding& f = add("misleading-name", Severity::kWarning,
                       fmt::format("the name '{}' ({}) promises a {} context, {}", n.name, n.where, named->figure, why),
                       fmt::format("name it for what it runs: ollama create {} -f Modelfile (num_ctx {})",
                                   rename_for_context(n.name, target), target));
      f.title = fmt::format("the name '{}' promises {}", n.name, named->figure);
      if (n.where == "Modelfile name" || n.where == "--name") f.fixes = change_fixes(r_, to_ctx(target));
    }
  }

  void time() {
    const TimeReport& t = r_.time;
    const bool from_prompt = t.prefill_basis == "prompt";
    const std::string what = from_prompt
                                 ? fmt::format("a {}-token prompt", tokens_str(t.prefill_tokens))
                                 : fmt::format("filling the whole {}-token context", tokens_str(t.prefill_tokens));
    const bool ranged = t.prefill_seconds_slow > t.prefill_seconds_fast * 1.001;
    const std::string speed =
        ranged ? fmt::format("{}–{} tok/s ({}, typically {})", rate_str(t.prefill_tps_low),
                             rate_str(t.prefill_tps_high), t.prefill_tps_source, rate_str(t.prefill_tps))
               : fmt::format("{} tok/s ({})", rate_str(t.prefill_tps), t.prefill_tps_source);
    const std::string took =
        ranged ? fmt::format("{} to {}", seconds_str(t.prefill_seconds_fast), seconds_str(t.prefill_seconds_slow))
               : seconds_str(t.prefill_seconds);
    if (c_.timeout_seconds && t.prefill_seconds > 0) {
      const double timeout = *c_.timeout_seconds;
      // The suggestion covers the slow end of the range; the finding is an error only when even
      // the fast end misses the timeout.
      double expected = t.prefill_seconds_slow;
      if (c_.num_predict && t.decode_tps_bound_at_ctx)
        expected += static_cast<double>(*c_.num_predict) / *t.decode_tps_bound_at_ctx;
      const double suggest = std::ceil(expected * kTimeoutMargin / kTimeoutRounding) * kTimeoutRounding;
      const int64_t max_prompt = static_cast<int64_t>(timeout / kTimeoutMargin * t.prefill_tps_low);
      const std::string fix = fmt::format(
          "set the client timeout to at least {:.0f} s (e.g. timeout={:.0f} in the OpenAI client; re-check with "
          "--timeout {:.0f}); or keep prompts under {} tokens",
          suggest, suggest, suggest, tokens_str(max_prompt));
      if (t.prefill_seconds_fast > timeout) {
        Finding& f =
            add("prefill-exceeds-timeout", from_prompt ? Severity::kError : Severity::kWarning,
                fmt::format("{} takes {} to prefill at {}, longer than the {} client timeout: the client gives up "
                            "before the first token arrives",
                            what, took, speed, seconds_str(timeout)),
                fix);
        f.title = fmt::format("prefill {} > {} timeout", seconds_str(t.prefill_seconds_fast), seconds_str(timeout));
        f.fixes = timeout_fixes(r_, suggest);
      } else if (t.prefill_seconds_slow > kNearTimeoutFraction * timeout) {
        Finding& f = add("prefill-near-timeout", Severity::kWarning,
                         fmt::format("{} takes {} to prefill at {}, close to (or past) the {} client timeout", what,
                                     took, speed, seconds_str(timeout)),
                         fix);
        f.title = fmt::format("prefill up to {}, near the {} timeout", seconds_str(t.prefill_seconds_slow),
                              seconds_str(timeout));
        f.fixes = timeout_fixes(r_, suggest);
      }
    }
    if (from_prompt) {
      Finding& f = add("time-to-first-token", Severity::kInfo,
                       fmt::format("time to first token ≈ {} ({} tokens at {})", seconds_str(t.ttft_seconds),
                                   tokens_str(t.prefill_tokens), speed),
                       t.prefill_tps_source == "estimated"
                           ? "the prefill speed is an estimate from the compute peak; measure it (hylo bench) and pass "
                             "--prefill-tps"
                           : "");
      if (t.prefill_tps_source == "estimated")
        f.fixes.push_back({"hylo", "measure prefill on the machine that serves (then --prefill-tps with its pp tok/s)",
                           fmt::format("hylo bench -m {} -p 2048 -n 16", model_path())});
    }
    if (!t.decode_tps_bound) {
      Finding& f = add("bandwidth-unknown", Severity::kInfo, "memory bandwidth unknown, so no decode-speed bound",
                       "--detect to measure this machine's bandwidth, or --hardware NAME for a known machine");
      f.fixes.push_back({"hylo", "measure this machine", fmt::format("hylo doctor -m {} --detect", model_path())});
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
      Finding& f =
          add("decode-bound-low", Severity::kWarning,
              fmt::format("decode cannot exceed {} tok/s here: {:.1f} GB/s ÷ {} of active weights per token",
                          rate_str(*t.decode_tps_bound), *t.bandwidth_gbs, format_bytes(t.active_bytes_per_token)),
              fix);
      f.title = fmt::format("decode at most {} tok/s", rate_str(*t.decode_tps_bound));
      f.hardware = true;
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

Verdict verdict_of(const Report& r) {
  Verdict v;
  std::vector<const Finding*> hardware, config;
  for (const Finding& f : r.findings) {
    if (f.severity == Severity::kInfo) continue;
    (f.hardware ? hardware : config).push_back(&f);
  }
  v.problems = static_cast<int>(hardware.size() + config.size());
  v.hardware_problem = !hardware.empty();
  auto titles = [](const std::vector<const Finding*>& fs) {
    std::string out;
    for (const Finding* f : fs) out += (out.empty() ? "" : "; ") + (f->title.empty() ? f->id : f->title);
    return out;
  };
  const auto plural = [](size_t n, const char* one, const char* many) {
    return fmt::format("{} {}", n, n == 1 ? one : many);
  };
  const MemoryReport& mem = r.memory;
  if (v.problems == 0) {
    v.headline =
        fmt::format("No problems: {} fits {} ({} of {}) and the configuration matches the model.", r.inputs.model.name,
                    r.inputs.machine.display_name, format_bytes(mem.total_bytes), format_bytes(mem.available_bytes));
  } else if (hardware.empty()) {
    v.headline = fmt::format("The hardware is fine: {}, all fixable — see below.",
                             plural(config.size(), "configuration problem", "configuration problems"));
    v.detail = titles(config) + ".";
  } else {
    v.headline = fmt::format(
        "The hardware is the problem: {}{}.", titles(hardware),
        config.empty() ? std::string()
                       : fmt::format("; and {} fixable",
                                     plural(config.size(), "configuration problem", "configuration problems")));
    v.detail = config.empty() ? std::string("Compare machines with --compare-hardware.") : titles(config) + ".";
  }
  return v;
}

}  // namespace hylo::doctor
