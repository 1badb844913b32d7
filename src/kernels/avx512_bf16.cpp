// AVX-512 matmul for bf16 weights against bf16 activations, with vdpbf16ps (the kernel and its
// order: avx512_bf16_format.h). A file of its own: only this file (and the peak loop) is built
// with AVX512-BF16, and the family table offers it only on CPUs that have the extension; elsewhere
// the same kernel multiplies each pair with two FMAs (avx512_float.cpp). vdpbf16ps issues about
// twice as many products per cycle as the FMA on the Zen 5 cores measured (the peaks bench_matmul
// prints).
#include <bit>
#include <cstddef>
#include <cstdint>

#include "kernels/avx512_bf16_format.h"
#include "kernels/avx512_gemm.h"
#include "kernels/avx512_util.h"
#include "kernels/peak_internal.h"
#include "kernels/peak_loop.h"
#include "kernels/row_lane_gemm.h"
#include "kernels/simd.h"

namespace hylo::kernels {
namespace {

// One column's block: elements 2g, 2g + 1 in dword g, as the image holds the weights.
struct alignas(32) ActRecordBF {
  uint32_t pairs[kStep / 2];
};

// A denormal result flushed to a zero of its sign, as vdpbf16ps does.
inline __m512 flush_denormals(__m512 v) {
  return _mm512_mask_and_ps(v, _mm512_fpclass_ps_mask(v, 0x20), v, _mm512_set1_ps(-0.0f));
}

// A pair with one vdpbf16ps: no widening, one activation broadcast per pair.
struct PairsDpbf16 {
  using Record = ActRecordBF;
  using Weights = __m512i;
  static void prep_block(const uint8_t* bf16, __mmask16 elements, Record* rec) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(rec->pairs), _mm256_maskz_loadu_epi16(elements, bf16));
  }
  static __m512i weights(__m512i pairs) { return pairs; }
  static __m512 dot(__m512 acc, __m512i w, const Record& rec, int g) {
    return _mm512_dpbf16_ps(acc, std::bit_cast<__m512bh>(w), std::bit_cast<__m512bh>(bcast_i32(&rec.pairs[g])));
  }
  static __m512 close(__m512 y, __m512 p0, __m512 p1) {
    return flush_denormals(_mm512_add_ps(y, flush_denormals(_mm512_add_ps(p0, p1))));
  }
};

}  // namespace

void avx512_gemm_bf16(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                      int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatBF16<PairsDpbf16>>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_bf16(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                            int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatBF16<PairsDpbf16>>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_bf16 = row_lane_records_kernel<FormatBF16<PairsDpbf16>>();

// The peak loop of vdpbf16ps (peak.h), here for the same reason.
double avx512_bf16_peak_gflops() {
  __m512bh a = reinterpret_cast<__m512bh>(_mm512_set1_epi16(0x3f80)), b = a;
  __asm__ volatile("" : "+v"(a), "+v"(b));
  const double ips =
      peak_instructions_per_second(_mm512_setzero_ps(), [&](__m512 acc) { return _mm512_dpbf16_ps(acc, a, b); });
  return ips * 32 * 2 / 1e9;
}

}  // namespace hylo::kernels
