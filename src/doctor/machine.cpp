#include "doctor/machine.h"

#include <algorithm>

#include "base/bandwidth.h"
#include "base/cpu.h"
#include "base/thread_pool.h"

namespace hylo::doctor {
namespace {

constexpr uint64_t kMinOsReserve = uint64_t{2} << 30;
constexpr double kAssumedGhz = 2.5;  // sustained all-core clock; vendors quote boost clocks

std::string isa_flags(const CpuFeatures& f) {
  std::string out = isa_name(best_isa());
  auto add = [&](bool has, const char* name) {
    if (has) out += std::string(" +") + name;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vnni, "avx512vnni");
  add(f.avx512bf16, "avx512bf16");
  add(f.avx_vnni, "avxvnni");
  add(f.neon, "neon");
  return out;
}

}  // namespace

Machine machine_from_profile(const HardwareProfile& p) {
  Machine m;
  m.name = p.name;
  m.display_name = p.display_name;
  m.kind = p.kind;
  m.memory_bytes = p.memory_bytes;
  m.os_reserve_bytes = p.os_reserve_bytes;
  m.bandwidth_gbs = p.bandwidth_gbs;
  m.bandwidth_source = "profile";
  m.compute_tflops = p.compute_tflops;
  m.compute_source = "profile";
  m.notes = p.notes;
  return m;
}

Machine detect_machine(const DetectOptions& options) {
  Machine m;
  const CpuFeatures& f = cpu_features();
  m.name = "this-machine";
  m.display_name = f.brand.empty() ? "this machine" : f.brand;
  m.kind = "cpu";
  m.memory_bytes = total_memory_bytes();
  m.available_now_bytes = available_memory_bytes();
  const uint64_t in_use = m.memory_bytes > *m.available_now_bytes ? m.memory_bytes - *m.available_now_bytes : 0;
  m.os_reserve_bytes = std::min(m.memory_bytes, std::max(kMinOsReserve, in_use));
  m.cores = physical_core_count();
  m.isa = isa_flags(f);
  const Isa isa = best_isa();
  const double flops_per_cycle = isa == Isa::kAvx512 ? 64 : (isa == Isa::kAvx2 ? 32 : 16);
  m.compute_tflops = m.cores * kAssumedGhz * 1e9 * flops_per_cycle / 1e12;
  m.compute_source = "estimated from cores and ISA";
  if (options.measure_bandwidth) {
    ThreadPool pool(options.threads > 0 ? options.threads : m.cores);
    const double gbs = measure_read_bandwidth_gbs(pool, options.bandwidth_bytes, options.bandwidth_repetitions);
    if (gbs > 0) {
      m.bandwidth_gbs = gbs;
      m.bandwidth_source = "measured";
    }
  }
  return m;
}

}  // namespace hylo::doctor
