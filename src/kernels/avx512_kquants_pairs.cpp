// AVX-512 (VNNI) matmul for q2_K and q3_K against q8_K activations: 16 sub-blocks of 16 elements
// whose scales are applied in integers (below). Row-lane kernels (row_lane_gemm.h), as the other
// super-block formats (avx512_kquants.cpp). q3_K's codes are biased to u8 (value + 4) and the bias
// is removed by starting S_j at -4 · Σ_{i in j} q_a[i]. The scalar and AVX2 families implement
// the same arithmetic: all three give the same bits.
#include <cstddef>
#include <cstring>

#include "kernels/avx512_gemm.h"
#include "kernels/avx512_kquants.h"
#include "kernels/avx512_util.h"
#include "kernels/blocks.h"
#include "kernels/row_lane_gemm.h"
#include "kernels/simd.h"

namespace hylo::kernels {
namespace {

// q2_K and q3_K (16 sub-blocks of 16) apply their scales in integers, in every path. Per
// super-block, with S_j the exact integer dot of sub-block j (q3_K's starting at -4 · B_j, its
// codes being value + 4) and B_j = Σ_{i in j} q_a[i]:
//   A = Σ_j sc_j · S_j            (exact int32; sub-blocks in pairs through vpdpwssd:
//                                  |S_j| <= 16 · 4 · 128 fits int16)
//   t = float(A) · d_w
//   q2_K: t = fnmadd(float(M), dmin_w, t)   with M = Σ_j m_j · B_j (exact)
//   y = fma(t, d_a, y)
// One or two float conversions per super-block instead of one per sub-block: these formats have the
// fewest bytes per multiply, so decode is bound by instructions, not by memory.
struct alignas(64) PackedPairScales {
  uint8_t codes[64][64];       // codes[k] lane l = elements 4k .. 4k+3 of row l
  int32_t scale_pairs[8][16];  // (sc_2p, sc_2p+1) as two int16
  int32_t min_pairs[8][16];    // (m_2p, m_2p+1) as two int16 (q2_K)
  float d[16], dmin[16];
};

// Bytes k and k + 1 of every dword of v as the two 16-bit words of the dword (zero-extended).
template <int kByte>
inline __m512i byte_pair_words(__m512i v) {
  return _mm512_shuffle_epi8(v, _mm512_set4_epi32(byte_pair_control(3, kByte), byte_pair_control(2, kByte),
                                                  byte_pair_control(1, kByte), byte_pair_control(0, kByte)));
}

// The packed blocks.
struct PackedPairSource {
  const PackedPairScales* pb;
  static constexpr bool kScaledCodes = false;
  static constexpr int code_shift(int) { return 0; }
  __m512i codes(int b, int k) const { return _mm512_load_si512(pb[b].codes[k]); }
  __m512i scale_pair(int b, int p) const { return _mm512_load_si512(pb[b].scale_pairs[p]); }
  __m512i min_pair(int b, int p) const { return _mm512_load_si512(pb[b].min_pairs[p]); }
  __m512 d(int b) const { return _mm512_load_ps(pb[b].d); }
  __m512 dmin(int b) const { return _mm512_load_ps(pb[b].dmin); }
  void prefetch(int) const {}
};

// G row groups at once (prefill: G = 2, the second group's y at tile.y[c] + 16); per lane the
// same operations whatever G and C, so the same bits. A Source with kScaledCodes hands the codes
// of pair p (sub-blocks 2p, 2p + 1) as code · 2^code_shift(p), masked in place: their S_j (and
// starts) come out that many times larger, still exact, and are shifted back before the pairs are
// formed.
template <typename P, int C, int G, typename Source>
void compute_pair_scales(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G], const Source (&src)[G],
                         int n_blocks) {
  // vpdpbusd has a 5-cycle latency: with one column, two chains per sub-block. The min terms
  // (exact integers: their order changes no bits) join the loop only where registers allow.
  constexpr int kSplit = C * G >= 2 ? 1 : 2;
  constexpr bool kMinsInLoop = G == 1;
  __mmask16 mask[G];
  __m512 y[G][C];
  for (int r = 0; r < G; ++r) {
    mask[r] = static_cast<__mmask16>(lane_masks[r]);
    for (int c = 0; c < C; ++c) y[r][c] = load_or_zero(tile.y[c] + 16 * r, mask[r], tile.first_chunk);
  }
  for (int b = 0; b < n_blocks; ++b) {
    for (int r = 0; r < G; ++r) src[r].prefetch(b);
    const auto* rec = reinterpret_cast<const ActRecordK*>(tile.act + static_cast<size_t>(b) * tile.act_block_stride);
    __m512i acc[G][C], mins[G][C];
    for (int r = 0; r < G; ++r)
      for (int c = 0; c < C; ++c) acc[r][c] = mins[r][c] = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int p = 0; p < 8; ++p) {  // sub-blocks 2p and 2p + 1
      __m512i s[2][kSplit][G][C];
      const int shift = Source::code_shift(p);
      for (int h = 0; h < 2; ++h)
        for (int r = 0; r < G; ++r)
          for (int c = 0; c < C; ++c) {
            s[h][0][r][c] =
                P::kHasStart ? _mm512_set1_epi32(rec[c].side[2 * p + h] * (1 << shift)) : _mm512_setzero_si512();
            for (int k = 1; k < kSplit; ++k) s[h][k][r][c] = _mm512_setzero_si512();
          }
#pragma GCC unroll 8
      for (int g = 0; g < 8; ++g) {  // dword groups of both sub-blocks; columns innermost
        const int j = 2 * p + g / 4;
        __m512i w[G];
        for (int r = 0; r < G; ++r) w[r] = src[r].codes(b, 4 * j + g % 4);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          const __m512i x = bcast_i32(rec[c].qs + 16 * j + 4 * (g % 4));
          for (int r = 0; r < G; ++r)
            s[g / 4][g % kSplit][r][c] = _mm512_dpbusd_epi32(s[g / 4][g % kSplit][r][c], w[r], x);
        }
      }
      for (int r = 0; r < G; ++r) {
        const __m512i scale_pair = src[r].scale_pair(b, p);
        for (int c = 0; c < C; ++c) {
          __m512i lo = s[0][0][r][c], hi = s[1][0][r][c];
          if constexpr (kSplit == 2) {
            lo = _mm512_add_epi32(lo, s[0][1][r][c]);
            hi = _mm512_add_epi32(hi, s[1][1][r][c]);
          }
          // (S_2p, S_2p+1) as two int16: S_2p in the low word, S_2p+1 · 2^16 in the high one.
          if constexpr (Source::kScaledCodes) {
            lo = _mm512_sra_epi32(lo, _mm_cvtsi32_si128(shift));
            hi = _mm512_sll_epi32(hi, _mm_cvtsi32_si128(16 - shift));
          } else {
            hi = _mm512_slli_epi32(hi, 16);
          }
          acc[r][c] = _mm512_dpwssd_epi32(acc[r][c], _mm512_mask_blend_epi16(0xAAAAAAAA, lo, hi), scale_pair);
        }
        if constexpr (P::kHasMin && kMinsInLoop) {
          const __m512i min_pair = src[r].min_pair(b, p);
          for (int c = 0; c < C; ++c)
            mins[r][c] = _mm512_dpwssd_epi32(mins[r][c], min_pair, _mm512_set1_epi32(rec[c].side[p]));
        }
      }
    }
    if constexpr (P::kHasMin && !kMinsInLoop) {  // after the codes: fewer registers live above
      for (int r = 0; r < G; ++r)
        for (int p = 0; p < 8; ++p) {
          const __m512i min_pair = src[r].min_pair(b, p);
          for (int c = 0; c < C; ++c)
            mins[r][c] = _mm512_dpwssd_epi32(mins[r][c], min_pair, _mm512_set1_epi32(rec[c].side[p]));
        }
    }
    for (int r = 0; r < G; ++r) {
      const __m512 d = src[r].d(b);
      for (int c = 0; c < C; ++c) {
        __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][c]), d);
        if constexpr (P::kHasMin) t = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mins[r][c]), src[r].dmin(b), t);
        y[r][c] = _mm512_fmadd_ps(t, _mm512_set1_ps(rec[c].d), y[r][c]);
      }
    }
  }
  for (int r = 0; r < G; ++r)
    for (int c = 0; c < C; ++c) _mm512_mask_storeu_ps(tile.y[c] + 16 * r, mask[r], y[r][c]);
}

