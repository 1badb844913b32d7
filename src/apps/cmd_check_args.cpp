// `hylo check-args COMMAND ARGS...`: parses ARGS exactly as `hylo COMMAND` would (the same option
// definitions, checks included) and runs nothing. Exit 0 when they parse, 2 with the parser's
// message when not. Hidden from --help; scripts and tests use it to check suggested command lines.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "apps/command.h"

namespace hylo::apps {
namespace {

int check(const std::vector<std::string>& words) {
  if (words.empty()) {
    std::fprintf(stderr, "hylo check-args: give a command and its arguments\n");
    return kExitUsage;
  }
  for (const CommandInfo& cmd : command_registry()) {
    if (cmd.name != words.front() || cmd.name == "check-args") continue;
    CLI::App app{cmd.help, "hylo " + cmd.name};
    cmd.setup(app);  // defines the options; the returned runner is dropped unrun
    std::vector<std::string> args(words.rbegin(), words.rend() - 1);  // CLI11 takes them reversed
    try {
      app.parse(args);
    } catch (const CLI::ParseError& e) {
      std::fprintf(stderr, "hylo %s: %s\n", cmd.name.c_str(), e.what());
      return kExitUsage;
    }
    if (!app.remaining().empty()) {
      std::fprintf(stderr, "hylo %s: unexpected argument '%s'\n", cmd.name.c_str(), app.remaining().front().c_str());
      return kExitUsage;
    }
    return kExitOk;
  }
  std::fprintf(stderr, "hylo check-args: unknown command '%s'\n", words.front().c_str());
  return kExitUsage;
}

CommandRegistrar reg("check-args", "Parse a command's arguments without running it", 1000, [](CLI::App& app) {
  app.group("");         // hidden
  app.prefix_command();  // everything after check-args is left for the named command
  return [&app] { return check(app.remaining()); };
});

}  // namespace
}  // namespace hylo::apps
