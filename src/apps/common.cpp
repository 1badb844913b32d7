#include "apps/common.h"

#include "apps/command.h"

#include <cstdio>
#include <cerrno>
#include <cstdlib>

#include "base/cpu.h"
#include "base/log.h"
#include "ops/kv_cache.h"
#include "base/strings.h"
#include "tokenizer/tokenizer.h"

namespace hylo::apps {

int fail(const Error& e) {
  std::fprintf(stderr, "hylo: %s\n", e.message.c_str());
  return kExitError;
}

Result<std::vector<int32_t>> parse_int_list(const std::string& s, const std::string& flag) {
  std::vector<int32_t> out;
  for (const auto& part : split(s, ',')) {
    const std::string_view p = trim(part);
    if (p.empty()) continue;
    char* end = nullptr;
    const std::string str(p);
    errno = 0;
    const long long v = std::strtoll(str.c_str(), &end, 10);
    if (end == str.c_str() || *end != '\0' || errno != 0 || v < INT32_MIN || v > INT32_MAX)
      return make_error("[cli] {}: '{}' is not an integer", flag, str);
    out.push_back(static_cast<int32_t>(v));
  }
  return out;
}

namespace {
constexpr const char* kKvTypes = "f32, f16, bf16, q8_0, q4_0";

Result<TensorType> parse_kv_cache_type(const std::string& text, const std::string& flag) {
  const auto t = tensor_type_from_name(text);
  if (!t || !ops::is_kv_cache_type(*t))
    return make_error("[cli] {} {}: not a KV cache type ({})", flag, text, kKvTypes);
  return *t;
}
}  // namespace

void KvCacheFlags::add(CLI::App& app) {
  auto check = CLI::IsMember({"f32", "f16", "bf16", "q8_0", "q4_0"}, CLI::ignore_case);
  app.add_option("--cache-type-k", type_k, "KV cache type for K (-ctk): f32, f16, bf16, q8_0, q4_0 (default f16)")
      ->check(check);
  app.add_option("--cache-type-v", type_v, "KV cache type for V (-ctv): f32, f16, bf16, q8_0, q4_0 (default f16)")
      ->check(check);
  app.add_option("--kv-type", both, "KV cache type for both K and V (as -ctk T -ctv T)")->check(check);
}

Result<std::pair<TensorType, TensorType>> KvCacheFlags::resolve(const models::MemoryLayout& layout,
                                                                TensorType fallback) const {
  std::pair<TensorType, TensorType> t{fallback, fallback};
  if (!both.empty()) {
    HYLO_ASSIGN_OR_RETURN(t.first, parse_kv_cache_type(both, "--kv-type"));
    t.second = t.first;
  }
  if (!type_k.empty()) {
    HYLO_ASSIGN_OR_RETURN(t.first, parse_kv_cache_type(type_k, "--cache-type-k"));
  }
  if (!type_v.empty()) {
    HYLO_ASSIGN_OR_RETURN(t.second, parse_kv_cache_type(type_v, "--cache-type-v"));
  }
  if (std::string p = layout.kv_type_problem(t.first, t.second); !p.empty()) return make_error("[cli] {}", p);
  return t;
}

void RopeFlags::add(CLI::App& app) {
  app.add_option("--rope-scaling", scaling,
                 "RoPE scaling: none, linear or yarn (default: the model's; YaRN turns on by itself for a "
                 "context beyond the trained one)")
      ->check(CLI::IsMember({"none", "linear", "yarn"}));
  app.add_option("--rope-scale", scale, "RoPE context scaling factor (the context grows by this factor)")
      ->check(CLI::PositiveNumber);
  app.add_option("--yarn-orig-ctx", orig_ctx, "YaRN: the model's original context (default: from the model)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  app.add_option("--yarn-ext-factor", ext_factor, "YaRN: extrapolation mix factor (default: 1 with YaRN)");
  app.add_option("--yarn-attn-factor", attn_factor, "YaRN: attention magnitude factor (default: 1)")
      ->check(CLI::PositiveNumber);
  app.add_option("--yarn-beta-fast", beta_fast, "YaRN: low correction dimension (default: 32)")
      ->check(CLI::PositiveNumber);
  app.add_option("--yarn-beta-slow", beta_slow, "YaRN: high correction dimension (default: 1)")
      ->check(CLI::PositiveNumber);
}

models::RopeRequest RopeFlags::request() const {
  models::RopeRequest r;
  if (!scaling.empty()) r.scaling = models::rope_scaling_from_name(scaling);
  if (scale > 0) r.factor = static_cast<float>(scale);
  if (orig_ctx > 0) r.orig_ctx = orig_ctx;
  if (ext_factor >= 0) r.ext_factor = static_cast<float>(ext_factor);
  if (attn_factor > 0) r.attn_factor = static_cast<float>(attn_factor);
  if (beta_fast > 0) r.beta_fast = static_cast<float>(beta_fast);
  if (beta_slow > 0) r.beta_slow = static_cast<float>(beta_slow);
  return r;
}

Result<std::string> apply_rope(models::Model& model, const RopeFlags& flags, int64_t n_ctx) {
  HYLO_ASSIGN_OR_RETURN(models::RopeChoice choice, models::choose_rope(model.rope(), flags.request(), n_ctx));
  model.set_rope(choice.params);
  if (choice.automatic)
    log_warn("[model] {}", choice.reason);
  else if (choice.params.scaling != models::RopeScalingType::kNone)
    log_info("[model] {}", choice.reason);
  else
    log_debug("[model] {}", choice.reason);
  return choice.reason;
}

std::vector<std::string> normalize_short_options(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {  // everything after it is a positional argument
      for (; i < argc; ++i) out.emplace_back(argv[i]);
      break;
    }
    if (a == "-ctk" || a.starts_with("-ctk="))
      a = "--cache-type-k" + a.substr(4);
    else if (a == "-ctv" || a.starts_with("-ctv="))
      a = "--cache-type-v" + a.substr(4);
    out.push_back(std::move(a));
  }
  return out;
}

void EngineFlags::add(CLI::App& app, const std::string& default_kv_type) {
  default_kv = default_kv_type;
  app.add_option("-t,--threads", threads, "Threads (default: physical cores)")->check(CLI::Range(0, 1024));
  kv.add(app);
  rope.add(app);
  app.add_option("--delta-mode", delta_mode, "Gated delta rule form for prefill: auto, recurrent or chunked")
      ->check(CLI::IsMember({"auto", "recurrent", "chunked"}))
      ->capture_default_str();
}

Result<Engine> EngineFlags::make(models::Model& model, int n_seq, int32_t n_ctx, TensorType fallback_kv) const {
  Engine e;
  const TensorType fallback = default_kv.empty() ? fallback_kv : *tensor_type_from_name(default_kv);
  HYLO_ASSIGN_OR_RETURN(const auto types, kv.resolve(model.memory_layout(), fallback));
  HYLO_TRY(apply_rope(model, rope, n_ctx));
  const int n = threads > 0 ? threads : physical_core_count();
  e.pool = std::make_unique<ThreadPool>(n);
  models::MemoryOptions mo;
  mo.n_seq = n_seq;
  mo.n_ctx = n_ctx;
  mo.kv_type = types.first;
  mo.kv_type_v = types.second;
  e.memory = std::make_unique<models::Memory>(model.memory_layout(), mo);
  model.options().delta_mode = delta_mode == "recurrent" ? ops::DeltaMode::kRecurrent
                               : delta_mode == "chunked" ? ops::DeltaMode::kChunked
                                                         : ops::DeltaMode::kAuto;
  return e;
}

Result<std::vector<int32_t>> tokenize_prompt(const models::Model& model, const std::string& text) {
  HYLO_ASSIGN_OR_RETURN(tokenizer::Tokenizer tok, tokenizer::Tokenizer::from_gguf(model.file()));
  return tok.encode(text, /*parse_special=*/true);
}

}  // namespace hylo::apps
