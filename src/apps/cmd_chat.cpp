// `hylo chat`: interactive multi-turn chat in the terminal. The history is re-rendered with the
// chat template each turn; the engine reuses the cached prefix, so a turn prefills only what is
// new. /reset, /system TEXT, /exit; Ctrl-C stops the current answer, Ctrl-D exits.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "apps/command.h"
#include "apps/common.h"
#include "apps/generate.h"
#include "apps/session.h"
#include "base/log.h"
#include "base/strings.h"

namespace hylo::apps {
namespace {

struct Options {
  SessionFlags session;
  SamplingFlags sampling;
  std::string system;
  std::string think = "show";
  int32_t max_tokens = 1024;
};

void print_help() {
  std::fprintf(stderr,
               "commands: /reset (forget the conversation), /system TEXT (set the system message), /exit\n"
               "Ctrl-C stops the current answer, Ctrl-D exits.\n");
}

int run(const Options& o) {
  auto session = open_session(o.session);
  if (!session.ok()) return fail(session.error());
  Session& s = **session;
  const bool tty = stdin_is_tty();
  log_info("[chat] {}", s.ctx_reason);
  log_info("[chat] {}", s.cache_reason);
  if (s.random_weights)
    std::fprintf(stderr, "note: %s has random weights (hylo make-model): its answers are meaningless text.\n",
                 s.model->info().name.c_str());
  if (tty) print_help();
  std::string system = o.system;
  nlohmann::ordered_json history = nlohmann::ordered_json::array();
  for (;;) {
    if (tty) std::fprintf(stderr, "\n> ");
    std::fflush(stderr);
    std::string line;
    if (!std::getline(std::cin, line)) break;  // Ctrl-D / end of input
    const std::string_view cmd = trim(line);
    if (cmd.empty()) continue;
    if (cmd == "/exit" || cmd == "/quit") break;
    if (cmd == "/help") {
      print_help();
      continue;
    }
    if (cmd == "/reset") {
      history = nlohmann::ordered_json::array();
      std::fprintf(stderr, "[chat] conversation cleared\n");
      continue;
    }
    if (starts_with(cmd, "/system")) {
      system = std::string(trim(cmd.substr(7)));
      history = nlohmann::ordered_json::array();
      std::fprintf(stderr, "[chat] system message set; conversation cleared\n");
      continue;
    }
    history.push_back({{"role", "user"}, {"content", line}});
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
    for (const auto& m : history) messages.push_back(m);
    auto text = s.render(messages);
    if (!text.ok()) {
      fail(text.error());
      history.erase(history.size() - 1);
      continue;
    }
    Generation gen;
    gen.prompt = s.tokenizer.encode(*text, /*parse_special=*/true);
    gen.sampling = s.sampling;
    if (auto st = o.sampling.apply(&gen.sampling); !st.ok()) return fail(st.error());
    gen.max_tokens = o.max_tokens;
    gen.thinking_open = chat::prompt_opens_thinking(*text);
    gen.show_reasoning = o.think == "show";
    auto result = generate(s, gen, std::cout);
    if (!result.ok()) {
      fail(result.error());
      history.erase(history.size() - 1);
      continue;
    }
    print_summary("chat", *result);
    nlohmann::ordered_json answer = {{"role", "assistant"}, {"content", result->content}};
    if (!result->reasoning.empty()) answer["reasoning_content"] = result->reasoning;
    history.push_back(std::move(answer));
  }
  return kExitOk;
}

CommandRegistrar reg("chat", "Interactive multi-turn chat in the terminal", 51, [](CLI::App& app) {
  auto o = std::make_shared<Options>();
  o->session.add(app, /*with_parallel=*/false);
  o->sampling.add(app);
  app.add_option("-n,--max-tokens", o->max_tokens, "Maximum tokens per answer (-1: until the context is full)")
      ->capture_default_str();
  app.add_option("--system", o->system, "System message");
  app.add_option("--think", o->think, "Reasoning output: show (dimmed) or hide")
      ->check(CLI::IsMember({"show", "hide"}))
      ->capture_default_str();
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace hylo::apps
