// AVX2 matmul for the 256-element super-block formats with sub-block scales against q8_K
// activations: q4_K, q5_K, q6_K, iq4_xs (q2_K and q3_K: avx2_kquants_pairs.cpp). Row-lane kernels
// with 8 weight rows per ymm; the 4-element dots are vpmaddubsw pairs summed in s16 as far as the
// code range allows, then widened to s32 with vpmaddwd.
//
// Per output the arithmetic is exactly the AVX-512 family's (see avx512_kquants.cpp): exact integer
// sub-block sums S_j, then t = fma(float(S_j), dsc_j, t) over the sub-blocks, the q4_K/q5_K min
// term t = fnmadd(float(M), dmin, t), and y = fma(t, d_a, y). Both families return the same bits.
//
// How far s16 sums reach (vpmaddubsw pairs are 2 u8·s8 products, |q_a| <= 127):
//   q4_K codes <= 15: 8 groups (32 products, <= 30480); q5_K <= 31: 4 groups (<= 31496);
//   q6_K stored codes <= 63 (q + 32, bias removed by the start value): 2 groups (<= 32004);
//   iq4_xs: signed grid values, |w| x (q_a · sign w), one group (<= 32258).
#include "kernels/avx2_kquants.h"

#include <cstddef>

#include "kernels/avx2_gemm.h"

namespace hylo::kernels {
namespace {

template <int kSubBlocks>
struct alignas(32) PackedSuperBlock {
  uint8_t codes[64][32];  // codes[k] lane l = elements 4k .. 4k+3 of row l
  float dsc[kSubBlocks][8];
  int32_t min_pairs[4][8];
  float dmin[8];
};

inline void split_nibbles(const __m256i t[8], __m256i lo[8], __m256i hi[8]) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int g = 0; g < 8; ++g) {
    lo[g] = _mm256_and_si256(t[g], low4);
    hi[g] = _mm256_and_si256(_mm256_srli_epi16(t[g], 4), low4);
  }
}

// q4_K / q5_K header of 8 rows (see avx512_kquants.cpp pack_k4_header), one value at a time so
// that the packer and the image sources compute them alike. h0: d | dmin << 16; h1..h3: the 12
// bytes of 6-bit scales and mins.
inline __m256 k4_d(__m256i h0) { return widen_fp16(h0); }
inline __m256 k4_dmin(__m256i h0) { return widen_fp16(_mm256_srli_epi32(h0, 16)); }
// Bytes j of: scales 0..3 (j < 4) or 4..7 (mins: the mins instead).
inline __m256i k4_scale_bytes(__m256i h1, __m256i h2, __m256i h3, bool high, bool mins) {
  const __m256i m6 = _mm256_set1_epi8(0x3F), m4 = _mm256_set1_epi8(0x0F), hi2 = _mm256_set1_epi8(0x30);
  if (!high) return _mm256_and_si256(mins ? h2 : h1, m6);
  return mins ? or_masked(_mm256_and_si256(_mm256_srli_epi32(h3, 4), m4), _mm256_srli_epi32(h2, 2), hi2)
              : or_masked(_mm256_and_si256(h3, m4), _mm256_srli_epi32(h1, 2), hi2);
}
inline __m256 k4_dsc(__m256 d, __m256i scale_bytes, int j) {
  return _mm256_mul_ps(d, _mm256_cvtepi32_ps(byte_of(scale_bytes, j % 4)));
}
// Min pair p (m_2p', m_2p'+1 of the four mins in min_bytes, p' = p % 2) as two int16.
inline __m256i k4_min_pair(__m256i min_bytes, int p) {
  const int k = 2 * (p % 2);
  return _mm256_or_si256(byte_of(min_bytes, k), _mm256_slli_epi32(byte_of(min_bytes, k + 1), 16));
}

template <typename R>
void pack_k4_header(const R& r, PackedSuperBlock<8>* out) {
  __m256i h[4];
  r.template dwords<4>(0, h);
  const __m256 d = k4_d(h[0]);
  _mm256_store_ps(out->dmin, k4_dmin(h[0]));
  for (int j = 0; j < 8; ++j)
    _mm256_store_ps(out->dsc[j], k4_dsc(d, k4_scale_bytes(h[1], h[2], h[3], j >= 4, false), j));
  for (int p = 0; p < 4; ++p) store(out->min_pairs[p], k4_min_pair(k4_scale_bytes(h[1], h[2], h[3], p >= 2, true), p));
}

