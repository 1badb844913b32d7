// Streaming one generation to a terminal: sampling flags, reasoning shown dimmed or hidden,
// Ctrl-C stops the answer, and the speed summary. Shared by `hylo run` and `hylo chat`.
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "apps/session.h"
#include "runtime/engine.h"

namespace hylo::apps {

// Sampling overrides from the command line; unset flags keep the model's defaults.
struct SamplingFlags {
  std::optional<float> temperature, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
  std::optional<int32_t> top_k, repeat_last_n;
  std::optional<uint64_t> seed;
  void add(CLI::App& app);
  Status apply(runtime::SamplingParams* p) const;
};

struct Generation {
  std::vector<int32_t> prompt;
  runtime::SamplingParams sampling;
  int32_t max_tokens = -1;
  std::vector<std::string> stop;
  bool parse_output = true;     // split reasoning and tool calls (chat template output)
  bool thinking_open = false;   // the prompt opened <think>
  bool show_reasoning = true;
  std::shared_ptr<runtime::TokenFilter> filter;  // e.g. a grammar the output must follow
};

struct GenerationResult : runtime::RequestResult {
  std::string content;    // the answer (without reasoning)
  std::string reasoning;
  std::vector<int32_t> tokens;
};

// Runs the request on the session's engine, writing the answer to `out` as it comes. While it
// runs, SIGINT cancels the answer instead of killing the process.
Result<GenerationResult> generate(Session& s, const Generation& g, std::ostream& out);

// "[run] prompt 24 tokens (0 cached), prefill 812.3 tok/s | 64 generated, decode 21.7 tok/s | stop"
void print_summary(const char* tag, const runtime::RequestResult& r);

bool stdin_is_tty();

}  // namespace hylo::apps
