// Entry point of `hylo doctor`: turns what the user gave (a GGUF file or profile, flags, a
// Modelfile, an endpoint, a machine) into the analysis inputs. Precedence for each setting:
// flags over the Modelfile over the endpoint over defaults.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/tensor_type.h"
#include "doctor/analysis.h"
#include "doctor/machine.h"

namespace hylo::doctor {

struct Options {
  std::string model_path;  // -m FILE.gguf (metadata and tensor directory only)
  std::string profile;     // --profile NAME
  // Further models loaded at the same time: GGUF paths (ending in .gguf) or profile names.
  std::vector<std::string> extra_models;
  std::string ollama_name;  // --name: the Ollama model the Modelfile is created as
  std::string quant;        // --quant TYPE (profiles; for a file: "what if it were TYPE")
  std::optional<int64_t> ctx, parallel, batch, ubatch, prompt_tokens;
  std::optional<TensorType> kv_type;
  std::optional<uint64_t> cache_bytes;    // --cache-ram
  int spec_draft = 0;                     // --spec mtp --draft N (0: none)
  std::optional<double> spec_acceptance;  // --acceptance
  std::string modelfile;                  // --modelfile FILE
  std::string endpoint;                   // --endpoint URL
  double endpoint_timeout_seconds = 5.0;
  std::string hardware;      // --hardware NAME
  std::string machine_file;  // --machine FILE (a machine of one's own)
  MachineOverrides machine_overrides;
  bool detect = false;  // --detect: also measure this machine's memory bandwidth
  DetectOptions detect_options;
  std::optional<double> prefill_tps, timeout_seconds;
  Measurements measured;  // from the engine (`hylo bench`), when available
};

Result<Inputs> gather_inputs(const Options& options);

// All quantisations of `model` that can be derived from its shapes, smallest first (empty for
// architectures whose tensor shapes are unknown).
std::vector<QuantOption> quant_options_for(const ModelDesc& model);

}  // namespace hylo::doctor
