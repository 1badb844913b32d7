// Between the API families on the way to an upstream: an Ollama request (/api/chat,
// /api/generate) sent to an OpenAI-compatible server, and its answer (whole, or an SSE stream
// turned into NDJSON as it arrives) brought back with tool calls, reasoning, usage and finish
// reason. Also the end-of-stream check of streams passed through unchanged. JSON only, no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/result.h"

namespace hylo::router {

using ojson = nlohmann::ordered_json;

struct OpenAIRequest {
  std::string path;  // under the /v1 base: "/chat/completions" or "/completions"
  ojson body;
};

// `chat`: /api/chat (else /api/generate). `model`: the name to send.
Result<OpenAIRequest> ollama_to_openai(const ojson& ollama, bool chat, const std::string& model);

// A whole OpenAI answer (chat.completion or text_completion) as Ollama's answer; `model` is the
// name the client used.
ojson openai_to_ollama_answer(const ojson& answer, bool chat, const std::string& model, double seconds);

// Upstream error bodies ({"error":{"message":...}}, {"error":"..."}, text) as one line of text.
std::string error_message_of(const std::string& body);

// Splits a byte stream into lines (\n, a trailing \r dropped) across arbitrary chunk borders.
class LineSplitter {
 public:
  template <typename F>
  void feed(std::string_view bytes, F&& on_line) {
    buf_.append(bytes);
    size_t start = 0, nl;
    while ((nl = buf_.find('\n', start)) != std::string::npos) {
      std::string_view l(buf_.data() + start, nl - start);
      if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
      on_line(l);
      start = nl + 1;
    }
    buf_.erase(0, start);
  }
  bool has_partial() const { return !buf_.empty(); }

 private:
  std::string buf_;
};

// An OpenAI SSE stream turned into Ollama NDJSON lines. Tool calls come in fragments and leave
// as whole calls; the last line (done: true) carries the finish reason and the token counts.
class SseToNdjson {
 public:
  SseToNdjson(bool chat, std::string model);
  std::string feed(std::string_view bytes);
  // The stream ended: the closing line, or "" when the answer was incomplete (complete() false).
  std::string finish();
  bool complete() const { return complete_; }
  bool failed() const { return failed_; }  // the upstream sent an error event (already written)

 private:
  std::string on_data(std::string_view data);
  std::string closing_line();
  ojson head() const;

  bool chat_;
  std::string model_;
  LineSplitter lines_;
  struct PartialCall {
    std::string name, arguments;
  };
  std::map<int, PartialCall> calls_;
  std::string finish_reason_;
  int64_t prompt_tokens_ = 0, completion_tokens_ = 0;
  bool done_seen_ = false, complete_ = false, failed_ = false;
  double started_ = 0;
};

// Watches a stream passed through unchanged for its proper end: "data: [DONE]" (SSE) or a line
// with "done": true (NDJSON).
class StreamEndScanner {
 public:
  explicit StreamEndScanner(bool sse) : sse_(sse) {}
  void feed(std::string_view bytes);
  bool complete() const { return complete_; }

 private:
  bool sse_;
  LineSplitter lines_;
  bool complete_ = false;
};

}  // namespace hylo::router
