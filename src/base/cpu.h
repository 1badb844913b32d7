// What the CPU can do, read once (CPUID + XGETBV), and which kernel family hylo uses.
#pragma once

#include <string>

namespace hylo {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, bmi2 = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx512bf16 = false, avx_vnni = false;
  bool neon = false;
  std::string brand;
};

// Kernel families compiled into the binary, best last. The scalar family is always present.
// kAvx512 needs F/BW/VL/DQ and VNNI (Ice Lake, Cascade Lake, Zen 4/5); its bf16 kernel multiplies
// with vdpbf16ps where the CPU has AVX512-BF16 and with FMAs elsewhere (same arithmetic).
enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

const CpuFeatures& cpu_features();
// The best family this CPU supports, lowered by HYLO_ISA=scalar|avx2|avx512 if set.
Isa best_isa();
bool isa_supported(Isa isa);
const char* isa_name(Isa isa);

int physical_core_count();  // best effort; falls back to hardware_concurrency
uint64_t total_memory_bytes();
uint64_t available_memory_bytes();  // MemAvailable, or HYLO_MEMORY_AVAILABLE (bytes) if set

}  // namespace hylo
