// `hylo tokenize`: text -> token ids with the model's tokenizer (GGUF metadata only).
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/command.h"
#include "tokenizer/tokenizer.h"

namespace hylo::apps {
namespace {

struct TokenizeOptions {
  std::string model, text, file;
  bool no_special = false, json = false;
};

int run_tokenize(const TokenizeOptions& o, bool have_text) {
  if (!have_text && o.file.empty()) {
    std::fprintf(stderr, "hylo tokenize: --text TEXT or --file FILE is required\n");
    return kExitUsage;
  }
  auto tok = tokenizer::Tokenizer::from_gguf_file(o.model);
  if (!tok.ok()) {
    std::fprintf(stderr, "hylo tokenize: %s\n", tok.message().c_str());
    return kExitError;
  }
  std::string text = o.text;
  if (!o.file.empty()) {
    std::ifstream in(o.file, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "hylo tokenize: cannot read %s\n", o.file.c_str());
      return kExitError;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  const std::vector<int32_t> ids = tok->encode(text, /*parse_special=*/!o.no_special);
  std::string out;
  if (o.json) {
    out = nlohmann::json(ids).dump();
  } else {
    for (size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
  }
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

CommandRegistrar reg("tokenize", "Print the token ids of a text (special tokens parsed unless --no-special)", 40,
                     [](CLI::App& app) -> std::function<int()> {
                       auto o = std::make_shared<TokenizeOptions>();
                       app.add_option("-m,--model", o->model, "GGUF model (only its metadata is read)")->required();
                       auto* text = app.add_option("--text", o->text, "Text to tokenize");
                       auto* file = app.add_option("--file", o->file, "File whose bytes to tokenize");
                       text->excludes(file);  // CLI11 reports this one itself
                       app.add_flag("--no-special", o->no_special, "Treat special-token text as plain text");
                       app.add_flag("--json", o->json, "Print a JSON array instead of space-separated ids");
                       return [o, text] { return run_tokenize(*o, text->count() > 0); };
                     });

}  // namespace
}  // namespace hylo::apps
