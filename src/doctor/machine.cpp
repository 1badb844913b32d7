#include "doctor/machine.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/bandwidth.h"
#include "base/cpu.h"
#include "base/strings.h"
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

uint64_t apple_default_wired_limit(uint64_t memory_bytes) {
  const double fraction = memory_bytes > kAppleSmallMemory ? kAppleWiredFraction : kAppleWiredFractionSmall;
  return static_cast<uint64_t>(static_cast<double>(memory_bytes) * fraction);
}

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
  m.family = p.family;
  if (p.apple_gpu) {
    m.gpu_memory_bytes = apple_default_wired_limit(p.memory_bytes);
    m.gpu_limit = "apple-wired";
  }
  m.devices = p.devices;
  m.split = p.split;
  if (p.link_bandwidth_gbs > 0) m.link_bandwidth_gbs = p.link_bandwidth_gbs;
  return m;
}

Result<Machine> machine_from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("[doctor] cannot read machine file {}", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > (1 << 20)) return make_error("[doctor] machine file {}: larger than 1 MiB", path);
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error("[doctor] machine file {}: not valid JSON", path);
  if (j.is_object() && j.contains("hardware")) {
    if (!j["hardware"].is_array() || j["hardware"].size() != 1)
      return make_error("[doctor] machine file {}: 'hardware' must hold exactly one machine", path);
    j = j["hardware"][0];
  }
  auto p = parse_hardware_profile(j, /*names_required=*/false);
  if (!p.ok()) return make_error("[doctor] machine file {}: {}", path, p.message());
  Machine m = machine_from_profile(*p);
  m.bandwidth_source = m.compute_source = "machine file";
  return m;
}

Status apply_machine_overrides(const MachineOverrides& o, Machine* m) {
  constexpr double kGiB = 1073741824.0;
  if (o.memory_gib) {
    m->memory_bytes = static_cast<uint64_t>(*o.memory_gib * kGiB);
    // A detected machine's reserve counts what runs on it now; a machine described by its memory
    // gets a fixed reserve instead (as the profiles do).
    if (m->available_now_bytes) m->os_reserve_bytes = std::max(kMinOsReserve, m->memory_bytes / 32);
    m->available_now_bytes.reset();
    m->os_reserve_bytes = std::min(m->os_reserve_bytes, m->memory_bytes / 4);
    if (m->gpu_limit == "apple-wired") m->gpu_memory_bytes = apple_default_wired_limit(m->memory_bytes);
  }
  if (o.gpu_memory_gib) {
    const uint64_t gpu = static_cast<uint64_t>(*o.gpu_memory_gib * kGiB);
    if (gpu > m->memory_bytes)
      return make_error("[doctor] --gpu-memory {} GiB is more than the machine's {} GiB", *o.gpu_memory_gib,
                        static_cast<double>(m->memory_bytes) / kGiB);
    m->gpu_memory_bytes = gpu;
    if (m->gpu_limit.empty()) m->gpu_limit = "given";
  }
  if (o.bandwidth_gbs) {
    m->bandwidth_gbs = *o.bandwidth_gbs;
    m->bandwidth_source = "given";
  }
  if (o.compute_tflops) {
    m->compute_tflops = *o.compute_tflops;
    m->compute_source = "given";
  }
  if (o.devices) m->devices = *o.devices;
  if (!o.split.empty()) {
    if (o.split != "layer" && o.split != "tensor")
      return make_error("[doctor] --split must be layer or tensor, not '{}'", o.split);
    m->split = o.split;
  }
  if (o.link_bandwidth_gbs) m->link_bandwidth_gbs = *o.link_bandwidth_gbs;
  if (o.devices && *o.devices > 1) m->display_name = fmt::format("{} × {}", *o.devices, m->display_name);
  if (o.any()) {
    if (m->name == "this-machine") m->name = "custom";
    m->display_name += " (adjusted)";
  }
  return ok_status();
}

Machine detect_machine(const DetectOptions& options) {
  Machine m;
  const CpuFeatures& f = cpu_features();
  m.name = "this-machine";
  m.display_name = f.brand.empty() ? "this machine" : f.brand;
  m.kind = "cpu";
  m.family = "cpu";
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
