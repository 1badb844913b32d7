// End-to-end: the hylo tokenize / detokenize commands on the fixture model.
#include <gtest/gtest.h>

#include <fstream>

#include "common/fixtures.h"

namespace hylo::test {
namespace {

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct CommandResult {
  int status;
  std::string output;
};

CommandResult hylo(const std::string& args) {
  CommandResult r;
  r.status = run_command(quote(hylo_binary()) + " " + args, &r.output);
  return r;
}

TEST(TokenizeCommand, TextFileJsonAndNoSpecial) {
  const std::string model = fixture_model("qwen3next-tiny");
  ASSERT_FALSE(model.empty());
  CommandResult r = hylo("tokenize -m " + quote(model) + " --text 'Hello world'");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "9707 1879\n");

  r = hylo("tokenize -m " + quote(model) + " --json --text '<|im_start|>user'");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "[151644,872]\n");

  r = hylo("tokenize -m " + quote(model) + " --no-special --text '<|im_start|>'");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("151644"), std::string::npos) << r.output;

  // --file tokenizes the bytes exactly (trailing newline included).
  const std::string path = work_dir() + "/tokenize_input.txt";
  std::ofstream(path, std::ios::binary) << "café\n";
  r = hylo("tokenize -m " + quote(model) + " --file " + quote(path));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "924 58858 198\n");
}

TEST(TokenizeCommand, UsageErrors) {
  const std::string model = fixture_model("qwen3next-tiny");
  ASSERT_FALSE(model.empty());
  EXPECT_EQ(hylo("tokenize -m " + quote(model)).status, 2);  // neither --text nor --file
  CommandResult r = hylo("tokenize -m " + quote(work_dir() + "/missing.gguf") + " --text x");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("missing.gguf"), std::string::npos) << r.output;
}

TEST(DetokenizeCommand, PrintsTextExactly) {
  const std::string model = fixture_model("qwen3next-tiny");
  ASSERT_FALSE(model.empty());
  CommandResult r = hylo("detokenize -m " + quote(model) + " --ids 151644,872,198,9707,1879");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "<|im_start|>user\nHello world");
  r = hylo("detokenize -m " + quote(model) + " --ids 1,999999");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("999999"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace hylo::test
