// The models one `hylo serve` can run, by name: GGUF files found in a directory (--models-dir)
// and model definitions written by hand (--models FILE, YAML: file, context, KV types, sampling,
// chat template, thinking, speculative decoding, slots, keep-alive). Parsing and validation only;
// loading them is the model manager's (model_manager.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace hylo::server {

struct ModelDefinition {
  std::string name;    // what clients send as "model"
  std::string file;    // the GGUF file (a definition's relative path is read from its file's folder)
  std::string source;  // where it came from: "models.yaml line 4" or "--models-dir DIR"
  int64_t ctx = 0;     // tokens per slot; 0: the server's -c, else the trained context capped by memory
  std::string cache_type_k, cache_type_v;  // "": the server's -ctk / -ctv
  int parallel = 0;                        // slots; 0: the server's --parallel
  // Sampling defaults (a request's own values win).
  std::optional<float> temperature, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
  std::optional<int32_t> top_k, repeat_last_n;
  std::string chat_template_file;  // "": the model's own
  std::optional<bool> thinking;    // a request that does not say gets this
  std::string spec;                // "": the server's --spec; "none" or "mtp"
  int draft = 0;                   // drafts per step with spec mtp (0: the server's --draft)
  std::optional<double> keep_alive;  // seconds a model stays loaded once idle (< 0: forever)
};

// Model names: letters, digits and '-', '_', '.', ':', '/' (an Ollama tag such as "qwen3:30b"),
// at most 128 characters.
bool valid_model_name(const std::string& name);

// A definitions file's text; `source_name` names it in errors ("[models] FILE: line 7, key
// models.v-128k.context: ..."), `base_dir` is where relative file paths start.
Result<std::vector<ModelDefinition>> parse_model_definitions(const std::string& text, const std::string& source_name,
                                                             const std::string& base_dir);
Result<std::vector<ModelDefinition>> load_model_definitions(const std::string& path);

// Every *.gguf under `dir` (recursively, symbolic links followed, at most 10,000 files), named by
// its file name without ".gguf"; two files with one name are an error naming both.
Result<std::vector<ModelDefinition>> scan_models_dir(const std::string& dir);

// Definitions first, then the directory's files not named by a definition (a definition may
// point at a file of the directory under another name: both names are then served). Two
// definitions with one name are an error.
Result<std::vector<ModelDefinition>> merge_catalog(std::vector<ModelDefinition> definitions,
                                                   std::vector<ModelDefinition> from_dir);

// A definition written back in the file's format (used by `hylo models import`).
std::string definition_yaml(const ModelDefinition& d, const std::vector<std::string>& comments = {});

// Ollama's keep_alive forms: seconds, or a Go duration ("5m", "1h30m", "0", "-1"); < 0: forever.
Result<double> parse_keep_alive(const std::string& text);

}  // namespace hylo::server
