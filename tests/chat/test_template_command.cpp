// End-to-end: `hylo template` prints exactly the rendered prompt (model template or a file),
// and a template that raises exits 1 with its message.
#include <gtest/gtest.h>

#include <fstream>

#include "common/fixtures.h"
#include "tokenizer/fixture_tokenizer.h"

namespace hylo::test {
namespace {

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

nlohmann::ordered_json chat_case(const std::string& id) {
  for (auto& c : read_jsonl(fixtures_dir() + "/chat/cases.jsonl"))
    if (c["id"] == id) return c;
  ADD_FAILURE() << "no chat case " << id;
  return {};
}

// Runs `hylo template` for a fixture case; stdout only (stderr goes to *err when given).
int run_case(const nlohmann::ordered_json& c, bool use_model_template, std::string* out) {
  const std::string dir = work_dir() + "/template_cmd_" + c["id"].get<std::string>();
  std::string cmd = quote(hylo_binary()) + " template -m " + quote(fixture_model("qwen3next-tiny"));
  std::ofstream(dir + ".messages.json") << c["messages"].dump();
  cmd += " --messages " + quote(dir + ".messages.json");
  if (!c["tools"].is_null()) {
    std::ofstream(dir + ".tools.json") << c["tools"].dump();
    cmd += " --tools " + quote(dir + ".tools.json");
  }
  if (!use_model_template) cmd += " --chat-template " + quote(fixtures_dir() + "/" + c["template"].get<std::string>());
  if (!c["add_generation_prompt"].get<bool>()) cmd += " --no-generation-prompt";
  if (!c["enable_thinking"].is_null()) cmd += c["enable_thinking"].get<bool>() ? " --thinking on" : " --thinking off";
  return run_command("(" + cmd + " 2>" + quote(dir + ".stderr") + ")", out);
}

TEST(TemplateCommand, ModelTemplateMatchesReference) {
  for (const char* id : {"q3-system-user", "q3-thinking-off", "q3-no-generation-prompt", "q3-tool-call-response"}) {
    const auto c = chat_case(id);
    std::string out;
    EXPECT_EQ(run_case(c, /*use_model_template=*/true, &out), 0) << id;
    EXPECT_EQ(out, c["expected"].get<std::string>()) << id;
  }
}

TEST(TemplateCommand, TemplateFileMatchesReference) {
  for (const char* id : {"coder-tools-default-system", "q35-tools-call-response", "q35-content-parts"}) {
    const auto c = chat_case(id);
    std::string out;
    EXPECT_EQ(run_case(c, /*use_model_template=*/false, &out), 0) << id;
    EXPECT_EQ(out, c["expected"].get<std::string>()) << id;
  }
}

TEST(TemplateCommand, RaisingTemplateExitsWithItsMessage) {
  const auto c = chat_case("q35-error-system-not-first");
  std::string out;
  EXPECT_EQ(run_case(c, /*use_model_template=*/false, &out), 1);
  EXPECT_EQ(out, "");
  const std::string err = read_text_file(work_dir() + "/template_cmd_q35-error-system-not-first.stderr");
  EXPECT_NE(err.find(c["error"].get<std::string>()), std::string::npos) << err;
}

}  // namespace
}  // namespace hylo::test
