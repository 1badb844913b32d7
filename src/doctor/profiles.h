// Built-in model and hardware profiles: data/doctor/models.json and data/doctor/hardware.json,
// embedded into the binary at build time (so `hylo doctor` works from any directory).
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "doctor/model.h"

namespace hylo::doctor {

struct ModelProfile {
  std::string name;          // kebab case: "qwen3-coder-30b-a3b"
  std::string display_name;  // "Qwen3-Coder-30B-A3B"
  std::vector<std::string> aliases;
  std::string default_quant;
  std::vector<std::string> quants;  // the usual published quantisations
  std::optional<RopeScaling> yarn;  // the model card's recipe for longer contexts
  Metadata metadata;                // GGUF keys, as a converted file would have them
};

struct HardwareProfile {
  std::string name;  // kebab case: "mac-studio-m2-ultra-64"
  std::string display_name;
  std::string kind;  // "unified", "gpu" or "cpu"
  uint64_t memory_bytes = 0;
  uint64_t os_reserve_bytes = 0;
  double bandwidth_gbs = 0;   // 1e9 bytes/s
  double compute_tflops = 0;  // dense FP16/BF16 peak, for prefill estimates
  std::string notes;
  // Which calibration points apply (data/doctor/prefill.json): "apple", "nvidia", "amd", "cpu".
  std::string family;
  // Apple silicon: the GPU may wire only part of unified memory (macOS default, see machine.h).
  bool apple_gpu = false;
  // Several devices working as one: memory_bytes, os_reserve_bytes, bandwidth and compute are per
  // device; "layer" split (pipeline: llama.cpp, Ollama) or "tensor" split (vLLM / SGLang --tp).
  int devices = 1;
  std::string split = "layer";
  double link_bandwidth_gbs = 0;  // between devices, per direction (0: unknown)
};

// The embedded tables, parsed once. Our own data: a parse failure is a build defect (checked).
const std::vector<ModelProfile>& model_profiles();
const std::vector<HardwareProfile>& hardware_profiles();

// Exact (case-insensitive) profile name; the error lists the known names.
Result<const ModelProfile*> find_model_profile(std::string_view name);
Result<const HardwareProfile*> find_hardware_profile(std::string_view name);

// Best profile for a model id seen elsewhere (Ollama tag, file name, repo name): the longest
// profile name or alias contained in the id, compared lower-case on letters and digits only.
// nullptr when none matches.
const ModelProfile* match_model_profile(std::string_view model_id);
// A quantisation name contained in a model id ("…-Q4_K_M.gguf", "qwen3:30b-a3b-q8_0"); "" if none.
std::string match_quant_name(std::string_view model_id);

// Parsers behind the tables (also for tests and for user-supplied tables later).
Result<std::vector<ModelProfile>> parse_model_profiles(std::string_view json_text);
Result<std::vector<HardwareProfile>> parse_hardware_profiles(std::string_view json_text);
// One entry; `names_required` false for a user's own machine file (name "custom" by default).
Result<HardwareProfile> parse_hardware_profile(const nlohmann::json& entry, bool names_required);
// GGUF-style metadata from a JSON object of key → number/string/bool/array (profiles, and
// Ollama's /api/show model_info). `what` names the source in errors.
Result<Metadata> metadata_from_json(const nlohmann::json& object, std::string_view what);

// The JSON texts compiled in (generated source).
std::string_view embedded_models_json();
std::string_view embedded_hardware_json();
std::string_view embedded_prefill_json();

}  // namespace hylo::doctor
