// `hylo serve` end to end on a fixture model (random weights: the text is gibberish, but
// deterministic): listing endpoints, batch-invariant concurrent streams, SSE shape, JSON mode,
// several choices, tool calls through the real engine (test hook), validation, context overflow
// on both API families, stop strings, metrics, and a non-streamed client hanging up.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <thread>

#include "common/fixtures.h"
#include "serve_process.h"

namespace hylo::test {
namespace {

using json = nlohmann::json;

json user(const std::string& text) { return json::array({{{"role", "user"}, {"content", text}}}); }

// Value of an unlabelled metric in Prometheus text ("name value" lines); -1 when absent.
double metric(const std::string& text, const std::string& name) {
  const std::string key = "\n" + name + " ";
  const size_t at = text.find(key);
  return at == std::string::npos ? -1 : std::atof(text.c_str() + at + key.size());
}

// Parsed "data: {...}" events of a stream (": ping" and "[DONE]" skipped).
std::vector<json> data_events(const std::string& body) {
  std::vector<json> out;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const size_t end = body.find("\n\n", pos);
    const std::string data = body.substr(pos + 6, end - pos - 6);
    if (data != "[DONE]") out.push_back(json::parse(data));
    pos = end;
  }
  return out;
}

class ServeMain : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string model = fixture_model("qwen3moe-tiny");
    ASSERT_FALSE(model.empty());
    server_ = new ServeProcess({"-m", model, "--parallel", "8", "-c", "4096", "--max-queue", "32", "--test-hooks"});
    ASSERT_TRUE(server_->start());
  }
  static void TearDownTestSuite() {
    if (server_) {
      EXPECT_EQ(server_->stop(), 0) << server_->log();
    }
    delete server_;
    server_ = nullptr;
  }
  httplib::Client client() { return server_->client(); }

  static ServeProcess* server_;
};
ServeProcess* ServeMain::server_ = nullptr;

TEST_F(ServeMain, HealthModelsAndListings) {
  auto c = client();
  EXPECT_EQ(get(c, "/health").json["status"], "ok");
  const HttpReply models = get(c, "/v1/models");
  ASSERT_EQ(models.status, 200);
  const json& m = models.json["data"][0];
  EXPECT_EQ(m["id"], "qwen3moe-tiny.gguf");
  EXPECT_EQ(m["owned_by"], "hylo");
  EXPECT_EQ(m["meta"]["n_ctx"], 4096);
  EXPECT_EQ(m["meta"]["n_ctx_train"], 262144);
  EXPECT_EQ(get(c, "/props").json["total_slots"], 8);
  EXPECT_EQ(get(c, "/props").json["cache_type_k"], "f16");
  EXPECT_EQ(get(c, "/props").json["rope_scaling"]["type"], "none");
  EXPECT_NE(get(c, "/").body.find("hylo is running"), std::string::npos);
  EXPECT_EQ(get(c, "/api/version").json["version"], HYLO_VERSION);
  const HttpReply show = post_json(c, "/api/show", {{"model", "whatever"}});
  ASSERT_EQ(show.status, 200);
  EXPECT_EQ(show.json["model_info"]["general.architecture"], "qwen3moe");
  EXPECT_EQ(show.json["model_info"]["qwen3moe.context_length"], 262144);
  EXPECT_EQ(show.json["model_info"]["qwen3moe.embedding_length"], 128);
  EXPECT_EQ(show.json["model_info"]["qwen3moe.block_count"], 4);
  EXPECT_TRUE(show.json["model_info"]["tokenizer.ggml.tokens"].is_null());  // long arrays left out
  EXPECT_EQ(get(c, "/api/ps").json["models"][0]["context_length"], 4096);
  EXPECT_EQ(get(c, "/api/tags").json["models"][0]["name"], "qwen3moe-tiny.gguf");
}

