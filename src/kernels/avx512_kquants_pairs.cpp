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
//
// Decode computes A from the image in registers, sub-block pairs through vpdpwssd
// (compute_pair_scales). Prefill packs every code already multiplied by its sub-block's scale
// (PackedScaledCodes: the multiplies once per row group and chunk, not once per column), so A is
// one run of vpdpbusd per column: the same exact integer, so the same bits.

// Prefill's packed block: codes[k] lane l = elements 4k .. 4k+3 of row l, each times its
// sub-block's scale, as u8: q3_K value · sc + 124 (value -4..3 and sc -32..31 make -124..128;
// the kernel starts A at -124 · Σ q_a), q2_K code · sc (0..45).
struct alignas(64) PackedScaledCodes {
  uint8_t codes[64][64];
  int32_t min_pairs[8][16];  // q2_K: (m_2p, m_2p+1) as two int16
  float d[16], dmin[16];
};

// The (v)pshufb control of a 128-bit lane whose dword i takes, in byte t, byte kT of the same
// dword (kT < 0: zero).
template <int k0, int k1, int k2, int k3>
inline __m512i shuffle_dword_bytes(__m512i v) {
  constexpr auto control = [](int i) {
    uint32_t c = 0;
    const int src[4] = {k0, k1, k2, k3};
    for (int t = 0; t < 4; ++t) c |= static_cast<uint32_t>(src[t] < 0 ? 0x80 : 4 * i + src[t]) << (8 * t);
    return static_cast<int32_t>(c);
  };
  return _mm512_shuffle_epi8(v, _mm512_set4_epi32(control(3), control(2), control(1), control(0)));
}

// Sub-block kI of the four whose scales are the bytes of each row's dword of `scales` (signed),
// with `bias` (per byte, mod 256): the vectors that scale_codes multiplies and adds with.
struct SubBlockScale {
  __m512i even, odd;  // the scale in bytes 0 and 2 / 1 and 3 of every dword, zero in the others
  __m512i bias;       // the bias in every byte
};
template <int kI, bool kBias>
inline SubBlockScale sub_block_scale(__m512i scales, const __m512i& bias) {
  return {shuffle_dword_bytes<kI, -1, kI, -1>(scales), shuffle_dword_bytes<-1, kI, -1, kI>(scales),
          kBias ? shuffle_dword_bytes<kI, kI, kI, kI>(bias) : _mm512_setzero_si512()};
}

// Codes (u8, small enough that code · scale fits int16) times the scale, plus the bias, as bytes
// mod 256: the even and odd bytes through vpmaddubsw (their partner byte multiplied by 0).
template <bool kBias>
inline __m512i scale_codes(__m512i codes, const SubBlockScale& s) {
  const __m512i even = _mm512_maddubs_epi16(codes, s.even), odd = _mm512_maddubs_epi16(codes, s.odd);
  const __m512i bytes = or_masked(_mm512_slli_epi16(odd, 8), even, _mm512_set1_epi16(0xFF));
  return kBias ? _mm512_add_epi8(bytes, s.bias) : bytes;
}

// Bytes k and k + 1 of every dword of v as the two 16-bit words of the dword (zero-extended).
template <int kByte>
inline __m512i byte_pair_words(__m512i v) {
  return _mm512_shuffle_epi8(v, _mm512_set4_epi32(byte_pair_control(3, kByte), byte_pair_control(2, kByte),
                                                  byte_pair_control(1, kByte), byte_pair_control(0, kByte)));
}

// Decode: G row groups at once from their images (compute_image); per lane the same operations
// whatever G and C, so the same bits. The Source hands the codes of pair p (sub-blocks 2p, 2p + 1)
// as code · 2^code_shift(p), masked in place: their S_j (and starts) come out that many times
// larger, still exact, and are shifted back before the pairs are formed.
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
          lo = _mm512_sra_epi32(lo, _mm_cvtsi32_si128(shift));
          hi = _mm512_sll_epi32(hi, _mm_cvtsi32_si128(16 - shift));
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

