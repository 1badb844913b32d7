// Small AVX-512 helpers shared by the avx512_*.cpp kernels: unaligned scalar loads, broadcasts,
// fp16 scalars and the 16-row dword transposes the row-lane packers are built from.
// Include only from sources compiled with the AVX512 flags; all helpers have internal linkage.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/interleave.h"
#include "kernels/simd.h"

#ifndef HYLO_PREFETCH_BYTES
#define HYLO_PREFETCH_BYTES 4096
#endif

namespace hylo::kernels {
namespace {

inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// 4 bytes at p in every dword lane (folds into vpdpbusd's {1to16} memory operand).
inline __m512i bcast_i32(const void* p) { return _mm512_set1_epi32(load_i32(p)); }

inline float fp16_scalar(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t fp16_bits(float f) { return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

// The row-lane packers transpose 16 rows into vectors whose lane l holds 4 bytes of row l. The
// shuffle port is their bottleneck, so half of the transposition is done by the load unit: a
// masked 128-bit broadcast-load (a load plus a blend that either vector port runs) puts 16 bytes
// of rows i, i+4, i+8, i+12 into the four quarters of one vector; a 4x4 dword transpose inside
// the quarters (8 shuffles for 4 vectors) finishes the job.

// q[i] quarters = 16 bytes at base + offsets[i + 4k], k = 0..3.
inline void load_row_quarters(const uint8_t* base, const int32_t* offsets, __m512i q[4]) {
  for (int i = 0; i < 4; ++i) {
    const auto row = [&](int r) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + offsets[r])); };
    __m512i v = _mm512_castsi128_si512(row(i));
    v = _mm512_mask_broadcast_i32x4(v, 0x00F0, row(i + 4));
    v = _mm512_mask_broadcast_i32x4(v, 0x0F00, row(i + 8));
    q[i] = _mm512_mask_broadcast_i32x4(v, 0xF000, row(i + 12));
  }
}

// 4x4 dword transpose inside every 128-bit quarter: t[g] quarter k = dword g of q[0..3] quarter k.
inline void transpose_quarters_4x4(const __m512i q[4], __m512i t[4]) {
  const __m512i a0 = _mm512_unpacklo_epi32(q[0], q[1]), a1 = _mm512_unpackhi_epi32(q[0], q[1]);
  const __m512i a2 = _mm512_unpacklo_epi32(q[2], q[3]), a3 = _mm512_unpackhi_epi32(q[2], q[3]);
  t[0] = _mm512_unpacklo_epi64(a0, a2);
  t[1] = _mm512_unpackhi_epi64(a0, a2);
  t[2] = _mm512_unpacklo_epi64(a1, a3);
  t[3] = _mm512_unpackhi_epi64(a1, a3);
}

// 16 bytes (4 dwords) of each of 16 rows at base + offsets[l]: t[g] lane l = dword g of row l.
inline void load_transpose_16x4(const uint8_t* base, const int32_t* offsets, __m512i t[4]) {
  __m512i q[4];
  load_row_quarters(base, offsets, q);
  transpose_quarters_4x4(q, t);
}

// 32 bytes (8 dwords) of each of 16 rows: t[g] lane l = dword g of row l.
inline void load_transpose_16x8(const uint8_t* base, const int32_t* offsets, __m512i t[8]) {
  load_transpose_16x4(base, offsets, t);
  load_transpose_16x4(base + 16, offsets, t + 4);
}

// The same 16-bit field at base + offsets[l] of each of 16 rows, as 16 dwords (upper halves zero).
inline __m512i gather_u16(const uint8_t* base, const int32_t* offsets) {
  const __m512i idx = _mm512_loadu_si512(offsets);
  return _mm512_and_si512(_mm512_i32gather_epi32(idx, base, 1), _mm512_set1_epi32(0xFFFF));
}

// The fp16 field at base + offsets[l] of each of 16 rows, as f32.
inline __m512 gather_fp16(const uint8_t* base, const int32_t* offsets) {
  return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(gather_u16(base, offsets)));
}

inline __m512 load_or_zero(const float* y, __mmask16 mask, bool zero) {
  return zero ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask, y);
}