// The issue's batch-invariance contract: greedy tokens (and their log-probabilities) of each of 8
// concurrent streamed requests are exactly those of the same request run alone.
// `tweak(body, i, together)` adjusts request i of the solo (false) or the concurrent (true) runs.
void expect_batch_invariance(const ServeProcess& server, const std::function<void(json&, int, bool)>& tweak = nullptr) {
  constexpr int kRequests = 8;
  auto request = [](int i) {
    return json{{"messages", user("Request " + std::to_string(i) + std::string(static_cast<size_t>(i) * 7, '!') +
                                  " tell me about batching")},
                {"temperature", 0},
                {"max_tokens", 16},
                {"logprobs", true}};
  };
  struct Tokens {
    std::string text;
    std::vector<std::pair<std::string, double>> tokens;
  };
  std::vector<Tokens> solo(kRequests), together(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    auto c = server.client();
    json body = request(i);
    if (tweak) tweak(body, i, false);
    const HttpReply r = post_json(c, "/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200) << r.body;
    solo[i].text = r.json["choices"][0]["message"]["content"];
    for (const auto& t : r.json["choices"][0]["logprobs"]["content"])
      solo[i].tokens.emplace_back(t["token"], t["logprob"]);
    ASSERT_EQ(solo[i].tokens.size(), 16u);
  }
  std::vector<std::thread> threads;
  std::vector<int> status(kRequests, 0);
  for (int i = 0; i < kRequests; ++i) {
    threads.emplace_back([&, i] {
      auto c = server.client();
      json body = request(i);
      if (tweak) tweak(body, i, true);
      body["stream"] = true;
      const HttpReply r = post_stream(c, "/v1/chat/completions", body, [](const std::string&) { return true; });
      status[i] = r.status;
      for (const json& chunk : data_events(r.body)) {
        if (chunk["choices"].empty()) continue;
        const json& ch = chunk["choices"][0];
        if (ch["delta"].contains("content")) together[i].text += ch["delta"]["content"].get<std::string>();
        if (ch["logprobs"].is_object())
          for (const auto& t : ch["logprobs"]["content"]) together[i].tokens.emplace_back(t["token"], t["logprob"]);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(status[i], 200);
    EXPECT_EQ(together[i].text, solo[i].text) << "request " << i;
    EXPECT_EQ(together[i].tokens, solo[i].tokens) << "request " << i;
  }
}

TEST_F(ServeMain, ConcurrentStreamsMatchSoloRuns) { expect_batch_invariance(*server_); }

// The same on the hybrid architecture (DeltaNet recurrent state, prefix snapshots).
TEST(ServeHybrid, ConcurrentStreamsMatchSoloRuns) {
  const std::string model = fixture_model("qwen3next-tiny");
  ASSERT_FALSE(model.empty());
  ServeProcess server({"-m", model, "--parallel", "8", "-c", "1024"});
  ASSERT_TRUE(server.start());
  expect_batch_invariance(server);
  EXPECT_EQ(server.stop(), 0) << server.log();
}

// With a q8_0 KV cache, and a context twice the trained one (YaRN turns on by itself): the same
// invariance, and /props and /api/show say what runs.
TEST(ServeQuantizedKv, ConcurrentStreamsMatchSoloRunsAndPropsSayWhatRuns) {
  const std::string model = fixture_model("qwen3next-tiny");
  ASSERT_FALSE(model.empty());
  ServeProcess server({"-m", model, "--parallel", "8", "-c", "524288", "-ctk", "q8_0", "-ctv", "q8_0"});
  ASSERT_TRUE(server.start());
  EXPECT_TRUE(server.wait_for_log("turned on automatically", 30)) << server.log();
  auto c = server.client();
  const json props = get(c, "/props").json;
  EXPECT_EQ(props["cache_type_k"], "q8_0");
  EXPECT_EQ(props["cache_type_v"], "q8_0");
  EXPECT_EQ(props["rope_scaling"]["type"], "yarn");
  EXPECT_EQ(props["rope_scaling"]["factor"], 2.0);
  EXPECT_EQ(props["rope_scaling"]["original_context_length"], 262144);
  EXPECT_NEAR(props["rope_scaling"]["mscale"].get<double>(), 1 + 0.1 * std::log(2.0), 1e-6);
  const json info = post_json(c, "/api/show", {{"model", "x"}}).json["model_info"];
  EXPECT_EQ(info["hylo.cache_type_k"], "q8_0");
  EXPECT_EQ(info["hylo.rope_scaling.type"], "yarn");
  EXPECT_EQ(info["hylo.rope_scaling.factor"], 2.0);
  expect_batch_invariance(server);
  EXPECT_EQ(server.stop(), 0) << server.log();
}

// Speculative decoding in every slot (--spec mtp): the solo runs draft nothing
// ("speculative.n_max": 0), the concurrent ones every other request with the server's 2 drafts;
// tokens and log-probabilities are the same, and timings and /metrics count the drafts.
TEST(ServeSpeculative, StreamsWithAndWithoutDraftsMatchPlainRuns) {
  const std::string model = fixture_model("qwen3next-tiny-mtp");
  ASSERT_FALSE(model.empty());
  ServeProcess server({"-m", model, "--parallel", "8", "-c", "1024", "--spec", "mtp"});
  ASSERT_TRUE(server.start());
  expect_batch_invariance(server, [](json& body, int i, bool together) {
    if (!together || i % 2 == 1) body["speculative.n_max"] = 0;
  });
  auto c = server.client();
  const HttpReply r =
      post_json(c, "/v1/chat/completions", json{{"messages", user("count")}, {"temperature", 0}, {"max_tokens", 12}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_GT(r.json["timings"]["draft_n"].get<int>(), 0) << r.body;
  EXPECT_TRUE(r.json["timings"].contains("draft_acceptance_rate")) << r.body;
  const std::string metrics = get(c, "/metrics").body;
  EXPECT_GT(metric(metrics, "hylo_draft_tokens_total"), 0) << metrics;
  EXPECT_GE(metric(metrics, "hylo_draft_acceptance_rate"), 0) << metrics;
  const HttpReply bad =
      post_json(c, "/v1/chat/completions", json{{"messages", user("x")}, {"max_tokens", 2}, {"speculative.n_max", 99}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(server.stop(), 0) << server.log();
}

// Two conversations taking turns on two slots of the hybrid model: A's second turn restores the
// state of its first prompt (prefix cache), and every place that reports it says so.
TEST(ServeHybrid, PrefixCacheReuseIsReported) {
  const std::string model = fixture_model("qwen3next-tiny");
  ASSERT_FALSE(model.empty());
  ServeProcess server({"-m", model, "--parallel", "2", "-c", "2048", "--cache-ram", "64M", "--cache-interval", "64"});
  ASSERT_TRUE(server.start());
  auto c = server.client();
  std::string long_text;
  for (int i = 0; i < 120; ++i) long_text += "word" + std::to_string(i) + " ";
  const json a1 = user("A: " + long_text);
  const HttpReply r1 = post_json(c, "/v1/chat/completions", {{"messages", a1}, {"max_tokens", 3}, {"temperature", 0}});
  ASSERT_EQ(r1.status, 200) << r1.body;
  const json first = json::parse(r1.body);
  ASSERT_EQ(
      post_json(c, "/v1/chat/completions", {{"messages", user("B: another conversation")}, {"max_tokens", 3}}).status,
      200);
  json a2 = a1;
  a2.push_back({{"role", "assistant"}, {"content", first["choices"][0]["message"]["content"]}});
  a2.push_back({{"role", "user"}, {"content", "and then?"}});
  const HttpReply r2 = post_json(c, "/v1/chat/completions", {{"messages", a2}, {"max_tokens", 3}, {"temperature", 0}});
  ASSERT_EQ(r2.status, 200) << r2.body;
  const json second = json::parse(r2.body);
  const int64_t prompt1 = first["usage"]["prompt_tokens"];
  const int64_t cached = second["usage"]["prompt_tokens_details"]["cached_tokens"];
  EXPECT_GE(cached, prompt1 / 64 * 64 - 64) << r2.body;
  EXPECT_LT(cached, second["usage"]["prompt_tokens"].get<int64_t>());
  EXPECT_EQ(second["timings"]["cache_n"], cached);
  const HttpReply o =
      post_json(c, "/api/chat", {{"messages", a2}, {"stream", false}, {"options", {{"num_predict", 2}}}});
  ASSERT_EQ(o.status, 200) << o.body;
  EXPECT_GE(json::parse(o.body)["prompt_cached_count"].get<int64_t>(), cached);
  const std::string m = get(c, "/metrics").body;
  EXPECT_GE(metric(m, "hylo_prefix_cache_hits_total"), 1);
  EXPECT_GE(metric(m, "hylo_prefix_cache_tokens_reused_total"), static_cast<double>(cached));
  EXPECT_GT(metric(m, "hylo_prefix_cache_checkpoints"), 0);
  EXPECT_EQ(metric(m, "hylo_prefix_cache_budget_bytes"), 64.0 * 1024 * 1024);
  EXPECT_NE(m.find("hylo_prefix_cache_bytes{tier=\"ram\"}"), std::string::npos);
  EXPECT_EQ(server.stop(), 0) << server.log();
  EXPECT_NE(server.log().find(fmt::format("({} cached)", cached)), std::string::npos) << server.log();
}

TEST_F(ServeMain, StreamedChunksAndUsage) {
  auto c = client();
  const HttpReply r = post_stream(c, "/v1/chat/completions",
                                  {{"messages", user("hi")},
                                   {"max_tokens", 5},
                                   {"temperature", 0},
                                   {"stream", true},
                                   {"stream_options", {{"include_usage", true}}}},
                                  [](const std::string&) { return true; });
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.headers.find("Content-Type")->second.find("text/event-stream"), std::string::npos);
  const std::vector<json> chunks = data_events(r.body);
  ASSERT_GE(chunks.size(), 3u);
  EXPECT_EQ(chunks.front()["object"], "chat.completion.chunk");
  EXPECT_EQ(chunks.front()["choices"][0]["delta"]["role"], "assistant");
  const json& last_choice = chunks[chunks.size() - 2]["choices"][0];
  EXPECT_EQ(last_choice["finish_reason"], "length");
  const json& usage = chunks.back();
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 5);
  EXPECT_EQ(usage["usage"]["total_tokens"], usage["usage"]["prompt_tokens"].get<int>() + 5);
  EXPECT_NE(r.body.rfind("data: [DONE]\n\n"), std::string::npos);
}

TEST_F(ServeMain, JsonModeAlwaysGivesAnObject) {
  auto c = client();
  for (int max_tokens : {2, 7, 25}) {
    for (int seed = 1; seed <= 2; ++seed) {
      const HttpReply r = post_json(c, "/v1/chat/completions",
                                    {{"messages", user("Give me JSON")},
                                     {"max_tokens", max_tokens},
                                     {"temperature", 1},
                                     {"seed", seed},
                                     {"response_format", {{"type", "json_object"}}}});
      ASSERT_EQ(r.status, 200) << r.body;
      const std::string content = r.json["choices"][0]["message"]["content"];
      EXPECT_TRUE(json::parse(content, nullptr, false).is_object()) << max_tokens << ": " << content;
    }
  }
  const HttpReply o = post_json(c, "/api/generate",
                                {{"prompt", "JSON please"},
                                 {"format", "json"},
                                 {"stream", false},
                                 {"options", {{"num_predict", 12}, {"seed", 5}, {"temperature", 1}}}});
  ASSERT_EQ(o.status, 200) << o.body;
  EXPECT_TRUE(json::parse(o.json["response"].get<std::string>(), nullptr, false).is_object()) << o.body;
}

TEST_F(ServeMain, SeveralChoicesUseSeedPlusIndex) {
  auto c = client();
  const json body = {{"messages", user("pick")}, {"n", 3}, {"seed", 11}, {"temperature", 1}, {"max_tokens", 6}};
  const HttpReply a = post_json(c, "/v1/chat/completions", body);
  ASSERT_EQ(a.status, 200) << a.body;
  ASSERT_EQ(a.json["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(a.json["choices"][i]["index"], i);
    json one = body;
    one["n"] = 1;
    one["seed"] = 11 + i;
    const HttpReply b = post_json(c, "/v1/chat/completions", one);
    EXPECT_EQ(b.json["choices"][0]["message"]["content"], a.json["choices"][i]["message"]["content"]) << i;
  }
  EXPECT_EQ(a.json["usage"]["completion_tokens"], 18);
}

const char* kForcedCall =
    "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";

json weather_tools() {
  return json::array(
      {{{"type", "function"},
        {"function",
         {{"name", "get_weather"},
          {"description", "Current weather"},
          {"parameters",
           {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}, {"required", {"city"}}}}}}}});
}

// The model's output is forced to a Hermes tool call (--test-hooks): it goes through the engine,
// the output parser and both answer forms like any model output.
TEST_F(ServeMain, ToolCallsInAnswersAndStreams) {
  auto c = client();
  json body = {
      {"messages", user("weather in Paris?")}, {"tools", weather_tools()}, {"test_forced_output", kForcedCall}};
  const HttpReply whole = post_json(c, "/v1/chat/completions", body);
  ASSERT_EQ(whole.status, 200) << whole.body;
  const json& choice = whole.json["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_TRUE(choice["message"]["content"].is_null());
  const json& call = choice["message"]["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_EQ(json::parse(call["function"]["arguments"].get<std::string>()), json({{"city", "Paris"}}));
  EXPECT_EQ(call["id"].get<std::string>().rfind("call_", 0), 0u);

  body["stream"] = true;
  const HttpReply streamed = post_stream(c, "/v1/chat/completions", body, [](const std::string&) { return true; });
  // OpenAI's form: the first delta names the call, the next ones carry pieces of its arguments.
  std::vector<json> call_deltas;
  std::string finish;
  for (const json& chunk : data_events(streamed.body)) {
    const json& ch = chunk["choices"][0];
    if (ch["delta"].contains("tool_calls")) call_deltas.push_back(ch["delta"]["tool_calls"][0]);
    if (ch["finish_reason"].is_string()) finish = ch["finish_reason"];
  }
  // The arguments stream as the model writes them (a forced token at a time): several pieces,
  // which add up to exactly the whole answer's arguments.
  ASSERT_GE(call_deltas.size(), 3u) << streamed.body;
  EXPECT_EQ(call_deltas[0]["index"], 0);
  EXPECT_EQ(call_deltas[0]["function"]["name"], "get_weather");
  EXPECT_EQ(call_deltas[0]["function"]["arguments"], "");
  EXPECT_EQ(call_deltas[0]["id"].get<std::string>().rfind("call_", 0), 0u);
  std::string arguments;
  for (size_t i = 1; i < call_deltas.size(); ++i) {
    EXPECT_EQ(call_deltas[i]["index"], 0);
    EXPECT_FALSE(call_deltas[i].contains("id"));
    EXPECT_FALSE(call_deltas[i]["function"].contains("name"));
    arguments += call_deltas[i]["function"]["arguments"].get<std::string>();
  }
  EXPECT_EQ(arguments, call["function"]["arguments"].get<std::string>());
  EXPECT_EQ(arguments, R"({"city": "Paris"})");
  EXPECT_EQ(finish, "tool_calls");

  const HttpReply ollama = post_json(c, "/api/chat",
                                     {{"messages", user("weather?")},
                                      {"tools", weather_tools()},
                                      {"stream", false},
                                      {"test_forced_output", kForcedCall}});
  ASSERT_EQ(ollama.status, 200) << ollama.body;
  EXPECT_EQ(ollama.json["message"]["tool_calls"][0]["function"]["arguments"]["city"], "Paris");
  EXPECT_EQ(ollama.json["done_reason"], "stop");
}

// An XML call (Qwen3-Coder's form, accepted in the Hermes family too) streams from its
// <function= tag, a string value while it is written.
TEST_F(ServeMain, XmlToolCallStreamsItsValues) {
  auto c = client();
  json body = {{"messages", user("weather in San Francisco?")},
               {"tools", weather_tools()},
               {"test_forced_output",
                "<tool_call>\n<function=get_weather>\n<parameter=city>\nSan Francisco, California, USA\n</parameter>\n"
                "</function>\n</tool_call>"}};
  const HttpReply whole = post_json(c, "/v1/chat/completions", body);
  ASSERT_EQ(whole.status, 200) << whole.body;
  const std::string expected = whole.json["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"];
  EXPECT_EQ(expected, R"({"city":"San Francisco, California, USA"})");

  body["stream"] = true;
  const HttpReply streamed = post_stream(c, "/v1/chat/completions", body, [](const std::string&) { return true; });
  std::vector<json> call_deltas;
  for (const json& chunk : data_events(streamed.body)) {
    const json& ch = chunk["choices"][0];
    if (ch["delta"].contains("tool_calls")) call_deltas.push_back(ch["delta"]["tool_calls"][0]);
  }
  ASSERT_GE(call_deltas.size(), 4u) << streamed.body;  // the name, then `{"city":"`, value pieces, `"}`
  EXPECT_EQ(call_deltas[0]["function"]["name"], "get_weather");
  std::string arguments;
  for (size_t i = 1; i < call_deltas.size(); ++i)
    arguments += call_deltas[i]["function"]["arguments"].get<std::string>();
  EXPECT_EQ(arguments, expected);
  // The value came in more than one piece.
  EXPECT_NE(call_deltas[1]["function"]["arguments"].get<std::string>().find("{\"city\":\""), std::string::npos);
  EXPECT_EQ(call_deltas[1]["function"]["arguments"].get<std::string>().find("USA"), std::string::npos);
}

// The request side of a tool round trip: tools, the assistant's call and the tool's result all
// reach the prompt, and such a history is accepted for generation.
// tool_choice "required" or a named function is enforced while generating: even the fixture
// model's random weights produce a complete call, with JSON arguments, to an allowed function.
TEST_F(ServeMain, ToolChoiceIsEnforced) {
  auto c = client();
  json tools = weather_tools();
  tools.push_back(
      {{"type", "function"},
       {"function", {{"name", "get_time"}, {"parameters", {{"type", "object"}, {"properties", json::object()}}}}}});
  const std::vector<std::pair<json, std::vector<std::string>>> cases = {
      {"required", {"get_weather", "get_time"}},
      {{{"type", "function"}, {"function", {{"name", "get_time"}}}}, {"get_time"}},
  };
  for (const auto& [choice, allowed] : cases) {
    for (int seed = 1; seed <= 3; ++seed) {
      json body = {{"messages", user("what now?")},
                   {"tools", tools},
                   {"tool_choice", choice},
                   {"max_tokens", 48},
                   {"seed", seed},
                   {"temperature", 1.0}};
      const HttpReply r = post_json(c, "/v1/chat/completions", body);
      ASSERT_EQ(r.status, 200) << r.body;
      const json& ch = r.json["choices"][0];
      EXPECT_EQ(ch["finish_reason"], "tool_calls") << r.body;
      ASSERT_TRUE(ch["message"]["tool_calls"].is_array()) << r.body;
      const json& fn = ch["message"]["tool_calls"][0]["function"];
      EXPECT_NE(std::find(allowed.begin(), allowed.end(), fn["name"].get<std::string>()), allowed.end()) << r.body;
      EXPECT_TRUE(json::parse(fn["arguments"].get<std::string>(), nullptr, false).is_object()) << r.body;
    }
  }
}

TEST_F(ServeMain, ToolHistoryIsRendered) {
  auto c = client();
  const json messages =
      json::array({{{"role", "user"}, {"content", "weather in Paris?"}},
                   {{"role", "assistant"},
                    {"content", nullptr},
                    {"tool_calls",
                     json::array({{{"id", "call_1"},
                                   {"type", "function"},
                                   {"function", {{"name", "get_weather"}, {"arguments", "{\"city\":\"Paris\"}"}}}}})}},
                   {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny, 21 C"}}});
  const HttpReply t = post_json(c, "/apply-template", {{"messages", messages}, {"tools", weather_tools()}});
  ASSERT_EQ(t.status, 200) << t.body;
  const std::string prompt = t.json["prompt"];
  EXPECT_NE(prompt.find("<tools>"), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("\"name\": \"get_weather\""), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\":\"Paris\"}}\n</tool_call>"),
            std::string::npos)
      << prompt;
  EXPECT_NE(prompt.find("<tool_response>\nsunny, 21 C\n</tool_response>"), std::string::npos) << prompt;
  const HttpReply r =
      post_json(c, "/v1/chat/completions", {{"messages", messages}, {"tools", weather_tools()}, {"max_tokens", 3}});
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(ServeMain, BadRequestsAnswer400NamingTheField) {
  auto c = client();
  struct Case {
    std::string path, body, message;
  };
  const std::vector<Case> cases = {
      {"/v1/chat/completions", "{\"messages\": [", "invalid JSON in the request body"},
      {"/v1/chat/completions", "[]", "the request body must be a JSON object"},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"a"},{"role":"user","content":{}}]})",
       "messages[1].content must be a string or an array of parts"},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"a"}],"temperature":"1"})",
       "temperature must be a number"},
      {"/v1/chat/completions", R"({"messages":[{"role":"user","content":"a"}],"max_tokens":"5"})",
       "max_tokens must be an integer"},
      {"/v1/completions", R"({"prompt":{"a":1}})", "prompt must be a string"},
      {"/v1/completions", R"({"prompt":"a","top_k":1.5})", "top_k must be an integer"},
      {"/api/chat", R"({"messages":[{"role":"user","content":"a"}],"options":{"num_ctx":"big"}})",
       "options.num_ctx must be an integer"},
      {"/api/generate", R"({"prompt":"a","stream":"no"})", "stream must be a boolean"},
      {"/api/generate", "{not json}", "invalid JSON in the request body"},
      {"/tokenize", R"({"content":5})", "content must be a string"},
      {"/detokenize", R"({"tokens":[1,"x"]})", "tokens[1] must be a token id"},
  };
  for (const Case& k : cases) {
    auto r = c.Post(k.path, k.body, "application/json");
    ASSERT_TRUE(r) << k.path;
    EXPECT_EQ(r->status, 400) << k.path << " " << k.body;
    const json j = json::parse(r->body, nullptr, false);
    const std::string message =
        k.path.rfind("/api/", 0) == 0 ? j["error"].get<std::string>() : j["error"]["message"].get<std::string>();
    EXPECT_NE(message.find(k.message), std::string::npos) << k.body << " -> " << r->body;
  }
  // The server is still fine.
  EXPECT_EQ(post_json(c, "/v1/chat/completions", {{"messages", user("a")}, {"max_tokens", 1}}).status, 200);
}

TEST_F(ServeMain, ContextOverflowIs400OnBothFamilies) {
  auto c = client();
  std::string long_text;
  for (int i = 0; i < 4200; ++i) long_text += " hello";
  const HttpReply openai = post_json(c, "/v1/chat/completions", {{"messages", user(long_text)}});
  ASSERT_EQ(openai.status, 400) << openai.body;
  const json& e = openai.json["error"];
  EXPECT_EQ(e["type"], "exceed_context_size_error");
  EXPECT_EQ(e["n_ctx"], 4096);
  const int n_prompt = e["n_prompt_tokens"];
  EXPECT_GT(n_prompt, 4096);
  EXPECT_EQ(e["message"],
            "request (" + std::to_string(n_prompt) + " tokens) exceeds the available context size (4096 tokens)");
  EXPECT_EQ(e.size(), 4u);  // exactly type, message, n_prompt_tokens, n_ctx

  // Ollama: num_ctx above the slot's context gets the slot's, below it its own.
  const HttpReply big =
      post_json(c, "/api/generate", {{"prompt", long_text}, {"stream", false}, {"options", {{"num_ctx", 100000}}}});
  ASSERT_EQ(big.status, 400) << big.body;
  ASSERT_TRUE(big.json["error"].is_string()) << big.body;  // Ollama's shape: the numbers in the text
  EXPECT_NE(big.json["error"].get<std::string>().find("context size (4096 tokens)"), std::string::npos) << big.body;
  const HttpReply small =
      post_json(c, "/api/chat", {{"messages", user("a few words here")}, {"options", {{"num_ctx", 8}}}});
  ASSERT_EQ(small.status, 400) << small.body;
  EXPECT_NE(small.json["error"].get<std::string>().find("context size (8 tokens)"), std::string::npos) << small.body;
}

TEST_F(ServeMain, OllamaNumCtxEndsTheGenerationWithLength) {
  auto c = client();
  const HttpReply tok = post_json(c, "/tokenize", {{"content", "count these words please"}});
  const int n_prompt = static_cast<int>(tok.json["tokens"].size());
  const HttpReply r = post_json(c, "/api/generate",
                                {{"prompt", "count these words please"},
                                 {"raw", true},
                                 {"stream", false},
                                 {"options", {{"num_ctx", n_prompt + 3}, {"temperature", 0}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["done_reason"], "length");
  EXPECT_EQ(r.json["eval_count"], 3);
  EXPECT_EQ(r.json["prompt_eval_count"], n_prompt);
  EXPECT_EQ(r.json["context"].size(), static_cast<size_t>(n_prompt + 3));
}

TEST_F(ServeMain, StopStringsEndTheAnswer) {
  auto c = client();
  const json body = {{"messages", user("say something")}, {"temperature", 0}, {"max_tokens", 12}};
  const std::string full = post_json(c, "/v1/chat/completions", body).json["choices"][0]["message"]["content"];
  ASSERT_GT(full.size(), 8u);
  const std::string stop = full.substr(full.size() / 2, 3);
  json stopped = body;
  stopped["stop"] = json::array({stop});
  const HttpReply r = post_json(c, "/v1/chat/completions", stopped);
  EXPECT_EQ(r.json["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r.json["choices"][0]["message"]["content"], full.substr(0, full.find(stop)));
}

TEST_F(ServeMain, TokenizeDetokenizeAndCompletions) {
  auto c = client();
  const HttpReply t = post_json(c, "/tokenize", {{"content", "<|im_start|>hello world"}, {"with_pieces", true}});
  ASSERT_EQ(t.status, 200);
  EXPECT_EQ(t.json["tokens"][0]["id"], 151644);  // special tokens are parsed by default
  json ids = json::array();
  for (const auto& p : t.json["tokens"]) ids.push_back(p["id"]);
  EXPECT_EQ(post_json(c, "/detokenize", {{"tokens", ids}}).json["content"], "<|im_start|>hello world");

  const HttpReply comp =
      post_json(c, "/v1/completions",
                {{"prompt", "Once upon"}, {"max_tokens", 4}, {"temperature", 0}, {"echo", true}, {"logprobs", 2}});
  ASSERT_EQ(comp.status, 200) << comp.body;
  const json& ch = comp.json["choices"][0];
  EXPECT_EQ(comp.json["object"], "text_completion");
  EXPECT_EQ(ch["text"].get<std::string>().rfind("Once upon", 0), 0u);
  // echo with logprobs: the prompt's tokens (the first without a logprob), then the output's.
  const size_t n_prompt = post_json(c, "/tokenize", {{"content", "Once upon"}}).json["tokens"].size();
  EXPECT_EQ(ch["logprobs"]["tokens"].size(), n_prompt + 4);
  EXPECT_TRUE(ch["logprobs"]["token_logprobs"][0].is_null());
  EXPECT_EQ(ch["logprobs"]["top_logprobs"][n_prompt].size(), 2u);
}

TEST_F(ServeMain, MetricsInPrometheusFormat) {
  auto c = client();
  ASSERT_EQ(post_json(c, "/v1/chat/completions", {{"messages", user("count")}, {"max_tokens", 2}}).status, 200);
  const HttpReply m = get(c, "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.headers.find("Content-Type")->second.find("text/plain"), std::string::npos);
  for (const char* name :
       {"hylo_requests_running", "hylo_requests_waiting", "hylo_slots_total", "hylo_kv_cache_bytes",
        "hylo_prompt_tokens_per_second", "hylo_generated_tokens_per_second", "hylo_time_to_first_token_seconds_count"})
    EXPECT_GE(metric(m.body, name), 0) << name;
  EXPECT_GT(metric(m.body, "hylo_prompt_tokens_total"), 0);
  EXPECT_GE(metric(m.body, "hylo_generated_tokens_total"), 2);
  EXPECT_GT(metric(m.body, "hylo_kv_cache_bytes"), 0);
  EXPECT_NE(m.body.find("# TYPE hylo_generated_tokens_total counter"), std::string::npos);
  EXPECT_NE(m.body.find("hylo_http_requests_total{route=\"chat\",status=\"200\"}"), std::string::npos);
}

// A client that hangs up during a long prefill and sends the same request again: the retry takes
// the abandoned prefill over (or finds the whole prompt done), so the two attempts together
// prefill each prompt token once.
TEST_F(ServeMain, ARetryAfterAHangUpDuringThePrefillComputesNothingTwice) {
  auto c = client();
  std::string prompt = "Zebras retry";  // a first token no earlier request shares
  for (int i = 0; i < 700; ++i) prompt += " and " + std::to_string(i);
  const json body = {{"prompt", prompt}, {"max_tokens", 3}, {"temperature", 0}};
  const std::string metrics_before = get(c, "/metrics").body;
  const double before = metric(metrics_before, "hylo_prompt_tokens_processed_total");
  const double gone_before = metric(metrics_before, "hylo_client_disconnects_total");
  bool saw_progress = false;
  json streamed = body;
  streamed["stream"] = true;
  post_stream(c, "/v1/completions", streamed, [&](const std::string& event) {
    saw_progress = event.starts_with(": prefill");
    return !saw_progress;  // hang up at the first progress report
  });
  ASSERT_TRUE(saw_progress) << "the prompt should take several prefill steps";
  // The retry comes once the server has seen the hang-up (bounded wait), as a client's does.
  bool seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {
    seen = metric(get(c, "/metrics").body, "hylo_client_disconnects_total") > gone_before;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(seen);
  const HttpReply retry = post_json(c, "/v1/completions", body);
  ASSERT_EQ(retry.status, 200) << retry.body;
  const int64_t n_prompt = retry.json["usage"]["prompt_tokens"];
  EXPECT_GT(n_prompt, 2048);
  EXPECT_GT(retry.json["usage"]["prompt_tokens_details"]["cached_tokens"].get<int64_t>(), 0);
  const double after = metric(get(c, "/metrics").body, "hylo_prompt_tokens_processed_total");
  EXPECT_EQ(after - before, static_cast<double>(n_prompt));
}

// A client that sends a non-streamed request and hangs up: the request is cancelled (its slot
// freed) although nothing was ever written to it.
TEST_F(ServeMain, NonStreamedClientHangingUpIsCancelled) {
  auto c = client();
  const double gone_before = metric(get(c, "/metrics").body, "hylo_client_disconnects_total");
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string body = json{{"messages", user("a long answer")}, {"max_tokens", 100000}}.dump();
  const std::string req =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  // Wait (bounded) until the request runs, then hang up.
  bool running = false;
  for (int i = 0; i < 500 && !running; ++i) {
    running = metric(get(c, "/metrics").body, "hylo_requests_running") >= 1;
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(running);
  close(fd);
  bool freed = false;
  for (int i = 0; i < 500 && !freed; ++i) {
    const std::string m = get(c, "/metrics").body;
    freed = metric(m, "hylo_client_disconnects_total") > gone_before && metric(m, "hylo_requests_running") == 0;
    if (!freed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(freed) << get(c, "/metrics").body;
}

}  // namespace
}  // namespace hylo::test
