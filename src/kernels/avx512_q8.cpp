// AVX-512 (VNNI) matmul for the 32-element block formats: q8_0, q4_0, q5_0 and iq4_nl weights
// with q8_0 activations, q4_1 and q5_1 weights with q8_1 activations. Row-lane kernels (see row_lane_gemm.h): 16 weight
// rows per zmm, one vpdpbusd per 4 elements per column.
//
// Per output y[c][r] the arithmetic is ggml's scalar vec_dot, block after block:
//   S = Σ q_w · q_a (exact int32), acc += float(S) · (d_w · d_a)          (q8_0)
//   acc += (float(S) · d_w) · d_a (q4_0),  acc += (d_a · d_w) · float(S)  (iq4_nl)
// so this family returns exactly vec_dot_reference's value for every row and column.
//
// vpdpbusd multiplies unsigned by signed bytes: the weight codes are stored biased to u8
// (q + 128 for q8_0 and iq4_nl, the raw 0..15 nibble for q4_0) and the bias is removed by starting
// the int32 sum at -bias · Σ q_a, taken from a per-column side table.
#include <cstddef>
#include <cstring>

#include "kernels/avx512_gemm.h"
#include "kernels/avx512_util.h"
#include "kernels/blocks.h"
#include "kernels/quant_internal.h"
#include "kernels/row_lane_gemm.h"
#include "kernels/simd.h"

namespace hylo::kernels {
namespace {

// One block of 16 rows, packed: codes[g] lane l = elements 4g .. 4g+3 of row l (biased u8),
// d[l] = the row's block scale.
struct alignas(64) PackedBlock32 {
  uint8_t codes[8][64];
  float d[16];
};

// One column's activation block as the kernel reads it: the scale as f32, the start value
// -bias · Σ q_a of the integer sum, and the codes.
struct ActRecord {
  float d;
  int32_t start;
  int8_t qs[kQK];
};

// Σ of the 32 int8 codes of a q8_0 block.
inline int32_t sum_i8x32(const int8_t* q) {
  const __m256i u = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)), _mm256_set1_epi8(-128));
  const __m256i s = _mm256_sad_epu8(u, _mm256_setzero_si256());  // 4 partial sums of (q + 128)
  const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  return static_cast<int32_t>(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 32 * 128;
}

// The row orders of ggml's scalar kernels for the block scale.
struct OrderQ8_0 {  // acc += float(S) * (d_w * d_a)
  static __m512 apply(__m512 acc, __m512 s, __m512 dw, __m512 da) {
    return _mm512_add_ps(acc, _mm512_mul_ps(s, _mm512_mul_ps(dw, da)));
  }
};
struct OrderQ4_0 {  // acc += (float(S) * d_w) * d_a
  static __m512 apply(__m512 acc, __m512 s, __m512 dw, __m512 da) {
    return _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(s, dw), da));
  }
};
struct OrderQ5_0 {  // acc += (d_w * d_a) * float(S)
  static __m512 apply(__m512 acc, __m512 s, __m512 dw, __m512 da) {
    return _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(dw, da), s));
  }
};
struct OrderIq4Nl {  // acc += (d_a * d_w) * float(S)
  static __m512 apply(__m512 acc, __m512 s, __m512 dw, __m512 da) {
    return _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(da, dw), s));
  }
};

// The loop-nest constants of every 32-element block format here: 16 rows per group, the packed
// block and activation record types, the chunk and column tile sizes.
template <typename Derived, typename Packed, typename Act, int kWeightBytes>
struct Block32Shape : BlockPacker<Derived> {
  static constexpr int kLanes = 16;
  static constexpr int kBlockElems = kQK;
  static constexpr int kWeightBlockBytes = kWeightBytes;
  static constexpr int kPackedBlockBytes = sizeof(Packed);
  static constexpr int kActRecordBytes = sizeof(Act);
  static constexpr int kChunkBlocks = 16;
  static constexpr int kMaxCols = 12;

  // Decode straight from G groups' images (all blocks of the rows, Derived's ImageSource and
  // compute_blocks): no packed copy. 2 · G · C accumulators (kSplit is 1 from G · C = 4 on) fit
  // the registers up to G · C = 12.
  static constexpr int image_groups(int cols) { return cols <= 2 ? 4 : (cols <= 6 ? 2 : 1); }
  template <int C, int G>
  static void compute_image(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G],
                            const uint8_t* const (&groups)[G], int64_t n_blocks) {
    typename Derived::ImageSource src[G];
    for (int r = 0; r < G; ++r) src[r].image = GroupImage<Derived::kLayout>(groups[r], n_blocks, 0);
    Derived::template compute_blocks<C, G>(tile, lane_masks, src, static_cast<int>(n_blocks));
  }
};

