// The interleaved image of a weight matrix: the SIMD kernels' one-time repack at load. Decode
// multiplies every weight with one activation column, so the transposes the row-lane kernels
// otherwise do per call (row_lane_gemm.h) would cost more than the arithmetic; the image stores
// their result. It is exactly as large as the rows (plus the last group's spare lanes).
//
// Rows are taken in groups of `lanes` (the last group repeats its final row in spare lanes). A
// group's image is two regions, each ordered block after block:
//   body:  unit k of block b = the 4 bytes at body offset 4k of every row's block b, lane after lane
//   halves: the same for the 2-byte fields before the body (head, e.g. q8_0's d) and after it
//          (tail, e.g. q6_K's d)
// so the 4-byte unit at byte `off` of a block sits at body + lanes·(off − head) and one aligned
// vector load gives it for every row. Bytes past the end of a row (the last, partial block of the
// float formats) are zero.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/tensor_type.h"

namespace hylo::kernels {

struct ImageLayout {
  int lanes = 0;        // rows per group
  int block_elems = 0;  // elements per block
  int block_bytes = 0;  // bytes per block of one row
  int head_bytes = 0;   // 2-byte units before the 4-byte body
  int tail_bytes = 0;   // 2-byte units after it

  // (always_inline: the ISA-specific kernels call these, and an out-of-line copy compiled with
  // their flags must never be the one the linker keeps for everybody.)
  [[gnu::always_inline]] constexpr int body_bytes() const { return block_bytes - head_bytes - tail_bytes; }
  [[gnu::always_inline]] constexpr int64_t blocks(int64_t n) const { return (n + block_elems - 1) / block_elems; }
  // Bytes of one group's image (rounded up to 64 so that every group starts aligned).
  [[gnu::always_inline]] constexpr size_t group_bytes(int64_t n) const {
    const size_t raw = static_cast<size_t>(blocks(n)) * static_cast<size_t>(lanes) * static_cast<size_t>(block_bytes);
    return (raw + 63) / 64 * 64;
  }
  [[gnu::always_inline]] constexpr int64_t groups(int64_t n_rows) const { return (n_rows + lanes - 1) / lanes; }
  [[gnu::always_inline]] constexpr size_t image_bytes(int64_t n_rows, int64_t n) const {
    return static_cast<size_t>(groups(n_rows)) * group_bytes(n);
  }
};

// The layout of `type` with `lanes` rows per group (lanes 0: the type has no image form). The
// head and tail are the fp16 scale fields that do not fall on the body's 4-byte units.
[[gnu::always_inline]] constexpr ImageLayout image_layout(TensorType type, int lanes) {
  switch (type) {
    case TensorType::kF32:
      return {lanes, 16, 64, 0, 0};
    case TensorType::kF16:
    case TensorType::kBF16:
      return {lanes, 16, 32, 0, 0};
    case TensorType::kQ8_0:
      return {lanes, 32, 34, 2, 0};
    case TensorType::kQ5_0:
      return {lanes, 32, 22, 2, 0};
    case TensorType::kQ4_1:
      return {lanes, 32, 20, 4, 0};
    case TensorType::kQ5_1:
      return {lanes, 32, 24, 4, 0};
    case TensorType::kQ4_0:
    case TensorType::kIQ4_NL:
      return {lanes, 32, 18, 2, 0};
    case TensorType::kQ2_K:
      return {lanes, 256, 84, 0, 4};
    case TensorType::kQ3_K:
      return {lanes, 256, 110, 0, 2};
    case TensorType::kQ4_K:
      return {lanes, 256, 144, 0, 0};
    case TensorType::kQ5_K:
      return {lanes, 256, 176, 0, 0};
    case TensorType::kQ6_K:
      return {lanes, 256, 210, 0, 2};
    case TensorType::kIQ4_XS:
      return {lanes, 256, 136, 0, 0};
    default:
      return {};
  }
}

// Writes groups [g_begin, g_end) of the image of n_rows rows of n elements (w_stride bytes apart,
// each row_bytes long: the bytes the type uses for n elements) into `image`, which holds the whole
// image (64-byte aligned). Groups are independent: callers may build them on several threads.
void build_image(const ImageLayout& layout, const void* w, size_t w_stride, size_t row_bytes, int64_t n_rows, int64_t n,
                 int64_t g_begin, int64_t g_end, void* image);

}  // namespace hylo::kernels
