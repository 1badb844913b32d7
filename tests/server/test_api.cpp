// The API adapters without a model: request validation (errors name the field), the translation
// of OpenAI and Ollama requests into the one internal request, and the error mapping.
#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/json_fields.h"
#include "server/ollama_api.h"
#include "server/openai_api.h"

namespace hylo::server {
namespace {

ApiContext context(chat::ToolCallFormat format = chat::ToolCallFormat::kHermesJson) {
  ApiContext c;
  c.model_id = "m.gguf";
  c.n_vocab = 1000;
  c.tool_call_format = format;
  return c;
}

ojson chat_body(ojson extra = ojson::object()) {
  ojson b = {{"model", "anything"}, {"messages", ojson::array({{{"role", "user"}, {"content", "hi"}}})}};
  for (auto& [k, v] : extra.items()) b[k] = v;
  return b;
}

std::string openai_error(const ojson& body) {
  auto r = parse_openai_chat(body, context());
  return r.ok() ? "(accepted)" : r.message();
}

TEST(ErrorMapping, ContextOverflowBodies) {
  const ApiError e = ApiError::context_exceeded(5000, 4096);
  EXPECT_EQ(http_status(e), 400);
  EXPECT_EQ(
      error_body(e, ApiFamily::kOpenAI).dump(),
      R"json({"error":{"type":"exceed_context_size_error","message":"request (5000 tokens) exceeds the available context size (4096 tokens)","n_prompt_tokens":5000,"n_ctx":4096}})json");
  // Ollama's clients print error as a string: the numbers travel in the message.
  EXPECT_EQ(error_body(e, ApiFamily::kOllama).dump(),
            R"json({"error":"request (5000 tokens) exceeds the available context size (4096 tokens)"})json");
}

TEST(ErrorMapping, ParamNamesTheFieldAtFault) {
  EXPECT_EQ(field_of_message("temperature must be between 0 and 2"), "temperature");
  EXPECT_EQ(field_of_message("messages[1].content must be a string or an array of parts"), "messages[1].content");
  EXPECT_EQ(field_of_message("options.num_predict is out of range: -1e999 does not fit a double"),
            "options.num_predict");
  EXPECT_EQ(field_of_message("the request body must be a JSON object"), "");
  EXPECT_EQ(field_of_message("invalid JSON in the request body: x"), "");
  EXPECT_EQ(field_of_message("a number is out of range"), "");
  const ojson o = error_body(ApiError::bad_request("top_p must be between 0 and 1"), ApiFamily::kOpenAI);
  EXPECT_EQ(o["error"]["param"], "top_p");
  EXPECT_TRUE(error_body(ApiError::bad_request("the prompt is empty"), ApiFamily::kOpenAI)["error"]["param"].is_null());
}

TEST(ErrorMapping, StatusesAndBodies) {
  EXPECT_EQ(http_status(ApiError::bad_request("x")), 400);
  EXPECT_EQ(http_status({ApiError::Kind::kUnauthorized, "x"}), 401);
  EXPECT_EQ(http_status({ApiError::Kind::kPayloadTooLarge, "x"}), 413);
  EXPECT_EQ(http_status({ApiError::Kind::kQueueFull, "x"}), 503);
  EXPECT_EQ(http_status({ApiError::Kind::kLoading, "x"}), 503);
  EXPECT_EQ(http_status(ApiError::internal("x")), 500);
  const ojson o = error_body(ApiError::bad_request("temperature must be a number"), ApiFamily::kOpenAI);
  EXPECT_EQ(o["error"]["message"], "temperature must be a number");
  EXPECT_EQ(o["error"]["type"], "invalid_request_error");
  EXPECT_EQ(error_body(ApiError::bad_request("bad"), ApiFamily::kOllama).dump(), R"({"error":"bad"})");
  runtime::SubmitError full{runtime::SubmitError::kQueueFull, "the request queue is full (1 waiting)"};
  EXPECT_EQ(from_submit_error(full).kind, ApiError::Kind::kQueueFull);
}

TEST(RequestBody, MalformedJsonAndShapes) {
  EXPECT_NE(parse_body("{\"a\":").message().find("invalid JSON in the request body"), std::string::npos);
  EXPECT_EQ(parse_body("[1,2]").message(), "the request body must be a JSON object");
  EXPECT_NE(parse_body("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}").message().find("deeper"),
            std::string::npos);
  EXPECT_TRUE(parse_body(R"({"s":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["})").ok());
}

TEST(RequestBody, FieldReaderNamesTheField) {
  const ojson o = {{"i", 2.0}, {"f", 2.5}, {"s", 3}, {"b", "yes"}, {"n", nullptr}};
  FieldReader r(o, "options.");
  EXPECT_EQ(**r.integer("i", 0, 10), 2);  // 2.0 from a JavaScript client
  EXPECT_EQ(r.integer("f", 0, 10).message(), "options.f must be an integer");
  EXPECT_EQ(r.integer("i", 5, 10).message(), "options.i must be between 5 and 10");
  EXPECT_EQ(r.string("s").message(), "options.s must be a string");
  EXPECT_EQ(r.boolean("b").message(), "options.b must be a boolean");
  EXPECT_FALSE(r.number("n", 0, 1)->has_value());  // null reads as absent
  EXPECT_FALSE(r.number("missing", 0, 1)->has_value());
}

TEST(OpenAIChat, ValidationErrorsNameTheField) {
  struct Case {
    ojson body;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{"model", "m"}}, "messages is required"},
      {{{"messages", "hi"}}, "messages must be an array"},
      {{{"messages", ojson::array()}}, "messages must be a non-empty array"},
      {{{"messages", ojson::array({{{"role", "user"}, {"content", "a"}}, {{"role", "user"}, {"content", 7}}})}},
       "messages[1].content must be a string or an array of parts"},
      {{{"messages", ojson::array({{{"role", "wizard"}, {"content", "a"}}})}},
       "messages[0].role must be one of system, developer, user, assistant, tool"},
      {{{"messages", ojson::array({{{"content", "a"}}})}}, "messages[0].role is required"},
      {{{"messages", ojson::array({{{"role", "user"}}})}}, "messages[0].content is required"},
      {{{"messages",
         ojson::array({{{"role", "user"}, {"content", ojson::array({{{"type", "image_url"}, {"image_url", "x"}}})}}})}},
       "messages[0].content[0]: \"image_url\" parts are not supported (this model reads text only)"},
      {chat_body({{"temperature", "hot"}}), "temperature must be a number"},
      {chat_body({{"temperature", 3}}), "temperature must be between 0 and 2"},
      {chat_body({{"top_p", 1.5}}), "top_p must be between 0 and 1"},
      {chat_body({{"max_tokens", -1}}), "max_tokens must be between 0 and 2147483647"},
      {chat_body({{"max_tokens", 1.5}}), "max_tokens must be an integer"},
      {chat_body({{"n", 0}}), "n must be between 1 and 16"},
      {chat_body({{"stream", "yes"}}), "stream must be a boolean"},
      {chat_body({{"stop", ojson::array({"a", 1})}}), "stop[1] must be a string"},
      {chat_body({{"logit_bias", {{"abc", 1}}}}), "logit_bias keys must be token ids in [0, 1000), not \"abc\""},
      {chat_body({{"logit_bias", {{"5", 101}}}}), "logit_bias[\"5\"] must be a number between -100 and 100"},
      {chat_body({{"top_logprobs", 21}, {"logprobs", true}}), "top_logprobs must be between 0 and 20"},
      {chat_body({{"response_format", {{"type", "yaml"}}}}),
       "response_format.type must be one of text, json_object, json_schema"},
      {chat_body({{"tools", ojson::array({{{"type", "function"}, {"function", {{"name", 5}}}}})}}),
       "tools[0].function.name must be a string"},
      {chat_body({{"tool_choice", "sometimes"}}), "tool_choice must be none, auto, required or a function"},
      {chat_body({{"repetition_penalty", 0}}), "repetition_penalty must be greater than 0"},
      {chat_body({{"test_forced_output", "x"}}), "test_forced_output needs the server's --test-hooks flag"},
  };
  for (const Case& c : cases) EXPECT_EQ(openai_error(c.body), c.message) << c.body.dump();
}

