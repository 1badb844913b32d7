// AVX-512 (VNNI) matmul for the 256-element super-block formats against q8_K activations:
// q4_K, q5_K, q6_K and iq4_xs (q2_K and q3_K: avx512_kquants_pairs.cpp). Row-lane kernels
// (row_lane_gemm.h): 16 weight rows per zmm, unpacked once per chunk into u8 codes, one vpdpbusd
// per 4 elements per column.
//
// Per output y[c][r] and super-block, with sub-blocks j of 32 (q4_K, q5_K, iq4_xs) or 16 (q6_K)
// elements, S_j the exact integer dot of sub-block j, dsc_j = f32(d_w · scale_j) and d_a the
// activation's f32 scale, the operations are, in this order:
//   t = 0;  t = fma(float(S_j), dsc_j, t) for j = 0, 1, ...
//   q4_K, q5_K: t = fnmadd(float(M), dmin_w, t)   with M = Σ_j m_j · Σ_{i in j} q_a[i] (exact)
//   y = fma(t, d_a, y)
// (y starts at 0 and carries over super-blocks). This differs from ggml's scalar order only in
// rounding; see the tolerance derivation in the tests.
//
// Signed weight values are biased to u8 for vpdpbusd and the bias is removed exactly by starting
// S_j at -bias · Σ_{i in j} q_a[i]: q6_K stores q + 32 (bias 32), iq4_xs the grid value + 128.
#include "kernels/avx512_kquants.h"

#include <cstddef>
#include <cstring>
#include <type_traits>
#include <utility>

#include "kernels/avx512_gemm.h"
#include "kernels/avx512_util.h"
#include "kernels/blocks.h"
#include "kernels/row_lane_gemm.h"
#include "kernels/simd.h"

namespace hylo::kernels {
namespace {

// One super-block of 16 rows, packed: codes[k] lane l = elements 4k .. 4k+3 of row l (u8),
// dsc[j] lane l = f32(d · scale_j) of row l; for the formats with a min term, min_pairs[p] holds
// the int16 pair (m_j, m_j+2), j = 0, 1, 4, 5 (min_pair_of), and dmin the f32 dmin.
template <int kSubBlocks>
struct alignas(64) PackedSuperBlock {
  uint8_t codes[64][64];
  float dsc[kSubBlocks][16];
  int32_t min_pairs[kSubBlocks / 2][16];
  float dmin[16];
};

// Min pair p of a dword of four 6-bit mins m_4q .. m_4q+3 (q = p / 2): (m_4q, m_4q+2) for even p,
// (m_4q+1, m_4q+3) for odd p, as two int16: one AND (and a shift), where adjacent bytes would take
// two shifts and an OR. The activation record pairs its sums in the same order.
inline __m512i min_pair_of(__m512i mins, int p) {
  return _mm512_and_si512(p % 2 ? _mm512_srli_epi32(mins, 8) : mins, _mm512_set1_epi32(0x00FF00FF));
}

// q4_K / q5_K header: d, dmin and the eight 6-bit (scale, min) pairs of 16 rows.
template <typename R>
void pack_k4_header(const R& r, PackedSuperBlock<8>* out) {
  __m512i h[4];  // dword 0: d | dmin << 16; dwords 1..3: scales[0..11]
  r.template dwords<4>(0, h);
  const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h[0]));
  _mm512_store_ps(out->dmin, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(h[0], 16))));
  const __m512i m6 = _mm512_set1_epi8(0x3F), m4 = _mm512_set1_epi8(0x0F), hi2 = _mm512_set1_epi8(0x30);
  // Bytes j of: scales 0..3, mins 0..3, scales 4..7, mins 4..7 (see unpack_scale_min_k4).
  const __m512i sc_lo = _mm512_and_si512(h[1], m6);
  const __m512i mn_lo = _mm512_and_si512(h[2], m6);
  const __m512i sc_hi = or_masked(_mm512_and_si512(h[3], m4), _mm512_srli_epi32(h[1], 2), hi2);
  const __m512i mn_hi = or_masked(_mm512_and_si512(_mm512_srli_epi32(h[3], 4), m4), _mm512_srli_epi32(h[2], 2), hi2);
  for (int j = 0; j < 8; ++j) {
    const __m512i sc = byte_of(j < 4 ? sc_lo : sc_hi, j % 4);
    _mm512_store_ps(out->dsc[j], _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc)));
  }
  for (int p = 0; p < 4; ++p) _mm512_store_si512(out->min_pairs[p], min_pair_of(p < 2 ? mn_lo : mn_hi, p));
}