// Shared by the formats against q8_0 activations: everything but the packer, the bias and the
// scale order.
template <typename Derived, typename Order, int kBias, int kWeightBytes, TensorType kType>
struct Block32Format : Block32Shape<Derived, PackedBlock32, ActRecord, kWeightBytes> {
  static void prep(const uint8_t* act_row, int64_t n, uint8_t* records, size_t block_stride) {
    const auto* a = reinterpret_cast<const BlockQ8_0*>(act_row);
    for (int64_t b = 0; b < n / kQK; ++b) {
      auto* rec = reinterpret_cast<ActRecord*>(records + static_cast<size_t>(b) * block_stride);
      rec->d = fp16_scalar(a[b].d);
      rec->start = -kBias * sum_i8x32(a[b].qs);
      std::memcpy(rec->qs, a[b].qs, kQK);
    }
  }

  static constexpr ImageLayout kLayout = image_layout(kType, 16);
  static_assert(kLayout.block_bytes == kWeightBytes && kLayout.head_bytes == 2);  // d, then the codes

  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedBlock32*>(packed);
    Derived::pack_codes(r, out->codes);
    _mm512_store_ps(out->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(r.half(0))));  // d is the first field of all three
  }
  // Where compute_blocks reads a block's codes and scales: the packed buffer, or (decode, for the
  // formats whose image holds the packed codes as they are) the image itself.
  struct PackedSource {
    const PackedBlock32* pb;
    __m512i codes(int b, int g) const { return _mm512_load_si512(pb[b].codes[g]); }
    __m512 scales(int b) const { return _mm512_load_ps(pb[b].d); }
    void prefetch(int) const {}
  };
  struct ImageSource {
    GroupImage<kLayout> image;
    __m512i codes(int b, int g) const { return Derived::image_codes(image.block(b), g); }
    __m512 scales(int b) const { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(image.block(b).half(0))); }
    void prefetch(int b) const { image.prefetch(b); }
  };

  template <int C>
  static void compute(const ColumnTile<C>& tile, const uint8_t* packed, int n_blocks) {
    compute_blocks<C, 1>(tile, {tile.lane_mask}, {PackedSource{reinterpret_cast<const PackedBlock32*>(packed)}},
                         n_blocks);
  }
  // Prefill: two row groups per pass (compute_blocks with G = 2); 2 · 2 · C accumulators fit the
  // 32 registers at C = 6.
  static constexpr int kPairCols = 6;
  template <int C>
  static void compute_pair(const ColumnTile<C>& tile, uint32_t lane_mask_b, const uint8_t* packed_a,
                           const uint8_t* packed_b, int n_blocks) {
    compute_blocks<C, 2>(tile, {tile.lane_mask, lane_mask_b},
                         {PackedSource{reinterpret_cast<const PackedBlock32*>(packed_a)},
                          PackedSource{reinterpret_cast<const PackedBlock32*>(packed_b)}},
                         n_blocks);
  }

  // G row groups at once (G = 2: the second group's y at tile.y[c] + 16, each activation broadcast
  // feeding a multiply of both, half the loads per multiply); per lane the same operations
  // whatever G, so the same bits.
  template <int C, int G, typename Source>
  static void compute_blocks(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G], const Source (&src)[G],
                             int n_blocks) {
    // vpdpbusd: 5-cycle latency, 2 ports; keep about 8 chains in flight when columns are few.
    constexpr int kSplit = C * G >= 4 ? 1 : (C * G >= 2 ? 2 : 4);
    __mmask16 mask[G];
    __m512 acc[G][C];
    for (int r = 0; r < G; ++r) {
      mask[r] = static_cast<__mmask16>(lane_masks[r]);
      for (int c = 0; c < C; ++c) acc[r][c] = load_or_zero(tile.y[c] + 16 * r, mask[r], tile.first_chunk);
    }
    for (int b = 0; b < n_blocks; ++b) {
      for (int r = 0; r < G; ++r) src[r].prefetch(b);
      const auto* rec = reinterpret_cast<const ActRecord*>(tile.act + static_cast<size_t>(b) * tile.act_block_stride);
      // The block's integer sum as kSplit partial sums (exact, so only latency changes).
      __m512i s[kSplit][G][C];
      for (int r = 0; r < G; ++r)
        for (int c = 0; c < C; ++c) {
          s[0][r][c] = _mm512_set1_epi32(rec[c].start);
          for (int k = 1; k < kSplit; ++k) s[k][r][c] = _mm512_setzero_si512();
        }
#pragma GCC unroll 8
      for (int g = 0; g < 8; ++g) {  // columns innermost: C · G · kSplit independent chains
        __m512i wq[G];
        for (int r = 0; r < G; ++r) wq[r] = src[r].codes(b, g);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          const __m512i x = bcast_i32(rec[c].qs + 4 * g);
          for (int r = 0; r < G; ++r) s[g % kSplit][r][c] = _mm512_dpbusd_epi32(s[g % kSplit][r][c], wq[r], x);
        }
      }
      for (int r = 0; r < G; ++r) {
        const __m512 dw = src[r].scales(b);
        for (int c = 0; c < C; ++c) {
          for (int k = 1; k < kSplit; ++k) s[0][r][c] = _mm512_add_epi32(s[0][r][c], s[k][r][c]);
          acc[r][c] = Order::apply(acc[r][c], _mm512_cvtepi32_ps(s[0][r][c]), dw, _mm512_set1_ps(rec[c].d));
        }
      }
    }
    for (int r = 0; r < G; ++r)
      for (int c = 0; c < C; ++c) _mm512_mask_storeu_ps(tile.y[c] + 16 * r, mask[r], acc[r][c]);
  }
};

