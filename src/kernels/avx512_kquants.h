// What the AVX-512 super-block kernels (avx512_kquants.cpp, avx512_kquants_pairs.cpp) share: the
// q8_K activation record and its preparation, and the byte helpers of the packers. Included only
// by ISA-specific sources: everything is in an anonymous namespace (row_lane_gemm.h's rule).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/avx512_util.h"
#include "kernels/blocks.h"
#include "kernels/simd.h"

namespace hylo::kernels {
namespace {

// One column's q8_K super-block as the kernels read it.
struct ActRecordK {
  int8_t qs[kQKK];
  float d;
  // q4_K/q5_K: 4 int16 pairs (B_0, B_2), (B_1, B_3), (B_4, B_6), (B_5, B_7), B_j = Σ of sub-block
  // j's 32 codes (the order of the scale bytes, see min_pair_of); q2_K: 8 int16
  // pairs of the 16-code sums; q3_K and q6_K: 16 start values -4 / -32 · Σ of each 16 codes;
  // iq4_xs: 8 start values -128 · B_j.
  int32_t side[16];
  int32_t scaled_start;  // q3_K's scaled codes (prefill): -124 · Σ of the 256 codes
};

// Σ of 16 consecutive int8 codes.
inline int32_t sum_i8x16(const int8_t* q) {
  const __m128i u = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)), _mm_set1_epi8(-128));
  const __m128i s = _mm_sad_epu8(u, _mm_setzero_si128());
  return static_cast<int32_t>(_mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1)) - 16 * 128;
}

enum class Side { kMinPairs, kMinPairs16, kStart16, kStart32 };

template <Side kSide, int kBias>
void prep_q8_k(const uint8_t* act_row, int64_t n, uint8_t* records, size_t block_stride) {
  const auto* a = reinterpret_cast<const BlockQ8_K*>(act_row);
  for (int64_t b = 0; b < n / kQKK; ++b) {
    auto* rec = reinterpret_cast<ActRecordK*>(records + static_cast<size_t>(b) * block_stride);
    std::memcpy(rec->qs, a[b].qs, kQKK);
    rec->d = a[b].d;
    int32_t sum16[16];  // recomputed from the codes: ggml leaves bsums unwritten for zero blocks
    for (int k = 0; k < 16; ++k) sum16[k] = sum_i8x16(a[b].qs + 16 * k);
    if constexpr (kSide == Side::kMinPairs16) {  // q2_K: 8 pairs of 16-element sums
      for (int p = 0; p < 8; ++p)
        rec->side[p] = static_cast<int32_t>(static_cast<uint32_t>(sum16[2 * p] & 0xFFFF) |
                                            static_cast<uint32_t>(sum16[2 * p + 1]) << 16);
    } else if constexpr (kSide == Side::kMinPairs) {
      for (int p = 0; p < 4; ++p) {
        const int j = 4 * (p / 2) + p % 2;  // pair p: sub-blocks j and j + 2
        const int32_t lo = sum16[2 * j] + sum16[2 * j + 1], hi = sum16[2 * j + 4] + sum16[2 * j + 5];
        rec->side[p] = static_cast<int32_t>(static_cast<uint32_t>(lo & 0xFFFF) | static_cast<uint32_t>(hi) << 16);
      }
    } else if constexpr (kSide == Side::kStart16) {
      int32_t sum = 0;
      for (int k = 0; k < 16; ++k) {
        rec->side[k] = -kBias * sum16[k];
        sum += sum16[k];
      }
      rec->scaled_start = -124 * sum;
    } else {
      for (int j = 0; j < 8; ++j) rec->side[j] = -kBias * (sum16[2 * j] + sum16[2 * j + 1]);
    }
  }
}

// Byte k (0..3) of every dword, zero-extended.
inline __m512i byte_of(__m512i v, int k) {
  return _mm512_and_si512(_mm512_srli_epi32(v, 8 * k), _mm512_set1_epi32(0xFF));
}

// Lower nibbles and upper nibbles of 8 transposed dword vectors t[g] into codes[lo0 + g] and
// codes[hi0 + g] (4-bit codes, before any 5th/6th bit is merged).
inline void split_nibbles(const __m512i t[8], __m512i lo[8], __m512i hi[8]) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (int g = 0; g < 8; ++g) {
    lo[g] = _mm512_and_si512(t[g], low4);
    hi[g] = _mm512_and_si512(_mm512_srli_epi16(t[g], 4), low4);
  }
}

// b | (a & mask), one vpternlogd.
inline __m512i or_masked(__m512i b, __m512i a, __m512i mask) { return _mm512_ternarylogic_epi32(b, a, mask, 0xF8); }

// Shift every dword left (bits > 0) or right (bits < 0) by |bits|: an immediate shift where bits
// is a constant after inlining (the decode sources unroll their sub-blocks for that).
inline __m512i shift_left(__m512i v, int bits) {
  return bits >= 0 ? _mm512_sll_epi32(v, _mm_cvtsi32_si128(bits)) : _mm512_srl_epi32(v, _mm_cvtsi32_si128(-bits));
}

// Shift every dword left (kShift > 0) or right (kShift < 0) by |kShift| bits (immediate form).
template <int kShift>
inline __m512i shift_bits(__m512i v) {
  if constexpr (kShift >= 0)
    return _mm512_slli_epi32(v, kShift);
  else
    return _mm512_srli_epi32(v, -kShift);
}

}  // namespace
}  // namespace hylo::kernels