// What the K formats share. Derived provides kWeightBlockBytes, kPackedBlockBytes, kLayout and
// pack_block(reader, packed block).
template <typename Derived>
struct KFormatBase : BlockPacker<Derived> {
  static constexpr int kLanes = 16;
  static constexpr int kBlockElems = kQKK;
  static constexpr int kActRecordBytes = sizeof(ActRecordK);
  static constexpr int kChunkBlocks = 4;
  static constexpr int kMaxCols = 8;
  // Prefill: two row groups per pass (compute_k with G = 2); 2 · 3 · C accumulators fit at C = 4.
  static constexpr int kPairCols = 4;
  template <int C>
  static void compute_pair(const ColumnTile<C>& tile, uint32_t lane_mask_b, const uint8_t* packed_a,
                           const uint8_t* packed_b, int n_blocks) {
    compute_k<Derived, C, 2>(tile, {tile.lane_mask, lane_mask_b}, {packed_a, packed_b}, n_blocks);
  }
  // Decode straight from the image through Derived::ImageSource, which computes pack_block's
  // values in registers as compute_k asks for them: no 4 KiB unpacked super-block stored and read
  // back. One row group per pass: two or four were slower for these formats.
  static constexpr bool kFusedImage = true;
  static constexpr int image_groups(int) { return 1; }
  template <int C, int G>
  static void compute_image(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G],
                            const uint8_t* const (&groups)[G], int64_t n_blocks) {
    typename Derived::ImageSource src[G];
    for (int r = 0; r < G; ++r) src[r].image = GroupImage<Derived::kLayout>(groups[r], n_blocks, 0);
    compute_k_from<Derived, C, G>(tile, lane_masks, src, static_cast<int>(n_blocks));
  }
};

// The shared column kernel. P: kSubBlocks (8 or 16), kHasMin, kHasStart. G row groups at once
// (G = 2: prefill, the second group's y at tile.y[c] + 16, each activation broadcast feeding a
// multiply of both); per lane the same operations whatever G, so the same bits.
// Where compute_k reads a super-block's codes, scales and mins: the packed blocks, or (q4_K and
// q5_K decode) the image itself, unpacked in registers (K4ImageSource).
template <int kSub>
struct PackedK {
  // Whether compute_k unrolls the sub-blocks, so that the source's offsets and shifts are
  // constants: worth it where codes() unpacks in registers (decode from the image), not for
  // loads of packed codes (prefill), whose unrolled body would be 16 times larger.
  static constexpr bool kUnrollSubBlocks = false;
  const PackedSuperBlock<kSub>* pb;
  __m512i codes(int b, int k) const { return _mm512_load_si512(pb[b].codes[k]); }
  __m512 dsc(int b, int j) const { return _mm512_load_ps(pb[b].dsc[j]); }
  __m512i min_pair(int b, int p) const { return _mm512_load_si512(pb[b].min_pairs[p]); }
  __m512 dmin(int b) const { return _mm512_load_ps(pb[b].dmin); }
  void prefetch(int) const {}
};

template <typename P, int C, int G, typename Source>
void compute_k_from(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G], const Source (&src)[G], int n_blocks);

