// How the doctor writes numbers for people: token counts with separators, seconds, rates.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "base/strings.h"

namespace hylo::doctor {

inline std::string tokens_str(int64_t n) { return format_count(static_cast<uint64_t>(std::max<int64_t>(0, n))); }

inline std::string seconds_str(double s) { return s >= 100 ? fmt::format("{:.0f} s", s) : fmt::format("{:.1f} s", s); }

// Tokens per second: "12.5", "417", "2,988".
inline std::string rate_str(double tps) {
  if (tps >= 1000) return format_count(static_cast<uint64_t>(std::llround(tps)));
  return tps >= 100 ? fmt::format("{:.0f}", tps) : fmt::format("{:.1f}", tps);
}

}  // namespace hylo::doctor
