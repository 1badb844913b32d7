// AVX2 matmul for the 256-element super-block formats against q8_K activations: q2_K, q3_K, q4_K,
// q5_K, q6_K, iq4_xs. Row-lane kernels with 8 weight rows per ymm; the 4-element dots are vpmaddubsw pairs
// summed in s16 as far as the code range allows, then widened to s32 with vpmaddwd.
//
// Per output the arithmetic is exactly the AVX-512 family's (see avx512_kquants.cpp): exact integer
// sub-block sums S_j, then t = fma(float(S_j), dsc_j, t) over the sub-blocks, the q4_K/q5_K min
// term t = fnmadd(float(M), dmin, t), and y = fma(t, d_a, y); q2_K and q3_K apply their scales in
// integers (FormatQ2_K there). Both families return the same bits.
//
// How far s16 sums reach (vpmaddubsw pairs are 2 u8·s8 products, |q_a| <= 127):
//   q4_K codes <= 15: 8 groups (32 products, <= 30480); q5_K <= 31: 4 groups (<= 31496);
//   q6_K stored codes <= 63 (q + 32, bias removed by the start value): 2 groups (<= 32004);
//   iq4_xs: signed grid values, |w| x (q_a · sign w), one group (<= 32258).
#include <cstddef>
#include <cstring>

#include "kernels/avx2_gemm.h"
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

template <int kSubBlocks>
struct alignas(32) PackedSuperBlock {
  uint8_t codes[64][32];  // codes[k] lane l = elements 4k .. 4k+3 of row l
  float dsc[kSubBlocks][8];
  int32_t min_pairs[4][8];
  float dmin[8];
};

inline __m256i byte_of(__m256i v, int k) {
  return _mm256_and_si256(_mm256_srli_epi32(v, 8 * k), _mm256_set1_epi32(0xFF));
}

inline void split_nibbles(const __m256i t[8], __m256i lo[8], __m256i hi[8]) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int g = 0; g < 8; ++g) {
    lo[g] = _mm256_and_si256(t[g], low4);
    hi[g] = _mm256_and_si256(_mm256_srli_epi16(t[g], 4), low4);
  }
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

// Derived provides kWeightBlockBytes, kPackedBlockBytes, kLayout, pack_block(reader, packed),
// PackedSource (reads packed blocks), ImageSource (computes the same vectors in registers from the
// image) and compute_from<C>(tile, source, n_blocks).
template <typename Derived>
struct KFormatBase : BlockPacker<Derived> {
  static constexpr int kLanes = 8;
  static constexpr int kBlockElems = kQKK;
  static constexpr int kActRecordBytes = sizeof(ActRecordK);
  static constexpr int kChunkBlocks = 4;
  static constexpr int kMaxCols = 4;

  template <int C>
  static void compute(const ColumnTile<C>& tile, const uint8_t* packed, int n_blocks) {
    using Source = typename Derived::PackedSource;
    Derived::template compute_from<C>(tile, Source{reinterpret_cast<const typename Source::Block*>(packed)}, n_blocks);
  }
  // Decode straight from the image: no unpacked super-block stored and read back per block.
  static constexpr bool kFusedImage = true;
  static constexpr int image_groups(int) { return 1; }
  template <int C, int G>
  static void compute_image(const ColumnTile<C>& tile, const uint32_t (&)[G], const uint8_t* const (&groups)[G],
                            int64_t n_blocks) {
    static_assert(G == 1);
    Derived::template compute_from<C>(
        tile, typename Derived::ImageSource{GroupImage<Derived::kLayout>(groups[0], n_blocks, 0)},
        static_cast<int>(n_blocks));
  }
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

// A shift of every dword by bits (left) or -bits (right); constant after unrolling.
inline __m256i shift_left(__m256i v, int bits) {
  return bits >= 0 ? _mm256_slli_epi32(v, bits) : _mm256_srli_epi32(v, -bits);
}

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

// q2_K and q3_K: the AVX-512 family's integer-scale arithmetic (avx512_kquants.cpp), A and M
// exact int32. Here each sub-block's dot is summed in s16 (codes <= 7, 16 products: <= 7168) and
// multiplied by its scale with vpmaddwd, the scale in both words of the row's dword; q3_K's codes
// are value + 4, so A = Σ_j sc_j · (S_j + 4 B_j) - 4 · Σ_j sc_j · B_j, the second sum from the
// scale pairs and the records' pairs of 16-code sums.
struct alignas(32) PackedPairScales {
  uint8_t codes[64][32];       // codes[k] lane l = elements 4k .. 4k+3 of row l
  int32_t scale_words[16][8];  // sc_j in both 16-bit words
  int32_t pairs[8][8];         // q2_K: mins (m_2p, m_2p+1); q3_K: scales (sc_2p, sc_2p+1); int16
  float d[8], dmin[8];
};

// Bytes k and k + 1 of every dword of v as the two 16-bit words of the dword (zero-extended).
template <int kByte>
inline __m256i byte_pair_words(__m256i v) {
  const __m128i lane = _mm_setr_epi32(byte_pair_control(0, kByte), byte_pair_control(1, kByte),
                                      byte_pair_control(2, kByte), byte_pair_control(3, kByte));
  return _mm256_shuffle_epi8(v, _mm256_broadcastsi128_si256(lane));
}

// An int32 per lane into both 16-bit words of the lane.
inline __m256i both_words(__m256i v) {
  return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(v, 16));
}