TEST(OpenAIChat, TranslatesIntoTheInternalRequest) {
  ojson body = chat_body({{"temperature", 0},
                          {"top_k", 5},
                          {"min_p", 0.1},
                          {"repetition_penalty", 1.1},
                          {"seed", 42},
                          {"max_tokens", 10},
                          {"max_completion_tokens", 20},
                          {"stop", "END"},
                          {"n", 2},
                          {"stream", true},
                          {"stream_options", {{"include_usage", true}}},
                          {"logprobs", true},
                          {"top_logprobs", 3},
                          {"logit_bias", {{"7", -100}}},
                          {"response_format", {{"type", "json_object"}}}});
  body["messages"] = ojson::array({
      {{"role", "developer"}, {"content", "be brief"}},
      {{"role", "user"},
       {"content", ojson::array({{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}})}},
  });
  auto g = parse_openai_chat(body, context());
  ASSERT_TRUE(g.ok()) << g.message();
  EXPECT_EQ(g->messages[0]["role"], "system");
  EXPECT_EQ(g->messages[1]["content"], "a\nb");
  EXPECT_EQ(*g->sampling.temperature, 0.0f);
  EXPECT_EQ(*g->sampling.top_k, 5);
  EXPECT_FLOAT_EQ(*g->sampling.repeat_penalty, 1.1f);
  EXPECT_EQ(*g->sampling.seed, 42u);
  EXPECT_EQ(g->sampling.logit_bias.at(7), -100.0f);
  EXPECT_EQ(*g->max_tokens, 20);  // max_completion_tokens wins
  EXPECT_EQ(g->stop, std::vector<std::string>{"END"});
  EXPECT_EQ(g->n, 2);
  EXPECT_TRUE(g->stream && g->include_usage && g->logprobs);
  EXPECT_EQ(g->top_logprobs, 3);
  EXPECT_TRUE(g->json_mode);
  EXPECT_EQ(g->enable_thinking, std::optional<bool>(false));  // JSON mode: no reasoning block
  // Seeds: choice i draws with seed + i.
  runtime::SamplingParams defaults;
  EXPECT_EQ(g->sampling.apply(defaults, 1).seed, 43u);
  EXPECT_FALSE(g->sampling.apply(defaults, 1).random_seed);
  EXPECT_TRUE(SamplingOverrides{}.apply(defaults, 0).random_seed);
}

