// Kernel dispatch: which family's MatmulKernel serves a weight type. Chosen once per (type, ISA)
// at start-up through the families' tables; nothing here runs per row.
#include <array>

#include "kernels/quant.h"
#include "kernels/quant_internal.h"

namespace hylo::kernels {
namespace {

const MatmulKernel* family_kernel(TensorType weight, Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return scalar_matmul_kernel(weight);
#if defined(__x86_64__)
    case Isa::kAvx2:
      return avx2_matmul_kernel(weight);
    case Isa::kAvx512:
      return avx512_matmul_kernel(weight);
#else
    default:
      return nullptr;
#endif
  }
  return nullptr;
}

constexpr size_t kMaxTypeId = 64;

}  // namespace

const MatmulKernel* matmul_kernel(TensorType weight, Isa isa) {
  if (!isa_supported(isa)) return nullptr;
  return family_kernel(weight, isa);
}

const MatmulKernel* matmul_kernel(TensorType weight) {
  // Best family first; a type a family does not implement falls back to the next lower one.
  static const std::array<const MatmulKernel*, kMaxTypeId> table = [] {
    std::array<const MatmulKernel*, kMaxTypeId> t{};
    for (size_t id = 0; id < kMaxTypeId; ++id) {
      for (int isa = static_cast<int>(best_isa()); isa >= 0 && t[id] == nullptr; --isa) {
        t[id] = matmul_kernel(static_cast<TensorType>(id), static_cast<Isa>(isa));
      }
    }
    return t;
  }();
  const auto id = static_cast<size_t>(weight);
  return id < kMaxTypeId ? table[id] : nullptr;
}

bool has_matmul(TensorType weight) { return matmul_kernel(weight) != nullptr; }

}  // namespace hylo::kernels