struct FormatQ8_0 : Block32Format<FormatQ8_0, OrderQ8_0, 128, sizeof(BlockQ8_0), TensorType::kQ8_0> {
  // The image's body units are the packed codes less the bias: decode reads them in place.
  static constexpr bool kFusedImage = true;
  static __m512i image_codes(const BlockImage<kLayout>& r, int g) {
    return _mm512_xor_si512(r.dword(offsetof(BlockQ8_0, qs) + 4 * g), _mm512_set1_epi8(-128));
  }
  template <typename R>
  static void pack_codes(const R& r, uint8_t (*codes)[64]) {
    __m512i t[8];
    r.template dwords<8>(offsetof(BlockQ8_0, qs), t);
    const __m512i bias = _mm512_set1_epi8(-128);
    for (int g = 0; g < 8; ++g) _mm512_store_si512(codes[g], _mm512_xor_si512(t[g], bias));
  }
};

// Nibble-packed 32-element codes: groups 0..3 are the low nibbles (elements 0..15), groups 4..7 the
// high nibbles (elements 16..31), each mapped through `lut` (16 byte values per 128-bit lane).
template <typename R>
inline void unpack_nibbles(const R& r, int qs, __m512i lut, bool use_lut, uint8_t (*codes)[64]) {
  __m512i t[4];
  r.template dwords<4>(qs, t);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (int g = 0; g < 4; ++g) {
    __m512i lo = _mm512_and_si512(t[g], low4);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(t[g], 4), low4);
    if (use_lut) {
      lo = _mm512_shuffle_epi8(lut, lo);
      hi = _mm512_shuffle_epi8(lut, hi);
    }
    _mm512_store_si512(codes[g], lo);
    _mm512_store_si512(codes[g + 4], hi);
  }
}

// Code vector g of unpack_nibbles, straight from an image block (for the fused decode path).
template <ImageLayout L>
inline __m512i image_nibbles(const BlockImage<L>& r, int qs, int g, __m512i lut, bool use_lut) {
  const __m512i t = r.dword(qs + 4 * (g % 4));
  const __m512i v = _mm512_and_si512(g < 4 ? t : _mm512_srli_epi16(t, 4), _mm512_set1_epi8(0x0F));
  return use_lut ? _mm512_shuffle_epi8(lut, v) : v;
}

