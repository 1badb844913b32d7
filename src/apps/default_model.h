// The built-in default model of run, chat, serve and perplexity: a small Qwen3-Next trained on the
// King James Bible (data/default-model, staged next to the binary as share/hylo/models), and the
// random-weight bench model that `hylo bench` measures without -m (generated on first use).
#pragma once

#include <string>

#include "base/result.h"
#include "base/thread_pool.h"
#include "models/synthetic.h"

namespace hylo::apps {

// $HYLO_HOME (default ~/.cache/hylo) / models: where generated models are kept.
std::string models_dir();
// share/hylo/tokenizer/qwen3 next to the binary, or $HYLO_TOKENIZER_DIR.
std::string default_tokenizer_dir();

// $HYLO_DEFAULT_MODEL, else share/hylo/models/hylo-default.gguf next to the binary.
std::string default_model_path();
// The default model's path, or an error saying where it was looked for and what to do.
Result<std::string> find_default_model();
// One line on what the built-in default model is, printed when a command runs it.
std::string default_model_note();

// The random-weight model `hylo bench` uses without -m: Qwen3-Next-80B-A3B's per-layer shapes,
// 8 layers, 64 experts, q8_0 (speed only: its text is meaningless).
models::SyntheticSpec bench_model_spec();
// Path of the bench model, generating it first if it does not exist yet.
Result<std::string> ensure_bench_model(ThreadPool& pool);
// Writes a synthetic model with the Qwen3 tokenizer from `tokenizer_dir` (default as above).
Result<uint64_t> make_model(const models::SyntheticSpec& spec, const std::string& path, ThreadPool& pool,
                            const std::string& tokenizer_dir = "");

}  // namespace hylo::apps
