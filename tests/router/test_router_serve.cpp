// `hylo serve` routing end to end: a gateway in front of a fake upstream that fails, hangs,
// answers 429 and streams slowly or breaks off (fallbacks, explicit 502/503/504, intact and
// explicitly-ended streams, disconnects that cancel the upstream request), privacy checked in the
// fake's log, and a second `hylo serve` as the "cloud" for the size and time rules.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <fstream>
#include <future>
#include <thread>

#include "common/fixtures.h"
#include "fake_upstream.h"
#include "serve_process.h"

namespace hylo::test {
namespace {

using json = nlohmann::json;

json user(const std::string& text) { return json::array({{{"role", "user"}, {"content", text}}}); }

std::string long_text(int words) {
  std::string s;
  for (int i = 0; i < words; ++i) s += "river" + std::to_string(i % 50) + " ";
  return s;
}

std::string header(const HttpReply& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

// Data events of an SSE body (": ping" skipped), "[DONE]" kept as a string.
std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const size_t end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

std::vector<json> ndjson_lines(const std::string& body) {
  std::vector<json> out;
  size_t start = 0, nl;
  while ((nl = body.find('\n', start)) != std::string::npos) {
    if (nl > start) out.push_back(json::parse(body.substr(start, nl - start)));
    start = nl + 1;
  }
  return out;
}

std::string write_routes(const std::string& name, const std::string& text) {
  const std::string path = scratch_path(name);
  std::ofstream(path) << text;
  return path;
}

// A gateway (no local model) whose upstreams are the fake in its various moods, in the order
// `auto` tries them.
class Gateway : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string f = fake_.url();
    const std::string routes = write_routes("gateway.yaml", R"(upstreams:
  down:
    url: http://127.0.0.1:1/v1
    connect_timeout: 2
  f500:
    url: )" + f + R"(/v1
    model: fail500
  f429:
    url: )" + f + R"(/v1
    model: r429
  hang:
    url: )" + f + R"(/v1
    model: hang
    first_byte_timeout: 1
  good:
    url: )" + f + R"(/v1
    model: ok
  ollama-good:
    url: )" + f + R"(
    model: ok
  tools:
    url: )" + f + R"(/v1
    model: tools
  cut:
    url: )" + f + R"(/v1
    model: cut
  stall:
    url: )" + f + R"(/v1
    model: stall
    idle_timeout: 1
  endless:
    url: )" + f + R"(/v1
    model: endless
    max_concurrent: 1
  b400:
    url: )" + f + R"(/v1
    model: bad400
  slowhead:
    url: )" + f + R"(/v1
    model: slowhead
    first_byte_timeout: 60
)");
    gw_ = std::make_unique<ServeProcess>(std::vector<std::string>{"--routes", routes});
    ASSERT_TRUE(gw_->start()) << gw_->log();
  }
  void TearDown() override {
    if (gw_) {
      EXPECT_EQ(gw_->stop(), 0) << gw_->log();
    }
  }

  HttpReply chat(const std::string& model, const httplib::Headers& headers = {}) {
    auto c = gw_->client();
    return post_json(c, "/v1/chat/completions", {{"model", model}, {"messages", user("hi")}}, headers);
  }
  HttpReply stream(const std::string& path, const json& body, bool ndjson) {
    auto c = gw_->client();
    return post_stream(
        c, path, body, [](const std::string&) { return true; }, ndjson);
  }

  FakeUpstream fake_;
  std::unique_ptr<ServeProcess> gw_;
};

TEST_F(Gateway, FallsBackInOrderAndSaysWhere) {
  const HttpReply r = chat("auto");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["choices"][0]["message"]["content"], "Hello from fake");
  EXPECT_EQ(header(r, "X-Hylo-Route"), "good");
  EXPECT_NE(header(r, "X-Hylo-Route-Reason").find("fallback after hang failed"), std::string::npos);
  std::vector<std::string> tried;
  for (const auto& e : fake_.entries()) tried.push_back(e.model);
  EXPECT_EQ(tried, (std::vector<std::string>{"fail500", "r429", "hang", "ok"}));