// The 2-bit codes of q2_K / q3_K: quarter (h, s) of 16 qs dword vectors into codes[32h + 8s + g].
template <int kH, int kS>
[[gnu::always_inline]] inline void pack_2bit_quarter(const __m256i qs[16], uint8_t (*codes)[32]) {
  for (int g = 0; g < 8; ++g)
    store(codes[32 * kH + 8 * kS + g], _mm256_and_si256(shift_bits<-2 * kS>(qs[8 * kH + g]), _mm256_set1_epi8(3)));
}

template <typename R>
void pack_2bit_codes(const R& r, int offset, uint8_t (*codes)[32]) {
  __m256i qs[16];
  r.template dwords<8>(offset, qs);
  r.template dwords<8>(offset + 32, qs + 8);
  pack_2bit_quarter<0, 0>(qs, codes);
  pack_2bit_quarter<0, 1>(qs, codes);
  pack_2bit_quarter<0, 2>(qs, codes);
  pack_2bit_quarter<0, 3>(qs, codes);
  pack_2bit_quarter<1, 0>(qs, codes);
  pack_2bit_quarter<1, 1>(qs, codes);
  pack_2bit_quarter<1, 2>(qs, codes);
  pack_2bit_quarter<1, 3>(qs, codes);
}

// compute_pair_scales's reads of packed super-blocks.
struct PackedPairSource {
  using Block = PackedPairScales;
  static constexpr bool kUnrollSubBlocks = false;
  const Block* pb;
  __m256i codes(int b, int k) const { return _mm256_load_si256(reinterpret_cast<const __m256i*>(pb[b].codes[k])); }
  __m256i scale_words(int b, int j) const {
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(pb[b].scale_words[j]));
  }
  __m256i pairs(int b, int p) const { return _mm256_load_si256(reinterpret_cast<const __m256i*>(pb[b].pairs[p])); }
  __m256 d(int b) const { return _mm256_load_ps(pb[b].d); }
  __m256 dmin(int b) const { return _mm256_load_ps(pb[b].dmin); }
  void prefetch(int) const {}
};

template <typename P, int C, typename Source>
void compute_pair_scales(const ColumnTile<C>& tile, const Source& src, int n_blocks) {
  const __m256i mask = lane_mask_vector(tile.lane_mask);
  __m256 y[C];
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) y[c] = load_or_zero(tile.y[c], mask, tile.first_chunk);
  for (int b = 0; b < n_blocks; ++b) {
    src.prefetch(b);
    const auto* rec = reinterpret_cast<const ActRecordK*>(tile.act + static_cast<size_t>(b) * tile.act_block_stride);
    __m256i acc[C], side[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[c] = side[c] = _mm256_setzero_si256();
    for_sub_blocks<Source::kUnrollSubBlocks, 16>([&](auto j) __attribute__((always_inline)) {
      __m256i s16[C];
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) s16[c] = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int g = 0; g < 4; ++g) {
        const __m256i w = src.codes(b, 4 * j + g);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c)
          s16[c] = _mm256_add_epi16(s16[c], _mm256_maddubs_epi16(w, bcast_i32(rec[c].qs + 16 * j + 4 * g)));
      }
      const __m256i sw = src.scale_words(b, j);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[c] = _mm256_add_epi32(acc[c], _mm256_madd_epi16(s16[c], sw));
    });