template <typename P, int C, int G = 1>
void compute_k(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G], const uint8_t* const (&packed)[G],
               int n_blocks) {
  PackedK<P::kSubBlocks> src[G];
  for (int r = 0; r < G; ++r) src[r].pb = reinterpret_cast<const PackedSuperBlock<P::kSubBlocks>*>(packed[r]);
  compute_k_from<P, C, G>(tile, lane_masks, src, n_blocks);
}

template <typename P, int C, int G, typename Source>
void compute_k_from(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G], const Source (&src)[G], int n_blocks) {
  constexpr int kSub = P::kSubBlocks;
  constexpr int kGroups = kQKK / kSub / 4;  // dword groups per sub-block
  // vpdpbusd has a 5-cycle latency and 2 issue ports: with few columns, split each sub-block's
  // chain so that about 8 independent chains are in flight.
  constexpr int kSplit = C * G >= 4 ? 1 : (C * G >= 2 || kGroups < 8 ? 2 : 4);
  __mmask16 mask[G];
  __m512 y[G][C];
  for (int r = 0; r < G; ++r) {
    mask[r] = static_cast<__mmask16>(lane_masks[r]);
    for (int c = 0; c < C; ++c) y[r][c] = load_or_zero(tile.y[c] + 16 * r, mask[r], tile.first_chunk);
  }
  for (int b = 0; b < n_blocks; ++b) {
    for (int r = 0; r < G; ++r) src[r].prefetch(b);
    const auto* rec = reinterpret_cast<const ActRecordK*>(tile.act + static_cast<size_t>(b) * tile.act_block_stride);
    __m512 t[G][C];
    for (int r = 0; r < G; ++r)
      for (int c = 0; c < C; ++c) t[r][c] = _mm512_setzero_ps();
    // Sub-block j (an int, or a constant where the source unrolls them, see kUnrollSubBlocks).
    const auto sub_block = [&](auto j) __attribute__((always_inline)) {
      // S_j as kSplit partial sums (exact integers, so the split changes nothing but latency).
      __m512i s[kSplit][G][C];
      for (int r = 0; r < G; ++r)
        for (int c = 0; c < C; ++c) {
          s[0][r][c] = P::kHasStart ? _mm512_set1_epi32(rec[c].side[j]) : _mm512_setzero_si512();
          for (int k = 1; k < kSplit; ++k) s[k][r][c] = _mm512_setzero_si512();
        }
#pragma GCC unroll 8
      for (int g = 0; g < kGroups; ++g) {  // columns innermost: C · G · kSplit independent chains
        __m512i w[G];
        for (int r = 0; r < G; ++r) w[r] = src[r].codes(b, kGroups * j + g);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          const __m512i x = bcast_i32(rec[c].qs + kGroups * 4 * j + 4 * g);
          for (int r = 0; r < G; ++r) s[g % kSplit][r][c] = _mm512_dpbusd_epi32(s[g % kSplit][r][c], w[r], x);
        }
      }
      for (int r = 0; r < G; ++r) {
        const __m512 dsc = src[r].dsc(b, j);
        for (int c = 0; c < C; ++c) {
          for (int k = 1; k < kSplit; ++k) s[0][r][c] = _mm512_add_epi32(s[0][r][c], s[k][r][c]);
          t[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[0][r][c]), dsc, t[r][c]);
        }
      }
    };
    if constexpr (Source::kUnrollSubBlocks) {
      [&]<int... J>(std::integer_sequence<int, J...>) __attribute__((always_inline)) {
        (sub_block(std::integral_constant<int, J>{}), ...);
      }
      (std::make_integer_sequence<int, kSub>{});
    } else {
      for (int j = 0; j < kSub; ++j) sub_block(j);
    }
    for (int r = 0; r < G; ++r) {
      if constexpr (P::kHasMin) {
        const __m512 dmin = src[r].dmin(b);
        for (int c = 0; c < C; ++c) {
          __m512i m = _mm512_setzero_si512();
          for (int p = 0; p < kSub / 2; ++p) {
            m = _mm512_dpwssd_epi32(m, src[r].min_pair(b, p), _mm512_set1_epi32(rec[c].side[p]));
          }
          t[r][c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), dmin, t[r][c]);
        }
      }
      for (int c = 0; c < C; ++c) y[r][c] = _mm512_fmadd_ps(t[r][c], _mm512_set1_ps(rec[c].d), y[r][c]);
    }
  }
  for (int r = 0; r < G; ++r)
    for (int c = 0; c < C; ++c) _mm512_mask_storeu_ps(tile.y[c] + 16 * r, mask[r], y[r][c]);
}

