// The MXCSR modes DAZ (denormal inputs read as zeros of their sign) and FTZ (denormal results
// flushed to zeros of their sign) for one kernel call: vdpbf16ps's denormal rule, which the bf16
// kernels without that instruction follow with plain FMAs. Header-only; SSE's control register
// is there on every x86-64 CPU.
#pragma once

#include <xmmintrin.h>

namespace hylo::kernels {

// Sets DAZ and FTZ for the life of the object, then restores the caller's modes. Run the
// arithmetic in a function that is not inlined ([[gnu::noinline]]): the compiler then keeps no
// floating-point operation on the wrong side of a mode change.
class DenormalsAsZero {
 public:
  DenormalsAsZero() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kDaz | kFtz); }
  ~DenormalsAsZero() { _mm_setcsr(saved_); }
  DenormalsAsZero(const DenormalsAsZero&) = delete;
  DenormalsAsZero& operator=(const DenormalsAsZero&) = delete;

 private:
  static constexpr unsigned kDaz = 1u << 6, kFtz = 1u << 15;
  unsigned saved_;
};

}  // namespace hylo::kernels
