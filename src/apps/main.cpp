// Entry point of the hylo binary: dispatches to the registered subcommands.
#include <algorithm>
#include <cstdio>
#include <map>

#include "apps/command.h"
#include "apps/common.h"
#include "base/log.h"

namespace hylo::apps {
std::vector<CommandInfo>& command_registry() {
  static std::vector<CommandInfo> registry;
  return registry;
}
}  // namespace hylo::apps

int main(int argc, char** argv) {
  using namespace hylo::apps;
  CLI::App app{"hylo: local inference engine and server for hybrid LLMs (Qwen3-Next, Qwen3-MoE)", "hylo"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("hylo ") + HYLO_VERSION);
  bool verbose = false, quiet = false;
  app.add_flag("-v,--verbose", verbose, "More log output");
  app.add_flag("-q,--quiet", quiet, "Only warnings and errors on stderr");

  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(), [](const CommandInfo& a, const CommandInfo& b) {
    return a.order != b.order ? a.order < b.order : a.name < b.name;
  });
  std::map<CLI::App*, std::function<int()>> runners;
  for (auto& cmd : registry) {
    CLI::App* sub = app.add_subcommand(cmd.name, cmd.help);
    runners[sub] = cmd.setup(*sub);
  }
  try {
    // CLI11 takes the arguments in reverse order, without the program name.
    std::vector<std::string> args = normalize_short_options(argc - 1, argv + 1);
    std::reverse(args.begin(), args.end());
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    // Help and version exit 0; every other parse problem is a usage error (exit 2).
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (verbose) hylo::set_log_level(hylo::LogLevel::kDebug);
  if (quiet) hylo::set_log_level(hylo::LogLevel::kWarn);
  for (auto& [sub, run] : runners) {
    if (sub->parsed()) return run();
  }
  return kExitUsage;
}
