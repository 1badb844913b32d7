// The router's pure parts: --upstream and routes-file parsing (errors name line and key),
// the policy's decisions (privacy, size, time, aliases, gateway), and the Ollama <-> OpenAI
// translation of requests and streams.
#include <gtest/gtest.h>

#include <cstdlib>

#include "router/config.h"
#include "router/policy.h"
#include "router/translate.h"

namespace hylo::router {
namespace {

RouterConfig one_cloud(int64_t ctx = 1000000) {
  RouterConfig c;
  auto u = parse_upstream_flag("cloud=https://api.example.com/v1,model=big,ctx=" + std::to_string(ctx) +
                               ",key-env=CLOUD_KEY");
  EXPECT_TRUE(u.ok()) << u.message();
  c.upstreams.push_back(*u);
  return c;
}

RouteQuery local_query(int64_t tokens, int64_t ctx = 32768) {
  RouteQuery q;
  q.model = "qwen3-coder";
  q.prompt_tokens = tokens;
  q.local_available = true;
  q.local_ctx = ctx;
  return q;
}

TEST(RouterConfig, UpstreamFlag) {
  auto u = parse_upstream_flag("cloud=https://api.example.com/v1,model=qwen3-coder-480b,ctx=262144,key-env=KEY");
  ASSERT_TRUE(u.ok()) << u.message();
  EXPECT_EQ(u->name, "cloud");
  EXPECT_EQ(u->api, UpstreamApi::kOpenAI);
  EXPECT_EQ(u->url.origin, "https://api.example.com");
  EXPECT_EQ(u->url.prefix, "/v1");
  EXPECT_EQ(u->model, "qwen3-coder-480b");
  EXPECT_EQ(u->ctx, 262144);
  EXPECT_EQ(u->key_env, "KEY");

  auto ollama = parse_upstream_flag("box=localhost:11434");
  ASSERT_TRUE(ollama.ok()) << ollama.message();
  EXPECT_EQ(ollama->api, UpstreamApi::kOllama);
  EXPECT_EQ(ollama->url.origin, "http://localhost:11434");

  EXPECT_FALSE(parse_upstream_flag("cloud").ok());
  EXPECT_FALSE(parse_upstream_flag("=http://x/v1").ok());
  EXPECT_FALSE(parse_upstream_flag("c=ftp://x").ok());
  EXPECT_FALSE(parse_upstream_flag("c=http://x/v1,ctx=abc").ok());
  EXPECT_FALSE(parse_upstream_flag("c=http://x/v1,colour=red").ok());
  auto key = parse_upstream_flag("c=http://x/v1,key=sk-secret");
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.message().find("key-env"), std::string::npos);
  EXPECT_EQ(key.message().find("sk-secret"), std::string::npos) << "a key must not be echoed";
}

TEST(RouterConfig, RoutesFile) {
  auto c = parse_routes(R"(# the podcast set-up
local:
  max_prompt_tokens: 100000
  prefill_tokens_per_second: 400
upstreams:
  cloud:
    url: https://api.example.com/v1
    model: qwen3-coder-480b
    ctx: 1000000
    key_env: CLOUD_API_KEY
    max_concurrent: 2
    first_byte_timeout: 30
  lan:
    url: http://10.0.0.2:11434
aliases:
  secret: {route: local, private: true}
  big: cloud
)",
                        "routes.yaml");
  ASSERT_TRUE(c.ok()) << c.message();
  ASSERT_EQ(c->upstreams.size(), 2u);
  EXPECT_EQ(c->upstreams[0].name, "cloud");
  EXPECT_EQ(c->upstreams[0].max_concurrent, 2);
  EXPECT_DOUBLE_EQ(c->upstreams[0].timeouts.first_byte, 30);
  EXPECT_EQ(c->upstreams[1].api, UpstreamApi::kOllama);
  EXPECT_EQ(c->max_local_prompt_tokens, 100000);
  EXPECT_DOUBLE_EQ(c->prefill_tokens_per_second, 400);
  ASSERT_EQ(c->aliases.size(), 2u);
  EXPECT_TRUE(c->aliases[0].is_private);
  EXPECT_EQ(c->aliases[1].route, "cloud");
  EXPECT_TRUE(validate(*c).ok());
}