#pragma GCC unroll 8
    for (int p = 0; p < 8; ++p) {
      const __m256i pairs = src.pairs(b, p);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c)
        side[c] = _mm256_add_epi32(side[c], _mm256_madd_epi16(pairs, _mm256_set1_epi32(rec[c].side[p])));
    }
    const __m256 d = src.d(b);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      if constexpr (!P::kHasMin) acc[c] = _mm256_sub_epi32(acc[c], _mm256_slli_epi32(side[c], 2));  // q3_K bias
      __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[c]), d);
      if constexpr (P::kHasMin) t = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(side[c]), src.dmin(b), t);
      y[c] = _mm256_fmadd_ps(t, _mm256_set1_ps(rec[c].d), y[c]);
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) store_masked(tile.y[c], mask, y[c]);
}

// What q2_K and q3_K share: Derived provides kHasMin, kWeightBlockBytes, kLayout,
// pack_block(reader, packed block) filling a PackedPairScales, and an ImageSource with
// PackedPairSource's reads.
template <typename Derived>
struct PairScalesFormat : KFormatBase<Derived> {
  static constexpr int kPackedBlockBytes = sizeof(PackedPairScales);
  using PackedSource = PackedPairSource;
  static void prep(const uint8_t* a, int64_t n, uint8_t* rec, size_t stride) {
    prep_q8_k<Side::kMinPairs16>(a, n, rec, stride);
  }
  template <int C, typename Source>
  static void compute_from(const ColumnTile<C>& tile, const Source& src, int n_blocks) {
    compute_pair_scales<Derived, C>(tile, src, n_blocks);
  }
};

// Code vector k = 32h + 8s + g of pack_2bit_codes, from the qs dword vector of (h, g).
inline __m256i code_2bit(__m256i qs, int s) { return _mm256_and_si256(shift_left(qs, -2 * s), _mm256_set1_epi8(3)); }
// The int16 pair (p even: bytes 0, 1; odd: bytes 2, 3) of every dword.
inline __m256i byte_pair_words(__m256i v, int p) { return p % 2 ? byte_pair_words<2>(v) : byte_pair_words<0>(v); }

struct FormatQ2_K : PairScalesFormat<FormatQ2_K> {
  static constexpr bool kHasMin = true;
  static constexpr int kWeightBlockBytes = sizeof(BlockQ2_K);
  static constexpr ImageLayout kLayout = image_layout(TensorType::kQ2_K, 8);
  static_assert(kLayout.block_bytes == kWeightBlockBytes);

  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedPairScales*>(packed);
    pack_2bit_codes(r, offsetof(BlockQ2_K, qs), out->codes);
    __m256i sc[4];  // scale bytes 4q .. 4q + 3 (scale | min << 4)
    r.template dwords<4>(offsetof(BlockQ2_K, scales), sc);
    for (int j = 0; j < 16; ++j) store(out->scale_words[j], scale_words_of(sc[j / 4], j));
    for (int p = 0; p < 8; ++p) store(out->pairs[p], pairs_of(sc[p / 2], p));
    _mm256_store_ps(out->d, widen_fp16(r.half(offsetof(BlockQ2_K, d))));
    _mm256_store_ps(out->dmin, widen_fp16(r.half(offsetof(BlockQ2_K, dmin))));
  }
  // From the scale dword holding sub-blocks j (4 per dword): the scale in both words, the mins
  // of pair p.
  static __m256i scale_words_of(__m256i sc, int j) {
    return both_words(_mm256_and_si256(byte_of(sc, j % 4), _mm256_set1_epi32(0x0F)));
  }
  static __m256i pairs_of(__m256i sc, int p) { return _mm256_srli_epi16(byte_pair_words(sc, p), 4); }

  struct ImageSource {
    static constexpr bool kUnrollSubBlocks = true;
    GroupImage<kLayout> image;
    __m256i codes(int b, int k) const {
      const int h = k / 32, s = (k / 8) % 4, g = k % 8;
      return code_2bit(image.block(b).dword(offsetof(BlockQ2_K, qs) + 32 * h + 4 * g), s);
    }
    __m256i scale_words(int b, int j) const {
      return scale_words_of(image.block(b).dword(offsetof(BlockQ2_K, scales) + 4 * (j / 4)), j);
    }
    __m256i pairs(int b, int p) const {
      return pairs_of(image.block(b).dword(offsetof(BlockQ2_K, scales) + 4 * (p / 2)), p);
    }
    __m256 d(int b) const { return widen_fp16(image.block(b).half(offsetof(BlockQ2_K, d))); }
    __m256 dmin(int b) const { return widen_fp16(image.block(b).half(offsetof(BlockQ2_K, dmin))); }
    void prefetch(int b) const { image.prefetch(b); }
  };
};

