// Small AVX2 helpers shared by the avx2_*.cpp kernels: scalar loads, broadcasts and the 8-row dword
// transposes of the row-lane packers (lane l of a ymm = 4 bytes of row l).
// Include only from sources compiled with the AVX2 flags; all helpers have internal linkage.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/interleave.h"
#include "kernels/simd.h"

namespace hylo::kernels {
namespace {

inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline __m256i bcast_i32(const void* p) { return _mm256_set1_epi32(load_i32(p)); }

inline float fp16_scalar(uint16_t h) { return _cvtsh_ss(h); }

// 16 bytes of rows i and i + 4 in the two 128-bit halves (the insert from memory runs on any
// vector port), then a 4x4 dword transpose inside each half: t[g] lane l = dword g of row l.
inline void load_transpose_8x4(const uint8_t* base, const int32_t* offsets, __m256i t[4]) {
  __m256i q[4];
  for (int i = 0; i < 4; ++i) {
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + offsets[i]));
    q[i] = _mm256_inserti128_si256(_mm256_castsi128_si256(lo),
                                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + offsets[i + 4])), 1);
  }
  const __m256i a0 = _mm256_unpacklo_epi32(q[0], q[1]), a1 = _mm256_unpackhi_epi32(q[0], q[1]);
  const __m256i a2 = _mm256_unpacklo_epi32(q[2], q[3]), a3 = _mm256_unpackhi_epi32(q[2], q[3]);
  t[0] = _mm256_unpacklo_epi64(a0, a2);
  t[1] = _mm256_unpackhi_epi64(a0, a2);
  t[2] = _mm256_unpacklo_epi64(a1, a3);
  t[3] = _mm256_unpackhi_epi64(a1, a3);
}

// 32 bytes (8 dwords) of each of 8 rows: t[g] lane l = dword g of row l.
inline void load_transpose_8x8(const uint8_t* base, const int32_t* offsets, __m256i t[8]) {
  load_transpose_8x4(base, offsets, t);
  load_transpose_8x4(base + 16, offsets, t + 4);
}

// The dword at base + offsets[l] of each of 8 rows.
inline __m256i gather_u32(const uint8_t* base, const int32_t* offsets) {
  return _mm256_i32gather_epi32(reinterpret_cast<const int*>(base),
                                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(offsets)), 1);
}

// The fp16 field at base + offsets[l] of each of 8 rows (reads 4 bytes), as f32.
inline __m256 gather_fp16(const uint8_t* base, const int32_t* offsets) {
  const __m256i v = _mm256_and_si256(gather_u32(base, offsets), _mm256_set1_epi32(0xFFFF));
  // Pack the 8 low halves into 128 bits, then widen.
  const __m256i packed = _mm256_packus_epi32(v, v);  // per 128-bit lane: 4 halves twice
  const __m128i halves = _mm_unpacklo_epi64(_mm256_castsi256_si128(packed), _mm256_extracti128_si256(packed, 1));
  return _mm256_cvtph_ps(halves);
}

inline __m256i lane_mask_vector(uint32_t mask) {
  const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(static_cast<int>(mask)), bits), bits);
}

inline __m256 load_or_zero(const float* y, __m256i mask, bool zero) {
  return zero ? _mm256_setzero_ps() : _mm256_maskload_ps(y, mask);
}

inline void store_masked(float* y, __m256i mask, __m256 v) { _mm256_maskstore_ps(y, mask, v); }

// 8 dwords of fp16 bits (low halves; the high halves are ignored) -> f32.
inline __m256 widen_fp16(__m256i v) {
  const __m256i p = _mm256_packus_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)), _mm256_setzero_si256());
  return _mm256_cvtph_ps(_mm_unpacklo_epi64(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
}

// Readers of one block of 8 weight rows, in place or from the interleaved image (see the AVX-512
// ones in avx512_util.h): the same vectors either way.
template <ImageLayout L>
struct BlockInPlace {
  const uint8_t* block;
  const int32_t* offsets;
  template <int N>
  void dwords(int off, __m256i* t) const {
    static_assert(N == 4 || N == 8);
    if constexpr (N == 4) {
      load_transpose_8x4(block + off, offsets, t);
    } else {
      load_transpose_8x8(block + off, offsets, t);
    }
  }
  __m256i dword(int off) const { return gather_u32(block + off, offsets); }
  __m256i half(int off) const {
    if (off + 4 <= L.block_bytes) return _mm256_and_si256(dword(off), _mm256_set1_epi32(0xFFFF));
    return _mm256_srli_epi32(dword(off - 2), 16);
  }
};

template <ImageLayout L>
struct BlockImage {
  static_assert(L.lanes == 8 && L.body_bytes() % 4 == 0);
  const uint8_t* body;
  const uint8_t* halves;
  template <int N>
  void dwords(int off, __m256i* t) const {
    const uint8_t* p = body + 8 * (off - L.head_bytes);
    for (int i = 0; i < N; ++i) t[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 32 * i));
  }
  __m256i dword(int off) const {
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(body + 8 * (off - L.head_bytes)));
  }
  __m256i half(int off) const {
    const int unit = off < L.head_bytes ? off / 2 : (off - L.body_bytes()) / 2;
    return _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(halves + 16 * unit)));
  }
};

template <ImageLayout L>
struct GroupImage {
  const uint8_t* body = nullptr;
  const uint8_t* halves = nullptr;
  GroupImage() = default;
  GroupImage(const uint8_t* group, int64_t n_blocks, int64_t b0)
      : body(group + static_cast<size_t>(b0) * 8 * L.body_bytes()),
        halves(group + static_cast<size_t>(n_blocks) * 8 * L.body_bytes() +
               static_cast<size_t>(b0) * 8 * (L.head_bytes + L.tail_bytes)) {}
  // The body bytes 4 KiB ahead of block b (see avx512_util.h: decode needs the misses in flight).
  void prefetch(int b) const {
    const uint8_t* p = body + static_cast<size_t>(b) * 8 * L.body_bytes() + 4096;
    for (int i = 0; i < 8 * L.body_bytes(); i += 64) _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T0);
  }
  BlockImage<L> block(int b) const {
    return {body + static_cast<size_t>(b) * 8 * L.body_bytes(),
            halves + static_cast<size_t>(b) * 8 * (L.head_bytes + L.tail_bytes)};
  }
};

}  // namespace
}  // namespace hylo::kernels
