// The MXCSR modes DAZ (denormal inputs read as zeros of their sign) and FTZ (denormal results
// flushed to zeros of their sign) for one kernel call: vdpbf16ps's denormal rule, which the bf16
// kernels without that instruction follow with plain FMAs. SSE's control register is there on
// every x86-64 CPU. Included only by ISA-specific sources (row_lane_gemm.h's rule).
#pragma once

#include <xmmintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/quant.h"
#include "kernels/row_lane_gemm.h"

namespace hylo::kernels {
namespace {

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

// The entry points of row-lane format F (row_lane_gemm.h), each call under DAZ and FTZ.
template <typename F>
struct DenormalsAsZeroKernel {
  static void gemm(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                   int64_t n_cols, float* y, size_t ldy) {
    const DenormalsAsZero modes;
    gemm_body(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
  }
  static void gemm_image(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                         float* y, size_t ldy) {
    const DenormalsAsZero modes;
    gemm_image_body(n, image, n_rows, x, x_stride, n_cols, y, ldy);
  }
  static constexpr RecordsKernel records() {
    return {&row_lane_records_bytes<F>, &row_lane_prepare<F>, &records_gemm, &records_gemm_image};
  }

 private:
  static void records_gemm(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* records,
                           int64_t n_cols, float* y, size_t ldy) {
    const DenormalsAsZero modes;
    records_gemm_body(n, w, w_stride, n_rows, records, n_cols, y, ldy);
  }
  static void records_gemm_image(int64_t n, const void* image, int64_t n_rows, const void* records, int64_t n_cols,
                                 float* y, size_t ldy) {
    const DenormalsAsZero modes;
    records_gemm_image_body(n, image, n_rows, records, n_cols, y, ldy);
  }
  [[gnu::noinline]] static void gemm_body(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x,
                                          size_t x_stride, int64_t n_cols, float* y, size_t ldy) {
    row_lane_gemm<F>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
  }
  [[gnu::noinline]] static void gemm_image_body(int64_t n, const void* image, int64_t n_rows, const void* x,
                                                size_t x_stride, int64_t n_cols, float* y, size_t ldy) {
    row_lane_gemm_image<F>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
  }
  [[gnu::noinline]] static void records_gemm_body(int64_t n, const void* w, size_t w_stride, int64_t n_rows,
                                                  const void* records, int64_t n_cols, float* y, size_t ldy) {
    row_lane_records_gemm<F>(n, w, w_stride, n_rows, records, n_cols, y, ldy);
  }
  [[gnu::noinline]] static void records_gemm_image_body(int64_t n, const void* image, int64_t n_rows,
                                                        const void* records, int64_t n_cols, float* y, size_t ldy) {
    row_lane_records_gemm_image<F>(n, image, n_rows, records, n_cols, y, ldy);
  }
};

}  // namespace
}  // namespace hylo::kernels
