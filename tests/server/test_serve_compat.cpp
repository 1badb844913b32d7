// `hylo serve` against what llama-server and Ollama users expect: llama-server's native
// /completion, /infill and /slots, fill-in-the-middle through `suffix`, prompt scoring
// (max_tokens 0 + echo + logprobs), assistant prefill, Ollama keep_alive 0, CORS for loopback
// pages, 405 with Allow, JSON bodies labelled as forms, and errors that name their field.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "common/fixtures.h"
#include "serve_process.h"

namespace hylo::test {
namespace {

using json = nlohmann::json;

json user(const std::string& text) { return json::array({{{"role", "user"}, {"content", text}}}); }

// The "data: {...}" events of a stream, parsed.
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

class ServeCompat : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string model = fixture_model("qwen3moe-tiny");
    ASSERT_FALSE(model.empty());
    server_ = new ServeProcess({"-m", model, "--parallel", "2", "-c", "512", "--test-hooks"});
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
  // Whether the fixture's vocabulary has the fill-in-the-middle tokens.
  bool has_fim_tokens() {
    auto c = client();
    const HttpReply r = post_json(c, "/tokenize", {{"content", "<|fim_prefix|>"}});
    return r.json["tokens"].size() == 1;
  }
  static ServeProcess* server_;
};
ServeProcess* ServeCompat::server_ = nullptr;

TEST_F(ServeCompat, JsonBodiesLabelledAsFormsOrUnlabelledAreRead) {
  // curl -d @file sends application/x-www-form-urlencoded; httplib refused such bodies past 8 KiB.
  const std::string body = json{{"content", std::string(9000, 'a')}}.dump();
  for (const std::string& type : {std::string("Content-Type: application/x-www-form-urlencoded\r\n"), std::string()}) {
    const std::string r = raw_exchange(server_->port(), "POST /tokenize HTTP/1.1\r\nHost: 127.0.0.1\r\n" + type +
                                                            "Content-Length: " + std::to_string(body.size()) +
                                                            "\r\nConnection: close\r\n\r\n" + body);
    EXPECT_EQ(status_of(r), 200) << type << r.substr(0, 300);
    EXPECT_NE(body_of(r).find("\"tokens\""), std::string::npos) << type;
  }
}

TEST_F(ServeCompat, WrongMethodIs405WithAllow) {
  auto c = client();
  const HttpReply chat = get(c, "/v1/chat/completions");
  EXPECT_EQ(chat.status, 405) << chat.body;
  EXPECT_EQ(chat.headers.find("Allow")->second, "POST");
  EXPECT_NE(chat.json["error"]["message"].get<std::string>().find("use POST"), std::string::npos) << chat.body;
  const HttpReply models = post_json(c, "/v1/models", json::object());
  EXPECT_EQ(models.status, 405);
  EXPECT_EQ(models.headers.find("Allow")->second, "GET, HEAD");
  const HttpReply ollama = get(c, "/api/chat");
  EXPECT_EQ(ollama.status, 405);
  EXPECT_TRUE(ollama.json["error"].is_string()) << ollama.body;
  EXPECT_EQ(get(c, "/no/such/route").status, 404);
}

TEST_F(ServeCompat, RequestErrorsAreSpecific) {
  auto c = client();
  auto empty = c.Post("/v1/chat/completions", "", "application/json");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->status, 400);
  EXPECT_NE(empty->body.find("the request body is empty"), std::string::npos) << empty->body;

  const HttpReply required =
      post_json(c, "/v1/chat/completions", {{"messages", user("hi")}, {"tool_choice", "required"}});
  EXPECT_EQ(required.status, 400);
  EXPECT_EQ(required.json["error"]["param"], "tool_choice") << required.body;

  const HttpReply temperature = post_json(c, "/v1/chat/completions", {{"messages", user("hi")}, {"temperature", 5}});
  EXPECT_EQ(temperature.status, 400);
  EXPECT_EQ(temperature.json["error"]["param"], "temperature") << temperature.body;
  const HttpReply content =
      post_json(c, "/v1/chat/completions", {{"messages", json::array({{{"role", "user"}, {"content", 3}}})}});
  EXPECT_EQ(content.json["error"]["param"], "messages[0].content") << content.body;
}