TEST(RouterConfig, RoutesFileErrorsNameLineAndKey) {
  auto bad_ctx = parse_routes("upstreams:\n  cloud:\n    url: http://x/v1\n    ctx: lots\n", "r.yaml");
  ASSERT_FALSE(bad_ctx.ok());
  EXPECT_NE(bad_ctx.message().find("r.yaml: line 4, key upstreams.cloud.ctx"), std::string::npos) << bad_ctx.message();

  auto unknown = parse_routes("local:\n  max_prompt_tokens: 10\n  colour: red\n", "r.yaml");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.message().find("line 3, key local.colour: unknown key"), std::string::npos) << unknown.message();

  auto key = parse_routes("upstreams:\n  c:\n    url: http://x/v1\n    api_key: sk-123\n", "r.yaml");
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.message().find("key_env"), std::string::npos);
  EXPECT_EQ(key.message().find("sk-123"), std::string::npos);

  auto syntax = parse_routes("upstreams:\n  c: [1, 2\n", "r.yaml");
  ASSERT_FALSE(syntax.ok());
  EXPECT_NE(syntax.message().find("r.yaml: line"), std::string::npos) << syntax.message();

  auto no_url = parse_routes("upstreams:\n  c:\n    model: m\n", "r.yaml");
  ASSERT_FALSE(no_url.ok());
  EXPECT_NE(no_url.message().find("url is required"), std::string::npos);

  auto alias = parse_routes("aliases:\n  x: nowhere\n", "r.yaml");
  ASSERT_TRUE(alias.ok());
  EXPECT_FALSE(validate(*alias).ok());

  RouterConfig twice = one_cloud();
  twice.upstreams.push_back(twice.upstreams[0]);
  EXPECT_FALSE(validate(twice).ok());
}

TEST(RouterConfig, ClientsByApiKey) {
  auto c = parse_routes(R"(clients:
  alice: {key_env: ALICE_KEY, private: true}
  ci:
    key_env: CI_KEY
    timeout: 300
)",
                        "r.yaml");
  ASSERT_TRUE(c.ok()) << c.message();
  ASSERT_EQ(c->clients.size(), 2u);
  EXPECT_TRUE(c->clients[0].is_private);
  EXPECT_FALSE(c->clients[0].budget_seconds.has_value());
  EXPECT_EQ(c->clients[1].key_env, "CI_KEY");
  EXPECT_DOUBLE_EQ(c->clients[1].budget_seconds.value_or(0), 300);
  EXPECT_EQ(c->find_client("ci"), &c->clients[1]);

  auto key = parse_routes("clients:\n  bob:\n    key: sk-secret-1\n", "r.yaml");
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.message().find("line 3, key clients.bob.key"), std::string::npos) << key.message();
  EXPECT_EQ(key.message().find("sk-secret-1"), std::string::npos);
  auto no_env = parse_routes("clients:\n  bob:\n    private: true\n", "r.yaml");
  ASSERT_FALSE(no_env.ok());
  EXPECT_NE(no_env.message().find("key_env is required"), std::string::npos) << no_env.message();
  auto bad = parse_routes("clients:\n  bob:\n    key_env: K\n    timeout: soon\n", "r.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("line 4, key clients.bob.timeout"), std::string::npos) << bad.message();

  unsetenv("HYLO_TEST_UNSET_CLIENT_KEY");
  RouterConfig unset;
  unset.clients.push_back({"carol", "HYLO_TEST_UNSET_CLIENT_KEY", false, std::nullopt});
  const Status keys = check_client_keys(unset);
  ASSERT_FALSE(keys.ok());
  EXPECT_NE(keys.message().find("HYLO_TEST_UNSET_CLIENT_KEY"), std::string::npos);
  unset.clients.push_back(unset.clients[0]);
  EXPECT_FALSE(validate(unset).ok());  // the name twice
}

// A client's key decides privacy (no header undoes it) and the time budget (a header overrides).
TEST(RouterPolicy, PerClientPrivacyAndBudget) {
  RouterConfig c = one_cloud();
  c.clients.push_back({"alice", "A", true, std::nullopt});
  c.clients.push_back({"ci", "B", false, 300.0});
  RouteQuery q = local_query(146760, 262144);
  q.prefill_tokens_per_second = 400;
  q.prefill_source = "measured";

  q.client = c.find_client("alice");
  q.private_header = false;
  RoutePlan p = plan_route(c, q);
  EXPECT_EQ(p.order, std::vector<int>{kLocal});
  EXPECT_TRUE(p.is_private);
  EXPECT_NE(p.steps[0].find("client 'alice'"), std::string::npos) << p.steps[0];
  q.model = "cloud";
  EXPECT_EQ(plan_route(c, q).refusal_status, 403);

  q = local_query(146760, 262144);
  q.prefill_tokens_per_second = 400;
  q.prefill_source = "measured";
  q.client = c.find_client("ci");
  p = plan_route(c, q);
  ASSERT_FALSE(p.order.empty());
  EXPECT_EQ(p.order[0], 0);  // 366.9 s > the client's 300 s
  EXPECT_NE(p.reason.find("budget of client 'ci' 300 s"), std::string::npos) << p.reason;
  q.budget_seconds = 600;  // the header wins
  EXPECT_EQ(plan_route(c, q).order, std::vector<int>{kLocal});
}