// compute_k's reads of packed super-blocks.
template <int kSub>
struct PackedK {
  using Block = PackedSuperBlock<kSub>;
  static constexpr bool kUnrollSubBlocks = false;
  const Block* pb;
  __m256i codes(int b, int k) const { return _mm256_load_si256(reinterpret_cast<const __m256i*>(pb[b].codes[k])); }
  __m256 dsc(int b, int j) const { return _mm256_load_ps(pb[b].dsc[j]); }
  __m256i min_pair(int b, int p) const {
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(pb[b].min_pairs[p]));
  }
  __m256 dmin(int b) const { return _mm256_load_ps(pb[b].dmin); }
  void prefetch(int) const {}
};

// P: kSubBlocks, kHasMin, kHasStart, kSigned, kS16Groups (groups summed in s16 before widening).
template <typename P, int C, typename Source>
void compute_k_from(const ColumnTile<C>& tile, const Source& src, int n_blocks) {
  constexpr int kSub = P::kSubBlocks;
  constexpr int kGroups = kQKK / kSub / 4;
  constexpr int kRun = P::kS16Groups < kGroups ? P::kS16Groups : kGroups;
  const __m256i mask = lane_mask_vector(tile.lane_mask);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 y[C];
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) y[c] = load_or_zero(tile.y[c], mask, tile.first_chunk);
  for (int b = 0; b < n_blocks; ++b) {
    src.prefetch(b);
    const auto* rec = reinterpret_cast<const ActRecordK*>(tile.act + static_cast<size_t>(b) * tile.act_block_stride);
    __m256 t[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) t[c] = _mm256_setzero_ps();
    for_sub_blocks<Source::kUnrollSubBlocks, kSub>([&](auto j) __attribute__((always_inline)) {
      __m256i s[C];
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) s[c] = P::kHasStart ? _mm256_set1_epi32(rec[c].side[j]) : _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int g0 = 0; g0 < kGroups; g0 += kRun) {
        __m256i s16[C];
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) s16[c] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int g = g0; g < g0 + kRun; ++g) {
          const __m256i w = src.codes(b, kGroups * j + g);
          const __m256i wu = P::kSigned ? _mm256_abs_epi8(w) : w;
#pragma GCC unroll 8
          for (int c = 0; c < C; ++c) {
            __m256i a = bcast_i32(rec[c].qs + kGroups * 4 * j + 4 * g);
            if constexpr (P::kSigned) a = _mm256_sign_epi8(a, w);
            s16[c] = _mm256_add_epi16(s16[c], _mm256_maddubs_epi16(wu, a));
          }
        }
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) s[c] = _mm256_add_epi32(s[c], _mm256_madd_epi16(s16[c], ones));
      }
      const __m256 dsc = src.dsc(b, j);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) t[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[c]), dsc, t[c]);
    });
    if constexpr (P::kHasMin) {
      const __m256 dmin = src.dmin(b);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        __m256i m = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int p = 0; p < 4; ++p)
          m = _mm256_add_epi32(m, _mm256_madd_epi16(src.min_pair(b, p), _mm256_set1_epi32(rec[c].side[p])));
        t[c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(m), dmin, t[c]);
      }
    }
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) y[c] = _mm256_fmadd_ps(t[c], _mm256_set1_ps(rec[c].d), y[c]);
  }
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) store_masked(tile.y[c], mask, y[c]);
}

// The formats computed by compute_k.
template <typename Derived, int kSub>
struct SubBlockFormat : KFormatBase<Derived> {
  using PackedSource = PackedK<kSub>;
  // From the image up to 2 columns: at 3 and 4 the unrolled body spills (16 ymm registers), and
  // packing costs these formats little.
  static constexpr int kFusedImageMaxCols = 2;
  template <int C, typename Source>
  static void compute_from(const ColumnTile<C>& tile, const Source& src, int n_blocks) {
    compute_k_from<Derived, C>(tile, src, n_blocks);
  }
};