TEST(OpenAIChat, ToolCallsInHistoryTakeTheTemplateFamilysForm) {
  ojson body = chat_body();
  body["tools"] = ojson::array(
      {{{"type", "function"}, {"function", {{"name", "get_weather"}, {"parameters", {{"type", "object"}}}}}}});
  body["messages"] = ojson::array(
      {{{"role", "user"}, {"content", "weather?"}},
       {{"role", "assistant"},
        {"content", nullptr},
        {"tool_calls",
         ojson::array({{{"id", "call_1"},
                        {"type", "function"},
                        {"function", {{"name", "get_weather"}, {"arguments", "{\"city\":\"Paris\"}"}}}}})}},
       {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny"}}});
  auto hermes = parse_openai_chat(body, context());
  ASSERT_TRUE(hermes.ok()) << hermes.message();
  EXPECT_EQ(hermes->messages[1]["content"], "");
  EXPECT_EQ(hermes->messages[1]["tool_calls"][0]["function"]["arguments"], "{\"city\":\"Paris\"}");
  EXPECT_EQ(hermes->messages[2]["tool_call_id"], "call_1");
  EXPECT_TRUE(hermes->tools.is_array());
  auto xml = parse_openai_chat(body, context(chat::ToolCallFormat::kXml));
  ASSERT_TRUE(xml.ok());
  EXPECT_EQ(xml->messages[1]["tool_calls"][0]["function"]["arguments"]["city"], "Paris");

  body["messages"][1]["tool_calls"][0]["function"]["arguments"] = "not json";
  EXPECT_EQ(parse_openai_chat(body, context(chat::ToolCallFormat::kXml)).message(),
            "messages[1].tool_calls[0].function.arguments must be a JSON object (as text)");
  body["tool_choice"] = "none";
  body["messages"][1]["tool_calls"][0]["function"]["arguments"] = "{}";
  auto none = parse_openai_chat(body, context());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->tools.is_null());
  EXPECT_FALSE(none->parse_tool_calls);
  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "other"}}}};
  EXPECT_EQ(parse_openai_chat(body, context()).message(), "tool_choice names a function that is not in tools");
}

TEST(OpenAICompletion, PromptForms) {
  auto one = parse_openai_completion({{"prompt", "hello"}, {"echo", true}, {"logprobs", 2}}, context());
  ASSERT_TRUE(one.ok()) << one.message();
  EXPECT_FALSE(one->is_chat());
  EXPECT_EQ(one->prompts.size(), 1u);
  EXPECT_TRUE(one->echo && one->logprobs);
  EXPECT_EQ(one->top_logprobs, 2);
  auto ids = parse_openai_completion({{"prompt", {1, 2, 3}}}, context());
  ASSERT_TRUE(ids.ok());
  EXPECT_TRUE(ids->prompts[0].is_tokens);
  auto many = parse_openai_completion({{"prompt", ojson::array({"a", ojson::array({4, 5})})}, {"n", 2}}, context());
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->prompts.size(), 2u);
  EXPECT_EQ(parse_openai_completion({{"prompt", {1, 5000}}}, context()).message(),
            "prompt token ids must be integers in [0, 1000)");
  EXPECT_EQ(parse_openai_completion({{"prompt", 5}}, context()).message(),
            "prompt must be a string, an array of strings, an array of token ids or an array of such arrays");
  EXPECT_EQ(parse_openai_completion({{"model", "m"}}, context()).message(), "prompt is required");
  auto fim = parse_openai_completion({{"prompt", "a"}, {"suffix", "b"}}, context());
  ASSERT_TRUE(fim.ok()) << fim.message();
  ASSERT_TRUE(fim->fim.has_value());
  EXPECT_EQ(fim->fim->prefix, "a");
  EXPECT_EQ(fim->fim->suffix, "b");
  EXPECT_TRUE(fim->prompts.empty());
  EXPECT_EQ(parse_openai_completion({{"prompt", {1, 2}}, {"suffix", "b"}}, context()).message(),
            "suffix needs prompt to be one string (the text before the gap)");
}

