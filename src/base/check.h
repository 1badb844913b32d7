// Always-on checks for invariants of hylo's own code (never for input validation:
// input errors are returned as hylo::Error, see result.h).
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>

namespace hylo::detail {
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);
}

#define HYLO_CHECK(cond, ...)                                                             \
  do {                                                                                    \
    if (!(cond)) [[unlikely]]                                                             \
      ::hylo::detail::check_failed(__FILE__, __LINE__, #cond, ::fmt::format("" __VA_ARGS__)); \
  } while (0)

#ifdef NDEBUG
#define HYLO_DCHECK(cond, ...) \
  do {                         \
  } while (0)
#else
#define HYLO_DCHECK(cond, ...) HYLO_CHECK(cond, __VA_ARGS__)
#endif
