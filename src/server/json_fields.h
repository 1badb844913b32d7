// Typed reads of request fields with errors that name the field: "temperature must be a number",
// "top_p must be between 0 and 1", "messages[1].content must be a string or an array of parts".
// Absent and null fields read as nullopt. Used by the OpenAI and Ollama adapters only.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace hylo::server {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

// A JSON object being read, and its path for messages ("" at the top, "options." inside
// Ollama's options, "messages[2]." for a message).
class FieldReader {
 public:
  FieldReader(const ojson& object, std::string path = "") : obj_(object), path_(std::move(path)) {}

  bool has(std::string_view key) const;
  const ojson* get(std::string_view key) const;  // nullptr when absent or null
  std::string name(std::string_view key) const { return path_ + std::string(key); }
  const ojson& object_json() const { return obj_; }

  Result<std::optional<double>> number(std::string_view key, double lo, double hi) const;
  Result<std::optional<int64_t>> integer(std::string_view key, int64_t lo, int64_t hi) const;
  Result<std::optional<bool>> boolean(std::string_view key) const;
  Result<std::optional<std::string>> string(std::string_view key) const;
  // A string or an array of strings (OpenAI "stop"); at most max_items.
  Result<std::vector<std::string>> string_or_list(std::string_view key, size_t max_items) const;
  // An object (nullptr when absent or null).
  Result<const ojson*> object(std::string_view key) const;
  Result<const ojson*> array(std::string_view key) const;

 private:
  const ojson& obj_;
  std::string path_;
};

inline constexpr size_t kMaxJsonNesting = 64;
size_t json_nesting(std::string_view text);

// Parses a request body; the error says where the JSON breaks. The body must be an object
// nested at most kMaxJsonNesting levels.
Result<ojson> parse_body(std::string_view body);

// JSON text for a client: invalid UTF-8 (a token cut inside a character) is replaced, never thrown.
std::string dump_json(const ojson& j);

// llama.cpp's sampling fields as llama-server's /completion and Ollama's `options` spell them:
// temperature, top_k (clamped to the vocabulary), top_p, min_p, repeat_penalty, repeat_last_n,
// presence_penalty, frequency_penalty, seed. The two APIs read top_p 0 and negative seeds
// differently, so those two come back unapplied for the caller.
struct SamplingOverrides;
struct LlamaSamplingFields {
  std::optional<double> top_p;
  std::optional<int64_t> seed;
};
Result<LlamaSamplingFields> read_llama_sampling(const FieldReader& r, int64_t n_vocab, SamplingOverrides* s);

// The `prompt` field of the completion APIs (OpenAI's /v1/completions, llama-server's
// /completion): a string, an array of token ids, or an array of several prompts (strings or
// arrays of token ids), at most max_prompts of them. Errors say which shape was expected.
struct PromptInput;
Status read_prompts(const ojson& prompt, int64_t n_vocab, int max_prompts, std::vector<PromptInput>* out);

}  // namespace hylo::server
