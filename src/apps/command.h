// Subcommand registry of the hylo binary: each cmd_*.cpp registers itself with a static
// CommandRegistrar, so adding a command touches no shared file.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace hylo::apps {

// Configures the subcommand's options on `app` and returns the function that runs it
// (after parsing) and yields the process exit code.
using CommandSetup = std::function<std::function<int()>(CLI::App& app)>;

struct CommandInfo {
  std::string name;
  std::string help;
  int order;  // position in --help
  CommandSetup setup;
};

std::vector<CommandInfo>& command_registry();

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string help, int order, CommandSetup setup) {
    command_registry().push_back({std::move(name), std::move(help), order, std::move(setup)});
  }
};

// Exit codes shared by all commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;   // the operation failed (bad file, request, ...)
inline constexpr int kExitUsage = 2;   // bad command line

}  // namespace hylo::apps