struct FormatQ4_0 : Block32Format<FormatQ4_0, OrderQ4_0, 8, sizeof(BlockQ4_0), TensorType::kQ4_0> {
  static constexpr bool kFusedImage = true;
  static __m512i image_codes(const BlockImage<kLayout>& r, int g) {
    return image_nibbles(r, offsetof(BlockQ4_0, qs), g, _mm512_setzero_si512(), false);
  }
  template <typename R>
  static void pack_codes(const R& r, uint8_t (*codes)[64]) {
    unpack_nibbles(r, offsetof(BlockQ4_0, qs), _mm512_setzero_si512(), false, codes);
  }
};

// q5_0: element e < 16 is the low nibble of qs[e], e >= 16 the high nibble of qs[e − 16]; bit e of
// the 32-bit qh is its fifth bit. Codes 0..31 = value + 16.
struct FormatQ5_0 : Block32Format<FormatQ5_0, OrderQ5_0, 16, sizeof(BlockQ5_0), TensorType::kQ5_0> {
  // Its fifth bits cost enough arithmetic that from 3 columns on one group at a time is faster.
  static constexpr int image_groups(int cols) { return cols <= 2 ? 4 : 1; }
  // Bits first .. first+3 of each lane's qh as bit 4 of its 4 bytes: the multiply puts bit b at
  // bits b, b+7, b+14, b+21 (no carries), so byte b's bit 0 is bit b.
  static __m512i fifth_bits(__m512i qh, int first) {
    const __m512i nib = _mm512_and_si512(_mm512_srl_epi32(qh, _mm_cvtsi32_si128(first)), _mm512_set1_epi32(0xF));
    const __m512i spread =
        _mm512_and_si512(_mm512_mullo_epi32(nib, _mm512_set1_epi32(0x00204081)), _mm512_set1_epi32(0x01010101));
    return _mm512_slli_epi32(spread, 4);
  }
  static constexpr bool kFusedImage = true;
  static __m512i image_codes(const BlockImage<kLayout>& r, int g) {
    const __m512i qh = r.dword(offsetof(BlockQ5_0, qh));
    return _mm512_or_si512(image_nibbles(r, offsetof(BlockQ5_0, qs), g, _mm512_setzero_si512(), false),
                           fifth_bits(qh, g < 4 ? 4 * g : 16 + 4 * (g - 4)));
  }
  template <typename R>
  static void pack_codes(const R& r, uint8_t (*codes)[64]) {
    __m512i t[4];
    r.template dwords<4>(offsetof(BlockQ5_0, qs), t);
    const __m512i qh = r.dword(offsetof(BlockQ5_0, qh));
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    for (int g = 0; g < 4; ++g) {
      const __m512i lo = _mm512_and_si512(t[g], low4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(t[g], 4), low4);
      _mm512_store_si512(codes[g], _mm512_or_si512(lo, fifth_bits(qh, 4 * g)));
      _mm512_store_si512(codes[g + 4], _mm512_or_si512(hi, fifth_bits(qh, 16 + 4 * g)));
    }
  }
};

struct FormatIq4Nl : Block32Format<FormatIq4Nl, OrderIq4Nl, 128, sizeof(BlockIQ4_NL), TensorType::kIQ4_NL> {
  static __m512i grid_lut() {  // grid value + 128 as u8, in every 128-bit lane
    alignas(16) uint8_t biased[16];
    for (int i = 0; i < 16; ++i) biased[i] = static_cast<uint8_t>(kIq4nlValues[i] + 128);
    return _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(biased)));
  }
  static constexpr bool kFusedImage = true;
  static __m512i image_codes(const BlockImage<kLayout>& r, int g) {
    return image_nibbles(r, offsetof(BlockIQ4_NL, qs), g, grid_lut(), true);
  }
  template <typename R>
  static void pack_codes(const R& r, uint8_t (*codes)[64]) {
    unpack_nibbles(r, offsetof(BlockIQ4_NL, qs), grid_lut(), true, codes);
  }
};

// ---- q4_1 / q5_1: y = q · d + m against q8_1 activations (d_a, s_a = d_a · Σ q_a) --------------
// Per block, as ggml's scalar vec_dot: acc += (d_w · d_a) · float(S) + m · s_a, S = Σ q_w · q_a with
// the unsigned codes (no bias, so the integer sum starts at 0).

struct alignas(64) PackedBlock32Min {
  uint8_t codes[8][64];
  float d[16];
  float m[16];
};

struct ActRecordQ8_1 {
  float d, s;
  int8_t qs[kQK];
};