// q4_K / q5_K decode from the image: pack_block's vectors computed in registers (the same
// integers and f32 scales, so the same bits). kQh < 0: no fifth bit (q4_K).
template <ImageLayout L, int kQs, int kQh>
struct K4ImageSource {
  static constexpr bool kUnrollSubBlocks = true;
  GroupImage<L> image;
  // Vector k = 8j + g of sub-block j: nibble (j odd: high) of qs chunk j / 2; q5_K's bit 4 = bit j
  // of qh.
  __m256i codes(int b, int k) const {
    const BlockImage<L> r = image.block(b);
    const int j = k / 8, g = k % 8;
    __m256i q = r.dword(kQs + 32 * (j / 2) + 4 * g);
    if (j % 2 == 1) q = _mm256_srli_epi16(q, 4);
    q = _mm256_and_si256(q, _mm256_set1_epi8(0x0F));
    if constexpr (kQh >= 0) q = or_masked(q, shift_left(r.dword(kQh + 4 * g), 4 - j), _mm256_set1_epi8(0x10));
    return q;
  }
  __m256 dsc(int b, int j) const {
    const BlockImage<L> r = image.block(b);
    return k4_dsc(k4_d(r.dword(0)), k4_scale_bytes(r.dword(4), r.dword(8), r.dword(12), j >= 4, false), j);
  }
  __m256i min_pair(int b, int p) const {
    const BlockImage<L> r = image.block(b);
    return k4_min_pair(k4_scale_bytes(r.dword(4), r.dword(8), r.dword(12), p >= 2, true), p);
  }
  __m256 dmin(int b) const { return k4_dmin(image.block(b).dword(0)); }
  void prefetch(int b) const { image.prefetch(b); }
};

struct FormatQ4_K : SubBlockFormat<FormatQ4_K, 8> {
  static constexpr int kSubBlocks = 8, kS16Groups = 8;
  static constexpr bool kHasMin = true, kHasStart = false, kSigned = false;
  static constexpr int kWeightBlockBytes = sizeof(BlockQ4_K);
  static constexpr int kPackedBlockBytes = sizeof(PackedSuperBlock<8>);
  static constexpr ImageLayout kLayout = image_layout(TensorType::kQ4_K, 8);
  static_assert(kLayout.block_bytes == kWeightBlockBytes);

  static void prep(const uint8_t* a, int64_t n, uint8_t* rec, size_t stride) {
    prep_q8_k<Side::kMinPairs>(a, n, rec, stride);
  }

  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedSuperBlock<8>*>(packed);
    pack_k4_header(r, out);
    for (int c = 0; c < 4; ++c) {
      __m256i t[8], lo[8], hi[8];
      r.template dwords<8>(offsetof(BlockQ4_K, qs) + 32 * c, t);
      split_nibbles(t, lo, hi);
      for (int g = 0; g < 8; ++g) {
        store(out->codes[8 * (2 * c) + g], lo[g]);
        store(out->codes[8 * (2 * c + 1) + g], hi[g]);
      }
    }
  }

  using ImageSource = K4ImageSource<kLayout, offsetof(BlockQ4_K, qs), -1>;
};

template <int kChunk, typename R>
[[gnu::always_inline]] inline void pack_q5_chunk(const R& r, const __m256i qh[8], __m256i bit4, uint8_t (*codes)[32]) {
  __m256i t[8], lo[8], hi[8];
  r.template dwords<8>(offsetof(BlockQ5_K, qs) + 32 * kChunk, t);
  split_nibbles(t, lo, hi);
  for (int g = 0; g < 8; ++g) {
    store(codes[8 * (2 * kChunk) + g], or_masked(lo[g], shift_bits<4 - 2 * kChunk>(qh[g]), bit4));
    store(codes[8 * (2 * kChunk + 1) + g], or_masked(hi[g], shift_bits<3 - 2 * kChunk>(qh[g]), bit4));
  }
}

struct FormatQ5_K : SubBlockFormat<FormatQ5_K, 8> {
  static constexpr int kSubBlocks = 8, kS16Groups = 4;
  static constexpr bool kHasMin = true, kHasStart = false, kSigned = false;
  static constexpr int kWeightBlockBytes = sizeof(BlockQ5_K);
  static constexpr int kPackedBlockBytes = sizeof(PackedSuperBlock<8>);
  static constexpr ImageLayout kLayout = image_layout(TensorType::kQ5_K, 8);
  static_assert(kLayout.block_bytes == kWeightBlockBytes);

  static void prep(const uint8_t* a, int64_t n, uint8_t* rec, size_t stride) {
    prep_q8_k<Side::kMinPairs>(a, n, rec, stride);
  }

  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedSuperBlock<8>*>(packed);
    const __m256i bit4 = _mm256_set1_epi8(0x10);
    pack_k4_header(r, out);
    __m256i qh[8];
    r.template dwords<8>(offsetof(BlockQ5_K, qh), qh);
    pack_q5_chunk<0>(r, qh, bit4, out->codes);
    pack_q5_chunk<1>(r, qh, bit4, out->codes);
    pack_q5_chunk<2>(r, qh, bit4, out->codes);
    pack_q5_chunk<3>(r, qh, bit4, out->codes);
  }

  using ImageSource = K4ImageSource<kLayout, offsetof(BlockQ5_K, qs), offsetof(BlockQ5_K, qh)>;
};