TEST_F(ServeCompat, LoopbackOriginsGetCorsOthersDoNot) {
  auto c = client();
  for (const char* origin : {"http://localhost:3000", "http://127.0.0.1:5173", "http://[::1]:8000"}) {
    auto pre = c.Options("/v1/chat/completions", {{"Origin", origin},
                                                  {"Access-Control-Request-Method", "POST"},
                                                  {"Access-Control-Request-Headers", "content-type, x-stainless-os"}});
    ASSERT_TRUE(pre);
    EXPECT_EQ(pre->status, 204) << origin;
    EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Origin"), origin);
    EXPECT_EQ(pre->get_header_value("Access-Control-Allow-Headers"), "content-type, x-stainless-os");
    EXPECT_EQ(get(c, "/v1/models", {{"Origin", origin}}).headers.count("Access-Control-Allow-Origin"), 1u) << origin;
  }
  auto foreign =
      c.Options("/v1/chat/completions", {{"Origin", "http://evil.example"}, {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(foreign);
  EXPECT_EQ(foreign->get_header_value("Access-Control-Allow-Origin"), "");
  EXPECT_EQ(
      get(c, "/health", {{"Origin", "http://localhost.evil.example"}}).headers.count("Access-Control-Allow-Origin"),
      0u);
}

TEST_F(ServeCompat, KeepAliveZeroUnlistsTheModelUntilTheNextRequest) {
  auto c = client();
  ASSERT_EQ(get(c, "/api/ps").json["models"].size(), 1u);
  const HttpReply unload = post_json(c, "/api/generate", {{"model", "x"}, {"keep_alive", 0}});
  ASSERT_EQ(unload.status, 200) << unload.body;
  EXPECT_EQ(unload.json["done_reason"], "unload");
  EXPECT_EQ(get(c, "/api/ps").json["models"].size(), 0u);
  const json gen = {{"prompt", "hi"}, {"stream", false}, {"options", {{"num_predict", 1}}}};
  ASSERT_EQ(post_json(c, "/api/generate", gen).status, 200);
  EXPECT_EQ(get(c, "/api/ps").json["models"].size(), 1u);
  // On a generation: answered, then unlisted; a duration string reads the same.
  json last = gen;
  last["keep_alive"] = "0s";
  ASSERT_EQ(post_json(c, "/api/generate", last).status, 200);
  EXPECT_EQ(get(c, "/api/ps").json["models"].size(), 0u);
  last["keep_alive"] = "5m";
  ASSERT_EQ(post_json(c, "/api/generate", last).status, 200);
  EXPECT_EQ(get(c, "/api/ps").json["models"].size(), 1u);
  last["keep_alive"] = "soon";
  const HttpReply bad = post_json(c, "/api/generate", last);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.json["error"].get<std::string>().find("keep_alive"), std::string::npos) << bad.body;
}

TEST_F(ServeCompat, AFinalAssistantMessageIsContinued) {
  auto c = client();
  const json messages = {{{"role", "user"}, {"content", "Say a number"}},
                         {{"role", "assistant"}, {"content", "The number is"}}};
  const HttpReply t = post_json(c, "/apply-template", {{"messages", messages}});
  ASSERT_EQ(t.status, 200) << t.body;
  const std::string prompt = t.json["prompt"];
  const std::string tail = "The number is";
  ASSERT_GE(prompt.size(), tail.size());
  EXPECT_EQ(prompt.substr(prompt.size() - tail.size()), tail) << prompt;  // not closed with <|im_end|>
  size_t turns = 0;
  for (size_t at = prompt.find("<|im_start|>assistant"); at != std::string::npos;
       at = prompt.find("<|im_start|>assistant", at + 1))
    ++turns;
  EXPECT_EQ(turns, 1u) << prompt;  // no second turn opened
  // The chat request uses that prompt.
  const HttpReply chat = post_json(c, "/v1/chat/completions", {{"messages", messages}, {"max_tokens", 2}});
  ASSERT_EQ(chat.status, 200) << chat.body;
  const HttpReply tok = post_json(c, "/tokenize", {{"content", prompt}});
  EXPECT_EQ(chat.json["usage"]["prompt_tokens"], tok.json["tokens"].size());
}

TEST_F(ServeCompat, NativeCompletionWholeAndStreamed) {
  auto c = client();
  const json body = {{"prompt", "Once upon a time"}, {"n_predict", 5}, {"temperature", 0}, {"n_probs", 2},
                     {"cache_prompt", true},         {"seed", 3}};
  const HttpReply whole = post_json(c, "/completion", body);
  ASSERT_EQ(whole.status, 200) << whole.body;
  const json& w = whole.json;
  EXPECT_TRUE(w["content"].is_string());
  EXPECT_EQ(w["stop"], true);
  EXPECT_EQ(w["stop_type"], "limit");
  EXPECT_EQ(w["tokens_predicted"], 5);
  EXPECT_GT(w["tokens_evaluated"].get<int>(), 0);
  EXPECT_EQ(w["prompt"], "Once upon a time");
  EXPECT_EQ(w["generation_settings"]["n_predict"], 5);
  EXPECT_EQ(w["generation_settings"]["seed"], 3);
  EXPECT_EQ(w["timings"]["predicted_n"], 5);
  EXPECT_TRUE(w["timings"]["prompt_per_second"].is_number());
  EXPECT_GE(w["id_slot"].get<int>(), 0);
  ASSERT_EQ(w["completion_probabilities"].size(), 5u);
  EXPECT_EQ(w["completion_probabilities"][0]["top_logprobs"].size(), 2u);

  json streamed = body;
  streamed["stream"] = true;
  const HttpReply s = post_stream(c, "/completion", streamed, [](const std::string&) { return true; });
  ASSERT_EQ(s.status, 200);
  const std::vector<json> events = data_events(s.body);
  ASSERT_FALSE(events.empty());
  std::string text;
  for (const json& e : events) text += e["content"].get<std::string>();
  EXPECT_EQ(text, w["content"]);
  EXPECT_EQ(events.back()["stop"], true);
  EXPECT_EQ(events.back()["timings"]["predicted_n"], 5);
  EXPECT_EQ(s.body.find("[DONE]"), std::string::npos);  // llama-server's native stream has none

  // Token prompts, stop words, and the ids back with return_tokens.
  const HttpReply tok = post_json(c, "/tokenize", {{"content", "Once upon a time"}});
  const HttpReply ids =
      post_json(c, "/completion",
                {{"prompt", tok.json["tokens"]}, {"n_predict", 5}, {"temperature", 0}, {"return_tokens", true}});
  ASSERT_EQ(ids.status, 200) << ids.body;
  EXPECT_EQ(ids.json["content"], w["content"]);
  EXPECT_EQ(ids.json["tokens"].size(), 5u);
  const HttpReply word =
      post_json(c, "/completion", {{"prompt", "x"}, {"stop", {"STOP"}}, {"test_forced_output", "abc STOP def"}});
  ASSERT_EQ(word.status, 200) << word.body;
  EXPECT_EQ(word.json["stop_type"], "word");
  EXPECT_EQ(word.json["stopping_word"], "STOP");
  EXPECT_EQ(word.json["content"], "abc ");

  // Several prompts: one result each, in order (an array, as llama-server), streamed by index.
  const json several = {{"prompt", json::array({"Once upon a time", tok.json["tokens"]})},
                        {"n_predict", 5},
                        {"temperature", 0}};
  const HttpReply both = post_json(c, "/completion", several);
  ASSERT_EQ(both.status, 200) << both.body;
  ASSERT_TRUE(both.json.is_array()) << both.body;
  ASSERT_EQ(both.json.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(both.json[i]["index"], i);
    EXPECT_EQ(both.json[i]["content"], w["content"]) << i;
    EXPECT_EQ(both.json[i]["prompt"], "Once upon a time") << i;
    EXPECT_EQ(both.json[i]["tokens_predicted"], 5);
  }
  json several_streamed = several;
  several_streamed["stream"] = true;
  const HttpReply s2 = post_stream(c, "/completion", several_streamed, [](const std::string&) { return true; });
  ASSERT_EQ(s2.status, 200);
  std::string texts[2];
  int stops = 0;
  for (const json& e : data_events(s2.body)) {
    texts[e["index"].get<int>()] += e["content"].get<std::string>();
    stops += e["stop"].get<bool>();
  }
  EXPECT_EQ(texts[0], w["content"]);
  EXPECT_EQ(texts[1], w["content"]);
  EXPECT_EQ(stops, 2);
  const HttpReply mixed = post_json(c, "/completion", {{"prompt", json::array({1, "b"})}});
  EXPECT_EQ(mixed.status, 400) << mixed.body;
  EXPECT_NE(mixed.body.find("token ids must be integers"), std::string::npos) << mixed.body;
  EXPECT_EQ(post_json(c, "/completion", {{"prompt", json::array({"a", 3})}}).status, 400);
}

TEST_F(ServeCompat, SlotsShowTheirState) {
  auto c = client();
  const HttpReply r = get(c, "/slots");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(r.json.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(r.json[i]["id"], i);
    EXPECT_EQ(r.json[i]["n_ctx"], 512);
    EXPECT_TRUE(r.json[i]["is_processing"].is_boolean());
  }
}

TEST_F(ServeCompat, FillInTheMiddle) {
  auto c = client();
  const json infill = {{"input_prefix", "def add(a, b):\n    "},
                       {"input_suffix", "\n\nprint(add(1, 2))\n"},
                       {"input_extra", {{{"filename", "util.py"}, {"text", "X = 1\n"}}}},
                       {"n_predict", 3},
                       {"temperature", 0}};
  const json suffix = {{"prompt", "def add(a, b):\n    "}, {"suffix", "\n"}, {"max_tokens", 3}, {"temperature", 0}};
  if (!has_fim_tokens()) {
    for (const auto& [path, body] : {std::pair{"/infill", infill}, std::pair{"/v1/completions", suffix}}) {
      const HttpReply r = post_json(c, path, body);
      EXPECT_EQ(r.status, 400) << path;
      EXPECT_NE(r.body.find("no fill-in-the-middle tokens (<|fim_prefix|>"), std::string::npos) << r.body;
    }
    GTEST_SKIP() << "the fixture vocabulary has no FIM tokens: the 400 is checked, not the prompt";
  }
  const HttpReply r = post_json(c, "/infill", infill);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["tokens_predicted"], 3);
  // The prompt: repository context, then <|fim_prefix|> prefix <|fim_suffix|> suffix <|fim_middle|>.
  const std::string expected =
      "<|repo_name|>myproject\n<|file_sep|>util.py\nX = 1\n<|file_sep|>filename\n<|fim_prefix|>def add(a, b):\n    "
      "<|fim_suffix|>\n\nprint(add(1, 2))\n<|fim_middle|>";
  const HttpReply tok = post_json(c, "/tokenize", {{"content", expected}});
  EXPECT_EQ(r.json["tokens_evaluated"], tok.json["tokens"].size());
  const HttpReply oa = post_json(c, "/v1/completions", suffix);
  ASSERT_EQ(oa.status, 200) << oa.body;
  EXPECT_EQ(oa.json["usage"]["completion_tokens"], 3);
  const HttpReply ol =
      post_json(c, "/api/generate",
                {{"prompt", "def f():"}, {"suffix", "\n"}, {"stream", false}, {"options", {{"num_predict", 2}}}});
  EXPECT_EQ(ol.status, 200) << ol.body;
}

// Scoring: the prompt's tokens with their logprobs, bounded per step, batch-invariant, and the
// same numbers as the logprob of a generated token.
TEST_F(ServeCompat, PromptScoring) {
  auto c = client();
  std::string text = "The quick brown fox";
  const json score = {{"prompt", text}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 2}, {"temperature", 0}};
  const HttpReply r = post_json(c, "/v1/completions", score);
  ASSERT_EQ(r.status, 200) << r.body;
  const json& choice = r.json["choices"][0];
  EXPECT_EQ(choice["text"], text);
  const json& lp = choice["logprobs"];
  const size_t n = post_json(c, "/tokenize", {{"content", text}}).json["tokens"].size();
  ASSERT_EQ(lp["tokens"].size(), n);
  std::string joined;
  for (const auto& t : lp["tokens"]) joined += t.get<std::string>();
  EXPECT_EQ(joined, text);
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  for (size_t i = 1; i < n; ++i) {
    EXPECT_LE(lp["token_logprobs"][i].get<double>(), 0.0);
    EXPECT_EQ(lp["top_logprobs"][i].size(), 2u);
  }
  EXPECT_EQ(r.json["usage"]["completion_tokens"], 0);

  // A generated token's logprob is the score of that token appended to the prompt.
  const std::vector<int> prompt_ids = post_json(c, "/tokenize", {{"content", text}}).json["tokens"];
  const HttpReply gen = post_json(c, "/completion",
                                  {{"prompt", prompt_ids},
                                   {"n_predict", 1},
                                   {"temperature", 0},
                                   {"n_probs", 1},
                                   {"repeat_penalty", 1.0},
                                   {"return_tokens", true}});
  ASSERT_EQ(gen.status, 200) << gen.body;
  std::vector<int> ids = prompt_ids;
  ids.push_back(gen.json["tokens"][0]);
  const HttpReply s2 =
      post_json(c, "/v1/completions", {{"prompt", ids}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 1}});
  ASSERT_EQ(s2.status, 200) << s2.body;
  EXPECT_NEAR(s2.json["choices"][0]["logprobs"]["token_logprobs"][n].get<double>(),
              gen.json["completion_probabilities"][0]["logprob"].get<double>(), 1e-4);

  // A prompt longer than one scoring chunk (64 rows), scored alone and next to a generation.
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "one two three ";
  json long_score = score;
  long_score["prompt"] = long_text;
  const HttpReply alone = post_json(c, "/v1/completions", long_score);
  ASSERT_EQ(alone.status, 200) << alone.body;
  const size_t n_long = alone.json["choices"][0]["logprobs"]["tokens"].size();
  EXPECT_EQ(n_long, post_json(c, "/tokenize", {{"content", long_text}}).json["tokens"].size());
  EXPECT_GT(n_long, 64u);
  std::thread busy([&] {
    auto c2 = server_->client();
    post_json(c2, "/v1/completions", {{"prompt", "Busy"}, {"max_tokens", 40}, {"ignore_eos", true}});
  });
  const HttpReply together = post_json(c, "/v1/completions", long_score);
  busy.join();
  ASSERT_EQ(together.status, 200);
  EXPECT_EQ(together.json["choices"][0]["logprobs"]["token_logprobs"],
            alone.json["choices"][0]["logprobs"]["token_logprobs"]);
}

