#include "common/fixtures.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

namespace hylo::test {

std::string shared_dir() { return HYLO_SHARED_DIR; }
std::string fixtures_dir() { return shared_dir() + "/fixtures"; }
std::string work_dir() { return HYLO_TEST_WORK_DIR; }
std::string hylo_binary() { return HYLO_BINARY; }

std::string scratch_path(const std::string& name) {
  static const std::string dir = [] {
    std::string d = work_dir() + "/proc-" + std::to_string(getpid());
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(work_dir() + "/proc-" + std::to_string(getpid()), ec);
    });
    return d;
  }();
  return dir + "/" + name;
}
std::string source_dir() { return HYLO_SOURCE_DIR; }

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot open " << path;
    return {};
  }
  return nlohmann::json::parse(in);
}

int run_command(const std::string& command, std::string* output) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  std::array<char, 4096> buf;
  std::string out;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  if (output) *output = std::move(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

namespace {

std::string python() {
  // Debian's interpreter sees python3-numpy; another python3 on PATH may not.
  return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

std::string sha256_of(const std::string& path) {
  std::string out;
  if (run_command("sha256sum '" + path + "'", &out) != 0) return {};
  return out.substr(0, out.find(' '));
}

}  // namespace

std::string fixture_model(const std::string& name) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  const nlohmann::json models = read_json_file(fixtures_dir() + "/models.json");
  const nlohmann::json* entry = nullptr;
  for (const auto& m : models["models"])
    if (m["name"] == name) entry = &m;
  if (entry == nullptr) {
    ADD_FAILURE() << "fixture model " << name << " not in models.json";
    return "";
  }
  const std::string dir = work_dir() + "/fixture-models";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + (*entry)["file"].get<std::string>();
  const std::string ok_stamp = path + ".sha-ok";
  // Several test processes may ask at once (ctest -j): serialise generation with a file lock.
  const int lock_fd = open((dir + "/.lock").c_str(), O_CREAT | O_RDWR, 0644);
  if (lock_fd >= 0) flock(lock_fd, LOCK_EX);
  std::string result = path;
  if (access(ok_stamp.c_str(), F_OK) != 0) {
    std::string cmd = "cd '" + shared_dir() + "' && " + python() + " tools/mkgguf.py";
    for (const auto& a : (*entry)["args"]) cmd += " " + a.get<std::string>();
    cmd += " --out '" + path + "'";
    std::string out;
    if (run_command(cmd, &out) != 0) {
      ADD_FAILURE() << "generating fixture model " << name << " failed:\n" << cmd << "\n" << out;
      result = "";
    } else {
      const std::string sha = sha256_of(path);
      if (sha != (*entry)["sha256"].get<std::string>()) {
        ADD_FAILURE() << "fixture model " << name << ": sha256 " << sha << " differs from models.json "
                      << (*entry)["sha256"].get<std::string>()
                      << " (generator or numpy version differs from the one the references were made with)";
        result = "";
      } else {
        std::ofstream(ok_stamp) << sha << "\n";
      }
    }
  }
  if (lock_fd >= 0) {
    flock(lock_fd, LOCK_UN);
    close(lock_fd);
  }
  return result;
}

}  // namespace hylo::test
