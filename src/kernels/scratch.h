// Per-thread scratch memory for the matmul kernels (activation side tables built per call).
// A plain function so that ISA-specific files can use it without instantiating library templates.
#pragma once

#include <cstddef>

namespace hylo::kernels {

// At least `bytes` bytes, 64-byte aligned, owned by the calling thread and reused by its next call
// (grown on demand, freed at thread exit). One buffer per thread: a gemm must not nest another.
void* thread_scratch(size_t bytes);

}  // namespace hylo::kernels