// What q2_K and q3_K share. Derived provides kHasMin, kHasStart, kWeightBlockBytes, kLayout, prep
// and pack_block(reader, packed block) filling a PackedPairScales.
template <typename Derived>
struct PairScalesFormat : BlockPacker<Derived> {
  static constexpr int kLanes = 16;
  static constexpr int kBlockElems = kQKK;
  static constexpr int kActRecordBytes = sizeof(ActRecordK);
  static constexpr int kChunkBlocks = 4;
  static constexpr int kMaxCols = 8;
  static constexpr int kPackedBlockBytes = sizeof(PackedPairScales);

  template <int C>
  static void compute(const ColumnTile<C>& tile, const uint8_t* packed, int n_blocks) {
    const PackedPairSource src[1] = {{reinterpret_cast<const PackedPairScales*>(packed)}};
    compute_pair_scales<Derived, C, 1>(tile, {tile.lane_mask}, src, n_blocks);
  }
  // Prefill: two row groups per pass; 2 · 2 · C sub-block sums, 2 · C sums A and 2 · C outputs fit
  // the 32 registers at C = 3 (C = 4 spills).
  static constexpr int kPairCols = 3;
  template <int C>
  static void compute_pair(const ColumnTile<C>& tile, uint32_t lane_mask_b, const uint8_t* packed_a,
                           const uint8_t* packed_b, int n_blocks) {
    const PackedPairSource src[2] = {{reinterpret_cast<const PackedPairScales*>(packed_a)},
                                     {reinterpret_cast<const PackedPairScales*>(packed_b)}};
    compute_pair_scales<Derived, C, 2>(tile, {tile.lane_mask, lane_mask_b}, src, n_blocks);
  }
};

