#include "apps/common.h"

#include "apps/command.h"

#include <cstdio>
#include <cerrno>
#include <cstdlib>

#include "base/cpu.h"
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

void EngineFlags::add(CLI::App& app, const std::string& default_kv) {
  kv_type = default_kv;
  app.add_option("-t,--threads", threads, "Threads (default: physical cores)")->check(CLI::Range(0, 1024));
  app.add_option("--kv-type", kv_type, "KV cache type: f16 or f32")
      ->check(CLI::IsMember({"f16", "f32"}))
      ->capture_default_str();
  app.add_option("--delta-mode", delta_mode, "Gated delta rule form for prefill: auto, recurrent or chunked")
      ->check(CLI::IsMember({"auto", "recurrent", "chunked"}))
      ->capture_default_str();
}

Result<Engine> EngineFlags::make(models::Model& model, int n_seq, int32_t n_ctx, TensorType fallback_kv) const {
  Engine e;
  const int n = threads > 0 ? threads : physical_core_count();
  e.pool = std::make_unique<ThreadPool>(n);
  models::MemoryOptions mo;
  mo.n_seq = n_seq;
  mo.n_ctx = n_ctx;
  mo.kv_type = kv_type.empty() ? fallback_kv : (kv_type == "f16" ? TensorType::kF16 : TensorType::kF32);
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