  auto c = gw_->client();
  const HttpReply m = get(c, "/metrics");
  EXPECT_NE(m.body.find("hylo_route_requests_total{route=\"good\"} 1"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("hylo_upstream_failures_total{upstream=\"f500\",kind=\"http_5xx\"} 1"), std::string::npos);
  EXPECT_NE(m.body.find("hylo_upstream_failures_total{upstream=\"hang\",kind=\"timeout\"} 1"), std::string::npos);
  EXPECT_NE(m.body.find("hylo_upstream_failures_total{upstream=\"down\",kind=\"unreachable\"} 1"), std::string::npos);
  const HttpReply models = get(c, "/v1/models");
  EXPECT_NE(models.body.find("\"good\""), std::string::npos);
}

TEST_F(Gateway, ExplicitErrorsNameTheUpstream) {
  HttpReply r = chat("f500");
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_NE(r.body.find("upstream f500: HTTP 500: fake internal failure"), std::string::npos) << r.body;
  r = chat("f429");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("upstream f429: HTTP 429"), std::string::npos) << r.body;
  EXPECT_FALSE(header(r, "Retry-After").empty());
  r = chat("hang");
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_NE(r.body.find("upstream hang: no answer within 1 s"), std::string::npos) << r.body;
  r = chat("down");
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_NE(r.body.find("upstream down: cannot reach"), std::string::npos) << r.body;
  r = chat("b400");  // the request's own fault: passed on, no fallback
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("fake says the request is bad"), std::string::npos) << r.body;
  // A private request cannot run on a gateway, and says so; nothing reaches the upstream.
  const size_t before = fake_.entries().size();
  r = chat("auto", {{"X-Hylo-Private", "1"}});
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("private"), std::string::npos);
  EXPECT_EQ(header(r, "X-Hylo-Route"), "none");
  r = chat("auto", {{"X-Hylo-Private", "maybe"}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(fake_.entries().size(), before);
}

TEST_F(Gateway, StreamsPassThroughBothFamilies) {
  // OpenAI SSE, byte for byte.
  HttpReply r = stream("/v1/chat/completions", {{"model", "good"}, {"messages", user("hi")}, {"stream", true}}, false);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "X-Hylo-Route"), "good");
  std::vector<std::string> ev = sse_data(r.body);
  ASSERT_EQ(ev.size(), 7u) << r.body;
  EXPECT_EQ(json::parse(ev[1])["choices"][0]["delta"]["content"], "Hello");
  EXPECT_EQ(ev.back(), "[DONE]");

  // Ollama NDJSON to an Ollama upstream.
  r = stream("/api/chat", {{"model", "ollama-good"}, {"messages", user("hi")}}, true);
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<json> lines = ndjson_lines(r.body);
  ASSERT_EQ(lines.size(), 4u) << r.body;
  EXPECT_EQ(lines.back()["done"], true);

  // Ollama client, OpenAI upstream: translated as it streams.
  r = stream("/api/chat", {{"model", "good"}, {"messages", user("hi")}}, true);
  ASSERT_EQ(r.status, 200) << r.body;
  lines = ndjson_lines(r.body);
  ASSERT_EQ(lines.size(), 4u) << r.body;
  std::string text;
  for (const json& l : lines) text += l["message"]["content"].get<std::string>();
  EXPECT_EQ(text, "Hello from fake");
  EXPECT_EQ(lines.back()["done"], true);
  EXPECT_EQ(lines.back()["done_reason"], "stop");
  EXPECT_EQ(lines.back()["eval_count"], 3);
  EXPECT_EQ(fake_.entries().back().path, "/v1/chat/completions");
  EXPECT_EQ(fake_.entries().back().body["stream_options"]["include_usage"], true);

  // ... with reasoning and a tool call in fragments.
  r = stream("/api/chat", {{"model", "tools"}, {"messages", user("weather?")}}, true);
  lines = ndjson_lines(r.body);
  ASSERT_EQ(lines.size(), 3u) << r.body;
  EXPECT_EQ(lines[0]["message"]["thinking"], "need weather");
  EXPECT_EQ(lines[1]["message"]["tool_calls"][0]["function"]["arguments"]["city"], "Paris");
  EXPECT_EQ(lines[2]["done"], true);
  EXPECT_EQ(lines[2]["eval_count"], 4);

  // Ollama generate, whole answer, translated.
  auto c = gw_->client();
  r = post_json(c, "/api/generate", {{"model", "good"}, {"prompt", "hi"}, {"stream", false}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["response"], "Hello from fake");
  EXPECT_EQ(r.json["done"], true);
}