// Prefill (and any call that packs): G row groups against C columns from scaled codes. Per
// super-block A = Σ_k vpdpbusd(codes[k], q_a) (+ q3_K's start), in kSplit chains (exact integers:
// their order changes no bits), then the float steps of compute_pair_scales.
template <typename P, int C, int G>
void compute_scaled_codes(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G],
                          const PackedScaledCodes* const (&pb)[G], int n_blocks) {
  // vpdpbusd: 5-cycle latency, two per cycle: about ten chains in flight.
  constexpr int kSplit = C * G >= 8 ? 1 : (C * G >= 4 ? 2 : 4);
  __mmask16 mask[G];
  __m512 y[G][C];
  for (int r = 0; r < G; ++r) {
    mask[r] = static_cast<__mmask16>(lane_masks[r]);
    for (int c = 0; c < C; ++c) y[r][c] = load_or_zero(tile.y[c] + 16 * r, mask[r], tile.first_chunk);
  }
  for (int b = 0; b < n_blocks; ++b) {
    const auto* rec = reinterpret_cast<const ActRecordK*>(tile.act + static_cast<size_t>(b) * tile.act_block_stride);
    __m512i s[kSplit][G][C];
    for (int k = 0; k < kSplit; ++k)
      for (int r = 0; r < G; ++r)
        for (int c = 0; c < C; ++c) s[k][r][c] = _mm512_setzero_si512();
#pragma GCC unroll 64
    for (int k = 0; k < 64; ++k) {  // columns innermost: C · G · kSplit independent chains
      __m512i w[G];
      for (int r = 0; r < G; ++r) w[r] = _mm512_load_si512(pb[r][b].codes[k]);
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        const __m512i x = bcast_i32(rec[c].qs + 4 * k);
        for (int r = 0; r < G; ++r) s[k % kSplit][r][c] = _mm512_dpbusd_epi32(s[k % kSplit][r][c], w[r], x);
      }
    }
    for (int r = 0; r < G; ++r) {
      const __m512 d = _mm512_load_ps(pb[r][b].d);
      for (int c = 0; c < C; ++c) {
        __m512i a = s[0][r][c];
        for (int k = 1; k < kSplit; ++k) a = _mm512_add_epi32(a, s[k][r][c]);
        if constexpr (P::kHasStart) a = _mm512_add_epi32(a, _mm512_set1_epi32(rec[c].scaled_start));
        __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(a), d);
        if constexpr (P::kHasMin) {
          __m512i m = _mm512_setzero_si512();
          for (int p = 0; p < 8; ++p)
            m = _mm512_dpwssd_epi32(m, _mm512_load_si512(pb[r][b].min_pairs[p]), _mm512_set1_epi32(rec[c].side[p]));
          t = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), _mm512_load_ps(pb[r][b].dmin), t);
        }
        y[r][c] = _mm512_fmadd_ps(t, _mm512_set1_ps(rec[c].d), y[r][c]);
      }
    }
  }
  for (int r = 0; r < G; ++r)
    for (int c = 0; c < C; ++c) _mm512_mask_storeu_ps(tile.y[c] + 16 * r, mask[r], y[r][c]);
}

// What q2_K and q3_K share. Derived provides kHasMin, kHasStart, kWeightBlockBytes, kLayout, prep
// and pack_block(reader, packed block) filling a PackedScaledCodes.
template <typename Derived>
struct PairScalesFormat : BlockPacker<Derived> {
  static constexpr int kLanes = 16;
  static constexpr int kBlockElems = kQKK;
  static constexpr int kActRecordBytes = sizeof(ActRecordK);
  static constexpr int kChunkBlocks = 4;
  static constexpr int kMaxCols = 8;
  static constexpr int kPackedBlockBytes = sizeof(PackedScaledCodes);

