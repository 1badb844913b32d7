// The one internal request type: what a client asked for, whichever API it used. The OpenAI and
// Ollama adapters build it from JSON; generation.cpp runs it on the engine. Chat messages and
// tools stay JSON because they are the chat template's input (normalised to the OpenAI form).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "chat/chat_template.h"
#include "runtime/grammar.h"
#include "runtime/sampler.h"

namespace hylo::server {

// Sampling values the client set; the rest come from the model's defaults.
struct SamplingOverrides {
  std::optional<float> temperature, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
  std::optional<int32_t> top_k, repeat_last_n;
  std::optional<uint64_t> seed;
  std::unordered_map<int32_t, float> logit_bias;

  // Defaults + overrides for choice `index`: with a seed, choice i uses seed + i; without one,
  // every choice draws its own.
  runtime::SamplingParams apply(const runtime::SamplingParams& defaults, int index) const;
};

// A prompt given as text or as token ids (OpenAI completions accept both).
struct PromptInput {
  std::string text;
  std::vector<int32_t> tokens;
  bool is_tokens = false;
};

// Fill-in-the-middle: code before and after the gap (and other files as context); the prompt is
// built from the model's FIM tokens (<|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|>).
struct FimInput {
  std::string prefix, suffix;
  std::string middle;                                      // text the answer starts with
  std::vector<std::pair<std::string, std::string>> extra;  // (file name, text) before the gap's file
};

struct GenerationRequest {
  // The prompt: chat messages rendered with the chat template, or raw prompts (completions,
  // Ollama raw generate). Each prompt gets `n` choices.
  nlohmann::ordered_json messages;  // null for raw prompts; else an array of OpenAI-style messages
  nlohmann::ordered_json tools;     // null: no tools
  std::optional<bool> enable_thinking;
  std::vector<PromptInput> prompts;     // raw prompts
  std::vector<int32_t> context_prefix;  // Ollama "context": tokens placed before the prompt
  std::optional<FimInput> fim;          // the one prompt is built from this (prompts stays empty)

  bool parse_reasoning = true;   // split <think> blocks out of the content (chat)
  bool parse_tool_calls = true;  // turn tool-call markup into tool calls (chat with tools)

  SamplingOverrides sampling;
  std::optional<int32_t> max_tokens;  // nullopt: until the context is full (or the server's cap)
  std::optional<int32_t> num_ctx;     // Ollama options.num_ctx: a smaller context than the slot's
  std::vector<std::string> stop;
  int n = 1;
  bool logprobs = false;
  int top_logprobs = 0;
  // llama-server's "speculative.n_max": MTP drafts per step for this request (0: none); unset: the
  // server's --spec / --draft.
  std::optional<int> n_draft;
  bool json_mode = false;  // the output must be one JSON object
  // The output must be a sentence of this grammar (GBNF, or a JSON schema compiled to one).
  std::shared_ptr<const runtime::Grammar> grammar;
  // tool_choice "required" (every tool) or a named function: the output must call one of these.
  std::vector<std::string> required_tools;
  bool echo = false;       // completions: the prompt text comes back before the output
  bool stream = false;
  bool include_usage = false;
  std::string model;          // the name the client used (the loaded model answers whatever it is)
  std::string forced_output;  // test hook (--test-hooks): the model is made to write this text

  // What only some endpoints read.
  bool ignore_eos = false;           // llama-server: generate past the end-of-generation token
  bool return_tokens = false;        // llama-server: the generated ids come back in "tokens"
  bool prompt_logprobs = false;      // completions with echo and logprobs: the prompt tokens are scored
  bool embed = false;                // embeddings: each prompt's pooled hidden state, nothing generated
  std::optional<double> keep_alive;  // Ollama keep_alive in seconds (< 0: forever); 0: unload after

  bool is_chat() const { return messages.is_array(); }
};

// What the API adapters need to know about the server and the loaded model.
struct ApiContext {
  std::string model_id;  // reported as the model, whatever name the client used
  int64_t n_vocab = 0;
  chat::ToolCallFormat tool_call_format = chat::ToolCallFormat::kHermesJson;
  std::string reasoning_field = "reasoning_content";  // OpenAI message field for reasoning
  bool test_hooks = false;
  int max_choices = 16;  // n

  runtime::SamplingParams sampling;  // the model's defaults (reported by llama-server's endpoints)
  int32_t n_ctx = 0;                 // per slot
};

}  // namespace hylo::server