// q2_K element 128h + 32s + l: bits 2s, 2s+1 of qs[32h + l]; sub-block j (16 elements) has the
// 4-bit scale scales[j] & 15 and the 4-bit min scales[j] >> 4; d and dmin close the block.
struct FormatQ2_K : PairScalesFormat<FormatQ2_K> {
  static constexpr bool kHasMin = true, kHasStart = false;
  static constexpr int kWeightBlockBytes = sizeof(BlockQ2_K);
  static constexpr ImageLayout kLayout = image_layout(TensorType::kQ2_K, 16);
  static_assert(kLayout.block_bytes == sizeof(BlockQ2_K) && kLayout.tail_bytes == 4);  // d, dmin last

  static void prep(const uint8_t* a, int64_t n, uint8_t* rec, size_t stride) {
    prep_q8_k<Side::kMinPairs16, 0>(a, n, rec, stride);
  }

  // From two scale bytes as words (byte_pair_words): the two scales, or the two mins, as int16.
  static __m512i scale_pair_of(__m512i words) { return _mm512_and_si512(words, _mm512_set1_epi16(0x0F)); }
  static __m512i min_pair_of(__m512i words) { return _mm512_srli_epi16(words, 4); }

  template <int kH, int kS>
  [[gnu::always_inline]] static void pack_quarter(const __m512i qs[16], uint8_t (*codes)[64]) {
    const __m512i low2 = _mm512_set1_epi8(0x03);
    for (int g = 0; g < 8; ++g)
      _mm512_store_si512(codes[32 * kH + 8 * kS + g], _mm512_and_si512(shift_bits<-2 * kS>(qs[8 * kH + g]), low2));
  }

  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedPairScales*>(packed);
    __m512i qs[16], sc[4];
    r.template dwords<8>(offsetof(BlockQ2_K, qs), qs);
    r.template dwords<8>(offsetof(BlockQ2_K, qs) + 32, qs + 8);
    pack_quarter<0, 0>(qs, out->codes);
    pack_quarter<0, 1>(qs, out->codes);
    pack_quarter<0, 2>(qs, out->codes);
    pack_quarter<0, 3>(qs, out->codes);
    pack_quarter<1, 0>(qs, out->codes);
    pack_quarter<1, 1>(qs, out->codes);
    pack_quarter<1, 2>(qs, out->codes);
    pack_quarter<1, 3>(qs, out->codes);
    r.template dwords<4>(offsetof(BlockQ2_K, scales), sc);
    for (int q = 0; q < 4; ++q) {  // pairs 2q and 2q + 1 from scale bytes 4q .. 4q + 3
      const __m512i even = byte_pair_words<0>(sc[q]), odd = byte_pair_words<2>(sc[q]);
      _mm512_store_si512(out->scale_pairs[2 * q], scale_pair_of(even));
      _mm512_store_si512(out->min_pairs[2 * q], min_pair_of(even));
      _mm512_store_si512(out->scale_pairs[2 * q + 1], scale_pair_of(odd));
      _mm512_store_si512(out->min_pairs[2 * q + 1], min_pair_of(odd));
    }
    _mm512_store_ps(out->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(r.half(offsetof(BlockQ2_K, d)))));
    _mm512_store_ps(out->dmin, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(r.half(offsetof(BlockQ2_K, dmin)))));
  }

  // Decode straight from the image, unpacked in registers: the codes masked in place (code · 4^s,
  // at most 192, still u8), the scale pairs shuffled out of the scale bytes.
  struct ImageSource {
    GroupImage<kLayout> image;
    static constexpr bool kScaledCodes = true;
    static constexpr int code_shift(int p) { return 2 * (p % 4); }
    __m512i codes(int b, int k) const {
      const __m512i q = image.block(b).dword(offsetof(BlockQ2_K, qs) + 32 * (k / 32) + 4 * (k % 8));
      return _mm512_and_si512(q, _mm512_set1_epi8(static_cast<char>(3 << (2 * (k / 8 % 4)))));
    }
    __m512i pair_words(int b, int p) const {
      const __m512i x = image.block(b).dword(offsetof(BlockQ2_K, scales) + 4 * (p / 2));
      return p % 2 == 0 ? byte_pair_words<0>(x) : byte_pair_words<2>(x);
    }
    __m512i scale_pair(int b, int p) const { return scale_pair_of(pair_words(b, p)); }
    __m512i min_pair(int b, int p) const { return min_pair_of(pair_words(b, p)); }
    __m512 d(int b) const {
      return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(image.block(b).half(offsetof(BlockQ2_K, d))));
    }
    __m512 dmin(int b) const {
      return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(image.block(b).half(offsetof(BlockQ2_K, dmin))));
    }
    void prefetch(int b) const { image.prefetch(b); }
  };
  static constexpr bool kFusedImage = true;
  static constexpr int image_groups(int) { return 1; }  // two groups at once measured slower
  template <int C, int G>
  static void compute_image(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G],
                            const uint8_t* const (&groups)[G], int64_t n_blocks) {
    ImageSource src[G];
    for (int r = 0; r < G; ++r) src[r].image = GroupImage<kLayout>(groups[r], n_blocks, 0);
    compute_pair_scales<FormatQ2_K, C, G>(tile, lane_masks, src, static_cast<int>(n_blocks));
  }
};