TEST(RouterPolicy, PrivateNeverLeaves) {
  RouterConfig c = one_cloud();
  RouteQuery q = local_query(100000, 32768);  // too long for the local context
  q.private_header = true;
  RoutePlan p = plan_route(c, q);
  ASSERT_EQ(p.order, std::vector<int>{kLocal});  // runs (and fails with the context error) locally
  EXPECT_TRUE(p.is_private);

  q.model = "cloud";
  p = plan_route(c, q);
  EXPECT_EQ(p.refusal_status, 403);
  EXPECT_TRUE(p.order.empty());

  q.model = "auto";
  q.local_available = false;
  q.local_unavailable_why = "there is no local model (gateway mode)";
  p = plan_route(c, q);
  EXPECT_EQ(p.refusal_status, 503);
  EXPECT_NE(p.refusal.find("gateway"), std::string::npos);

  c.private_by_default = true;
  RouteQuery d = local_query(100000);
  p = plan_route(c, d);
  EXPECT_EQ(p.order, std::vector<int>{kLocal});
  d.private_header = false;  // the client says it may leave
  p = plan_route(c, d);
  EXPECT_EQ(p.order, std::vector<int>{0});

  c.private_by_default = false;
  c.aliases.push_back({"secret", "auto", true});
  RouteQuery a = local_query(100000);
  a.model = "secret";
  EXPECT_EQ(plan_route(c, a).order, std::vector<int>{kLocal});
}

TEST(RouterPolicy, SizeRule) {
  RouterConfig c = one_cloud();
  RoutePlan p = plan_route(c, local_query(40000, 32768));
  ASSERT_EQ(p.order, std::vector<int>{0});  // no local fallback: it does not fit
  EXPECT_NE(p.reason.find("40000 prompt tokens >= local context 32768"), std::string::npos) << p.reason;

  p = plan_route(c, local_query(1000, 32768));
  EXPECT_EQ(p.order, std::vector<int>{kLocal});

  c.max_local_prompt_tokens = 500;
  p = plan_route(c, local_query(1000, 32768));
  EXPECT_EQ(p.order, (std::vector<int>{0, kLocal}));  // fits locally: local is the fallback

  RouterConfig small = one_cloud(20000);
  p = plan_route(small, local_query(40000, 32768));
  EXPECT_EQ(p.refusal_status, 400);  // neither context holds it
}

TEST(RouterPolicy, TimeRulePodcastNumbers) {
  RouterConfig c = one_cloud();
  RouteQuery q = local_query(146760, 262144);  // fits the local context
  q.budget_seconds = 300;
  q.prefill_tokens_per_second = 400;
  q.prefill_source = "measured";
  RoutePlan p = plan_route(c, q);
  ASSERT_FALSE(p.order.empty());
  EXPECT_EQ(p.order[0], 0);  // 366.9 s > 300 s
  EXPECT_NE(p.reason.find("366.9 s"), std::string::npos) << p.reason;

  q.budget_seconds = 600;
  EXPECT_EQ(plan_route(c, q).order, std::vector<int>{kLocal});
  q.budget_seconds.reset();
  EXPECT_EQ(plan_route(c, q).order, std::vector<int>{kLocal});
}

TEST(RouterPolicy, AliasesAndGateway) {
  RouterConfig c = one_cloud();
  RouteQuery q = local_query(10);
  q.model = "local";
  EXPECT_EQ(plan_route(c, q).order, std::vector<int>{kLocal});
  q.model = "cloud";
  EXPECT_EQ(plan_route(c, q).order, (std::vector<int>{0, kLocal}));
  q.model = "auto";
  q.local_available = false;
  q.local_unavailable_why = "gateway";
  EXPECT_EQ(plan_route(c, q).order, std::vector<int>{0});
  q.model = "local";
  EXPECT_EQ(plan_route(c, q).refusal_status, 503);
}

