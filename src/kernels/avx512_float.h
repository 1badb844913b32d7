// What the AVX-512 float kernels (avx512_float.cpp: f32, f16; avx512_bf16.cpp: bf16) share: the
// block size and the packer of 16 rows. Included only by ISA-specific sources: everything is in an
// anonymous namespace (row_lane_gemm.h's rule).
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/avx512_util.h"
#include "kernels/row_lane_gemm.h"
#include "kernels/simd.h"

namespace hylo::kernels {
namespace {

constexpr int kStep = 16;  // elements per block: one 16 x 16 transpose

// Blocks of 16 elements of 16 rows at w + offsets[l] (n_left elements of the rows from w on)
// through block(reader, b): full blocks in place, the last, partial one from zero-padded copies
// (the rows may end right after n).
template <ImageLayout L, int kElemBytes, typename Block>
void pack_rows(const uint8_t* w, const int32_t* offsets, int n_blocks, int64_t n_left, Block&& block) {
  for (int b = 0; b < n_blocks; ++b) {
    const int64_t left = n_left - static_cast<int64_t>(b) * kStep;
    const uint8_t* base = w + static_cast<size_t>(b) * L.block_bytes;
    if (left >= kStep) {
      block(BlockInPlace<L>{base, offsets}, b);
      continue;
    }
    alignas(64) uint8_t padded[16][L.block_bytes];
    int32_t padded_offsets[16];
    for (int l = 0; l < 16; ++l) {
      std::memset(padded[l], 0, L.block_bytes);
      std::memcpy(padded[l], base + offsets[l], static_cast<size_t>(left) * kElemBytes);
      padded_offsets[l] = l * L.block_bytes;
    }
    block(BlockInPlace<L>{padded[0], padded_offsets}, b);
  }
}

// The first `left` of 16 elements (all 16 if left >= 16).
inline __mmask16 first_elements(int64_t left) {
  return left >= kStep ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
}

}  // namespace
}  // namespace hylo::kernels
