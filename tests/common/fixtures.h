// Access to the shared reference fixtures (../shared/fixtures) and to fixture models, which are
// regenerated with the independent generator (tools/mkgguf.py) and checked against models.json.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace hylo::test {

std::string shared_dir();          // HYLO_SHARED_DIR
std::string fixtures_dir();        // shared_dir()/fixtures
std::string work_dir();            // scratch directory inside the build tree, shared by all tests
// work_dir()/NAME made private to this process: ctest runs the tests of one binary as parallel
// processes, and a file one rewrites while another maps it would crash the reader.
// The process's directory is removed when it exits.
std::string scratch_path(const std::string& name);
std::string hylo_binary();         // path of the built hylo executable
std::string source_dir();

nlohmann::json read_json_file(const std::string& path);
std::string read_text_file(const std::string& path);

// Path of fixture model `name` (e.g. "qwen3next-tiny"), generated on first use with
// /usr/bin/python3 tools/mkgguf.py and its sha256 checked against models.json. Fails the
// current test (and returns "") if generation or the checksum fails.
std::string fixture_model(const std::string& name);

// Runs a shell command, returns its exit status; stdout+stderr captured into *output.
int run_command(const std::string& command, std::string* output);

}  // namespace hylo::test
