// Placeholder until the avx2 matmul family lands: no kernels yet.
#include "kernels/quant_internal.h"

namespace hylo::kernels {
const MatmulKernel* avx2_matmul_kernel(TensorType) { return nullptr; }
}  // namespace hylo::kernels
