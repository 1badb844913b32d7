// Selects the elementwise kernel family once.
#include "kernels/vec.h"

namespace hylo::kernels {

extern const VecKernels kVecScalar;
#if defined(__x86_64__)
extern const VecKernels kVecAvx2;
extern const VecKernels kVecAvx512;
#endif

const VecKernels* vec_kernels(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return &kVecScalar;
#if defined(__x86_64__)
    case Isa::kAvx2: return &kVecAvx2;
    case Isa::kAvx512: return &kVecAvx512;
#else
    default: return nullptr;
#endif
  }
  return nullptr;
}

const VecKernels& vec() {
  static const VecKernels* chosen = vec_kernels(best_isa());
  return *chosen;
}

}  // namespace hylo::kernels
