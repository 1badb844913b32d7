// The machine a model is checked against: this one (detected) or a named hardware profile.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "doctor/profiles.h"

namespace hylo::doctor {

struct Machine {
  std::string name;          // profile name, or "this-machine"
  std::string display_name;  // "Mac Studio M2 Ultra, 64 GB", or the CPU brand
  std::string kind;          // "unified", "gpu" or "cpu"
  uint64_t memory_bytes = 0;
  uint64_t os_reserve_bytes = 0;                // kept by the OS, drivers and (when detected) other programs
  std::optional<uint64_t> available_now_bytes;  // detected: MemAvailable at the time of the check
  std::optional<double> bandwidth_gbs;
  std::string bandwidth_source;  // "profile", "measured", "given"
  std::optional<double> compute_tflops;
  std::string compute_source;  // "profile", "estimated from cores and ISA"
  int cores = 0;
  std::string isa;  // detected: kernel family and flags
  std::string notes;
  std::string family;  // calibration family: "apple", "nvidia", "amd", "cpu"

  // The memory a GPU may use, when less than memory_bytes: macOS wires at most
  // kAppleWiredFraction of unified memory for the GPU by default (gpu_limit "apple-wired"), or the
  // user said so (--gpu-memory, gpu_limit "given").
  std::optional<uint64_t> gpu_memory_bytes;
  std::string gpu_limit;

  // Several devices (memory, reserve, bandwidth and compute above are per device).
  int devices = 1;
  std::string split = "layer";  // "layer" (pipeline) or "tensor"
  std::optional<double> link_bandwidth_gbs;

  uint64_t total_memory_bytes() const { return memory_bytes * static_cast<uint64_t>(devices); }
  uint64_t total_os_reserve_bytes() const { return os_reserve_bytes * static_cast<uint64_t>(devices); }
};

// macOS's default GPU working-set limit (recommendedMaxWorkingSetSize): about 3/4 of unified
// memory above 36 GB, about 2/3 at or below. `sudo sysctl iogpu.wired_limit_mb=N` raises it until
// the next reboot.
inline constexpr double kAppleWiredFraction = 0.75;
inline constexpr double kAppleWiredFractionSmall = 2.0 / 3.0;
inline constexpr uint64_t kAppleSmallMemory = uint64_t{36} << 30;
uint64_t apple_default_wired_limit(uint64_t memory_bytes);

Machine machine_from_profile(const HardwareProfile& profile);

// A machine of one's own: a JSON object with the fields of a data/doctor/hardware.json entry
// (name and display_name optional), or such a file holding {"hardware": [one entry]}.
Result<Machine> machine_from_file(const std::string& path);

// Flags that describe or adjust the machine (each overrides the profile, file or detection).
struct MachineOverrides {
  std::optional<double> memory_gib, gpu_memory_gib, bandwidth_gbs, compute_tflops, link_bandwidth_gbs;
  std::optional<int> devices;
  std::string split;  // "", "layer" or "tensor"
  bool any() const {
    return memory_gib || gpu_memory_gib || bandwidth_gbs || compute_tflops || link_bandwidth_gbs || devices ||
           !split.empty();
  }
};
Status apply_machine_overrides(const MachineOverrides& o, Machine* m);

struct DetectOptions {
  bool measure_bandwidth = false;  // ~1 s: streams a 1 GiB buffer three times
  uint64_t bandwidth_bytes = uint64_t{1} << 30;
  int bandwidth_repetitions = 3;
  int threads = 0;  // 0: physical cores
};

// RAM from /proc/meminfo, cores, ISA flags; optionally the measured read bandwidth.
// The OS reserve is max(2 GiB, memory in use right now), so what other programs hold counts.
// The compute peak is a rough estimate: cores × 2.5 GHz × FP32 FLOPs per cycle of the ISA
// (AVX-512 64, AVX2+FMA 32, otherwise 16).
Machine detect_machine(const DetectOptions& options);

}  // namespace hylo::doctor