template <typename Derived, int kWeightBytes, TensorType kType>
struct Block32MinFormat : Block32Shape<Derived, PackedBlock32Min, ActRecordQ8_1, kWeightBytes> {
  static void prep(const uint8_t* act_row, int64_t n, uint8_t* records, size_t block_stride) {
    const auto* a = reinterpret_cast<const BlockQ8_1*>(act_row);
    for (int64_t b = 0; b < n / kQK; ++b) {
      auto* rec = reinterpret_cast<ActRecordQ8_1*>(records + static_cast<size_t>(b) * block_stride);
      rec->d = fp16_scalar(a[b].d);
      rec->s = fp16_scalar(a[b].s);
      std::memcpy(rec->qs, a[b].qs, kQK);
    }
  }

  static constexpr ImageLayout kLayout = image_layout(kType, 16);
  static_assert(kLayout.block_bytes == kWeightBytes && kLayout.head_bytes == 4);  // d, m, then the body

  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedBlock32Min*>(packed);
    Derived::pack_codes(r, out->codes);
    _mm512_store_ps(out->d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(r.half(0))));
    _mm512_store_ps(out->m, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(r.half(2))));
  }
  struct PackedSource {
    const PackedBlock32Min* pb;
    __m512i codes(int b, int g) const { return _mm512_load_si512(pb[b].codes[g]); }
    __m512 scales(int b) const { return _mm512_load_ps(pb[b].d); }
    __m512 mins(int b) const { return _mm512_load_ps(pb[b].m); }
    void prefetch(int) const {}
  };
  struct ImageSource {
    GroupImage<kLayout> image;
    __m512i codes(int b, int g) const { return Derived::image_codes(image.block(b), g); }
    __m512 scales(int b) const { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(image.block(b).half(0))); }
    __m512 mins(int b) const { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(image.block(b).half(2))); }
    void prefetch(int b) const { image.prefetch(b); }
  };
  static constexpr bool kFusedImage = true;

  template <int C>
  static void compute(const ColumnTile<C>& tile, const uint8_t* packed, int n_blocks) {
    compute_blocks<C, 1>(tile, {tile.lane_mask}, {PackedSource{reinterpret_cast<const PackedBlock32Min*>(packed)}},
                         n_blocks);
  }
  // Prefill: two row groups per pass, as Block32Format (one group at a time ran at two thirds of
  // q4_0's rate, each activation broadcast feeding a single multiply). 5 columns: the mins and the
  // second scale product need registers that q4_0 does not.
  static constexpr int kPairCols = 5;
  template <int C>
  static void compute_pair(const ColumnTile<C>& tile, uint32_t lane_mask_b, const uint8_t* packed_a,
                           const uint8_t* packed_b, int n_blocks) {
    compute_blocks<C, 2>(tile, {tile.lane_mask, lane_mask_b},
                         {PackedSource{reinterpret_cast<const PackedBlock32Min*>(packed_a)},
                          PackedSource{reinterpret_cast<const PackedBlock32Min*>(packed_b)}},
                         n_blocks);
  }

  // G row groups at once, as Block32Format::compute_blocks: per lane the same operations. (One
  // template for both loops was tried: the compiler's code for it ran 4-column decode about a
  // third slower, so the two stay apart.)
  template <int C, int G, typename Source>
  static void compute_blocks(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G], const Source (&src)[G],
                             int n_blocks) {
    constexpr int kSplit = C * G >= 4 ? 1 : (C * G >= 2 ? 2 : 4);
    __mmask16 mask[G];
    __m512 acc[G][C];
    for (int r = 0; r < G; ++r) {
      mask[r] = static_cast<__mmask16>(lane_masks[r]);
      for (int c = 0; c < C; ++c) acc[r][c] = load_or_zero(tile.y[c] + 16 * r, mask[r], tile.first_chunk);
    }
    for (int b = 0; b < n_blocks; ++b) {
      for (int r = 0; r < G; ++r) src[r].prefetch(b);
      const auto* rec =
          reinterpret_cast<const ActRecordQ8_1*>(tile.act + static_cast<size_t>(b) * tile.act_block_stride);
      __m512i s[kSplit][G][C];
      for (int k = 0; k < kSplit; ++k)
        for (int r = 0; r < G; ++r)
          for (int c = 0; c < C; ++c) s[k][r][c] = _mm512_setzero_si512();
#pragma GCC unroll 8
      for (int g = 0; g < 8; ++g) {
        __m512i wq[G];
        for (int r = 0; r < G; ++r) wq[r] = src[r].codes(b, g);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          const __m512i x = bcast_i32(rec[c].qs + 4 * g);
          for (int r = 0; r < G; ++r) s[g % kSplit][r][c] = _mm512_dpbusd_epi32(s[g % kSplit][r][c], wq[r], x);
        }
      }
      for (int r = 0; r < G; ++r) {
        const __m512 dw = src[r].scales(b);
        const __m512 mw = src[r].mins(b);
        for (int c = 0; c < C; ++c) {
          for (int k = 1; k < kSplit; ++k) s[0][r][c] = _mm512_add_epi32(s[0][r][c], s[k][r][c]);
          const __m512 scaled =
              _mm512_mul_ps(_mm512_mul_ps(dw, _mm512_set1_ps(rec[c].d)), _mm512_cvtepi32_ps(s[0][r][c]));
          const __m512 offset = _mm512_mul_ps(mw, _mm512_set1_ps(rec[c].s));
          acc[r][c] = _mm512_add_ps(acc[r][c], _mm512_add_ps(scaled, offset));
        }
      }
    }
    for (int r = 0; r < G; ++r)
      for (int c = 0; c < C; ++c) _mm512_mask_storeu_ps(tile.y[c] + 16 * r, mask[r], acc[r][c]);
  }
};

