// `hylo serve` with many models: three models of one shape made with different seeds in a
// directory (one in a subfolder) plus a definitions file. Requests by name reach their model
// (each seed answers differently), unknown names get 404 with the list, listings describe every
// model, models load on demand and unload when idle or asked to, a memory limit unloads the least
// recently used idle model or refuses with the names of the busy ones, and a definition's context
// is enforced. Waits are bounded polls, never sleeps.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/fixtures.h"
#include "serve_process.h"

namespace hylo::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json user(const std::string& text) { return json::array({{{"role", "user"}, {"content", text}}}); }

json chat(const std::string& model, int max_tokens = 8) {
  return {{"model", model}, {"messages", user("Tell me about hybrid models")}, {"temperature", 0},
          {"max_tokens", max_tokens}};
}

// Polls `done` (20 ms apart) until it holds or `seconds` pass.
bool eventually(const std::function<bool()>& done, double seconds = 60) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

std::vector<std::string> loaded(ServeProcess& s) {
  auto c = s.client();
  std::vector<std::string> out;
  const HttpReply ps = get(c, "/api/ps");
  for (const auto& m : ps.json["models"]) out.push_back(m["name"]);
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

class ServeModels : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(scratch_path("models"));
    fs::create_directories(*dir_ + "/more");
    const std::string tok = fixtures_dir() + "/tokenizer/qwen3";
    int seed = 1;
    for (const char* name : {"alpha", "beta", "more/gamma"}) {
      std::string out;
      const std::string cmd =
          fmt::format("{} make-model --arch qwen3moe --preset tiny --type q8_0 --seed {} --tokenizer-dir {} -t 2 -o "
                      "{}/{}.gguf 2>&1",
                      hylo_binary(), seed++, tok, *dir_, name);
      ASSERT_EQ(run_command(cmd, &out), 0) << out;
    }
    defs_ = new std::string(*dir_ + "/../models.yaml");
    std::ofstream(*defs_) << fmt::format(
        "# beta again, with a context of its own\n"
        "models:\n"
        "  beta-512:\n"
        "    file: {}/beta.gguf\n"
        "    context: 512\n"
        "    keep_alive: -1\n"
        "    parallel: 1\n"
        "    top_k: 7\n"
        "    thinking: false\n",
        *dir_);
    server_ = new ServeProcess({"--models-dir", *dir_, "--models", *defs_, "-c", "1024", "--parallel", "2",
                                "--cache-ram", "0", "--ping-interval", "0.001", "--test-hooks"});
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
  std::string answer(const std::string& model) {
    auto c = client();
    const HttpReply r = post_json(c, "/v1/chat/completions", chat(model));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json["model"], model);
    return r.json["choices"][0]["message"]["content"];
  }

  static std::string* dir_;
  static std::string* defs_;
  static ServeProcess* server_;
};
std::string* ServeModels::dir_ = nullptr;
std::string* ServeModels::defs_ = nullptr;
ServeProcess* ServeModels::server_ = nullptr;

TEST_F(ServeModels, RequestsByNameReachTheirModel) {
  const std::string a = answer("alpha"), b = answer("beta"), g = answer("gamma");
  EXPECT_NE(a, b);
  EXPECT_NE(a, g);
  EXPECT_NE(b, g);
  EXPECT_EQ(answer("alpha"), a);  // the same model again, not whichever is loaded
  // Another name for beta's file, whose definition turns thinking off: beta's answer without it.
  json no_think = chat("beta");
  no_think["chat_template_kwargs"] = {{"enable_thinking", false}};
  auto n = client();
  const HttpReply beta_no_think = post_json(n, "/v1/chat/completions", no_think);
  ASSERT_EQ(beta_no_think.status, 200) << beta_no_think.body;
  EXPECT_EQ(answer("beta-512"), beta_no_think.json["choices"][0]["message"]["content"]);
  EXPECT_FALSE(has(loaded(*server_), "beta"));  // one file is loaded once: the idle name gave way
  auto m = client();
  EXPECT_NE(get(m, "/metrics").body.find("hylo_models_unloads_total{model=\"beta\",reason=\"same_file\"} 1"),
            std::string::npos);
  // The Ollama API picks the model the same way.
  auto c = client();
  const HttpReply o = post_json(c, "/api/chat",
                                {{"model", "gamma"}, {"messages", user("Tell me about hybrid models")},
                                 {"stream", false}, {"options", {{"temperature", 0}, {"num_predict", 8}}}});
  ASSERT_EQ(o.status, 200) << o.body;
  EXPECT_EQ(o.json["model"], "gamma");
  EXPECT_EQ(o.json["message"]["content"], g);
  // And llama-server's own endpoint.
  const HttpReply l = post_json(c, "/completion", {{"model", "beta"}, {"prompt", "Hello"}, {"n_predict", 4}});
  EXPECT_EQ(l.status, 200) << l.body;
}