// q4_K / q5_K decode straight from the image: pack_block's values computed in registers as
// compute_k asks for them (the same integers and the same f32 scales, so the same bits), with no
// stores of the 4 KiB unpacked block. kQh < 0: no fifth bit (q4_K).
//
// q4_K's odd sub-blocks (the high nibbles) are masked in place, not shifted: their codes are 16 q,
// so S_j comes out as 16 S_j (exact: |16 S_j| ≤ 16 · 32 · 15 · 128 < 2^24, so float(16 S_j) is
// exact too) and their scale as dsc_j / 16 (a power of two: exact, d ≥ 2^-24 stays normal).
// fma(float(16 S_j), dsc_j / 16, t) rounds the same exact product as fma(float(S_j), dsc_j, t):
// the same bits, one instruction fewer per code vector.
template <ImageLayout L, int kQs, int kQh>
struct K4ImageSource {
  static constexpr bool kUnrollSubBlocks = true;
  static constexpr bool kHighInPlace = kQh < 0;
  GroupImage<L> image;
  // Vector k = 8j + g of sub-block j: nibble (j odd: high) of qs chunk j / 2; q5_K's bit 4 = bit j
  // of qh.
  __m512i codes(int b, int k) const {
    const BlockImage<L> r = image.block(b);
    const int j = k / 8, g = k % 8;
    __m512i q = r.dword(kQs + 32 * (j / 2) + 4 * g);
    if constexpr (kHighInPlace) {
      return _mm512_and_si512(q, _mm512_set1_epi8(static_cast<char>(j % 2 == 1 ? 0xF0 : 0x0F)));
    } else {
      if (j % 2 == 1) q = _mm512_srli_epi32(q, 4);
      q = _mm512_and_si512(q, _mm512_set1_epi8(0x0F));
      const __m512i high = shift_left(r.dword(kQh + 4 * g), 4 - j);
      return or_masked(q, high, _mm512_set1_epi8(0x10));
    }
  }
  // pack_k4_header's values, one at a time.
  __m512i scale_bytes(int b, int j, bool mins) const {
    const BlockImage<L> r = image.block(b);
    const __m512i m6 = _mm512_set1_epi8(0x3F), m4 = _mm512_set1_epi8(0x0F), hi2 = _mm512_set1_epi8(0x30);
    const __m512i h1 = r.dword(4), h2 = r.dword(8), h3 = r.dword(12);
    if (j < 4) return _mm512_and_si512(mins ? h2 : h1, m6);
    return mins ? or_masked(_mm512_and_si512(_mm512_srli_epi32(h3, 4), m4), _mm512_srli_epi32(h2, 2), hi2)
                : or_masked(_mm512_and_si512(h3, m4), _mm512_srli_epi32(h1, 2), hi2);
  }
  __m512 dsc(int b, int j) const {
    __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(image.block(b).dword(0)));
    if (kHighInPlace && j % 2 == 1) d = _mm512_mul_ps(d, _mm512_set1_ps(1.0f / 16));
    return _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_of(scale_bytes(b, j, false), j % 4)));
  }
  __m512i min_pair(int b, int p) const { return min_pair_of(scale_bytes(b, 4 * (p / 2), true), p); }
  __m512 dmin(int b) const {
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(image.block(b).dword(0), 16)));
  }
  void prefetch(int b) const { image.prefetch(b); }
};

