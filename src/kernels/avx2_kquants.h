// What the AVX2 super-block kernels (avx2_kquants.cpp, avx2_kquants_pairs.cpp) share: the q8_K
// activation record and its preparation, the byte helpers of the packers and image sources, and the
// format base. Included only by ISA-specific sources after row_lane_gemm.h: everything is in an
// anonymous namespace (row_lane_gemm.h's rule).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/avx2_util.h"
#include "kernels/blocks.h"
#include "kernels/row_lane_gemm.h"
#include "kernels/simd.h"

namespace hylo::kernels {
namespace {

struct ActRecordK {
  int8_t qs[kQKK];
  float d;
  // q4_K/q5_K: 4 int16 pairs (B_2p, B_2p+1), B_j = Σ of sub-block j's 32 codes;
  // q2_K/q3_K: 8 int16 pairs of the 16-code sums; q6_K: 16 start values -32 · Σ of each 16 codes;
  // iq4_xs: none.
  int32_t side[16];
};

enum class Side { kNone, kMinPairs, kMinPairs16, kStart16 };

template <Side kSide>
void prep_q8_k(const uint8_t* act_row, int64_t n, uint8_t* records, size_t block_stride) {
  const auto* a = reinterpret_cast<const BlockQ8_K*>(act_row);
  for (int64_t b = 0; b < n / kQKK; ++b) {
    auto* rec = reinterpret_cast<ActRecordK*>(records + static_cast<size_t>(b) * block_stride);
    std::memcpy(rec->qs, a[b].qs, kQKK);
    rec->d = a[b].d;
    int32_t sum16[16];  // recomputed from the codes: ggml leaves bsums unwritten for zero blocks
    for (int k = 0; k < 16; ++k) {
      sum16[k] = 0;
      for (int i = 0; i < 16; ++i) sum16[k] += a[b].qs[16 * k + i];
    }
    if constexpr (kSide == Side::kMinPairs16) {
      for (int p = 0; p < 8; ++p)
        rec->side[p] = static_cast<int32_t>(static_cast<uint32_t>(sum16[2 * p] & 0xFFFF) |
                                            static_cast<uint32_t>(sum16[2 * p + 1]) << 16);
    } else if constexpr (kSide == Side::kMinPairs) {
      for (int p = 0; p < 4; ++p) {
        const int32_t lo = sum16[4 * p] + sum16[4 * p + 1], hi = sum16[4 * p + 2] + sum16[4 * p + 3];
        rec->side[p] = static_cast<int32_t>(static_cast<uint32_t>(lo & 0xFFFF) | static_cast<uint32_t>(hi) << 16);
      }
    } else if constexpr (kSide == Side::kStart16) {
      for (int k = 0; k < 16; ++k) rec->side[k] = -32 * sum16[k];
    }
  }
}

inline __m256i byte_of(__m256i v, int k) {
  return _mm256_and_si256(_mm256_srli_epi32(v, 8 * k), _mm256_set1_epi32(0xFF));
}

inline __m256i or_masked(__m256i b, __m256i a, __m256i mask) { return _mm256_or_si256(b, _mm256_and_si256(a, mask)); }

template <int kShift>
inline __m256i shift_bits(__m256i v) {
  if constexpr (kShift >= 0)
    return _mm256_slli_epi32(v, kShift);
  else
    return _mm256_srli_epi32(v, -kShift);
}

inline void store(void* p, __m256i v) { _mm256_store_si256(static_cast<__m256i*>(p), v); }

// A shift of every dword by bits (left) or -bits (right); constant after unrolling.
inline __m256i shift_left(__m256i v, int bits) {
  return bits >= 0 ? _mm256_slli_epi32(v, bits) : _mm256_srli_epi32(v, -bits);
}

// Derived provides kWeightBlockBytes, kPackedBlockBytes, kLayout, pack_block(reader, packed),
// PackedSource (reads packed blocks), ImageSource (computes the same vectors in registers from the
// image) and compute_from<C>(tile, source, n_blocks) (SourcedCompute, row_lane_gemm.h).
template <typename Derived>
struct KFormatBase : BlockPacker<Derived>, SourcedCompute<Derived> {
  static constexpr int kLanes = 8;
  static constexpr int kBlockElems = kQKK;
  static constexpr int kActRecordBytes = sizeof(ActRecordK);
  static constexpr int kChunkBlocks = 4;
  static constexpr int kMaxCols = 4;
};

// Calls body(j) for j = 0 .. N - 1: as integral constants where the source unrolls the sub-blocks
// (its offsets and shifts then fold into immediates), as a plain loop otherwise (packed loads,
// whose unrolled body would only be larger).
template <bool kUnroll, int N, typename Body>
[[gnu::always_inline]] inline void for_sub_blocks(Body&& body) {
  if constexpr (kUnroll) {
    [&]<int... J>(std::integer_sequence<int, J...>) __attribute__((always_inline)) {
      (body(std::integral_constant<int, J>{}), ...);
    }
    (std::make_integer_sequence<int, N>{});
  } else {
    for (int j = 0; j < N; ++j) body(j);
  }
}

}  // namespace
}  // namespace hylo::kernels