struct FormatQ4_1 : Block32MinFormat<FormatQ4_1, sizeof(BlockQ4_1), TensorType::kQ4_1> {
  static __m512i image_codes(const BlockImage<kLayout>& r, int g) {
    return image_nibbles(r, offsetof(BlockQ4_1, qs), g, _mm512_setzero_si512(), false);
  }
  template <typename R>
  static void pack_codes(const R& r, uint8_t (*codes)[64]) {
    unpack_nibbles(r, offsetof(BlockQ4_1, qs), _mm512_setzero_si512(), false, codes);
  }
};

struct FormatQ5_1 : Block32MinFormat<FormatQ5_1, sizeof(BlockQ5_1), TensorType::kQ5_1> {
  static __m512i image_codes(const BlockImage<kLayout>& r, int g) {
    const __m512i qh = r.dword(offsetof(BlockQ5_1, qh));
    return _mm512_or_si512(image_nibbles(r, offsetof(BlockQ5_1, qs), g, _mm512_setzero_si512(), false),
                           FormatQ5_0::fifth_bits(qh, g < 4 ? 4 * g : 16 + 4 * (g - 4)));
  }
  template <typename R>
  static void pack_codes(const R& r, uint8_t (*codes)[64]) {
    __m512i t[4];
    r.template dwords<4>(offsetof(BlockQ5_1, qs), t);
    const __m512i qh = r.dword(offsetof(BlockQ5_1, qh));
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    for (int g = 0; g < 4; ++g) {
      const __m512i lo = _mm512_and_si512(t[g], low4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(t[g], 4), low4);
      _mm512_store_si512(codes[g], _mm512_or_si512(lo, FormatQ5_0::fifth_bits(qh, 4 * g)));
      _mm512_store_si512(codes[g + 4], _mm512_or_si512(hi, FormatQ5_0::fifth_bits(qh, 16 + 4 * g)));
    }
  }
};

}  // namespace

void avx512_gemm_q8_0(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                      int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ8_0>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_q8_0(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                            int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ8_0>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_q8_0 = row_lane_records_kernel<FormatQ8_0>();

void avx512_gemm_q4_0(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                      int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ4_0>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_q4_0(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                            int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ4_0>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_q4_0 = row_lane_records_kernel<FormatQ4_0>();

void avx512_gemm_q5_0(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                      int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ5_0>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_q5_0(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                            int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ5_0>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_q5_0 = row_lane_records_kernel<FormatQ5_0>();

void avx512_gemm_iq4_nl(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                        int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatIq4Nl>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_iq4_nl(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                              int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatIq4Nl>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_iq4_nl = row_lane_records_kernel<FormatIq4Nl>();

void avx512_gemm_q4_1(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                      int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ4_1>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_q4_1(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                            int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ4_1>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_q4_1 = row_lane_records_kernel<FormatQ4_1>();

void avx512_gemm_q5_1(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                      int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ5_1>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_q5_1(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                            int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ5_1>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_q5_1 = row_lane_records_kernel<FormatQ5_1>();

}  // namespace hylo::kernels