struct FormatQ4_K : KFormatBase<FormatQ4_K> {
  static constexpr int kSubBlocks = 8;
  static constexpr bool kHasMin = true, kHasStart = false;
  static constexpr int kWeightBlockBytes = sizeof(BlockQ4_K);
  static constexpr int kPackedBlockBytes = sizeof(PackedSuperBlock<8>);
  static constexpr ImageLayout kLayout = image_layout(TensorType::kQ4_K, 16);
  static_assert(kLayout.block_bytes == sizeof(BlockQ4_K));

  static void prep(const uint8_t* a, int64_t n, uint8_t* rec, size_t stride) {
    prep_q8_k<Side::kMinPairs, 0>(a, n, rec, stride);
  }

  // Chunk c of qs (32 bytes) holds sub-block 2c in its low nibbles and 2c + 1 in its high ones.
  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedSuperBlock<8>*>(packed);
    pack_k4_header(r, out);
    for (int c = 0; c < 4; ++c) {
      __m512i t[8], lo[8], hi[8];
      r.template dwords<8>(offsetof(BlockQ4_K, qs) + 32 * c, t);
      split_nibbles(t, lo, hi);
      for (int g = 0; g < 8; ++g) {
        _mm512_store_si512(out->codes[8 * (2 * c) + g], lo[g]);
        _mm512_store_si512(out->codes[8 * (2 * c + 1) + g], hi[g]);
      }
    }
  }

  template <int C>
  static void compute(const ColumnTile<C>& tile, const uint8_t* packed, int n_blocks) {
    compute_k<FormatQ4_K, C>(tile, {tile.lane_mask}, {packed}, n_blocks);
  }

  using ImageSource = K4ImageSource<kLayout, offsetof(BlockQ4_K, qs), -1>;
};

// q5_K chunk c (qs[32c .. 32c+31]): low nibbles get bit 2c of qh, high nibbles bit 2c + 1, moved
// to bit 4 of each byte.
template <int kChunk, typename R>
[[gnu::always_inline]] inline void pack_q5_chunk(const R& r, const __m512i qh[8], __m512i bit4, uint8_t (*codes)[64]) {
  __m512i t[8], lo[8], hi[8];
  r.template dwords<8>(offsetof(BlockQ5_K, qs) + 32 * kChunk, t);
  split_nibbles(t, lo, hi);
  for (int g = 0; g < 8; ++g) {
    _mm512_store_si512(codes[8 * (2 * kChunk) + g], or_masked(lo[g], shift_bits<4 - 2 * kChunk>(qh[g]), bit4));
    _mm512_store_si512(codes[8 * (2 * kChunk + 1) + g], or_masked(hi[g], shift_bits<3 - 2 * kChunk>(qh[g]), bit4));
  }
}

// q6_K half h, ql bytes 64h + 32 half: low nibbles are quarter t = half, high nibbles quarter
// half + 2; bits 2t, 2t+1 of qh move to bits 4-5.
template <int kHalf, typename R>
[[gnu::always_inline]] inline void pack_q6_quarters(const R& r, int ql, const __m512i qh[8], __m512i bits45,
                                                    uint8_t (*codes)[64]) {
  __m512i t8[8], lo[8], hi[8];
  r.template dwords<8>(ql, t8);
  split_nibbles(t8, lo, hi);
  constexpr int kLo = kHalf, kHi = kHalf + 2;
  for (int g = 0; g < 8; ++g) {
    _mm512_store_si512(codes[8 * kLo + g], or_masked(lo[g], shift_bits<4 - 2 * kLo>(qh[g]), bits45));
    _mm512_store_si512(codes[8 * kHi + g], or_masked(hi[g], shift_bits<4 - 2 * kHi>(qh[g]), bits45));
  }
}

