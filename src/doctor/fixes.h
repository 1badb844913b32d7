// Fixes that can be pasted as they are: the patched Modelfile and the `ollama create` line, the
// `hylo serve` and `llama-server` command lines, Ollama's environment, the client timeout, the
// sysctl that raises Apple's GPU limit. Spelling only; which fix applies is decided in findings.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/tensor_type.h"

namespace hylo::doctor {

struct Report;

struct Fix {
  // "modelfile" (a whole Modelfile), "shell" (commands: ollama, sysctl, curl), "hylo" (one
  // `hylo …` command line, checked by the argument parser), "llama-server", "env", "client".
  std::string kind;
  std::string title;  // "Modelfile (line 2 changed)"
  std::string text;   // exactly what to paste
};

// The spelling of hylo's own flags in the fixes, in one place (a test runs every suggested
// command line through the real parser of the named command).
namespace hylo_flags {
inline constexpr std::string_view kModel = "-m";
inline constexpr std::string_view kCtx = "-c";
inline constexpr std::string_view kParallel = "--parallel";
inline constexpr std::string_view kCacheTypeK = "-ctk";
inline constexpr std::string_view kCacheTypeV = "-ctv";
inline constexpr std::string_view kRopeScaling = "--rope-scaling";
inline constexpr std::string_view kRopeScale = "--rope-scale";
inline constexpr std::string_view kYarnOrigCtx = "--yarn-orig-ctx";
inline constexpr std::string_view kPingInterval = "--ping-interval";
}  // namespace hylo_flags

// Settings a fix changes; unset ones keep the configured value.
struct Change {
  std::optional<int64_t> ctx;
  std::optional<TensorType> kv_type;
  std::optional<double> yarn_factor;  // with yarn_orig_ctx
  int64_t yarn_orig_ctx = 0;
  // For a limit only GPU engines have (Apple's wired limit): the Ollama and llama-server spellings
  // whatever the configuration came from, and no hylo line (hylo runs on the CPU).
  bool gpu_engines = false;
};

// The set of fixes for a change of context, KV type or rope scaling, in the syntax of each place
// it can be made: the Modelfile (patched) and `ollama create`, Ollama's environment, llama-server
// and hylo serve flags. `rename` also renames the Ollama model whose name promises a context.
std::vector<Fix> change_fixes(const Report& report, const Change& change);
// The client side of a timeout: the OpenAI SDKs, curl, and re-checking with hylo doctor.
std::vector<Fix> timeout_fixes(const Report& report, double seconds);
// Raising macOS's GPU wired limit to `limit_mb` (with what it costs).
Fix apple_wired_limit_fix(uint64_t limit_mb, uint64_t memory_bytes);

// The name the Ollama model is created under ("v-128k"), and the one a fix suggests for `ctx`.
std::string ollama_model_name(const Report& report);

}  // namespace hylo::doctor
