// The machine a model is checked against: this one (detected) or a named hardware profile.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

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
};

Machine machine_from_profile(const HardwareProfile& profile);

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
