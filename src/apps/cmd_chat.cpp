// `hylo chat`: interactive multi-turn chat in the terminal. The history is re-rendered with the
// chat template each turn; the engine reuses the cached prefix, so a turn prefills only what is
// new. Input is edited with libedit on a terminal (line_editor.h); lines starting with a /word are
// commands, never sent to the model. Ctrl-C stops the current answer (or clears the line), Ctrl-D exits.
#include <cctype>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "apps/command.h"
#include "apps/common.h"
#include "apps/default_model.h"
#include "apps/generate.h"
#include "apps/line_editor.h"
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

struct ChatCommand {
  const char* name;
  const char* args;
  const char* help;
};
constexpr ChatCommand kCommands[] = {
    {"/help", "", "list the commands"},
    {"/reset", "", "forget the conversation"},
    {"/system", "[TEXT]", "set the system message and start over (without TEXT: show it)"},
    {"/exit", "", "leave (also /quit, Ctrl-D)"},
};

void print_help() {
  std::string text = "commands:\n";
  for (const ChatCommand& c : kCommands)
    text += fmt::format("  {:<16} {}\n", fmt::format("{} {}", c.name, c.args), c.help);
  text +=
      "input: a line ending in \\ continues on the next line; \"\"\" on its own line starts and ends a block;\n"
      "  a message that starts with / is written //...\n"
      "keys: Up/Down recall earlier input, Ctrl-C stops the current answer (or clears the line), Ctrl-D exits\n";
  std::fputs(text.c_str(), stderr);
}

// "/name rest" → "/name" when the name is letters only (so "/usr/bin is..." is a message).
std::string_view command_name(std::string_view entry) {
  if (entry.size() < 2 || entry[0] != '/') return {};
  size_t end = 1;
  while (end < entry.size() && std::isalpha(static_cast<unsigned char>(entry[end]))) ++end;
  if (end == 1 || (end < entry.size() && !std::isspace(static_cast<unsigned char>(entry[end])))) return {};
  return entry.substr(0, end);
}

// One entry: a line, lines joined by a trailing backslash, or a """ block (kept as written, and
// always a message: `block` says which).
LineEditor::Read read_entry(LineEditor& editor, bool tty, std::string* entry, bool* block) {
  if (tty) std::fputs("\n", stderr);
  std::string line;
  if (auto r = editor.read("> ", &line); r != LineEditor::Read::kLine) return r;
  entry->clear();
  *block = trim(line) == "\"\"\"";
  if (*block) {
    for (bool first = true;; first = false) {
      if (auto r = editor.read("... ", &line); r != LineEditor::Read::kLine) {
        if (r == LineEditor::Read::kEnd) std::fprintf(stderr, "[chat] unfinished \"\"\" block dropped\n");
        return r;
      }
      if (trim(line) == "\"\"\"") return LineEditor::Read::kLine;
      if (!first) *entry += '\n';
      *entry += line;
    }
  }
  while (!line.empty() && line.back() == '\\') {
    line.pop_back();
    *entry += line + '\n';
    if (auto r = editor.read("... ", &line); r != LineEditor::Read::kLine) {
      if (r == LineEditor::Read::kEnd) std::fprintf(stderr, "[chat] unfinished line (ending in \\) dropped\n");
      return r;
    }
  }
  *entry += line;
  return LineEditor::Read::kLine;
}

int run(const Options& o) {
  auto session = open_session(o.session);
  if (!session.ok()) return fail(session.error());
  Session& s = **session;
  const bool tty = stdin_is_tty();
  log_info("[chat] {}", s.ctx_reason);
  log_info("[chat] {}", s.cache_reason);
  if (s.default_model) std::fprintf(stderr, "note: %s\n", default_model_note().c_str());
  if (s.random_weights)
    std::fprintf(stderr, "note: %s has random weights (hylo make-model): its answers are meaningless text.\n",
                 s.model->info().name.c_str());
  if (tty) print_help();
  std::string system = o.system;
  nlohmann::ordered_json history = nlohmann::ordered_json::array();
  LineEditor editor(tty);
  for (;;) {
    std::string entry;
    bool block = false;
    const LineEditor::Read r = read_entry(editor, tty, &entry, &block);
    if (r == LineEditor::Read::kEnd) break;  // Ctrl-D / end of input
    if (r == LineEditor::Read::kInterrupted) continue;
    if (trim(entry).empty()) continue;
    editor.remember(entry);
    const std::string_view typed = trim(entry);
    const std::string_view cmd = block ? std::string_view() : command_name(typed);
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
    if (cmd == "/system") {
      const std::string_view arg = trim(typed.substr(cmd.size()));
      if (arg.empty()) {
        std::fprintf(stderr, "[chat] system message: %s\n", system.empty() ? "(none)" : system.c_str());
        continue;
      }
      system = std::string(arg);
      history = nlohmann::ordered_json::array();
      std::fprintf(stderr, "[chat] system message set; conversation cleared\n");
      continue;
    }
    if (!cmd.empty()) {
      std::fprintf(stderr, "[chat] unknown command %.*s (not sent to the model)\n", static_cast<int>(cmd.size()),
                   cmd.data());
      print_help();
      continue;
    }
    // "//..." is a message that starts with "/".
    const std::string message = !block && starts_with(typed, "//") ? std::string(typed.substr(1)) : entry;
    history.push_back({{"role", "user"}, {"content", message}});
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
  o->session.command = "chat";
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