TEST_F(ServeModels, UnknownNamesGet404WithTheList) {
  auto c = client();
  const HttpReply r = post_json(c, "/v1/chat/completions", chat("qwen3:tiny"));
  ASSERT_EQ(r.status, 404) << r.body;
  const std::string m = r.json["error"]["message"];
  EXPECT_EQ(r.json["error"]["code"], "model_not_found");
  for (const char* name : {"alpha", "beta", "gamma", "beta-512"}) EXPECT_NE(m.find(name), std::string::npos) << m;
  const HttpReply o = post_json(c, "/api/generate", {{"model", "nope"}, {"prompt", "hi"}, {"stream", false}});
  ASSERT_EQ(o.status, 404) << o.body;
  EXPECT_NE(o.json["error"].get<std::string>().find("alpha"), std::string::npos);
  // No model named: with several, the request must say which.
  const HttpReply none = post_json(c, "/v1/chat/completions", {{"messages", user("hi")}, {"max_tokens", 2}});
  EXPECT_EQ(none.status, 400) << none.body;
  EXPECT_NE(none.body.find("model is required"), std::string::npos) << none.body;
  EXPECT_EQ(post_json(c, "/models/load", {{"model", "nope"}}).status, 404);
  EXPECT_EQ(post_json(c, "/v1/chat/completions", {{"model", 7}, {"messages", user("hi")}}).status, 400);
}

TEST_F(ServeModels, ListingsDescribeEveryModel) {
  auto c = client();
  const HttpReply models = get(c, "/v1/models");
  ASSERT_EQ(models.status, 200);
  std::map<std::string, json> by_id;
  for (const auto& m : models.json["data"]) by_id[m["id"]] = m;
  ASSERT_EQ(by_id.size(), 4u) << models.body;
  EXPECT_EQ(by_id["alpha"]["meta"]["n_ctx"], 1024);
  EXPECT_EQ(by_id["beta-512"]["meta"]["n_ctx"], 512);
  EXPECT_EQ(by_id["beta-512"]["meta"]["n_ctx_train"], 262144);
  EXPECT_EQ(by_id["beta-512"]["meta"]["source"], *defs_ + " line 3");
  EXPECT_EQ(by_id["gamma"]["meta"]["source"], "--models-dir " + *dir_);
  EXPECT_GT(by_id["gamma"]["meta"]["memory_bytes"].get<uint64_t>(), 0u);
  EXPECT_TRUE(by_id["gamma"]["meta"].find("file") == by_id["gamma"]["meta"].end());  // no key: no paths

  const HttpReply tags = get(c, "/api/tags");
  ASSERT_EQ(tags.status, 200);
  ASSERT_EQ(tags.json["models"].size(), 4u);
  for (const auto& m : tags.json["models"]) {
    EXPECT_EQ(m["details"]["family"], "qwen3moe");
    if (m["name"] == "beta-512") {
      EXPECT_EQ(m["context_length"], 512);
    }
  }

  ASSERT_EQ(post_json(c, "/models/load", {{"model", "beta-512"}}).status, 200);
  bool found = false;
  const HttpReply ps = get(c, "/api/ps");
  for (const auto& m : ps.json["models"])
    if (m["name"] == "beta-512") {
      found = true;
      EXPECT_EQ(m["context_length"], 512);
      EXPECT_EQ(m["source"], *defs_ + " line 3");
    }
  EXPECT_TRUE(found);
  const HttpReply show = post_json(c, "/api/show", {{"model", "beta-512"}});
  ASSERT_EQ(show.status, 200) << show.body;
  EXPECT_EQ(show.json["hylo"]["context_length"], 512);
  EXPECT_NE(show.json["parameters"].get<std::string>().find("num_ctx 512"), std::string::npos);
  EXPECT_EQ(get(c, "/props?model=beta-512").json["default_generation_settings"]["n_ctx"], 512);
  // The definition's slots, sampling defaults and thinking setting.
  EXPECT_EQ(by_id["beta-512"]["meta"]["n_slots"], 1);
  EXPECT_EQ(by_id["beta"]["meta"]["n_slots"], 2);
  EXPECT_EQ(get(c, "/props?model=beta-512").json["default_generation_settings"]["params"]["top_k"], 7);
  const json hi = {{"messages", user("hi")}};
  json with = hi, without = hi;
  with["model"] = "beta-512";
  without["model"] = "beta";
  EXPECT_NE(post_json(c, "/apply-template", with).json["prompt"].get<std::string>().find("</think>"),
            std::string::npos);
  EXPECT_EQ(post_json(c, "/apply-template", without).json["prompt"].get<std::string>().find("</think>"),
            std::string::npos);
  EXPECT_EQ(post_json(c, "/tokenize", {{"model", "beta-512"}, {"content", "hello"}}).status, 200);
}