struct FormatQ5_K : KFormatBase<FormatQ5_K> {
  static constexpr int kSubBlocks = 8;
  static constexpr bool kHasMin = true, kHasStart = false;
  static constexpr int kWeightBlockBytes = sizeof(BlockQ5_K);
  static constexpr int kPackedBlockBytes = sizeof(PackedSuperBlock<8>);
  static constexpr ImageLayout kLayout = image_layout(TensorType::kQ5_K, 16);
  static_assert(kLayout.block_bytes == sizeof(BlockQ5_K));

  static void prep(const uint8_t* a, int64_t n, uint8_t* rec, size_t stride) {
    prep_q8_k<Side::kMinPairs, 0>(a, n, rec, stride);
  }

  // As q4_K, plus bit 2c (low nibbles) or 2c + 1 (high nibbles) of qh[l] as bit 4 of the code.
  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedSuperBlock<8>*>(packed);
    const __m512i bit4 = _mm512_set1_epi8(0x10);
    pack_k4_header(r, out);
    __m512i qh[8];
    r.template dwords<8>(offsetof(BlockQ5_K, qh), qh);
    pack_q5_chunk<0>(r, qh, bit4, out->codes);
    pack_q5_chunk<1>(r, qh, bit4, out->codes);
    pack_q5_chunk<2>(r, qh, bit4, out->codes);
    pack_q5_chunk<3>(r, qh, bit4, out->codes);
  }

  template <int C>
  static void compute(const ColumnTile<C>& tile, const uint8_t* packed, int n_blocks) {
    compute_k<FormatQ5_K, C>(tile, {tile.lane_mask}, {packed}, n_blocks);
  }

  using ImageSource = K4ImageSource<kLayout, offsetof(BlockQ5_K, qs), offsetof(BlockQ5_K, qh)>;
};

struct FormatQ6_K : KFormatBase<FormatQ6_K> {
  static constexpr int kSubBlocks = 16;
  static constexpr bool kHasMin = false, kHasStart = true;
  static constexpr int kWeightBlockBytes = sizeof(BlockQ6_K);
  static constexpr int kPackedBlockBytes = sizeof(PackedSuperBlock<16>);
  static constexpr ImageLayout kLayout = image_layout(TensorType::kQ6_K, 16);
  static_assert(kLayout.block_bytes == sizeof(BlockQ6_K) && kLayout.tail_bytes == 2);  // d last

  static void prep(const uint8_t* a, int64_t n, uint8_t* rec, size_t stride) {
    prep_q8_k<Side::kStart16, 32>(a, n, rec, stride);
  }

