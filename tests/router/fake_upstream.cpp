#include "fake_upstream.h"

#include <chrono>

namespace hylo::test {

namespace {

using json = nlohmann::json;

std::string sse(const json& j) { return "data: " + j.dump() + "\n\n"; }

json chunk(const json& delta, const json& finish = nullptr) {
  return {{"id", "fake-1"},
          {"object", "chat.completion.chunk"},
          {"created", 0},
          {"model", "fake"},
          {"choices", json::array({{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}})}};
}

// The "ok" answer as an OpenAI SSE stream: three content pieces, finish, usage, [DONE].
std::vector<std::string> openai_ok_events() {
  return {sse(chunk({{"role", "assistant"}, {"content", ""}})),
          sse(chunk({{"content", "Hello"}})),
          sse(chunk({{"content", " from"}})),
          sse(chunk({{"content", " fake"}})),
          sse(chunk(json::object(), "stop")),
          sse({{"id", "fake-1"},
               {"object", "chat.completion.chunk"},
               {"choices", json::array()},
               {"usage", {{"prompt_tokens", 5}, {"completion_tokens", 3}, {"total_tokens", 8}}}}),
          "data: [DONE]\n\n"};
}

std::vector<std::string> openai_tool_events() {
  return {
      sse(chunk({{"role", "assistant"}, {"reasoning_content", "need weather"}})),
      sse(chunk({{"tool_calls", json::array({{{"index", 0},
                                              {"id", "call_1"},
                                              {"type", "function"},
                                              {"function", {{"name", "get_weather"}, {"arguments", "{\"ci"}}}}})}})),
      sse(chunk({{"tool_calls", json::array({{{"index", 0}, {"function", {{"arguments", "ty\":\"Paris\"}"}}}}})}})),
      sse(chunk(json::object(), "tool_calls")),
      sse({{"choices", json::array()}, {"usage", {{"prompt_tokens", 9}, {"completion_tokens", 4}}}}),
      "data: [DONE]\n\n"};
}

std::vector<std::string> ollama_ok_lines(bool chat) {
  std::vector<std::string> out;
  for (const char* piece : {"Hello", " from", " fake"}) {
    json l = {{"model", "ok"}, {"created_at", "2025-01-01T00:00:00Z"}, {"done", false}};
    if (chat)
      l["message"] = {{"role", "assistant"}, {"content", piece}};
    else
      l["response"] = piece;
    out.push_back(l.dump() + "\n");
  }
  json last = {{"model", "ok"},          {"created_at", "2025-01-01T00:00:00Z"},
               {"done", true},           {"done_reason", "stop"},
               {"prompt_eval_count", 5}, {"eval_count", 3}};
  if (chat)
    last["message"] = {{"role", "assistant"}, {"content", ""}};
  else
    last["response"] = "";
  out.push_back(last.dump() + "\n");
  return out;
}

}  // namespace

FakeUpstream::FakeUpstream() {
  server_.new_task_queue = [] { return new httplib::ThreadPool(32); };
  auto h = [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); };
  server_.Post("/v1/chat/completions", h);
  server_.Post("/v1/completions", h);
  server_.Post("/api/chat", h);
  server_.Post("/api/generate", h);
  port_ = server_.bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  while (!server_.is_running()) std::this_thread::yield();
}

FakeUpstream::~FakeUpstream() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
  }
  cv_.notify_all();
  server_.stop();
  if (thread_.joinable()) thread_.join();
}

std::vector<FakeUpstream::Entry> FakeUpstream::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_;
}

bool FakeUpstream::wait_for_hangups(int n, double timeout_s) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return hangups_ >= n; });
}

void FakeUpstream::release_slow() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    slow_released_ = true;
  }
  cv_.notify_all();
}

bool FakeUpstream::wait_released(double timeout_s) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return released_; });
}

void FakeUpstream::handle(const httplib::Request& req, httplib::Response& res) {
  Entry e;
  e.path = req.path;
  e.body = json::parse(req.body, nullptr, false);
  e.model = e.body.is_object() ? e.body.value("model", "") : "";
  e.authorization = req.get_header_value("Authorization");
  e.has_private_header = req.has_header("X-Hylo-Private");
  {
    std::lock_guard<std::mutex> lock(mu_);
    entries_.push_back(e);
  }
  std::string mode = e.model;
  if (mode == "slowhead") {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(60), [&] { return slow_released_ || released_; });
    mode = "ok";
  }
  const bool ollama = req.path.rfind("/api/", 0) == 0;
  const bool chat = req.path.find("chat") != std::string::npos;
  const bool stream = e.body.is_object() && e.body.value("stream", ollama);

  if (mode == "fail500") {
    res.status = 500;
    res.set_content(R"({"error":{"message":"fake internal failure"}})", "application/json");
    return;
  }
  if (mode == "r429") {
    res.status = 429;
    res.set_content(R"({"error":{"message":"fake rate limit"}})", "application/json");
    return;
  }
  if (mode == "bad400") {
    res.status = 400;
    res.set_content(R"({"error":{"message":"fake says the request is bad","type":"invalid_request_error"}})",
                    "application/json");
    return;
  }
  if (mode == "hang") {
    wait_released(60);  // no answer until the test ends
    res.status = 503;
    return;
  }
  if (!stream) {
    if (ollama) {
      json a = json::parse(ollama_ok_lines(chat).back());
      if (chat)
        a["message"]["content"] = "Hello from fake";
      else
        a["response"] = "Hello from fake";
      res.set_content(a.dump(), "application/json");
    } else {
      json msg = {{"role", "assistant"}, {"content", "Hello from fake"}};
      res.set_content(json{{"id", "fake-1"},
                           {"object", "chat.completion"},
                           {"model", "fake"},
                           {"choices", json::array({{{"index", 0}, {"message", msg}, {"finish_reason", "stop"}}})},
                           {"usage", {{"prompt_tokens", 5}, {"completion_tokens", 3}, {"total_tokens", 8}}}}
                          .dump(),
                      "application/json");
    }
    return;
  }

  std::vector<std::string> events = ollama            ? ollama_ok_lines(chat)
                                    : mode == "tools" ? openai_tool_events()
                                                      : openai_ok_events();
  const char* type = ollama ? "application/x-ndjson" : "text/event-stream";
  auto sent = std::make_shared<size_t>(0);
  res.set_chunked_content_provider(type, [this, mode, events, sent](size_t, httplib::DataSink& sink) {
    if (mode == "endless") {
      // Paces the stream so a hang-up is seen while it runs (not a synchronisation).
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      const std::string e = sse(chunk({{"content", "more "}}));
      if (!sink.write(e.data(), e.size())) {
        std::lock_guard<std::mutex> lock(mu_);
        ++hangups_;
        cv_.notify_all();
        return false;
      }
      return true;
    }
    if (mode == "cut" && *sent == 2) return false;  // the connection drops mid-answer
    if (mode == "stall" && *sent == 2) {
      wait_released(60);
      return false;
    }
    if (*sent == events.size()) {
      sink.done();
      return true;
    }
    const std::string& e = events[(*sent)++];
    return sink.write(e.data(), e.size());
  });
}

}  // namespace hylo::test