TEST_F(ServeModels, ADefinitionsContextIsEnforced) {
  auto c = client();
  std::string long_text;
  for (int i = 0; i < 700; ++i) long_text += "word ";
  json body = chat("beta-512");
  body["messages"] = user(long_text);
  const HttpReply r = post_json(c, "/v1/chat/completions", body);
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.json["error"]["type"], "exceed_context_size_error");
  EXPECT_EQ(r.json["error"]["n_ctx"], 512);
  body["model"] = "beta";  // the same file with the server's context
  EXPECT_EQ(post_json(c, "/v1/chat/completions", body).status, 200);
}

TEST_F(ServeModels, IdleModelsUnload) {
  auto c = client();
  // A short keep-alive (Ollama's): unloaded once idle that long.
  const HttpReply r = post_json(c, "/api/generate", {{"model", "gamma"}, {"prompt", "hi"}, {"stream", false},
                                                     {"keep_alive", "200ms"}, {"options", {{"num_predict", 2}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(eventually([&] { return !has(loaded(*server_), "gamma"); })) << get(c, "/api/ps").body;
  // keep_alive 0 without a prompt unloads at once (Ollama's way); a request without one loads.
  ASSERT_EQ(post_json(c, "/api/generate", {{"model", "alpha"}}).json["done_reason"], "load");
  EXPECT_TRUE(has(loaded(*server_), "alpha"));
  ASSERT_EQ(post_json(c, "/api/generate", {{"model", "alpha"}, {"keep_alive", 0}}).json["done_reason"], "unload");
  EXPECT_TRUE(eventually([&] { return !has(loaded(*server_), "alpha"); }));
  // llama-server's endpoints.
  ASSERT_EQ(post_json(c, "/models/load", {{"model", "alpha"}}).json["success"], true);
  EXPECT_TRUE(has(loaded(*server_), "alpha"));
  ASSERT_EQ(post_json(c, "/models/unload", {{"model", "alpha"}}).json["success"], true);
  EXPECT_TRUE(eventually([&] { return !has(loaded(*server_), "alpha"); }));
  const std::string metrics = get(c, "/metrics").body;
  EXPECT_NE(metrics.find("hylo_models_unloads_total{model=\"gamma\",reason=\"idle\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("hylo_models_unloads_total{model=\"alpha\",reason=\"request\"} 2"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("hylo_models_requests_total{model=\"alpha\"}"), std::string::npos);
}

TEST_F(ServeModels, ConcurrentRequestsForTwoModelsBothComplete) {
  for (const char* m : {"alpha", "gamma"}) {  // both start unloaded: the streams wait for their loads
    auto c = client();
    post_json(c, "/models/unload", {{"model", m}});
  }
  EXPECT_TRUE(eventually([&] {
    const auto l = loaded(*server_);
    return !has(l, "alpha") && !has(l, "gamma");
  }));
  std::string text[2];
  int status[2] = {0, 0};
  bool ping_first[2] = {false, false};
  const char* names[2] = {"alpha", "gamma"};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&, i] {
      auto c = client();
      json body = chat(names[i]);
      body["stream"] = true;
      bool any_data = false;
      const HttpReply r = post_stream(c, "/v1/chat/completions", body, [&](const std::string& e) {
        if (e.rfind(": ping", 0) == 0 && !any_data) ping_first[i] = true;
        if (e.rfind("data: {", 0) != 0) return true;
        any_data = true;
        const json j = json::parse(e.substr(6));
        if (!j["choices"].empty()) text[i] += j["choices"][0]["delta"].value("content", "");
        return true;
      });
      status[i] = r.status;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(status[0], 200);
  EXPECT_EQ(status[1], 200);
  EXPECT_EQ(text[0], answer("alpha"));
  EXPECT_EQ(text[1], answer("gamma"));
  // While they waited for their loads the streams were kept alive as during a long prefill.
  EXPECT_TRUE(ping_first[0] || ping_first[1]);
}

// A memory limit that holds one model: the least recently used idle one is unloaded to make room,
// and while the only loaded one is busy another is refused, naming it.
TEST_F(ServeModels, AMemoryLimitUnloadsTheLeastRecentlyUsed) {
  auto c = client();
  const HttpReply models = get(c, "/v1/models");
  uint64_t one = 0;
  for (const auto& m : models.json["data"]) one = std::max(one, m["meta"]["memory_bytes"].get<uint64_t>());
  ASSERT_GT(one, 0u);
  ServeProcess small({"--models-dir", *dir_, "-c", "1024", "--parallel", "2", "--cache-ram", "0", "--models-memory",
                      std::to_string(one * 3 / 2), "--keep-alive", "-1"});
  ASSERT_TRUE(small.start());
  auto s = small.client();
  ASSERT_EQ(post_json(s, "/v1/chat/completions", chat("alpha")).status, 200);
  EXPECT_EQ(loaded(small), std::vector<std::string>{"alpha"});
  ASSERT_EQ(post_json(s, "/v1/chat/completions", chat("beta")).status, 200);
  EXPECT_EQ(loaded(small), std::vector<std::string>{"beta"});  // alpha made room
  EXPECT_NE(get(s, "/metrics").body.find("hylo_models_unloads_total{model=\"alpha\",reason=\"memory\"} 1"),
            std::string::npos);

  // beta busy (streaming): gamma cannot load, and the answer says who holds the memory.
  json body = chat("beta", 900);
  body["stream"] = true;
  HttpReply refused;
  post_stream(s, "/v1/chat/completions", body, [&](const std::string& e) {
    if (e.rfind("data: {", 0) != 0) return true;
    auto other = small.client();
    refused = post_json(other, "/v1/chat/completions", chat("gamma"));
    return false;  // hang up: beta becomes idle
  });
  ASSERT_EQ(refused.status, 503) << refused.body;
  EXPECT_EQ(refused.json["error"]["code"], "insufficient_memory");
  EXPECT_NE(refused.json["error"]["message"].get<std::string>().find("'beta'"), std::string::npos) << refused.body;
  // Once beta is idle again, gamma loads in its place.
  EXPECT_TRUE(eventually([&] {
    auto other = small.client();
    return post_json(other, "/v1/chat/completions", chat("gamma")).status == 200;
  }));
  EXPECT_EQ(loaded(small), std::vector<std::string>{"gamma"});
  EXPECT_EQ(small.stop(), 0) << small.log();
}

TEST(ServeModelsStartup, BadCatalogsAreRefusedAtStart) {
  const std::string dir = scratch_path("bad-models");
  fs::create_directories(dir);
  std::ofstream(dir + "/defs.yaml") << "models:\n  a:\n    file: missing.gguf\n";
  std::ofstream(dir + "/typo.yaml") << "models:\n  a:\n    file: x.gguf\n    contex: 4096\n";
  std::ofstream(dir + "/local.yaml") << "models:\n  local:\n    file: " + fixture_model("qwen3moe-tiny-q8") + "\n";
  struct Case {
    std::vector<std::string> args;
    const char* expected;
  };
  const Case cases[] = {
      {{"--models", dir + "/defs.yaml"}, "missing.gguf does not exist"},
      {{"--models", dir + "/typo.yaml"}, "line 4, key models.a.contex: unknown key"},
      {{"--models-dir", dir}, "no model found"},
      {{"--models", dir + "/local.yaml", "--upstream", "cloud=http://127.0.0.1:9/v1"}, "also a route of the router"},
      {{"--models-dir", dir, "-m", "x.gguf"}, "give one or the other"},
  };
  for (const Case& c : cases) {
    std::string cmd = hylo_binary() + " serve --port 0";
    for (const auto& a : c.args) cmd += " '" + a + "'";
    std::string out;
    EXPECT_NE(run_command(cmd + " 2>&1", &out), 0) << cmd;
    EXPECT_NE(out.find(c.expected), std::string::npos) << cmd << "\n" << out;
  }
}

TEST(DoctorModels, ChecksEveryDefinition) {
  const std::string model = fixture_model("qwen3moe-tiny-q8");
  const std::string path = scratch_path("doctor-models.yaml");
  std::ofstream(path) << "models:\n  v-128k:\n    file: " + model +
                             "\n    context: 131072\n  262k:\n    file: " + model + "\n    context: 262144\n";
  std::string out;
  ASSERT_EQ(run_command(hylo_binary() + " doctor --models " + path + " --hardware mac-studio-m2-ultra-64 2>&1", &out), 0)
      << out;
  const size_t first = out.find("== model 'v-128k' (" + path + " line 2)");
  const size_t second = out.find("== model '262k' (" + path + " line 5)");
  ASSERT_NE(first, std::string::npos) << out;
  ASSERT_NE(second, std::string::npos) << out;
  // The cap is found in the first definition, not in the second.
  const std::string a = out.substr(first, second - first), b = out.substr(second);
  EXPECT_NE(a.find("context capped at 131,072"), std::string::npos) << a;
  EXPECT_EQ(b.find("context capped at"), std::string::npos) << b;
}

}  // namespace
}  // namespace hylo::test