// Readers of one block of 16 weight rows for the packers, over the two layouts of interleave.h:
//   dwords<N>(off, t): t[i] lane l = the 4 bytes at byte off + 4i of row l's block (N = 4 or 8)
//   dword(off):        the same for one unit
//   half(off):         the 2 bytes at off of each row's block, zero-extended to a dword
// Both return the same vectors, so a packer written against them gives the same bits from the
// rows in place and from their image.
template <ImageLayout L>
struct BlockInPlace {
  static constexpr bool kImage = false;
  const uint8_t* block;    // this block of the group's first row
  const int32_t* offsets;  // lane l's row, in bytes from the first row

  template <int N>
  void dwords(int off, __m512i* t) const {
    static_assert(N == 4 || N == 8);
    if constexpr (N == 4) {
      load_transpose_16x4(block + off, offsets, t);
    } else {
      load_transpose_16x8(block + off, offsets, t);
    }
  }
  __m512i dword(int off) const { return _mm512_i32gather_epi32(_mm512_loadu_si512(offsets), block + off, 1); }
  __m512i half(int off) const {
    // A field at the very end of the block is read with the dword that ends with it.
    if (off + 4 <= L.block_bytes) return _mm512_and_si512(dword(off), _mm512_set1_epi32(0xFFFF));
    return _mm512_srli_epi32(dword(off - 2), 16);
  }
};

template <ImageLayout L>
struct BlockImage {
  static constexpr bool kImage = true;
  static_assert(L.lanes == 16 && L.body_bytes() % 4 == 0);
  const uint8_t* body;    // this block's body units (64-byte aligned)
  const uint8_t* halves;  // this block's 2-byte units

  template <int N>
  void dwords(int off, __m512i* t) const {
    const uint8_t* p = body + 16 * (off - L.head_bytes);
    for (int i = 0; i < N; ++i) t[i] = _mm512_load_si512(p + 64 * i);
  }
  __m512i dword(int off) const { return _mm512_load_si512(body + 16 * (off - L.head_bytes)); }
  __m512i half(int off) const {
    const int unit = off < L.head_bytes ? off / 2 : (off - L.body_bytes()) / 2;
    return _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(halves + 32 * unit)));
  }
};

// The image blocks b0 .. of one group: reader for block b (relative to b0).
template <ImageLayout L>
struct GroupImage {
  const uint8_t* body = nullptr;
  const uint8_t* halves = nullptr;
  GroupImage() = default;
  // group: the group's image; n_blocks: blocks per row.
  GroupImage(const uint8_t* group, int64_t n_blocks, int64_t b0)
      : body(group + static_cast<size_t>(b0) * 16 * L.body_bytes()),
        halves(group + static_cast<size_t>(n_blocks) * 16 * L.body_bytes() +
               static_cast<size_t>(b0) * 16 * (L.head_bytes + L.tail_bytes)) {}
  // Asks for the body bytes kPrefetchBytes ahead of block b. Decode reads each image once, in
  // order, with little arithmetic per byte: without this a core keeps too few cache misses in
  // flight (the packer's stores fill the window) to reach the memory bandwidth.
  static constexpr int kPrefetchBytes = HYLO_PREFETCH_BYTES;
  void prefetch(int b) const {
    const uint8_t* p = body + static_cast<size_t>(b) * 16 * L.body_bytes() + kPrefetchBytes;
    for (int i = 0; i < 16 * L.body_bytes(); i += 64) _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T0);
    if constexpr (L.head_bytes + L.tail_bytes > 0) {  // and the scales, at the same distance in blocks
      constexpr int kHalves = 16 * (L.head_bytes + L.tail_bytes);
      constexpr int kAhead = kPrefetchBytes / (16 * L.body_bytes()) * kHalves;
      const uint8_t* h = halves + static_cast<size_t>(b) * kHalves + kAhead;
      if ((reinterpret_cast<uintptr_t>(h) & 63) < kHalves) _mm_prefetch(reinterpret_cast<const char*>(h), _MM_HINT_T0);
    }
  }
  BlockImage<L> block(int b) const {
    return {body + static_cast<size_t>(b) * 16 * L.body_bytes(),
            halves + static_cast<size_t>(b) * 16 * (L.head_bytes + L.tail_bytes)};
  }
};

}  // namespace
}  // namespace hylo::kernels