TEST_F(Gateway, BrokenStreamsEndWithAnExplicitError) {
  HttpReply r = stream("/v1/chat/completions", {{"model", "cut"}, {"messages", user("hi")}, {"stream", true}}, false);
  std::vector<std::string> ev = sse_data(r.body);
  ASSERT_GE(ev.size(), 3u) << r.body;
  const json last = json::parse(ev.back());
  ASSERT_TRUE(last.contains("error")) << r.body;
  EXPECT_NE(last["error"]["message"].get<std::string>().find("upstream cut"), std::string::npos);

  r = stream("/api/chat", {{"model", "cut"}, {"messages", user("hi")}}, true);
  std::vector<json> lines = ndjson_lines(r.body);
  ASSERT_FALSE(lines.empty());
  EXPECT_TRUE(lines.back().contains("error")) << r.body;

  r = stream("/v1/chat/completions", {{"model", "stall"}, {"messages", user("hi")}, {"stream", true}}, false);
  ev = sse_data(r.body);
  ASSERT_FALSE(ev.empty());
  EXPECT_NE(ev.back().find("idle timeout"), std::string::npos) << r.body;
}

TEST_F(Gateway, ClientDisconnectCancelsTheUpstreamRequest) {
  auto c = gw_->client();
  int seen = 0;
  post_stream(c, "/v1/chat/completions", {{"model", "endless"}, {"messages", user("hi")}, {"stream", true}},
              [&](const std::string&) { return ++seen < 3; });
  EXPECT_EQ(seen, 3);
  EXPECT_TRUE(fake_.wait_for_hangups(1, 30)) << "the upstream stream kept running after the client left";
}

TEST_F(Gateway, ConcurrencyLimitPerUpstream) {
  std::promise<void> streaming;
  std::atomic<bool> leave{false};
  std::thread first([&] {
    auto c = gw_->client();
    bool signalled = false;
    post_stream(c, "/v1/chat/completions", {{"model", "endless"}, {"messages", user("hi")}, {"stream", true}},
                [&](const std::string&) {
                  if (!signalled) streaming.set_value();
                  signalled = true;
                  return !leave.load();
                });
    if (!signalled) streaming.set_value();
  });
  streaming.get_future().wait();
  const HttpReply r = chat("endless");  // its one place is taken
  leave = true;
  first.join();
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("max_concurrent"), std::string::npos) << r.body;
  EXPECT_TRUE(fake_.wait_for_hangups(1, 30));
}

