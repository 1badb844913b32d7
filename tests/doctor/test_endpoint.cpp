// The endpoint reader against a tiny in-process HTTP server serving canned llama-server, hylo and
// Ollama answers, plus the failure modes (nothing listening, an unrelated server, bad numbers).
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "doctor/doctor.h"
#include "doctor/endpoint.h"

namespace hylo::doctor {
namespace {

using json = nlohmann::json;

// An HTTP server on a free local port for the duration of a test. bind_to_any_port already
// listens, so requests queue until the accept loop runs: no waiting needed.
class FakeServer {
 public:
  FakeServer() { port_ = server_.bind_to_any_port("127.0.0.1"); }
  ~FakeServer() { stop(); }
  void start() {
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  void stop() {
    if (!thread_.joinable()) return;
    // stop() only acts on a running accept loop; the thread may not have entered it yet.
    for (int i = 0; i < 10000000 && !server_.is_running(); ++i) std::this_thread::yield();
    server_.stop();
    thread_.join();
  }
  void get(const std::string& path, json body) {
    server_.Get(path, [body](const httplib::Request&, httplib::Response& res) {
      res.set_content(body.dump(), "application/json");
    });
  }
  void post(const std::string& path, std::function<json(const json&)> answer) {
    server_.Post(path, [answer](const httplib::Request& req, httplib::Response& res) {
      res.set_content(answer(json::parse(req.body, nullptr, false)).dump(), "application/json");
    });
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

json llama_models(const std::string& id, std::optional<int64_t> n_ctx = std::nullopt,
                  const std::string& owner = "llamacpp") {
  json meta = {{"vocab_type", 2}, {"n_vocab", 151936},         {"n_ctx_train", 262144},
               {"n_embd", 2048},  {"n_params", 30532122624LL}, {"size", 18556688384LL}};
  if (n_ctx) meta["n_ctx"] = *n_ctx;
  return {{"object", "list"},
          {"data", json::array({{{"id", id}, {"object", "model"}, {"owned_by", owner}, {"meta", meta}}})}};
}

json coder_model_info() {
  return {{"general.architecture", "qwen3moe"},
          {"general.parameter_count", 30532122624LL},
          {"general.file_type", 15},
          {"qwen3moe.block_count", 48},
          {"qwen3moe.context_length", 262144},
          {"qwen3moe.embedding_length", 2048},
          {"qwen3moe.feed_forward_length", 5472},
          {"qwen3moe.attention.head_count", 32},
          {"qwen3moe.attention.head_count_kv", 4},
          {"qwen3moe.attention.key_length", 128},
          {"qwen3moe.attention.value_length", 128},
          {"qwen3moe.attention.layer_norm_rms_epsilon", 1e-6},
          {"qwen3moe.rope.freq_base", 10000000},
          {"qwen3moe.expert_count", 128},
          {"qwen3moe.expert_used_count", 8},
          {"qwen3moe.expert_feed_forward_length", 768},
          {"tokenizer.ggml.model", "gpt2"},
          {"tokenizer.ggml.tokens", nullptr},
          {"tokenizer.ggml.merges", nullptr}};
}

TEST(Endpoint, LlamaServerPropsAndModels) {
  FakeServer s;
  s.get("/v1/models", llama_models("Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf"));
  s.get("/props", {{"default_generation_settings", {{"n_ctx", 131072}, {"temperature", 0.8}}},
                   {"total_slots", 2},
                   {"model_path", "/srv/models/Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf"}});
  s.start();
  auto ep = read_endpoint(s.url() + "/v1");  // an OpenAI base URL works too
  ASSERT_TRUE(ep.ok()) << ep.message();
  EXPECT_EQ(ep->server, "llama-server");
  EXPECT_EQ(ep->n_ctx, 131072);
  EXPECT_EQ(ep->n_ctx_train, 262144);
  EXPECT_EQ(ep->parallel, 2);
  EXPECT_EQ(ep->model_id, "Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf");

  Options o;
  o.endpoint = s.url();
  o.hardware = "mac-studio-m2-ultra-64";
  o.prompt_tokens = 146760;
  auto in = gather_inputs(o);
  ASSERT_TRUE(in.ok()) << in.message();
  EXPECT_EQ(in->model.name, "Qwen3-Coder-30B-A3B");
  EXPECT_EQ(in->model.quant, "Q4_K_M");
  EXPECT_EQ(in->config.ctx, 131072);
  EXPECT_EQ(in->config.parallel, 2);
  EXPECT_EQ(in->config.ctx_origin, Origin::kLlamaServer);
  const Report r = analyze(*in);
  EXPECT_EQ(r.memory.kv_cache_bytes, uint64_t{2} * 131072 * 98304);
  bool flagged = false;
  for (const Finding& f : r.findings) {
    if (f.id != "prompt-exceeds-ctx") continue;
    flagged = true;
    // llama-server shares --ctx-size among its slots; two slots of 262,144 would not fit in 64 GiB,
    // so the fix is the rounded-up prompt size per slot.
    EXPECT_EQ(f.fix, "--ctx-size 294912 (llama-server splits it over its 2 slots: 147456 each)");
    bool llama = false;
    for (const Fix& x : f.fixes)
      llama |= x.text == "llama-server -m MODEL.gguf -c 294912 --parallel 2" && x.kind == "llama-server";
    EXPECT_TRUE(llama);
  }
  EXPECT_TRUE(flagged);
}

TEST(Endpoint, HyloReportsItsContextInModels) {
  FakeServer s;
  s.get("/v1/models", llama_models("qwen3-next-80b-a3b-instruct-q4_k_m.gguf", 65536, "hylo"));
  s.start();
  auto ep = read_endpoint(s.url());
  ASSERT_TRUE(ep.ok()) << ep.message();
  EXPECT_EQ(ep->server, "hylo");
  EXPECT_EQ(ep->n_ctx, 65536);
  EXPECT_EQ(ep->n_ctx_source, "GET /v1/models meta.n_ctx");
  Options o;
  o.endpoint = s.url();
  o.hardware = "dgx-spark";
  auto in = gather_inputs(o);
  ASSERT_TRUE(in.ok()) << in.message();
  EXPECT_EQ(in->model.arch, "qwen3next");
  EXPECT_EQ(in->config.ctx, 65536);
  EXPECT_EQ(in->config.ctx_origin, Origin::kFlag);  // hylo's own flags
}

TEST(Endpoint, OllamaPsAndShow) {
  FakeServer s;
  s.get("/v1/models",
        {{"object", "list"}, {"data", json::array({{{"id", "qwen3-coder:30b"}, {"owned_by", "library"}}})}});
  s.get("/api/ps", {{"models", json::array({{{"name", "qwen3-coder:30b"},
                                             {"model", "qwen3-coder:30b"},
                                             {"size", 21474836480LL},
                                             {"details", {{"family", "qwen3moe"}, {"quantization_level", "Q4_K_M"}}},
                                             {"context_length", 131072}}})}});
  std::string asked;
  s.post("/api/show", [&asked](const json& req) {
    asked = req.value("model", "");
    return json{{"parameters", "num_ctx                        131072\nstop                           \"<|im_end|>\""},
                {"model_info", coder_model_info()},
                {"details", {{"quantization_level", "Q4_K_M"}}}};
  });
  s.start();
  auto ep = read_endpoint(s.url());
  ASSERT_TRUE(ep.ok()) << ep.message();
  EXPECT_EQ(ep->server, "ollama");
  EXPECT_EQ(ep->model_id, "qwen3-coder:30b");
  EXPECT_EQ(asked, "qwen3-coder:30b");
  EXPECT_EQ(ep->n_ctx, 131072);
  EXPECT_EQ(ep->n_ctx_source, "GET /api/ps context_length");
  EXPECT_EQ(ep->quant, "Q4_K_M");
  EXPECT_EQ(ep->model_info.get_int("qwen3moe.block_count"), 48);

  Options o;
  o.endpoint = s.url();
  o.hardware = "mac-studio-m2-ultra-64";
  auto in = gather_inputs(o);
  ASSERT_TRUE(in.ok()) << in.message();
  EXPECT_EQ(in->config.ctx_origin, Origin::kOllama);
  EXPECT_EQ(in->model.n_vocab, 151936);  // not in model_info: taken from the matching profile
  // model_info carries the exact shapes, so the weights equal the profile's Q4_K_M.
  Options p;
  p.profile = "qwen3-coder-30b-a3b";
  p.hardware = "mac-studio-m2-ultra-64";
  EXPECT_EQ(in->weights.total_bytes, gather_inputs(p)->weights.total_bytes);
  const Report r = analyze(*in);
  bool capped = false;
  for (const Finding& f : r.findings)
    if (f.id == "ctx-below-trained") {
      capped = true;
      EXPECT_NE(f.fix.find("PARAMETER num_ctx 262144"), std::string::npos) << f.fix;
      // To paste: a Modelfile FROM the served tag, its ollama create line, and the server default.
      std::vector<std::string> texts;
      for (const Fix& x : f.fixes) texts.push_back(x.text);
      EXPECT_NE(std::find(texts.begin(), texts.end(), "FROM qwen3-coder:30b\nPARAMETER num_ctx 262144\n"), texts.end());
      EXPECT_NE(std::find(texts.begin(), texts.end(), "ollama create qwen3-coder-30b -f Modelfile"), texts.end());
      EXPECT_NE(std::find(texts.begin(), texts.end(), "OLLAMA_CONTEXT_LENGTH=262144 ollama serve"), texts.end());
    }
  EXPECT_TRUE(capped);
}

TEST(Endpoint, OllamaWithoutLoadedModelUsesTheHintAndTheDefaultContext) {
  FakeServer s;
  s.get("/api/ps", {{"models", json::array()}});
  s.post("/api/show", [](const json&) {
    return json{{"parameters", "stop \"<|im_end|>\""}, {"model_info", coder_model_info()}};
  });
  s.start();
  auto ep = read_endpoint(s.url(), "qwen3-coder:30b");
  ASSERT_TRUE(ep.ok()) << ep.message();
  EXPECT_EQ(ep->model_id, "qwen3-coder:30b");
  EXPECT_FALSE(ep->n_ctx.has_value());
  Options o;
  o.endpoint = s.url();
  o.hardware = "h100";
  auto no_hint = gather_inputs(o);  // nothing loaded and no hint: no model to check
  ASSERT_FALSE(no_hint.ok());
}

TEST(Endpoint, UnreachableAndUnrelatedServers) {
  int closed_port;
  {
    FakeServer gone;
    gone.start();
    closed_port = gone.port();
  }  // stopped and closed: nothing listens there any more
  auto down = read_endpoint("http://127.0.0.1:" + std::to_string(closed_port), "", 2.0);
  ASSERT_FALSE(down.ok());
  EXPECT_NE(down.message().find("no answer"), std::string::npos) << down.message();

  FakeServer other;
  other.get("/", {{"hello", "world"}});
  other.start();
  auto unrelated = read_endpoint(other.url());
  ASSERT_FALSE(unrelated.ok());
  EXPECT_NE(unrelated.message().find("not hylo, llama-server or Ollama"), std::string::npos) << unrelated.message();

  EXPECT_FALSE(read_endpoint("ftp://example.invalid").ok());
  EXPECT_FALSE(read_endpoint("").ok());
}

TEST(Endpoint, ImplausibleNumbersAreErrors) {
  FakeServer s;
  s.get("/v1/models", llama_models("x.gguf"));
  s.get("/props", {{"default_generation_settings", {{"n_ctx", -5}}}, {"total_slots", 1}});
  s.start();
  auto ep = read_endpoint(s.url());
  ASSERT_FALSE(ep.ok());
  EXPECT_NE(ep.message().find("implausible"), std::string::npos) << ep.message();
}

}  // namespace
}  // namespace hylo::doctor