TEST(Ollama, ChatOptionsThinkFormatAndTools) {
  ojson body = {
      {"model", "qwen3:latest"},
      {"messages",
       ojson::array({{{"role", "user"}, {"content", "hi"}},
                     {{"role", "assistant"},
                      {"content", ""},
                      {"thinking", "hmm"},
                      {"tool_calls", ojson::array({{{"function", {{"name", "f"}, {"arguments", {{"x", 1}}}}}}})}},
                     {{"role", "tool"}, {"tool_name", "f"}, {"content", "42"}}})},
      {"options",
       {{"num_ctx", 128}, {"num_predict", -1}, {"temperature", 0.5}, {"seed", 3}, {"stop", {"\n"}}, {"num_gpu", 99}}},
      {"think", true},
      {"format", "json"}};
  auto g = parse_ollama_chat(body, context());
  ASSERT_TRUE(g.ok()) << g.message();
  EXPECT_TRUE(g->stream);  // Ollama streams unless told not to
  EXPECT_EQ(*g->num_ctx, 128);
  EXPECT_FALSE(g->max_tokens.has_value());  // num_predict -1: no limit
  EXPECT_EQ(*g->sampling.temperature, 0.5f);
  EXPECT_EQ(g->stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(g->enable_thinking, std::optional<bool>(true));
  EXPECT_TRUE(g->json_mode);
  EXPECT_EQ(g->messages[1]["reasoning_content"], "hmm");
  EXPECT_EQ(g->messages[1]["tool_calls"][0]["function"]["arguments"]["x"], 1);
  EXPECT_EQ(g->messages[2]["name"], "f");

  body["options"]["num_predict"] = 7;
  body["stream"] = false;
  auto limited = parse_ollama_chat(body, context());
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(*limited->max_tokens, 7);
  EXPECT_FALSE(limited->stream);

  body["options"]["temperature"] = "warm";
  EXPECT_EQ(parse_ollama_chat(body, context()).message(), "options.temperature must be a number");
  body["options"]["temperature"] = 0.1;
  body["messages"][0]["images"] = ojson::array({"aGVsbG8="});
  EXPECT_EQ(parse_ollama_chat(body, context()).message(),
            "messages[0].images: images are not supported (this model reads text only)");
  body["messages"][0].erase("images");
  body["format"] = "xml";
  EXPECT_EQ(parse_ollama_chat(body, context()).message(), "format must be \"json\" or a JSON schema object");
}

TEST(Ollama, GenerateRawTemplatedAndLoadOnly) {
  auto templated = parse_ollama_generate({{"prompt", "hi"}, {"system", "be kind"}, {"context", {1, 2}}}, context());
  ASSERT_TRUE(templated.ok()) << templated.message();
  ASSERT_TRUE(templated->is_chat());
  EXPECT_EQ(templated->messages[0]["role"], "system");
  EXPECT_EQ(templated->messages[1]["content"], "hi");
  EXPECT_EQ(templated->context_prefix, (std::vector<int32_t>{1, 2}));
  auto raw = parse_ollama_generate({{"prompt", "<|im_start|>user"}, {"raw", true}}, context());
  ASSERT_TRUE(raw.ok());
  EXPECT_FALSE(raw->is_chat());
  EXPECT_EQ(raw->prompts[0].text, "<|im_start|>user");
  EXPECT_EQ(parse_ollama_generate({{"prompt", "x"}, {"template", "{{ .Prompt }}"}}, context()).message(),
            "template is not supported (the model's chat template is used)");
  EXPECT_EQ(parse_ollama_generate({{"prompt", "x"}, {"context", {1, -1}}}, context()).message(),
            "context[1] must be a token id in [0, 1000)");

  auto load = ollama_load_only({{"model", "x"}}, /*chat=*/false, context());
  ASSERT_TRUE(load.has_value());
  EXPECT_EQ((*load)["done_reason"], "load");
  EXPECT_EQ((*load)["model"], "m.gguf");
  EXPECT_TRUE(ollama_load_only({{"messages", ojson::array()}}, true, context()).has_value());
  EXPECT_FALSE(ollama_load_only({{"prompt", "x"}}, false, context()).has_value());
}

}  // namespace
}  // namespace hylo::server
