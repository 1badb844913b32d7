// Pieces shared by the subcommands: engine flags (threads, KV type, ...), error reporting and
// small parsers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/result.h"
#include "base/thread_pool.h"
#include "models/model.h"

namespace hylo::apps {

// Prints "hylo: <message>" to stderr and returns the error exit code.
int fail(const Error& e);

// "1,2,3" → {1, 2, 3}; a clear error naming the flag otherwise.
Result<std::vector<int32_t>> parse_int_list(const std::string& s, const std::string& flag);

// Tokenizes with special tokens parsed, using the model's embedded tokenizer.
Result<std::vector<int32_t>> tokenize_prompt(const models::Model& model, const std::string& text);

struct Engine {
  std::unique_ptr<ThreadPool> pool;
  std::unique_ptr<models::Memory> memory;
};

struct EngineFlags {
  int threads = 0;  // 0: physical cores
  std::string kv_type;
  std::string delta_mode = "auto";

  void add(CLI::App& app, const std::string& default_kv);
  // Thread pool and memory for n_seq sequences of n_ctx positions; applies forward options.
  Result<Engine> make(models::Model& model, int n_seq, int32_t n_ctx, TensorType fallback_kv) const;
};

}  // namespace hylo::apps