template <int kHalf, typename R>
[[gnu::always_inline]] inline void pack_q6_quarters(const R& r, int ql, const __m256i qh[8], __m256i bits45,
                                                    uint8_t (*codes)[32]) {
  __m256i t8[8], lo[8], hi[8];
  r.template dwords<8>(ql, t8);
  split_nibbles(t8, lo, hi);
  constexpr int kLo = kHalf, kHi = kHalf + 2;
  for (int g = 0; g < 8; ++g) {
    store(codes[8 * kLo + g], or_masked(lo[g], shift_bits<4 - 2 * kLo>(qh[g]), bits45));
    store(codes[8 * kHi + g], or_masked(hi[g], shift_bits<4 - 2 * kHi>(qh[g]), bits45));
  }
}

struct FormatQ6_K : SubBlockFormat<FormatQ6_K, 16> {
  static constexpr int kSubBlocks = 16, kS16Groups = 2;
  static constexpr bool kHasMin = false, kHasStart = true, kSigned = false;
  static constexpr int kWeightBlockBytes = sizeof(BlockQ6_K);
  static constexpr int kPackedBlockBytes = sizeof(PackedSuperBlock<16>);
  static constexpr ImageLayout kLayout = image_layout(TensorType::kQ6_K, 8);
  static_assert(kLayout.block_bytes == kWeightBlockBytes && kLayout.tail_bytes == 2);

  static void prep(const uint8_t* a, int64_t n, uint8_t* rec, size_t stride) {
    prep_q8_k<Side::kStart16>(a, n, rec, stride);
  }

  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedSuperBlock<16>*>(packed);
    const __m256i bits45 = _mm256_set1_epi8(0x30);
    for (int h = 0; h < 2; ++h) {
      __m256i qh[8];
      r.template dwords<8>(offsetof(BlockQ6_K, qh) + 32 * h, qh);
      const int ql = offsetof(BlockQ6_K, ql) + 64 * h;
      pack_q6_quarters<0>(r, ql, qh, bits45, out->codes + 32 * h);
      pack_q6_quarters<1>(r, ql + 32, qh, bits45, out->codes + 32 * h);
    }
    __m256i sc[4];
    r.template dwords<4>(offsetof(BlockQ6_K, scales), sc);
    const __m256 d = widen_fp16(r.half(offsetof(BlockQ6_K, d)));
    for (int j = 0; j < 16; ++j) {
      const __m256i s = _mm256_srai_epi32(_mm256_slli_epi32(sc[j / 4], 24 - 8 * (j % 4)), 24);
      _mm256_store_ps(out->dsc[j], _mm256_mul_ps(d, _mm256_cvtepi32_ps(s)));
    }
  }

  // Decode from the image: pack_block's vectors in registers (the same bits).
  struct ImageSource {
    static constexpr bool kUnrollSubBlocks = true;
    GroupImage<kLayout> image;
    // Vector k = 32h + 8t + g: quarter t of half h (pack_block's order).
    __m256i codes(int b, int k) const {
      const BlockImage<kLayout> r = image.block(b);
      const int h = k / 32, t = (k / 8) % 4, g = k % 8;
      __m256i q = r.dword(offsetof(BlockQ6_K, ql) + 64 * h + 32 * (t % 2) + 4 * g);
      if (t >= 2) q = _mm256_srli_epi16(q, 4);
      q = _mm256_and_si256(q, _mm256_set1_epi8(0x0F));
      const __m256i qh = r.dword(offsetof(BlockQ6_K, qh) + 32 * h + 4 * g);
      return or_masked(q, shift_left(qh, 4 - 2 * t), _mm256_set1_epi8(0x30));
    }
    __m256 dsc(int b, int j) const {
      const BlockImage<kLayout> r = image.block(b);
      const __m256i sc = r.dword(offsetof(BlockQ6_K, scales) + 4 * (j / 4));
      const __m256i s = _mm256_srai_epi32(_mm256_slli_epi32(sc, 24 - 8 * (j % 4)), 24);
      return _mm256_mul_ps(widen_fp16(r.half(offsetof(BlockQ6_K, d))), _mm256_cvtepi32_ps(s));
    }
    void prefetch(int b) const { image.prefetch(b); }
  };
};

