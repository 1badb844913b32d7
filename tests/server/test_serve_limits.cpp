// `hylo serve` at its limits: a full queue (503), a streamed client hanging up (its slot frees at
// once, the queued request gets it), keep-alive pings while queued, the API key, CORS, the body
// limit, the end of the context, and /health while the model is still loading.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <thread>

#include "common/fixtures.h"
#include "serve_process.h"

namespace hylo::test {
namespace {

using json = nlohmann::json;

json user(const std::string& text) { return json::array({{{"role", "user"}, {"content", text}}}); }

double metric(const std::string& text, const std::string& name) {
  const std::string key = "\n" + name + " ";
  const size_t at = text.find(key);
  return at == std::string::npos ? -1 : std::atof(text.c_str() + at + key.size());
}

// Waits for a condition signalled by another thread (no timing assumptions; a generous bound).
class Flag {
 public:
  void set() {
    std::lock_guard<std::mutex> lock(mu_);
    set_ = true;
    cv_.notify_all();
  }
  bool wait() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(120), [&] { return set_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

// One slot, one queue place: request A holds the slot (a long generation), B waits in the queue
// (and gets ": ping" comments), C is refused with 503. A's client hangs up: its slot frees at once
// and B runs to its end; the server goes on serving.
TEST(ServeQueue, FullQueueAnd503ThenAHangUpFreesTheSlot) {
  const std::string model = fixture_model("qwen3moe-tiny");
  ASSERT_FALSE(model.empty());
  ServeProcess server({"-m", model, "--parallel", "1", "--max-queue", "1", "-c", "8192", "--ping-interval", "0.05"});
  ASSERT_TRUE(server.start());

  Flag a_decoding, b_queued, b_pinged, release_a;
  std::atomic<bool> hang_up{false};
  std::thread a([&] {
    auto c = server.client();
    bool signalled = false;
    post_stream(c, "/v1/chat/completions",
                {{"messages", user("a very long answer")}, {"max_tokens", 8000}, {"stream", true}},
                [&](const std::string& event) {
                  if (!signalled && event.find("\"content\":\"") != std::string::npos &&
                      event.find("\"content\":\"\"") == std::string::npos) {
                    signalled = true;
                    a_decoding.set();
                  }
                  return !hang_up.load();
                });
  });
  ASSERT_TRUE(a_decoding.wait());

  std::string b_body;
  int b_status = 0;
  std::thread b([&] {
    auto c = server.client();
    bool first = true, pinged = false;
    const HttpReply r =
        post_stream(c, "/v1/chat/completions", {{"messages", user("short")}, {"max_tokens", 4}, {"stream", true}},
                    [&](const std::string& event) {
                      if (first) b_queued.set();  // the headers and role chunk: accepted
                      first = false;
                      if (!pinged && event == ": ping") {
                        pinged = true;
                        b_pinged.set();
                      }
                      return true;
                    });
    b_status = r.status;
    b_body = r.body;
  });
  ASSERT_TRUE(b_queued.wait());
  ASSERT_TRUE(b_pinged.wait());  // keep-alive comments while waiting for the slot
  auto c = server.client();
  EXPECT_EQ(metric(get(c, "/metrics").body, "hylo_requests_waiting"), 1);

  const HttpReply full = post_json(c, "/v1/chat/completions", {{"messages", user("one more")}, {"max_tokens", 2}});
  EXPECT_EQ(full.status, 503) << full.body;
  EXPECT_NE(full.json["error"]["message"].get<std::string>().find("queue is full"), std::string::npos);
  const HttpReply full_ollama = post_json(c, "/api/chat", {{"messages", user("one more")}, {"stream", false}});
  EXPECT_EQ(full_ollama.status, 503);
  EXPECT_TRUE(full_ollama.json["error"].is_string()) << full_ollama.body;

  hang_up = true;  // A's client goes away; B must get the slot and finish
  a.join();
  b.join();
  EXPECT_EQ(b_status, 200);
  EXPECT_NE(b_body.find("\"finish_reason\":\"length\""), std::string::npos) << b_body;
  EXPECT_NE(b_body.find("data: [DONE]"), std::string::npos);

  bool idle = false;
  for (int i = 0; i < 500 && !idle; ++i) {
    const std::string m = get(c, "/metrics").body;
    idle = metric(m, "hylo_requests_running") == 0 && metric(m, "hylo_client_disconnects_total") >= 1;
    if (!idle) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(idle) << get(c, "/metrics").body;
  EXPECT_GE(metric(get(c, "/metrics").body, "hylo_stream_pings_total"), 1);
  const HttpReply after = post_json(c, "/v1/chat/completions", {{"messages", user("still there?")}, {"max_tokens", 3}});
  EXPECT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(server.stop(), 0) << server.log();
}

class ServeGuarded : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string model = fixture_model("qwen3moe-tiny");
    ASSERT_FALSE(model.empty());
    server_ = new ServeProcess({"-m", model, "--parallel", "2", "-c", "64", "--api-key", "sekrit", "--cors-origin",
                                "http://ui.example", "--max-body-bytes", "65536", "--alias", "tiny"});
    ASSERT_TRUE(server_->start());
  }
  static void TearDownTestSuite() {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
    delete server_;
    server_ = nullptr;
  }
  static ServeProcess* server_;
  const httplib::Headers key_ = {{"Authorization", "Bearer sekrit"}};
};
ServeProcess* ServeGuarded::server_ = nullptr;

TEST_F(ServeGuarded, ApiKeyIsRequiredExceptOnOpenRoutes) {
  auto c = server_->client();
  const json body = {{"messages", user("hi")}, {"max_tokens", 2}};
  const HttpReply none = post_json(c, "/v1/chat/completions", body);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.json["error"]["type"], "authentication_error");
  EXPECT_EQ(post_json(c, "/v1/chat/completions", body, {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(post_json(c, "/v1/chat/completions", body, {{"Authorization", "sekrit"}}).status, 401);
  const HttpReply ollama = post_json(c, "/api/chat", {{"messages", user("hi")}, {"stream", false}});
  EXPECT_EQ(ollama.status, 401);
  EXPECT_TRUE(ollama.json["error"].is_string());
  EXPECT_EQ(get(c, "/metrics").status, 401);
  for (const char* open : {"/health", "/v1/models", "/models", "/api/tags", "/api/version", "/"})
    EXPECT_EQ(get(c, open).status, 200) << open;
  EXPECT_EQ(get(c, "/v1/models").json["data"][0]["id"], "tiny");  // --alias
  // With a key, the caller is authenticated: /props may name the file.
  EXPECT_NE(get(c, "/props", key_).json["model_path"].get<std::string>().find('/'), std::string::npos);
  EXPECT_EQ(post_json(c, "/v1/chat/completions", body, key_).status, 200);
  // On one kept-alive connection, a refused request's body does not spill into the next one.
  c.set_keep_alive(true);
  EXPECT_EQ(post_json(c, "/v1/chat/completions", body).status, 401);
  EXPECT_EQ(post_json(c, "/v1/chat/completions", body, key_).status, 200);
}

TEST_F(ServeGuarded, CorsOnlyForTheGivenOrigin) {
  auto c = server_->client();
  auto pre =
      c.Options("/v1/chat/completions", {{"Origin", "http://ui.example"}, {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(pre);
  EXPECT_EQ(pre->status, 204);
  EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Origin"), "http://ui.example");
  EXPECT_NE(pre->get_header_value("Access-Control-Allow-Headers").find("Authorization"), std::string::npos);
  EXPECT_EQ(get(c, "/health", {{"Origin", "http://ui.example"}}).headers.count("Access-Control-Allow-Origin"), 1u);
  EXPECT_EQ(get(c, "/health", {{"Origin", "http://evil.example"}}).headers.count("Access-Control-Allow-Origin"), 0u);
}

TEST_F(ServeGuarded, BodyLimitAnswers413) {
  auto c = server_->client();
  const std::string big(100000, 'x');
  const HttpReply r = post_json(c, "/v1/chat/completions", {{"messages", user(big)}}, key_);
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(r.json["error"]["message"].get<std::string>().find("65536"), std::string::npos) << r.body;
}

TEST_F(ServeGuarded, TheEndOfTheContextIsLength) {
  auto c = server_->client();
  // No max_tokens: the answer runs until the 64-position context is full.
  const HttpReply r = post_json(c, "/v1/chat/completions", {{"messages", user("hi")}, {"temperature", 0}}, key_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["choices"][0]["finish_reason"], "length");
  const int total = r.json["usage"]["total_tokens"];
  EXPECT_GE(total, 64);  // the last token is emitted although no position is left to feed it
  EXPECT_LE(total, 65);
}

// The model "file" is a FIFO: loading blocks until the test opens its other end, so /health is
// caught answering 503 for certain; the load then fails and the server exits with an error.
TEST(ServeLoading, HealthIs503WhileLoadingAndAFailedLoadExits) {
  const std::string fifo = work_dir() + "/serve-loading.gguf";
  unlink(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ServeProcess server({"-m", fifo});
  ASSERT_TRUE(server.start(/*wait_ready=*/false));
  auto c = server.client();
  const HttpReply health = get(c, "/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.json["status"], "loading");
  const HttpReply chat = post_json(c, "/v1/chat/completions", {{"messages", user("hi")}});
  EXPECT_EQ(chat.status, 503);
  EXPECT_EQ(chat.json["error"]["code"], "model_loading");
  EXPECT_EQ(get(c, "/api/tags").status, 503);
  EXPECT_EQ(get(c, "/api/version").status, 200);
  const int w = open(fifo.c_str(), O_WRONLY);  // lets the server's open() return: an empty file
  ASSERT_GE(w, 0);
  close(w);
  EXPECT_EQ(server.wait_exit(), 1) << server.log();
  EXPECT_NE(server.log().find("hylo: "), std::string::npos) << server.log();
  unlink(fifo.c_str());
}

}  // namespace
}  // namespace hylo::test
