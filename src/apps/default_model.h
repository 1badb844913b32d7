// The built-in default model: a deterministic random-weight Qwen3-Next (bench preset, q8_0) with
// the real per-layer shapes and the Qwen3 tokenizer, generated on first use.
#pragma once

#include <string>

#include "base/result.h"
#include "base/thread_pool.h"
#include "models/synthetic.h"

namespace hylo::apps {

// $HYLO_HOME (default ~/.cache/hylo) / models.
std::string models_dir();
// share/hylo/tokenizer/qwen3 next to the binary, or $HYLO_TOKENIZER_DIR.
std::string default_tokenizer_dir();
models::SyntheticSpec default_model_spec();
// Path of the default model, generating it first if it does not exist yet.
Result<std::string> ensure_default_model(ThreadPool& pool);
// Writes a synthetic model with the Qwen3 tokenizer from `tokenizer_dir` (default as above).
Result<uint64_t> make_model(const models::SyntheticSpec& spec, const std::string& path, ThreadPool& pool,
                            const std::string& tokenizer_dir = "");

}  // namespace hylo::apps