TEST(RouterTranslate, OllamaChatToOpenAI) {
  const ojson in = ojson::parse(R"({
    "model": "qwen3", "stream": true, "think": false,
    "options": {"temperature": 0.2, "num_predict": 64, "stop": ["END"]},
    "format": "json",
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    "messages": [
      {"role": "user", "content": "weather?"},
      {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
      {"role": "tool", "content": "sunny", "tool_name": "get_weather"}
    ]})");
  auto r = ollama_to_openai(in, /*chat=*/true, "upstream-model");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->path, "/chat/completions");
  const ojson& b = r->body;
  EXPECT_EQ(b["model"], "upstream-model");
  EXPECT_EQ(b["stream"], true);
  EXPECT_EQ(b["stream_options"]["include_usage"], true);
  EXPECT_EQ(b["max_tokens"], 64);
  EXPECT_EQ(b["stop"][0], "END");
  EXPECT_EQ(b["response_format"]["type"], "json_object");
  EXPECT_EQ(b["chat_template_kwargs"]["enable_thinking"], false);
  const ojson& call = b["messages"][1]["tool_calls"][0];
  EXPECT_EQ(call["function"]["arguments"], R"({"city":"Paris"})");
  EXPECT_EQ(b["messages"][2]["tool_call_id"], call["id"]);

  auto gen =
      ollama_to_openai(ojson{{"model", "m"}, {"prompt", "hi"}, {"system", "be brief"}, {"stream", false}}, false, "m");
  ASSERT_TRUE(gen.ok());
  EXPECT_EQ(gen->path, "/chat/completions");
  EXPECT_EQ(gen->body["messages"][0]["role"], "system");
  EXPECT_EQ(gen->body["messages"][1]["content"], "hi");
  auto raw = ollama_to_openai(ojson{{"model", "m"}, {"prompt", "hi"}, {"raw", true}}, false, "m");
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->path, "/completions");
}

TEST(RouterTranslate, SseStreamToNdjson) {
  const std::string sse =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"reasoning_content\":\"hmm\"}}]}\n\n"
      ": ping\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":"
      "\"get_weather\",\"arguments\":\"{\\\"ci\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
      "\"ty\\\":\\\"Paris\\\"}\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":7}}\n\n"
      "data: [DONE]\n\n";
  SseToNdjson t(/*chat=*/true, "qwen3");
  std::string out;
  for (size_t i = 0; i < sse.size(); i += 7) out += t.feed(std::string_view(sse).substr(i, 7));  // odd borders
  out += t.finish();
  ASSERT_TRUE(t.complete());
  std::vector<ojson> lines;
  LineSplitter split;
  split.feed(out, [&](std::string_view l) { lines.push_back(ojson::parse(l)); });
  ASSERT_EQ(lines.size(), 5u) << out;
  EXPECT_EQ(lines[0]["message"]["thinking"], "hmm");
  EXPECT_EQ(lines[1]["message"]["content"], "Hel");
  EXPECT_EQ(lines[2]["message"]["content"], "lo");
  EXPECT_EQ(lines[3]["message"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(lines[3]["message"]["tool_calls"][0]["function"]["arguments"]["city"], "Paris");
  EXPECT_EQ(lines[4]["done"], true);
  EXPECT_EQ(lines[4]["done_reason"], "stop");
  EXPECT_EQ(lines[4]["prompt_eval_count"], 12);
  EXPECT_EQ(lines[4]["eval_count"], 7);
}

TEST(RouterTranslate, TruncatedStreamIsNotComplete) {
  SseToNdjson t(true, "m");
  t.feed("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n");
  EXPECT_EQ(t.finish(), "");
  EXPECT_FALSE(t.complete());

  StreamEndScanner sse(true);
  sse.feed("data: {}\n\ndata: [DO");
  EXPECT_FALSE(sse.complete());
  sse.feed("NE]\n\n");
  EXPECT_TRUE(sse.complete());
  StreamEndScanner nd(false);
  nd.feed("{\"done\":false}\n");
  EXPECT_FALSE(nd.complete());
  nd.feed("{\"done\":true,\"done_reason\":\"stop\"}\n");
  EXPECT_TRUE(nd.complete());
}

TEST(RouterTranslate, WholeAnswer) {
  const ojson a = ojson::parse(R"({"choices":[{"index":0,"finish_reason":"length","message":{"role":"assistant",
      "content":"hi","reasoning_content":"think","tool_calls":[{"id":"x","type":"function","function":{"name":"f",
      "arguments":"{\"a\":1}"}}]}}],"usage":{"prompt_tokens":3,"completion_tokens":4}})");
  const ojson o = openai_to_ollama_answer(a, true, "m", 0.5);
  EXPECT_EQ(o["message"]["content"], "hi");
  EXPECT_EQ(o["message"]["thinking"], "think");
  EXPECT_EQ(o["message"]["tool_calls"][0]["function"]["arguments"]["a"], 1);
  EXPECT_EQ(o["done_reason"], "length");
  EXPECT_EQ(o["eval_count"], 4);
  EXPECT_EQ(error_message_of(R"({"error":{"message":"rate limited"}})"), "rate limited");
  EXPECT_EQ(error_message_of(R"({"error":"boom"})"), "boom");
}

}  // namespace
}  // namespace hylo::router