  template <int C>
  static void compute(const ColumnTile<C>& tile, const uint8_t* packed, int n_blocks) {
    compute_scaled_codes<Derived, C, 1>(tile, {tile.lane_mask}, {reinterpret_cast<const PackedScaledCodes*>(packed)},
                                        n_blocks);
  }
  // Prefill: two row groups per pass; 2 · C sums A and 2 · C outputs fit the 32 registers at C = 6.
  static constexpr int kPairCols = 6;
  template <int C>
  static void compute_pair(const ColumnTile<C>& tile, uint32_t lane_mask_b, const uint8_t* packed_a,
                           const uint8_t* packed_b, int n_blocks) {
    compute_scaled_codes<Derived, C, 2>(
        tile, {tile.lane_mask, lane_mask_b},
        {reinterpret_cast<const PackedScaledCodes*>(packed_a), reinterpret_cast<const PackedScaledCodes*>(packed_b)},
        n_blocks);
  }

  // The 8 code vectors of quarter (kH, kS), sub-blocks 8kH + 2kS and 8kH + 2kS + 1 (4 vectors each),
  // scaled into the packed codes. scales[q] holds the signed scales of sub-blocks 4q .. 4q + 3 in the
  // bytes of each row's dword, bias[q] their biases (with Derived::kHasStart).
  template <int kH, int kS>
  [[gnu::always_inline]] static void store_scaled_quarter(const __m512i (&codes)[8], const __m512i scales[4],
                                                          const __m512i bias[4], uint8_t (*out)[64]) {
    constexpr int j = 8 * kH + 2 * kS, q = j / 4, i = j % 4;
    __m512i b = _mm512_setzero_si512();
    if constexpr (Derived::kHasStart) b = bias[q];
    const SubBlockScale first = sub_block_scale<i, Derived::kHasStart>(scales[q], b);
    const SubBlockScale second = sub_block_scale<i + 1, Derived::kHasStart>(scales[q], b);
    for (int g = 0; g < 8; ++g)
      _mm512_store_si512(out[32 * kH + 8 * kS + g], scale_codes<Derived::kHasStart>(codes[g], g < 4 ? first : second));
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
  [[gnu::always_inline]] static void pack_quarter(const __m512i qs[16], const __m512i scales[4], uint8_t (*codes)[64]) {
    const __m512i low2 = _mm512_set1_epi8(0x03);
    __m512i q[8];
    for (int g = 0; g < 8; ++g) q[g] = _mm512_and_si512(shift_bits<-2 * kS>(qs[8 * kH + g]), low2);
    store_scaled_quarter<kH, kS>(q, scales, nullptr, codes);
  }

  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedScaledCodes*>(packed);
    __m512i qs[16], sc[4], scales[4];
    r.template dwords<8>(offsetof(BlockQ2_K, qs), qs);
    r.template dwords<8>(offsetof(BlockQ2_K, qs) + 32, qs + 8);
    r.template dwords<4>(offsetof(BlockQ2_K, scales), sc);
    for (int q = 0; q < 4; ++q) {  // scale bytes 4q .. 4q + 3: the scales, and the min pairs 2q, 2q + 1
      scales[q] = _mm512_and_si512(sc[q], _mm512_set1_epi8(0x0F));
      _mm512_store_si512(out->min_pairs[2 * q], min_pair_of(byte_pair_words<0>(sc[q])));
      _mm512_store_si512(out->min_pairs[2 * q + 1], min_pair_of(byte_pair_words<2>(sc[q])));
    }
    pack_quarter<0, 0>(qs, scales, out->codes);
    pack_quarter<0, 1>(qs, scales, out->codes);
    pack_quarter<0, 2>(qs, scales, out->codes);
    pack_quarter<0, 3>(qs, scales, out->codes);
    pack_quarter<1, 0>(qs, scales, out->codes);
    pack_quarter<1, 1>(qs, scales, out->codes);
    pack_quarter<1, 2>(qs, scales, out->codes);
    pack_quarter<1, 3>(qs, scales, out->codes);
    _mm512_store_ps(out->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(r.half(offsetof(BlockQ2_K, d)))));
    _mm512_store_ps(out->dmin, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(r.half(offsetof(BlockQ2_K, dmin)))));
  }

  // Decode straight from the image, unpacked in registers: the codes masked in place (code · 4^s,
  // at most 192, still u8), the scale pairs shuffled out of the scale bytes.
  struct ImageSource {
    GroupImage<kLayout> image;
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

  template <int kH, int kS>
  [[gnu::always_inline]] static void pack_quarter(const __m512i qs[16], const __m512i hm[8], const __m512i scales[4],
                                                  const __m512i bias[4], uint8_t (*codes)[64]) {
    const __m512i low2 = _mm512_set1_epi8(0x03), bit2 = _mm512_set1_epi8(0x04);
    __m512i q[8];
    for (int g = 0; g < 8; ++g) {
      const __m512i lo = _mm512_and_si512(shift_bits<-2 * kS>(qs[8 * kH + g]), low2);
      q[g] = or_masked(lo, shift_bits<2 - 4 * kH - kS>(hm[g]), bit2);
    }
    store_scaled_quarter<kH, kS>(q, scales, bias, codes);
  }

  // Scales 4q .. 4q + 3 of every row, as the bytes of its dword, stored + 32 (0..63): the 6-bit
  // scales unpacked as ggml's dequantize_row_q3_K does.
  template <typename R>
  static __m512i scale_bytes(const R& r, int q) {
    const __m512i m4 = _mm512_set1_epi32(0x0f0f0f0f), m2 = _mm512_set1_epi32(0x03030303);
    const __m512i aux = r.dword(offsetof(BlockQ3_K, scales) + 4 * (q % 2));
    const __m512i tmp = r.dword(offsetof(BlockQ3_K, scales) + 8);
    const __m512i low = _mm512_and_si512(q < 2 ? aux : _mm512_srli_epi32(aux, 4), m4);
    const __m512i high = _mm512_slli_epi32(_mm512_and_si512(_mm512_srl_epi32(tmp, _mm_cvtsi32_si128(2 * q)), m2), 4);
    return _mm512_or_si512(low, high);
  }
  // Scale pair p (sub-blocks 2p, 2p + 1) as two signed int16.
  template <typename R>
  static __m512i scale_pair_of(const R& r, int p) {
    const __m512i sc = scale_bytes(r, p / 2);
    const __m512i words = p % 2 == 0 ? byte_pair_words<0>(sc) : byte_pair_words<2>(sc);
    return _mm512_sub_epi16(words, _mm512_set1_epi16(32));
  }

  // Scaled codes: code · s + bias with code = value + 4 and s = stored - 32, so
  // value · s + 124 = code · s - 4 · stored + 252: the bias is -4 - 4 · stored mod 256 (stored <= 63,
  // so the word shift moves no bit across bytes).
  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedScaledCodes*>(packed);
    __m512i hm[8], qs[16], scales[4], bias[4];
    r.template dwords<8>(offsetof(BlockQ3_K, hmask), hm);
    r.template dwords<8>(offsetof(BlockQ3_K, qs), qs);
    r.template dwords<8>(offsetof(BlockQ3_K, qs) + 32, qs + 8);
    for (int q = 0; q < 4; ++q) {
      const __m512i stored = scale_bytes(r, q);
      scales[q] = _mm512_sub_epi8(stored, _mm512_set1_epi8(32));
      bias[q] = _mm512_sub_epi8(_mm512_set1_epi8(-4), _mm512_slli_epi16(stored, 2));
    }
    pack_quarter<0, 0>(qs, hm, scales, bias, out->codes);
    pack_quarter<0, 1>(qs, hm, scales, bias, out->codes);
    pack_quarter<0, 2>(qs, hm, scales, bias, out->codes);
    pack_quarter<0, 3>(qs, hm, scales, bias, out->codes);
    pack_quarter<1, 0>(qs, hm, scales, bias, out->codes);
    pack_quarter<1, 1>(qs, hm, scales, bias, out->codes);
    pack_quarter<1, 2>(qs, hm, scales, bias, out->codes);
    pack_quarter<1, 3>(qs, hm, scales, bias, out->codes);
    _mm512_store_ps(out->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(r.half(offsetof(BlockQ3_K, d)))));
  }

  // Decode straight from the image, unpacked in registers. Quarter s of the codes is masked in
  // place, the low bits at bits t, t + 1 and the high bit moved to bit t + 2 (t = 2s, and t = 4 for
  // s = 3 so that code · 2^t stays a u8): code · 2^t.
  struct ImageSource {
    GroupImage<kLayout> image;
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
