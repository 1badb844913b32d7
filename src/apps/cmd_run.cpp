// `hylo run`: one prompt, rendered with the chat template (or --raw), streamed to stdout, then a
// one-line summary of prompt and generation speed on stderr.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <iterator>
#include <memory>

#include "apps/command.h"
#include "apps/common.h"
#include "apps/default_model.h"
#include "apps/generate.h"
#include "apps/progress.h"
#include "apps/session.h"
#include "base/log.h"
#include "runtime/grammar_filter.h"
#include "runtime/json_schema.h"

namespace hylo::apps {
namespace {

struct Options {
  SessionFlags session;
  SamplingFlags sampling;
  std::string prompt, system;
  bool raw = false;
  std::string think = "show";
  int32_t max_tokens = 256;
  std::string grammar_file, schema_file;
};

// --grammar FILE (GBNF) or --json-schema FILE: the output must follow it.
Result<std::shared_ptr<runtime::TokenFilter>> output_filter(const Options& o, Session& s, bool thinking_open) {
  if (o.grammar_file.empty() && o.schema_file.empty()) return std::shared_ptr<runtime::TokenFilter>();
  const std::string& path = o.grammar_file.empty() ? o.schema_file : o.grammar_file;
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("[run] cannot read {}", path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!o.schema_file.empty()) {
    nlohmann::ordered_json schema;
    try {
      schema = nlohmann::ordered_json::parse(text);
    } catch (const std::exception& e) {
      return make_error("[run] {}: not JSON: {}", path, e.what());
    }
    HYLO_ASSIGN_OR_RETURN(text, runtime::json_schema_to_gbnf(schema));
  }
  HYLO_ASSIGN_OR_RETURN(auto grammar, runtime::Grammar::parse(text));
  std::shared_ptr<const runtime::TokenTrie> trie = runtime::TokenTrie::from_tokenizer(s.tokenizer);
  return std::shared_ptr<runtime::TokenFilter>(std::make_shared<runtime::GrammarFilter>(trie, grammar, thinking_open));
}

int run(const Options& o) {
  std::string prompt = o.prompt;
  if (prompt.empty() && !stdin_is_tty()) {
    prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  if (prompt.empty()) prompt = "Write a haiku about hybrid attention.";
  auto session = open_session(o.session);
  if (!session.ok()) return fail(session.error());
  Session& s = **session;
  log_info("[run] {}", s.ctx_reason);
  log_info("[run] {}", s.cache_reason);
  if (s.default_model) std::fprintf(stderr, "note: %s\n", default_model_note().c_str());
  if (s.random_weights)
    std::fprintf(stderr, "note: %s has random weights (hylo make-model): its output is meaningless text.\n",
                 s.model->info().name.c_str());

  std::string text = prompt;
  if (!o.raw) {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    if (!o.system.empty()) messages.push_back({{"role", "system"}, {"content", o.system}});
    messages.push_back({{"role", "user"}, {"content", prompt}});
    auto rendered = s.render(messages);
    if (!rendered.ok()) return fail(rendered.error());
    text = *rendered;
  }
  Generation gen;
  gen.prompt = s.tokenizer.encode(text, /*parse_special=*/!o.raw);
  gen.sampling = s.sampling;
  if (auto st = o.sampling.apply(&gen.sampling); !st.ok()) return fail(st.error());
  gen.max_tokens = o.max_tokens;
  gen.parse_output = !o.raw;
  gen.thinking_open = !o.raw && chat::prompt_opens_thinking(text);
  gen.show_reasoning = o.think == "show";
  auto filter = output_filter(o, s, gen.thinking_open);
  if (!filter.ok()) return fail(filter.error());
  gen.filter = *filter;
  auto result = generate(s, gen, std::cout);
  if (!result.ok()) return fail(result.error());
  print_summary("run", *result);
  return result->reason == runtime::FinishReason::kError ? kExitError : kExitOk;
}

CommandRegistrar reg("run", "Generate a reply to one prompt, streamed to the terminal", 50, [](CLI::App& app) {
  auto o = std::make_shared<Options>();
  o->session.add(app, /*with_parallel=*/false);
  o->sampling.add(app);
  app.add_option("-n,--max-tokens", o->max_tokens, "Maximum tokens to generate (-1: until the context is full)")
      ->capture_default_str();
  app.add_flag("--raw", o->raw, "Send the prompt as it is, without the chat template");
  app.add_option("--system", o->system, "System message");
  app.add_option("--think", o->think, "Reasoning output: show (dimmed) or hide")
      ->check(CLI::IsMember({"show", "hide"}))
      ->capture_default_str();
  auto* grammar = app.add_option("--grammar", o->grammar_file, "The output must follow this GBNF grammar (file)");
  app.add_option("--json-schema", o->schema_file, "The output must be JSON valid against this schema (file)")
      ->excludes(grammar);
  app.add_option("prompt", o->prompt, "Prompt (default: standard input, or a short demo prompt)");
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace hylo::apps