struct FormatQ3_K : PairScalesFormat<FormatQ3_K> {
  static constexpr bool kHasMin = false;
  static constexpr int kWeightBlockBytes = sizeof(BlockQ3_K);
  static constexpr ImageLayout kLayout = image_layout(TensorType::kQ3_K, 8);
  static_assert(kLayout.block_bytes == kWeightBlockBytes);

  // Codes value + 4: the low bits as q2_K, bit 2 from bit 4h + s of hmask[l].
  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedPairScales*>(packed);
    pack_2bit_codes(r, offsetof(BlockQ3_K, qs), out->codes);
    __m256i hm[8];
    r.template dwords<8>(offsetof(BlockQ3_K, hmask), hm);
    for (int k = 0; k < 64; ++k) {  // k = 32h + 8s + g
      const __m256i* codes = reinterpret_cast<const __m256i*>(out->codes[k]);
      store(out->codes[k], with_bit2(_mm256_load_si256(codes), hm[k % 8], k));
    }
    const __m256i aux0 = r.dword(offsetof(BlockQ3_K, scales)), aux1 = r.dword(offsetof(BlockQ3_K, scales) + 4);
    const __m256i tmp = r.dword(offsetof(BlockQ3_K, scales) + 8);
    for (int j = 0; j < 16; ++j) store(out->scale_words[j], scale_words_of(scales_of(aux0, aux1, tmp, j / 4), j));
    for (int p = 0; p < 8; ++p) store(out->pairs[p], pairs_of(scales_of(aux0, aux1, tmp, p / 2), p));
    _mm256_store_ps(out->d, widen_fp16(r.half(offsetof(BlockQ3_K, d))));
  }
  // Code vector k = 32h + 8s + g with bit 2 from bit 4h + s of the hmask dword vector g.
  static __m256i with_bit2(__m256i code, __m256i hm, int k) {
    const int h = k / 32, s = (k / 8) % 4;
    return or_masked(code, shift_left(hm, 2 - (4 * h + s)), _mm256_set1_epi8(0x04));
  }
  // The 6-bit scales 4q .. 4q + 3, stored + 32, as ggml's dequantize_row_q3_K unpacks them from
  // the 12 scale bytes (aux0, aux1, tmp).
  static __m256i scales_of(__m256i aux0, __m256i aux1, __m256i tmp, int q) {
    const __m256i m4 = _mm256_set1_epi32(0x0f0f0f0f), m2 = _mm256_set1_epi32(0x03030303);
    const __m256i high = _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(tmp, 2 * q), m2), 4);
    const __m256i low = q % 2 ? aux1 : aux0;
    return _mm256_or_si256(_mm256_and_si256(q >= 2 ? _mm256_srli_epi32(low, 4) : low, m4), high);
  }
  static __m256i scale_words_of(__m256i sc, int j) {
    return both_words(_mm256_sub_epi32(byte_of(sc, j % 4), _mm256_set1_epi32(32)));
  }
  static __m256i pairs_of(__m256i sc, int p) { return _mm256_sub_epi16(byte_pair_words(sc, p), _mm256_set1_epi16(32)); }

  struct ImageSource {
    static constexpr bool kUnrollSubBlocks = true;
    GroupImage<kLayout> image;
    __m256i codes(int b, int k) const {
      const BlockImage<kLayout> r = image.block(b);
      const int h = k / 32, s = (k / 8) % 4, g = k % 8;
      const __m256i code = code_2bit(r.dword(offsetof(BlockQ3_K, qs) + 32 * h + 4 * g), s);
      return with_bit2(code, r.dword(offsetof(BlockQ3_K, hmask) + 4 * g), k);
    }
    __m256i scales(int b, int q) const {
      const BlockImage<kLayout> r = image.block(b);
      constexpr int kSc = offsetof(BlockQ3_K, scales);
      return scales_of(r.dword(kSc), r.dword(kSc + 4), r.dword(kSc + 8), q);
    }
    __m256i scale_words(int b, int j) const { return scale_words_of(scales(b, j / 4), j); }
    __m256i pairs(int b, int p) const { return pairs_of(scales(b, p / 2), p); }
    __m256 d(int b) const { return widen_fp16(image.block(b).half(offsetof(BlockQ3_K, d))); }
    __m256 dmin(int) const { return _mm256_setzero_ps(); }  // no min term
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

void avx2_gemm_q2_k(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                    int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ2_K>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_q2_k(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                          float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ2_K>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_q2_k = row_lane_records_kernel<FormatQ2_K>();

void avx2_gemm_q3_k(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                    int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ3_K>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_q3_k(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                          float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ3_K>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_q3_k = row_lane_records_kernel<FormatQ3_K>();

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
