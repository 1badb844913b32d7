// `hylo detokenize`: token ids -> the exact text (bytes) they stand for, special tokens shown.
// The text is printed as it is, with no newline added.
#include <cstdio>

#include "apps/command.h"
#include "tokenizer/tokenizer.h"

namespace hylo::apps {
namespace {

struct DetokenizeOptions {
  std::string model, ids;
};

int run_detokenize(const DetokenizeOptions& o) {
  auto tok = tokenizer::Tokenizer::from_gguf_file(o.model);
  if (!tok.ok()) {
    std::fprintf(stderr, "hylo detokenize: %s\n", tok.message().c_str());
    return kExitError;
  }
  // Accepts "1,2,3", "1 2 3" and "[1, 2, 3]".
  std::vector<int32_t> ids;
  std::string num;
  auto flush = [&]() -> bool {
    if (num.empty()) return true;
    char* end = nullptr;
    const long long v = std::strtoll(num.c_str(), &end, 10);
    const bool ok = end != nullptr && *end == '\0' && v >= 0 && v < tok->n_vocab();
    if (!ok) {
      std::fprintf(stderr, "hylo detokenize: '%s' is not a token id of this vocabulary (0..%d)\n", num.c_str(),
                   tok->n_vocab() - 1);
      return false;
    }
    ids.push_back(static_cast<int32_t>(v));
    num.clear();
    return true;
  };
  for (char c : o.ids) {
    if (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '[' || c == ']') {
      if (!flush()) return kExitUsage;
    } else {
      num += c;
    }
  }
  if (!flush()) return kExitUsage;
  const std::string text = tok->decode(ids, /*show_special=*/true);
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

CommandRegistrar reg("detokenize", "Print the text of token ids (exactly, no newline added)", 41,
                     [](CLI::App& app) -> std::function<int()> {
                       auto o = std::make_shared<DetokenizeOptions>();
                       app.add_option("-m,--model", o->model, "GGUF model (only its metadata is read)")->required();
                       app.add_option("--ids", o->ids, "Token ids, e.g. 1,2,3")->required();
                       return [o] { return run_detokenize(*o); };
                     });

}  // namespace
}  // namespace hylo::apps