// A client that gives up while the upstream is still prefilling, then sends the same request
// again: the retry takes over the first upstream request instead of starting a second one.
TEST_F(Gateway, RetryTakesOverTheAbandonedUpstreamRequest) {
  const json body = {{"model", "slowhead"}, {"messages", user("a long job")}};
  const std::string text = body.dump();
  const int fd = connect_loopback(gw_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_bytes(fd,
                         "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                         "application/json\r\nContent-Length: " +
                             std::to_string(text.size()) + "\r\n\r\n" + text));
  auto c = gw_->client();
  // Bounded polls until the router holds the request upstream, then the client gives up.
  bool sent = false;
  for (int i = 0; i < 2000 && !sent; ++i) {
    sent = !fake_.entries().empty();
    if (!sent) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(sent);
  close(fd);
  bool parked = false;
  for (int i = 0; i < 2000 && !parked; ++i) {
    parked = get(c, "/metrics").body.find("hylo_route_events_total{event=\"parked\"} 1") != std::string::npos;
    if (!parked) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(parked);
  fake_.release_slow();
  const HttpReply r = post_json(c, "/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["choices"][0]["message"]["content"], "Hello from fake");
  EXPECT_EQ(fake_.entries().size(), 1u) << "the retry started a second upstream request";
  EXPECT_NE(get(c, "/metrics").body.find("hylo_route_events_total{event=\"coalesced\"} 1"), std::string::npos);
}

// -m with one upstream: privacy and size decided against the local model's context (256).
TEST(RouterLocal, PrivateNeverSentUpstreamAndSizeRule) {
  FakeUpstream fake;
  const std::string model = fixture_model("qwen3moe-tiny");
  ASSERT_FALSE(model.empty());
  setenv("HYLO_TEST_FAKE_KEY", "fake-key-4711", 1);
  ServeProcess srv(
      {"-m", model, "-c", "256", "--upstream", "fake=" + fake.url() + "/v1,model=ok,key-env=HYLO_TEST_FAKE_KEY"});
  ASSERT_TRUE(srv.start()) << srv.log();
  auto c = srv.client();
  const json long_body = {{"model", "qwen"}, {"messages", user(long_text(400))}, {"max_tokens", 4}};

  HttpReply r = post_json(c, "/v1/chat/completions", long_body, {{"X-Hylo-Private", "1"}});
  EXPECT_EQ(r.status, 400) << r.body;  // the local context error, explicitly
  EXPECT_EQ(header(r, "X-Hylo-Route"), "local");
  EXPECT_TRUE(fake.entries().empty()) << "a private request reached the upstream";
  r = post_json(c, "/api/chat", {{"model", "cloud"}, {"messages", user("hi")}, {"stream", false}},
                {{"X-Hylo-Private", "1"}});
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_TRUE(fake.entries().empty()) << "a private request reached the upstream";

  r = post_json(c, "/v1/chat/completions", long_body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "X-Hylo-Route"), "fake");
  EXPECT_NE(header(r, "X-Hylo-Route-Reason").find(">= local context 256"), std::string::npos);
  ASSERT_EQ(fake.entries().size(), 1u);
  EXPECT_EQ(fake.entries()[0].authorization, "Bearer fake-key-4711");
  EXPECT_FALSE(fake.entries()[0].has_private_header);
  EXPECT_EQ(srv.log().find("fake-key-4711"), std::string::npos) << "the API key was logged";

  r = post_json(c, "/v1/chat/completions", {{"model", "qwen"}, {"messages", user("hi")}, {"max_tokens", 2}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "X-Hylo-Route"), "local");
  EXPECT_EQ(fake.entries().size(), 1u);
  EXPECT_EQ(srv.stop(), 0);
}

// Clients of the routes file, by API key: a private client's long prompt never leaves the
// machine whatever its headers say; another client's time budget sends a slow prefill upstream.
TEST(RouterLocal, PerApiKeyPrivacyAndBudget) {
  FakeUpstream fake;
  const std::string model = fixture_model("qwen3moe-tiny");
  ASSERT_FALSE(model.empty());
  setenv("HYLO_TEST_KEY_ALICE", "alice-key-271828", 1);
  setenv("HYLO_TEST_KEY_CI", "ci-key-314159", 1);
  const std::string routes = write_routes("clients.yaml", R"(local:
  prefill_tokens_per_second: 1
clients:
  alice: {key_env: HYLO_TEST_KEY_ALICE, private: true}
  ci: {key_env: HYLO_TEST_KEY_CI, timeout: 0.000001}
)");
  ServeProcess srv({"-m", model, "-c", "1024", "--routes", routes, "--upstream", "fake=" + fake.url() + "/v1,model=ok"});
  ASSERT_TRUE(srv.start()) << srv.log();
  auto c = srv.client();
  const json body = {{"model", "auto"}, {"messages", user(long_text(200))}, {"max_tokens", 2}};

  HttpReply r = post_json(c, "/v1/chat/completions", body);
  EXPECT_EQ(r.status, 401) << r.body;  // clients bring keys: a request without one is refused
  r = post_json(c, "/v1/chat/completions", body, {{"Authorization", "Bearer wrong"}});
  EXPECT_EQ(r.status, 401) << r.body;

  r = post_json(c, "/v1/chat/completions", body,
                {{"Authorization", "Bearer alice-key-271828"}, {"X-Hylo-Private", "0"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "X-Hylo-Route"), "local");
  EXPECT_TRUE(fake.entries().empty()) << "a private client's request reached the upstream";

  // No prefill (at the speed measured above, or the configured 1 tok/s) meets ci's budget.
  r = post_json(c, "/v1/chat/completions", body, {{"Authorization", "Bearer ci-key-314159"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "X-Hylo-Route"), "fake");
  EXPECT_NE(header(r, "X-Hylo-Route-Reason").find("budget of client 'ci'"), std::string::npos);
  ASSERT_EQ(fake.entries().size(), 1u);
  EXPECT_NE(fake.entries()[0].authorization, "Bearer ci-key-314159") << "a client's key was sent upstream";

  r = post_json(c, "/v1/chat/completions", body,
                {{"Authorization", "Bearer ci-key-314159"}, {"X-Hylo-Timeout", "100000"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "X-Hylo-Route"), "local");
  EXPECT_EQ(fake.entries().size(), 1u);
  EXPECT_EQ(srv.stop(), 0);
  EXPECT_EQ(srv.log().find("alice-key-271828"), std::string::npos) << "a client's key was logged";
  EXPECT_EQ(srv.log().find("ci-key-314159"), std::string::npos) << "a client's key was logged";

  unsetenv("HYLO_TEST_KEY_CI");  // a client without its key: the server refuses to start
  std::string out;
  EXPECT_NE(run_command(hylo_binary() + " serve --port 0 -m " + model + " --routes " + routes, &out), 0) << out;
  EXPECT_NE(out.find("HYLO_TEST_KEY_CI"), std::string::npos) << out;
}

// Many local models (--models-dir) and upstream routes in one name space: a local name runs here,
// an upstream's name or "cloud" goes there, anything else is a 404 listing the local names.
TEST(RouterLocal, LocalModelsAndUpstreamsShareOneNameSpace) {
  FakeUpstream fake;
  const std::string model = fixture_model("qwen3moe-tiny-q8");
  ASSERT_FALSE(model.empty());
  const std::string dir = scratch_path("router-models");
  std::filesystem::create_directories(dir);
  std::filesystem::create_symlink(model, dir + "/coder.gguf");
  ServeProcess srv({"--models-dir", dir, "-c", "256", "--parallel", "1", "--upstream",
                    "fake=" + fake.url() + "/v1,model=ok"});
  ASSERT_TRUE(srv.start()) << srv.log();
  auto c = srv.client();
  HttpReply r = post_json(c, "/v1/chat/completions", {{"model", "coder"}, {"messages", user("hi")}, {"max_tokens", 2}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["model"], "coder");
  EXPECT_EQ(header(r, "X-Hylo-Route"), "local");
  EXPECT_TRUE(fake.entries().empty());
  for (const char* name : {"fake", "cloud"}) {
    r = post_json(c, "/v1/chat/completions", {{"model", name}, {"messages", user("hi")}, {"max_tokens", 2}});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(header(r, "X-Hylo-Route"), "fake");
  }
  EXPECT_EQ(fake.entries().size(), 2u);
  r = post_json(c, "/api/chat", {{"model", "gpt-4o"}, {"messages", user("hi")}, {"stream", false}});
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body.find("coder"), std::string::npos) << r.body;
  EXPECT_EQ(fake.entries().size(), 2u);
  const HttpReply models = get(c, "/v1/models");
  std::set<std::string> ids;
  for (const auto& m : models.json["data"]) ids.insert(m["id"]);
  EXPECT_TRUE(ids.count("coder") && ids.count("fake") && ids.count("cloud")) << models.body;
  const HttpReply tags = get(c, "/api/tags");
  std::set<std::string> names;
  for (const auto& m : tags.json["models"]) names.insert(m["name"]);
  EXPECT_TRUE(names.count("coder") && names.count("fake")) << tags.body;
  EXPECT_EQ(srv.stop(), 0);
}

// A second `hylo serve` as the cloud: long prompts and tight time budgets go there, streamed
// intact in both API families.
TEST(RouterLocal, SecondHyloServeAsTheCloud) {
  const std::string model = fixture_model("qwen3moe-tiny");
  ASSERT_FALSE(model.empty());
  ServeProcess cloud({"-m", model, "-c", "2048", "--parallel", "2"});
  ASSERT_TRUE(cloud.start()) << cloud.log();
  ServeProcess srv({"-m", model, "-c", "256", "--upstream", "cloud=" + cloud.url() + "/v1,ctx=2048"});
  ASSERT_TRUE(srv.start()) << srv.log();
  auto c = srv.client();

  HttpReply r =
      post_stream(c, "/v1/chat/completions",
                  {{"model", "auto"}, {"messages", user(long_text(400))}, {"max_tokens", 5}, {"stream", true}},
                  [](const std::string&) { return true; });
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "X-Hylo-Route"), "cloud");
  std::vector<std::string> ev = sse_data(r.body);
  ASSERT_GE(ev.size(), 3u) << r.body;
  EXPECT_EQ(ev.back(), "[DONE]");

  r = post_stream(
      c, "/api/chat", {{"model", "auto"}, {"messages", user(long_text(400))}, {"options", {{"num_predict", 5}}}},
      [](const std::string&) { return true; }, /*ndjson=*/true);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "X-Hylo-Route"), "cloud");
  std::vector<json> lines = ndjson_lines(r.body);
  ASSERT_FALSE(lines.empty()) << r.body;
  EXPECT_EQ(lines.back()["done"], true) << r.body;
  EXPECT_EQ(lines.back()["eval_count"], 5) << r.body;
  EXPECT_GT(lines.back()["prompt_eval_count"].get<int>(), 256);

  // Time: once this server has measured its prefill speed, a budget no prefill can meet goes up.
  r = post_json(c, "/v1/chat/completions", {{"model", "auto"}, {"messages", user("hello there")}, {"max_tokens", 2}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "X-Hylo-Route"), "local");
  r = post_json(c, "/v1/chat/completions", {{"model", "auto"}, {"messages", user("hello there")}, {"max_tokens", 2}},
                {{"X-Hylo-Timeout", "0.0000001"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(header(r, "X-Hylo-Route"), "cloud");
  EXPECT_NE(header(r, "X-Hylo-Route-Reason").find("time: estimated local prefill"), std::string::npos);
  r = post_json(c, "/v1/chat/completions", {{"model", "local"}, {"messages", user("hello there")}, {"max_tokens", 2}},
                {{"X-Hylo-Timeout", "0.0000001"}});
  EXPECT_EQ(header(r, "X-Hylo-Route"), "local");

  const HttpReply m = get(c, "/metrics");
  EXPECT_NE(m.body.find("hylo_route_requests_total{route=\"cloud\"} 3"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("hylo_route_requests_total{route=\"local\"} 2"), std::string::npos) << m.body;
  EXPECT_EQ(srv.stop(), 0);
  EXPECT_EQ(cloud.stop(), 0);
}

TEST(RouterExplain, PodcastNumbers) {
  std::string out;
  const int rc = run_command(hylo_binary() +
                                 " route --explain --upstream cloud=https://api.example.com/v1,ctx=1000000"
                                 " --prompt-tokens 146760 --local-ctx 262144 --prefill-speed 400 --timeout 300",
                             &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("route: cloud"), std::string::npos) << out;
  EXPECT_NE(out.find("366.9 s"), std::string::npos) << out;
  EXPECT_NE(out.find("fallbacks: local"), std::string::npos) << out;
  run_command(hylo_binary() +
                  " route --explain --upstream cloud=https://api.example.com/v1 --prompt-tokens 146760"
                  " --local-ctx 32768 --private",
              &out);
  EXPECT_NE(out.find("route: local"), std::string::npos) << out;
}

}  // namespace
}  // namespace hylo::test