struct FormatIq4Xs : SubBlockFormat<FormatIq4Xs, 8> {
  static constexpr int kSubBlocks = 8, kS16Groups = 1;
  static constexpr bool kHasMin = false, kHasStart = false, kSigned = true;
  static constexpr int kWeightBlockBytes = sizeof(BlockIQ4_XS);
  static constexpr int kPackedBlockBytes = sizeof(PackedSuperBlock<8>);
  static constexpr ImageLayout kLayout = image_layout(TensorType::kIQ4_XS, 8);
  static_assert(kLayout.block_bytes == kWeightBlockBytes);

  static void prep(const uint8_t* a, int64_t n, uint8_t* rec, size_t stride) {
    prep_q8_k<Side::kNone>(a, n, rec, stride);
  }

  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedSuperBlock<8>*>(packed);
    const __m256i lut = grid_lut();
    for (int c = 0; c < 4; ++c) {  // 32 bytes of qs = sub-blocks 2c, 2c + 1
      __m256i t[8], lo[8], hi[8];
      r.template dwords<8>(offsetof(BlockIQ4_XS, qs) + 32 * c, t);
      split_nibbles(t, lo, hi);
      for (int i = 0; i < 8; ++i) {
        const int s = 2 * c + i / 4, q = i % 4;
        store(out->codes[8 * s + q], _mm256_shuffle_epi8(lut, lo[i]));
        store(out->codes[8 * s + q + 4], _mm256_shuffle_epi8(lut, hi[i]));
      }
    }
    const __m256i h0 = r.dword(0), h1 = r.dword(4);
    for (int s = 0; s < 8; ++s) _mm256_store_ps(out->dsc[s], dsc_of(h0, h1, s));
  }

  static __m256i grid_lut() {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  }
  // f32(d · (scale of sub-block s - 32)); h0: d | scales_h << 16, h1: scales_l[0..3].
  static __m256 dsc_of(__m256i h0, __m256i h1, int s) {
    const __m256i low = _mm256_and_si256(_mm256_srli_epi32(h1, 4 * s), _mm256_set1_epi32(0x0F));
    const __m256i high = _mm256_and_si256(_mm256_srli_epi32(h0, 16 + 2 * s), _mm256_set1_epi32(3));
    const __m256i ls = _mm256_sub_epi32(_mm256_or_si256(low, _mm256_slli_epi32(high, 4)), _mm256_set1_epi32(32));
    return _mm256_mul_ps(widen_fp16(h0), _mm256_cvtepi32_ps(ls));
  }

  // Decode from the image: pack_block's vectors in registers (the same bits). Vector k = 8s + g
  // of sub-block s: the low nibbles of qs dword 4s + g for g < 4, the high nibbles of dword
  // 4s + g - 4 otherwise, through the grid.
  struct ImageSource {
    static constexpr bool kUnrollSubBlocks = true;
    GroupImage<kLayout> image;
    __m256i codes(int b, int k) const {
      const int s = k / 8, g = k % 8;
      __m256i q = image.block(b).dword(offsetof(BlockIQ4_XS, qs) + 16 * s + 4 * (g % 4));
      if (g >= 4) q = _mm256_srli_epi16(q, 4);
      return _mm256_shuffle_epi8(grid_lut(), _mm256_and_si256(q, _mm256_set1_epi8(0x0F)));
    }
    __m256 dsc(int b, int s) const {
      const BlockImage<kLayout> r = image.block(b);
      return dsc_of(r.dword(0), r.dword(4), s);
    }
    void prefetch(int b) const { image.prefetch(b); }
  };
};

}  // namespace

void avx2_gemm_q4_k(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                    int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ4_K>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_q4_k(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                          float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ4_K>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_q4_k = row_lane_records_kernel<FormatQ4_K>();

void avx2_gemm_q5_k(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                    int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ5_K>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_q5_k(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                          float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ5_K>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_q5_k = row_lane_records_kernel<FormatQ5_K>();

void avx2_gemm_q6_k(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                    int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ6_K>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_q6_k(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                          float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ6_K>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_q6_k = row_lane_records_kernel<FormatQ6_K>();

void avx2_gemm_iq4_xs(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                      int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatIq4Xs>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_iq4_xs(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                            int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatIq4Xs>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_iq4_xs = row_lane_records_kernel<FormatIq4Xs>();

}  // namespace hylo::kernels
