#include "ops/profile.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace hylo::ops {
namespace {

std::atomic<int64_t> g_ns[static_cast<int>(Phase::kCount)];
const char* const kNames[] = {"forward", "matmul", "attention", "delta rule", "conv"};

void report() {
  const double total = static_cast<double>(g_ns[0].load()) * 1e-9;
  if (total <= 0) return;
  std::fprintf(stderr, "[profile] forward passes: %.3f s wall\n", total);
  double parts = 0;
  for (int i = 1; i < static_cast<int>(Phase::kCount); ++i) {
    const double s = static_cast<double>(g_ns[i].load()) * 1e-9;
    parts += s;
    std::fprintf(stderr, "  %-12s %9.3f s  %5.1f%%\n", kNames[i], s, 100.0 * s / total);
  }
  std::fprintf(stderr, "  %-12s %9.3f s  %5.1f%%\n", "other", total - parts, 100.0 * (total - parts) / total);
}

}  // namespace

bool profiling() {
  static const bool on = [] {
    const char* e = std::getenv("HYLO_PROFILE");
    const bool enabled = e != nullptr && *e != '\0' && *e != '0';
    if (enabled) std::atexit(report);
    return enabled;
  }();
  return on;
}

void add_phase_time(Phase p, double seconds) {
  g_ns[static_cast<int>(p)].fetch_add(static_cast<int64_t>(seconds * 1e9), std::memory_order_relaxed);
}

}  // namespace hylo::ops