  // Element 128h + 32t + l: low 4 bits from ql[64h + 32(t & 1) + l] (high nibble for t >= 2),
  // bits 4-5 from bits 2t, 2t+1 of qh[32h + l]. Stored as the 6-bit code (value + 32).
  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedSuperBlock<16>*>(packed);
    const __m512i bits45 = _mm512_set1_epi8(0x30);
    for (int h = 0; h < 2; ++h) {
      __m512i qh[8];
      r.template dwords<8>(offsetof(BlockQ6_K, qh) + 32 * h, qh);
      const int ql = offsetof(BlockQ6_K, ql) + 64 * h;
      pack_q6_quarters<0>(r, ql, qh, bits45, out->codes + 32 * h);
      pack_q6_quarters<1>(r, ql + 32, qh, bits45, out->codes + 32 * h);
    }
    __m512i sc[4];  // int8 scales 4k .. 4k+3 per dword
    r.template dwords<4>(offsetof(BlockQ6_K, scales), sc);
    const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(r.half(offsetof(BlockQ6_K, d))));
    for (int j = 0; j < 16; ++j) {  // sign-extend byte j % 4 of sc[j / 4]
      const __m512i s = _mm512_srai_epi32(_mm512_slli_epi32(sc[j / 4], 24 - 8 * (j % 4)), 24);
      _mm512_store_ps(out->dsc[j], _mm512_mul_ps(d, _mm512_cvtepi32_ps(s)));
    }
  }

  template <int C>
  static void compute(const ColumnTile<C>& tile, const uint8_t* packed, int n_blocks) {
    compute_k<FormatQ6_K, C>(tile, {tile.lane_mask}, {packed}, n_blocks);
  }

  // Decode straight from the image: pack_block's codes and scales computed in registers as
  // compute_k asks for them (the same integers and f32 scales, so the same bits), with no stores
  // of the 4 KiB unpacked block and no reloads. The LM head of most q4_K/q5_K files is q6_K.
  struct ImageSource {
    static constexpr bool kUnrollSubBlocks = true;
    GroupImage<kLayout> image;
    // Vector k = 32h + 8t + g: quarter t of half h (pack_block's order).
    __m512i codes(int b, int k) const {
      const BlockImage<kLayout> r = image.block(b);
      const int h = k / 32, t = (k / 8) % 4, g = k % 8;
      __m512i q = r.dword(offsetof(BlockQ6_K, ql) + 64 * h + 32 * (t % 2) + 4 * g);
      if (t >= 2) q = _mm512_srli_epi32(q, 4);
      q = _mm512_and_si512(q, _mm512_set1_epi8(0x0F));
      const __m512i qh = r.dword(offsetof(BlockQ6_K, qh) + 32 * h + 4 * g);
      return or_masked(q, shift_left(qh, 4 - 2 * t), _mm512_set1_epi8(0x30));  // bits 2t, 2t+1 of qh to 4-5
    }
    __m512 dsc(int b, int j) const {
      const BlockImage<kLayout> r = image.block(b);
      const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(r.half(offsetof(BlockQ6_K, d))));
      const __m512i sc = r.dword(offsetof(BlockQ6_K, scales) + 4 * (j / 4));
      const __m512i s = _mm512_srai_epi32(_mm512_sll_epi32(sc, _mm_cvtsi32_si128(24 - 8 * (j % 4))), 24);
      return _mm512_mul_ps(d, _mm512_cvtepi32_ps(s));
    }
    void prefetch(int b) const { image.prefetch(b); }
  };
};

struct FormatIq4Xs : KFormatBase<FormatIq4Xs> {
  static constexpr int kSubBlocks = 8;
  static constexpr bool kHasMin = false, kHasStart = true;
  static constexpr int kWeightBlockBytes = sizeof(BlockIQ4_XS);
  static constexpr int kPackedBlockBytes = sizeof(PackedSuperBlock<8>);
  static constexpr ImageLayout kLayout = image_layout(TensorType::kIQ4_XS, 16);
  static_assert(kLayout.block_bytes == sizeof(BlockIQ4_XS));

  static void prep(const uint8_t* a, int64_t n, uint8_t* rec, size_t stride) {
    prep_q8_k<Side::kStart32, 128>(a, n, rec, stride);
  }

