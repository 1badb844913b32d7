// One client request running on the engine: its prompts rendered and tokenized, one engine
// request per choice, and the engine's events turned into API-neutral updates (reasoning,
// content, tool calls, logprobs, finish) on the HTTP thread. Streamed answers (SSE and NDJSON)
// and whole answers are both written from here; nothing in this file knows an API's JSON.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/timer.h"
#include "chat/output_parser.h"
#include "runtime/engine.h"
#include "server/api_error.h"
#include "server/backend.h"
#include "server/request.h"
#include "server/tool_call_filter.h"

namespace hylo::server {

struct TokenLogprob {
  std::string piece;  // the token's bytes (may end inside a UTF-8 character)
  float logprob = 0;
  bool has_logprob = true;  // false for the first prompt token (nothing precedes it)
  std::vector<std::pair<std::string, float>> top;
};

// A tool call while it is generated: a first delta with its id and name, then pieces of its
// arguments that add up to the complete call's (which follows in Update::tool_calls, with this id).
struct ToolCallDelta {
  int call = 0;  // the call's place among the choice's calls
  std::string id;
  bool first = false;     // the call begins: `name` is set, `arguments` is empty
  std::string name;       // first
  std::string arguments;  // a piece to append
};

// What changed in one choice since the last drain().
struct Update {
  enum class Kind { kPrefill, kDelta, kFinish };
  Kind kind = Kind::kDelta;
  int index = 0;                                // the choice
  int32_t prefill_done = 0, prefill_total = 0;  // kPrefill
  std::string reasoning, content;               // kDelta: text to append
  std::vector<ToolCallDelta> tool_call_deltas;  // kDelta: calls being generated, in order
  std::vector<chat::ToolCall> tool_calls;       // kDelta: complete calls (streamed or not)
  std::vector<TokenLogprob> logprobs;           // kDelta: one per token (when asked for)
  std::vector<TokenLogprob> prompt_logprobs;    // kDelta: scored prompt tokens (prompt_logprobs)
  std::string finish_reason;                    // kFinish: "stop", "length" or "tool_calls"
};

// Everything one choice produced so far (whole answers are built from these).
struct Choice {
  int index = 0;
  int prompt_index = 0;
  std::string reasoning, content;
  std::vector<chat::ToolCall> tool_calls;
  std::vector<TokenLogprob> logprobs;
  std::vector<TokenLogprob> prompt_logprobs;  // one per prompt token when the request scores it
  std::vector<float> embedding;               // [n_embd] embeddings: the prompt's, L2-normalised
  std::vector<int32_t> tokens;                // generated ids
  bool done = false;
  std::string finish_reason;
  runtime::RequestResult result;
};

struct Usage {
  int64_t prompt_tokens = 0;  // each prompt counted once, whatever n is
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
  int64_t drafted_tokens = 0, accepted_tokens = 0;  // speculative decoding
  double prefill_seconds = 0, decode_seconds = 0, total_seconds = 0;
};

struct GenerationLimits {
  int32_t max_tokens_cap = 0;                          // > 0: no choice generates more (max_tokens above it is lowered)
  runtime::Pooling pooling = runtime::Pooling::kMean;  // for embeddings (--pooling)
  bool test_hooks = false;                             // honour GenerationRequest::forced_output
};

// The chat prompt of a request. A final assistant message (without tool calls) is continued, as
// llama-server and Ollama do: the messages before it are rendered with the generation prompt,
// and its text follows unclosed, so the model writes on from there (assistant prefill).
Result<std::string> render_chat_prompt(const Backend& backend, const GenerationRequest& request);

class Generation {
 public:
  // Renders and tokenizes the prompts, checks them against the context and submits every choice.
  // Errors come back before anything was sent to the client (400 context, 503 queue full, ...).
  // `hold` (a model lease) lives as long as the generation, released after its choices are cancelled.
  static std::shared_ptr<Generation> start(const Backend& backend, GenerationRequest request,
                                           const GenerationLimits& limits, ApiError* error,
                                           std::shared_ptr<void> hold = nullptr);
  ~Generation();  // cancels choices still running
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  // Blocks until engine events are waiting, the client hangs up (client_fd, -1: not watched),
  // shutdown_fd becomes readable, or timeout_ms passes (-1: no timeout).
  enum class Wake { kEvents, kTimeout, kClientGone, kShutdown };
  Wake wait(int client_fd, int shutdown_fd, int timeout_ms);
  // Turns waiting engine events into updates (appended to *out) and into the choices' state.
  void drain(std::vector<Update>* out);
  // Asks the engine to stop every choice (the client went away); the slots free at its next step.
  void cancel();

  bool finished() const;                                           // every choice is done
  const std::optional<ApiError>& error() const { return error_; }  // a choice failed
  bool any_token() const { return any_token_; }                    // output has started
  const std::vector<Choice>& choices() const { return choices_; }
  Usage usage() const;
  const GenerationRequest& request() const { return req_; }
  const std::vector<std::vector<int32_t>>& prompt_tokens() const { return prompt_tokens_; }
  const std::vector<std::string>& prompt_texts() const { return prompt_texts_; }
  int32_t n_ctx() const { return n_ctx_; }

 private:
  struct Channel;
  Generation() = default;
  std::optional<ApiError> prepare(const Backend& backend);
  std::optional<ApiError> submit(const Backend& backend, const GenerationLimits& limits);
  // tool_choice's functions with their parameters (schemas compiled: errors are the client's).
  Result<std::vector<ToolSpec>> required_tool_specs(chat::ToolCallFormat format) const;
  void finish_choice(Choice& c, const runtime::RequestResult& r, std::vector<Update>* out);
  void add_text(int index, const std::string& text, Update* u);
  static void add_events(Choice& c, std::vector<chat::OutputEvent> events, Update* u);

  std::shared_ptr<void> hold_;  // first: destroyed last, after ~Generation cancelled the choices
  GenerationRequest req_;
  runtime::Engine* engine_ = nullptr;
  const tokenizer::Tokenizer* tokenizer_ = nullptr;
  int32_t n_ctx_ = 0;
  bool thinking_open_ = false;
  std::vector<std::vector<int32_t>> prompt_tokens_;
  std::vector<std::string> prompt_texts_;
  std::vector<Choice> choices_;
  std::vector<std::unique_ptr<chat::OutputParser>> parsers_;  // per choice (chat output only)
  std::vector<std::shared_ptr<runtime::Request>> requests_;
  std::shared_ptr<Channel> channel_;
  std::optional<ApiError> error_;
  bool any_token_ = false;
  Timer timer_;
};

}  // namespace hylo::server