// q3_K element 128h + 32s + l: low 2 bits = bits 2s, 2s+1 of qs[32h + l], high bit = bit 4h + s
// of hmask[l] (set: value = low bits, clear: value = low bits − 4). Stored as the code value + 4.
struct FormatQ3_K : PairScalesFormat<FormatQ3_K> {
  static constexpr bool kHasMin = false, kHasStart = true;
  static constexpr int kWeightBlockBytes = sizeof(BlockQ3_K);
  static constexpr ImageLayout kLayout = image_layout(TensorType::kQ3_K, 16);
  static_assert(kLayout.block_bytes == sizeof(BlockQ3_K) && kLayout.tail_bytes == 2);  // d last

  static void prep(const uint8_t* a, int64_t n, uint8_t* rec, size_t stride) {
    prep_q8_k<Side::kStart16, 4>(a, n, rec, stride);
  }

  template <int kH, int kS, typename R>
  [[gnu::always_inline]] static void pack_quarter(const __m512i qs[16], const __m512i hm[8], uint8_t (*codes)[64]) {
    const __m512i low2 = _mm512_set1_epi8(0x03), bit2 = _mm512_set1_epi8(0x04);
    for (int g = 0; g < 8; ++g) {
      const __m512i lo = _mm512_and_si512(shift_bits<-2 * kS>(qs[8 * kH + g]), low2);
      _mm512_store_si512(codes[32 * kH + 8 * kS + g], or_masked(lo, shift_bits<2 - 4 * kH - kS>(hm[g]), bit2));
    }
  }