TEST_F(ServeCompat, EmbeddingsAreOffWithoutTheFlag) {
  auto c = client();
  const HttpReply r = post_json(c, "/v1/embeddings", {{"input", "hello"}});
  EXPECT_EQ(r.status, 501);
  EXPECT_NE(r.body.find("--embeddings"), std::string::npos) << r.body;
}

// Embeddings on both families, with mean and last pooling: unit length, one per input, the same
// vector for the same text whatever else is in the request, different pooling different vectors.
TEST(ServeEmbeddings, MeanAndLastPooling) {
  const std::string model = fixture_model("qwen3moe-tiny");
  ASSERT_FALSE(model.empty());
  std::vector<json> firsts;
  for (const char* pooling : {"mean", "last"}) {
    ServeProcess server({"-m", model, "--parallel", "2", "-c", "256", "--embeddings", "--pooling", pooling});
    ASSERT_TRUE(server.start());
    auto c = server.client();
    const HttpReply r = post_json(c, "/v1/embeddings", {{"input", {"hello world", "a longer second input here"}}});
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_EQ(r.json["data"].size(), 2u);
    EXPECT_EQ(r.json["object"], "list");
    for (const json& d : r.json["data"]) {
      ASSERT_EQ(d["embedding"].size(), 128u);  // the fixture's n_embd
      double norm = 0;
      for (const auto& v : d["embedding"]) norm += v.get<double>() * v.get<double>();
      EXPECT_NEAR(norm, 1.0, 1e-4);
    }
    EXPECT_NE(r.json["data"][0]["embedding"], r.json["data"][1]["embedding"]);
    EXPECT_GT(r.json["usage"]["prompt_tokens"].get<int>(), 4);
    const HttpReply one = post_json(c, "/api/embed", {{"model", "x"}, {"input", "hello world"}});
    ASSERT_EQ(one.status, 200) << one.body;
    ASSERT_EQ(one.json["embeddings"].size(), 1u);
    for (size_t i = 0; i < 128; ++i)
      EXPECT_NEAR(one.json["embeddings"][0][i].get<double>(), r.json["data"][0]["embedding"][i].get<double>(), 1e-6);
    const HttpReply legacy = post_json(c, "/api/embeddings", {{"model", "x"}, {"prompt", "hello world"}});
    ASSERT_EQ(legacy.status, 200) << legacy.body;
    EXPECT_EQ(legacy.json["embedding"], one.json["embeddings"][0]);
    EXPECT_EQ(post_json(c, "/v1/embeddings", {{"input", json::array({1, 2, 3})}}).status, 200);
    EXPECT_EQ(post_json(c, "/v1/embeddings", {{"input", 3}}).status, 400);
    firsts.push_back(r.json["data"][0]["embedding"]);
    EXPECT_EQ(server.stop(), 0) << server.log();
  }
  EXPECT_NE(firsts[0], firsts[1]);
}

}  // namespace
}  // namespace hylo::test
