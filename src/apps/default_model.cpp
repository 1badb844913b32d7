#include "apps/default_model.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "base/log.h"
#include "base/timer.h"
#include "tokenizer/hf_import.h"

namespace hylo::apps {
namespace {

// share/hylo/<rel> beside the binary's bin/ directory.
std::string share_path(const std::string& rel) {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) return (exe.parent_path().parent_path() / "share/hylo" / rel).string();
  return "share/hylo/" + rel;
}

}  // namespace

std::string models_dir() {
  if (const char* h = std::getenv("HYLO_HOME"); h && *h) return std::string(h) + "/models";
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/hylo/models";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/hylo/models";
  return "hylo-models";
}

std::string default_tokenizer_dir() {
  if (const char* d = std::getenv("HYLO_TOKENIZER_DIR"); d && *d) return d;
  return share_path("tokenizer/qwen3");
}

std::string default_model_path() {
  if (const char* m = std::getenv("HYLO_DEFAULT_MODEL"); m && *m) return m;
  return share_path("models/hylo-default.gguf");
}

Result<std::string> find_default_model() {
  const std::string path = default_model_path();
  if (access(path.c_str(), R_OK) == 0) return path;
  return make_error(
      "[model] the built-in default model is missing: cannot read {} (it is installed with the build from "
      "data/default-model/hylo-default.gguf; $HYLO_DEFAULT_MODEL names another file). Pass a model with -m FILE",
      path);
}

std::string default_model_note() {
  return "the built-in default model: an 11M-parameter Qwen3-Next trained for 34 minutes on the King James "
         "Bible. It writes Bible-style English, not answers; -m FILE runs a real model.";
}

models::SyntheticSpec bench_model_spec() {
  models::SyntheticSpec s;
  s.arch = "qwen3next";
  s.preset = "bench";
  s.type = "q8_0";
  s.seed = 42;
  return s;
}

Result<uint64_t> make_model(const models::SyntheticSpec& spec, const std::string& path, ThreadPool& pool,
                            const std::string& tokenizer_dir) {
  const std::string dir = tokenizer_dir.empty() ? default_tokenizer_dir() : tokenizer_dir;
  HYLO_ASSIGN_OR_RETURN(tokenizer::HfTokenizerData tok, tokenizer::import_hf_tokenizer(dir, 151936));
  return models::write_synthetic_model(spec, path, pool, [&tok](gguf::Writer& w) {
    tokenizer::add_tokenizer_metadata(w, tok);
    return ok_status();
  });
}

Result<std::string> ensure_bench_model(ThreadPool& pool) {
  const models::SyntheticSpec spec = bench_model_spec();
  const std::string dir = models_dir();
  const std::string path = dir + "/hylo-default-" + spec.arch + "-" + spec.preset + "-" + spec.type + ".gguf";
  if (access(path.c_str(), R_OK) == 0) return path;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return make_error("[model] cannot create {}: {}", dir, ec.message());
  log_info("[model] generating the bench model (random weights, {} {} {}) at {}", spec.arch, spec.preset, spec.type,
           path);
  Timer t;
  HYLO_ASSIGN_OR_RETURN(uint64_t bytes, make_model(spec, path, pool));
  log_info("[model] wrote {:.2f} GB in {:.1f} s", bytes / 1e9, t.seconds());
  return path;
}

}  // namespace hylo::apps
