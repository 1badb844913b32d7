// The Qwen3 tokenizer of the fixture model qwen3next-tiny, loaded once per test binary, and a
// reader for the fixtures' .jsonl case files. Shared by the tokenizer and chat tests.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/fixtures.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace hylo::test {

// nullptr (and a test failure) if the fixture model cannot be generated or read.
inline const tokenizer::Tokenizer* fixture_tokenizer() {
  static const std::optional<tokenizer::Tokenizer> tok = []() -> std::optional<tokenizer::Tokenizer> {
    const std::string path = fixture_model("qwen3next-tiny");
    if (path.empty()) return std::nullopt;
    auto file = gguf::File::open(path);
    if (!file.ok()) {
      ADD_FAILURE() << file.message();
      return std::nullopt;
    }
    auto t = tokenizer::Tokenizer::from_gguf(*file);
    if (!t.ok()) {
      ADD_FAILURE() << t.message();
      return std::nullopt;
    }
    return std::move(t).value();
  }();
  return tok ? &*tok : nullptr;
}

// One JSON value per non-empty line, keys in file order.
inline std::vector<nlohmann::ordered_json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::ordered_json> out;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::ordered_json::parse(line));
  return out;
}

}  // namespace hylo::test
