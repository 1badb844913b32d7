#include "ops/dump.h"

#include <cstdlib>
#include <filesystem>

#include "base/log.h"
#include "base/npy.h"
#include "base/strings.h"

namespace hylo::ops {
namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

struct DumpConfig {
  std::vector<std::string> patterns;
  std::string dir = "hylo-dump";
};

const DumpConfig& config() {
  static const DumpConfig cfg = [] {
    DumpConfig c;
    if (const char* p = std::getenv("HYLO_DUMP"); p && *p) {
      for (auto& s : split(p, ',')) {
        if (!s.empty()) c.patterns.push_back(s);
      }
    }
    if (const char* d = std::getenv("HYLO_DUMP_DIR"); d && *d) c.dir = d;
    if (!c.patterns.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(c.dir, ec);
      log_info("[dump] writing activations matching {} to {}/", join(c.patterns), c.dir);
    }
    return c;
  }();
  return cfg;
}

}  // namespace

bool dump_enabled() { return !config().patterns.empty(); }

bool dump_wanted(const std::string& name) {
  for (const auto& p : config().patterns)
    if (glob_match(p, name)) return true;
  return false;
}

void dump(const std::string& name, const float* data, const std::vector<int64_t>& shape) {
  if (!dump_enabled() || !dump_wanted(name)) return;
  const std::string path = config().dir + "/" + name + ".npy";
  if (auto st = write_npy_f32(path, data, shape); !st.ok()) log_warn("[dump] {}", st.message());
}

}  // namespace hylo::ops