  // Sub-block s: qs[16s .. 16s+15] nibble-packed, so dword 4s + q of qs holds group q (low
  // nibbles) and group q + 4 (high nibbles) of sub-block s. Codes are grid value + 128.
  static __m512i grid_lut() {  // grid value + 128 as u8, in every 128-bit lane
    alignas(16) uint8_t biased[16];
    for (int i = 0; i < 16; ++i) biased[i] = static_cast<uint8_t>(kIq4nlValues[i] + 128);
    return _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(biased)));
  }

  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedSuperBlock<8>*>(packed);
    const __m512i lut = grid_lut();
    for (int c = 0; c < 4; ++c) {  // 32 bytes of qs = sub-blocks 2c, 2c + 1
      __m512i t[8], lo[8], hi[8];
      r.template dwords<8>(offsetof(BlockIQ4_XS, qs) + 32 * c, t);
      split_nibbles(t, lo, hi);
      for (int i = 0; i < 8; ++i) {
        const int s = 2 * c + i / 4, q = i % 4;
        _mm512_store_si512(out->codes[8 * s + q], _mm512_shuffle_epi8(lut, lo[i]));
        _mm512_store_si512(out->codes[8 * s + q + 4], _mm512_shuffle_epi8(lut, hi[i]));
      }
    }
    // dword 0: d | scales_h << 16, dword 1: scales_l[0..3]
    const __m512i h0 = r.dword(0);
    const __m512i h1 = r.dword(4);
    const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h0));
    for (int s = 0; s < 8; ++s) {
      const __m512i low = _mm512_and_si512(_mm512_srli_epi32(h1, 4 * s), _mm512_set1_epi32(0x0F));
      const __m512i high = _mm512_and_si512(_mm512_srli_epi32(h0, 16 + 2 * s), _mm512_set1_epi32(3));
      const __m512i ls = _mm512_sub_epi32(_mm512_or_si512(low, _mm512_slli_epi32(high, 4)), _mm512_set1_epi32(32));
      _mm512_store_ps(out->dsc[s], _mm512_mul_ps(d, _mm512_cvtepi32_ps(ls)));
    }
  }

  template <int C>
  static void compute(const ColumnTile<C>& tile, const uint8_t* packed, int n_blocks) {
    compute_k<FormatIq4Xs, C>(tile, {tile.lane_mask}, {packed}, n_blocks);
  }

  // Decode straight from the image, as q6_K: pack_block's codes and scales computed in registers
  // (the same integers and f32 scales, so the same bits), with no 4 KiB unpacked block per
  // super-block stored and reloaded: 10.4 -> 12.5 GB/s in bench_matmul (8192 x 2048, one column,
  // one thread, Ice Lake). One row group per pass: two were no faster, and slower at 4 columns.
  struct ImageSource {
    static constexpr bool kUnrollSubBlocks = true;
    GroupImage<kLayout> image;
    // Vector k = 8s + g of sub-block s: the low nibbles of qs dword 4s + g for g < 4, the high
    // nibbles of dword 4s + g - 4 otherwise, through the grid.
    __m512i codes(int b, int k) const {
      const int s = k / 8, g = k % 8;
      __m512i q = image.block(b).dword(offsetof(BlockIQ4_XS, qs) + 16 * s + 4 * (g % 4));
      if (g >= 4) q = _mm512_srli_epi32(q, 4);
      return _mm512_shuffle_epi8(grid_lut(), _mm512_and_si512(q, _mm512_set1_epi8(0x0F)));
    }
    __m512 dsc(int b, int s) const {
      const BlockImage<kLayout> r = image.block(b);
      const __m512i h0 = r.dword(0), h1 = r.dword(4);
      const __m512i low = _mm512_and_si512(_mm512_srli_epi32(h1, 4 * s), _mm512_set1_epi32(0x0F));
      const __m512i high = _mm512_and_si512(_mm512_srli_epi32(h0, 16 + 2 * s), _mm512_set1_epi32(3));
      const __m512i ls = _mm512_sub_epi32(_mm512_or_si512(low, _mm512_slli_epi32(high, 4)), _mm512_set1_epi32(32));
      return _mm512_mul_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(h0)), _mm512_cvtepi32_ps(ls));
    }
    void prefetch(int b) const { image.prefetch(b); }
  };
};

}  // namespace

void avx512_gemm_q4_k(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                      int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ4_K>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_q4_k(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                            int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ4_K>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_q4_k = row_lane_records_kernel<FormatQ4_K>();

void avx512_gemm_q5_k(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                      int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ5_K>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_q5_k(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                            int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ5_K>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_q5_k = row_lane_records_kernel<FormatQ5_K>();

void avx512_gemm_q6_k(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                      int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ6_K>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_q6_k(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                            int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ6_K>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_q6_k = row_lane_records_kernel<FormatQ6_K>();

void avx512_gemm_iq4_xs(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                        int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatIq4Xs>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_iq4_xs(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                              int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatIq4Xs>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_iq4_xs = row_lane_records_kernel<FormatIq4Xs>();

}  // namespace hylo::kernels
