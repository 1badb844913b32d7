#include "base/cpu.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace hylo {
namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t xgetbv0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  const bool avx = (c >> 28) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_ymm = (xcr0 & 0x6) == 0x6;
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = avx && os_ymm && ((b >> 5) & 1);
    f.bmi2 = (b >> 8) & 1;
    f.avx512f = os_zmm && ((b >> 16) & 1);
    f.avx512dq = os_zmm && ((b >> 17) & 1);
    f.avx512bw = os_zmm && ((b >> 30) & 1);
    f.avx512vl = os_zmm && ((b >> 31) & 1);
    f.avx512vnni = os_zmm && ((c >> 11) & 1);
    unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    f.avx512bf16 = os_zmm && ((a1 >> 5) & 1);
    f.avx_vnni = os_ymm && ((a1 >> 4) & 1);
  }
  f.fma = f.fma && os_ymm;
  f.f16c = f.f16c && os_ymm;
  char brand[49] = {};
  if (__get_cpuid_max(0x80000000u, nullptr) >= 0x80000004u) {
    for (unsigned i = 0; i < 3; ++i) {
      __cpuid(0x80000002u + i, a, b, c, d);
      std::memcpy(brand + 16 * i, &a, 4);
      std::memcpy(brand + 16 * i + 4, &b, 4);
      std::memcpy(brand + 16 * i + 8, &c, 4);
      std::memcpy(brand + 16 * i + 12, &d, 4);
    }
  }
  f.brand = brand;
  while (!f.brand.empty() && f.brand.back() == ' ') f.brand.pop_back();
  while (!f.brand.empty() && f.brand.front() == ' ') f.brand.erase(0, 1);
#elif defined(__aarch64__)
  f.neon = true;
  f.brand = "aarch64";
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return f.avx2 && f.fma && f.f16c;
    case Isa::kAvx512:
      return isa_supported(Isa::kAvx2) && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni;
  }
  return false;
}

Isa best_isa() {
  static const Isa chosen = [] {
    Isa best = Isa::kScalar;
#if defined(__x86_64__)
    if (isa_supported(Isa::kAvx512)) best = Isa::kAvx512;
    else if (isa_supported(Isa::kAvx2)) best = Isa::kAvx2;
#endif
    if (const char* env = std::getenv("HYLO_ISA")) {
      Isa want = best;
      if (std::strcmp(env, "scalar") == 0) want = Isa::kScalar;
      else if (std::strcmp(env, "avx2") == 0) want = Isa::kAvx2;
      else if (std::strcmp(env, "avx512") == 0) want = Isa::kAvx512;
      if (static_cast<int>(want) < static_cast<int>(best)) best = want;
    }
    return best;
  }();
  return chosen;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

int physical_core_count() {
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<int, int>> cores;
  std::string line;
  int phys = 0;
  while (std::getline(in, line)) {
    if (line.rfind("physical id", 0) == 0) phys = std::atoi(line.substr(line.find(':') + 1).c_str());
    if (line.rfind("core id", 0) == 0) cores.insert({phys, std::atoi(line.substr(line.find(':') + 1).c_str())});
  }
  if (!cores.empty()) return static_cast<int>(cores.size());
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

namespace {
uint64_t meminfo_kb(const char* key) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  const size_t klen = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, klen, key) == 0 && line.size() > klen && line[klen] == ':')
      return std::strtoull(line.c_str() + klen + 1, nullptr, 10);
  }
  return 0;
}
}  // namespace

uint64_t total_memory_bytes() {
  uint64_t kb = meminfo_kb("MemTotal");
  if (kb == 0) return static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return kb * 1024;
}

uint64_t available_memory_bytes() {
  // HYLO_MEMORY_AVAILABLE (bytes) stands in for MemAvailable: tests of the memory checks, and
  // "what if this machine had less memory".
  if (const char* v = std::getenv("HYLO_MEMORY_AVAILABLE"); v != nullptr && *v != '\0') {
    char* end = nullptr;
    const unsigned long long bytes = std::strtoull(v, &end, 10);
    if (end != v && *end == '\0') return bytes;
  }
  uint64_t kb = meminfo_kb("MemAvailable");
  return kb > 0 ? kb * 1024 : total_memory_bytes();
}

}  // namespace hylo