  // Scale pair p (sub-blocks 2p, 2p + 1) as two signed int16: the 6-bit scales unpacked as
  // ggml's dequantize_row_q3_K does (dword q of sc holds scales 4q .. 4q + 3, stored + 32).
  template <typename R>
  static __m512i scale_pair_of(const R& r, int p) {
    const __m512i m4 = _mm512_set1_epi32(0x0f0f0f0f), m2 = _mm512_set1_epi32(0x03030303);
    const int q = p / 2;
    const __m512i aux = r.dword(offsetof(BlockQ3_K, scales) + 4 * (q % 2));
    const __m512i tmp = r.dword(offsetof(BlockQ3_K, scales) + 8);
    const __m512i low = _mm512_and_si512(q < 2 ? aux : _mm512_srli_epi32(aux, 4), m4);
    const __m512i high = _mm512_slli_epi32(_mm512_and_si512(_mm512_srl_epi32(tmp, _mm_cvtsi32_si128(2 * q)), m2), 4);
    const __m512i sc = _mm512_or_si512(low, high);
    const __m512i words = p % 2 == 0 ? byte_pair_words<0>(sc) : byte_pair_words<2>(sc);
    return _mm512_sub_epi16(words, _mm512_set1_epi16(32));
  }

  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedPairScales*>(packed);
    __m512i hm[8], qs[16];
    r.template dwords<8>(offsetof(BlockQ3_K, hmask), hm);
    r.template dwords<8>(offsetof(BlockQ3_K, qs), qs);
    r.template dwords<8>(offsetof(BlockQ3_K, qs) + 32, qs + 8);
    pack_quarter<0, 0, R>(qs, hm, out->codes);
    pack_quarter<0, 1, R>(qs, hm, out->codes);
    pack_quarter<0, 2, R>(qs, hm, out->codes);
    pack_quarter<0, 3, R>(qs, hm, out->codes);
    pack_quarter<1, 0, R>(qs, hm, out->codes);
    pack_quarter<1, 1, R>(qs, hm, out->codes);
    pack_quarter<1, 2, R>(qs, hm, out->codes);
    pack_quarter<1, 3, R>(qs, hm, out->codes);
    for (int p = 0; p < 8; ++p) _mm512_store_si512(out->scale_pairs[p], scale_pair_of(r, p));
    _mm512_store_ps(out->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(r.half(offsetof(BlockQ3_K, d)))));
  }

  // Decode straight from the image, unpacked in registers. Quarter s of the codes is masked in
  // place, the low bits at bits t, t + 1 and the high bit moved to bit t + 2 (t = 2s, and t = 4 for
  // s = 3 so that code · 2^t stays a u8): code · 2^t.
  struct ImageSource {
    GroupImage<kLayout> image;
    static constexpr bool kScaledCodes = true;
    static constexpr int code_shift(int p) { return p % 4 == 3 ? 4 : 2 * (p % 4); }
    __m512i codes(int b, int k) const {
      const int h = k / 32, qs = k / 8 % 4, t = code_shift(qs);
      const BlockImage<kLayout> r = image.block(b);
      __m512i q = r.dword(offsetof(BlockQ3_K, qs) + 32 * h + 4 * (k % 8));
      if (qs == 3) q = _mm512_srli_epi32(q, 2);
      const __m512i hm = r.dword(offsetof(BlockQ3_K, hmask) + 4 * (k % 8));
      const int up = t + 2 - (4 * h + qs);  // where the high bit goes, from bit 4h + s
      const __m512i high = shift_left(hm, up);
      const __m512i low = _mm512_and_si512(q, _mm512_set1_epi8(static_cast<char>(3 << t)));
      return or_masked(low, high, _mm512_set1_epi8(static_cast<char>(4 << t)));
    }
    __m512i scale_pair(int b, int p) const { return scale_pair_of(image.block(b), p); }
    __m512 d(int b) const {
      return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(image.block(b).half(offsetof(BlockQ3_K, d))));
    }
    __m512 dmin(int) const { return _mm512_setzero_ps(); }
    __m512i min_pair(int, int) const { return _mm512_setzero_si512(); }
    void prefetch(int b) const { image.prefetch(b); }
  };
  static constexpr bool kFusedImage = true;
  static constexpr int image_groups(int) { return 1; }
  template <int C, int G>
  static void compute_image(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G],
                            const uint8_t* const (&groups)[G], int64_t n_blocks) {
    ImageSource src[G];
    for (int r = 0; r < G; ++r) src[r].image = GroupImage<kLayout>(groups[r], n_blocks, 0);
    compute_pair_scales<FormatQ3_K, C, G>(tile, lane_masks, src, static_cast<int>(n_blocks));
  }
};

}  // namespace

void avx512_gemm_q2_k(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                      int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ2_K>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_q2_k(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                            int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ2_K>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_q2_k = row_lane_records_kernel<FormatQ2_K>();

void avx512_gemm_q3_k(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                      int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ3_K>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_q3_k(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                            int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ3_K>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_q3_k = row_lane_records_kernel<FormatQ3_K>();

}  // namespace hylo::kernels
