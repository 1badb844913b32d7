// AVX2 matmul for the 32-element block formats: q8_0, q4_0, q5_0 and iq4_nl against q8_0
// activations, q4_1 and q5_1 against q8_1 activations.
// Row-lane kernels (row_lane_gemm.h) with 8 weight rows per ymm. Without VNNI the 4-element dot of
// a lane is vpmaddubsw (u8 x s8 pairs to s16) followed by vpmaddwd against ones (to s32).
//
// Per output the arithmetic is exactly the AVX-512 family's, i.e. ggml's scalar vec_dot, block
// after block (see avx512_q8.cpp): the block's integer sum S is exact however it is formed, then
//   acc += float(S) * (d_w * d_a) (q8_0),  (float(S) * d_w) * d_a (q4_0),  (d_a * d_w) * float(S)
// (iq4_nl), (d_w * d_a) * float(S) (q5_0), and (d_w * d_a) * float(S) + m_w * s_a (q4_1, q5_1).
// Signed weights (q8_0 codes, iq4_nl grid values) use |w| as the unsigned operand and move w's
// sign onto the activation (vpsignb); q4_0's and q5_0's codes are unsigned and their -8 / -16
// offset is removed by starting S at -8 / -16 * Σ q_a.
//
// Decode (one column tile from the interleaved image) reads the codes straight from the image,
// unpacked in registers (ImageSource, F::image_codes), with no packed copy per block: in
// bench_matmul, 8192 x 2048 from memory, one thread on an Ice Lake core, 7-19% less time with one
// column and 16-28% with four than packing each block first.
#include <cstddef>
#include <cstring>

#include "kernels/avx2_gemm.h"
#include "kernels/avx2_util.h"
#include "kernels/blocks.h"
#include "kernels/row_lane_gemm.h"
#include "kernels/simd.h"

namespace hylo::kernels {
namespace {

// One block of 8 rows: codes[g] lane l = elements 4g .. 4g+3 of row l (signed values for q8_0 and
// iq4_nl, unsigned nibbles for q4_0), d[l] = the row's block scale.
struct alignas(32) PackedBlock32 {
  uint8_t codes[8][32];
  float d[8];
};

struct ActRecord {
  float d;
  int32_t start;  // -8 * Σ q_a for q4_0, -16 * Σ q_a for q5_0, 0 otherwise
  int8_t qs[kQK];
};

struct OrderQ8_0 {
  static __m256 apply(__m256 acc, __m256 s, __m256 dw, __m256 da) {
    return _mm256_add_ps(acc, _mm256_mul_ps(s, _mm256_mul_ps(dw, da)));
  }
};
struct OrderQ4_0 {
  static __m256 apply(__m256 acc, __m256 s, __m256 dw, __m256 da) {
    return _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(s, dw), da));
  }
};
struct OrderQ5_0 {
  static __m256 apply(__m256 acc, __m256 s, __m256 dw, __m256 da) {
    return _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(dw, da), s));
  }
};
struct OrderIq4Nl {
  static __m256 apply(__m256 acc, __m256 s, __m256 dw, __m256 da) {
    return _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(da, dw), s));
  }
};

// The integer sum of one block's unsigned codes against one column, groups of 4 elements summed in
// s16 kS16Groups at a time (pairs are at most 2 · 31 · 127: 8 groups of nibbles, 4 of 5-bit codes
// stay below 32768), then widened: exact.
template <int kS16Groups, typename Source>
inline __m256i unsigned_block_sum(const Source& src, int b, const int8_t* qs, __m256i start) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i s = start;
#pragma GCC unroll 8
  for (int g0 = 0; g0 < 8; g0 += kS16Groups) {
    __m256i s16 = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int g = g0; g < g0 + kS16Groups; ++g) {
      const __m256i w = src.codes(b, g);
      s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(w, bcast_i32(qs + 4 * g)));
    }
    s = _mm256_add_epi32(s, _mm256_madd_epi16(s16, ones));
  }
  return s;
}

// What both 32-element layouts share: where Derived::compute_from reads a block's codes, scale
// (and min): the packed buffer, or (decode) the image itself, Derived::image_codes computing
// pack_codes' vectors in registers (the same values, so the same bits) with no packed block stored
// and read back. Packed: PackedBlock32, or PackedBlock32Min (mins() only for that one).
template <typename Derived, typename Packed>
struct Block32Sources : BlockPacker<Derived>, SourcedCompute<Derived> {
  struct PackedSource {
    using Block = Packed;
    const Packed* pb;
    __m256i codes(int b, int g) const { return _mm256_load_si256(reinterpret_cast<const __m256i*>(pb[b].codes[g])); }
    __m256 scales(int b) const { return _mm256_load_ps(pb[b].d); }
    __m256 mins(int b) const { return _mm256_load_ps(pb[b].m); }
    void prefetch(int) const {}
  };
  struct ImageSource {
    GroupImage<Derived::kLayout> image;
    __m256i codes(int b, int g) const { return Derived::image_codes(image.block(b), g); }
    __m256 scales(int b) const { return widen_fp16(image.block(b).half(0)); }
    __m256 mins(int b) const { return widen_fp16(image.block(b).half(2)); }  // q4_1 / q5_1: m follows d
    void prefetch(int b) const { image.prefetch(b); }
  };
};

// kSigned: codes are signed values (sign moved to the activation); otherwise unsigned codes
// (nibbles, or q5_0's 5-bit codes: kS16Groups 4).
template <typename Derived, typename Order, bool kSigned, int kBias, int kWeightBytes, TensorType kType,
          int kS16Groups = 8>
struct Block32Format : Block32Sources<Derived, PackedBlock32> {
  static constexpr int kLanes = 8;
  static constexpr int kBlockElems = kQK;
  static constexpr int kWeightBlockBytes = kWeightBytes;
  static constexpr int kPackedBlockBytes = sizeof(PackedBlock32);
  static constexpr int kActRecordBytes = sizeof(ActRecord);
  static constexpr int kChunkBlocks = 16;
  static constexpr int kMaxCols = 4;

  static void prep(const uint8_t* act_row, int64_t n, uint8_t* records, size_t block_stride) {
    const auto* a = reinterpret_cast<const BlockQ8_0*>(act_row);
    for (int64_t b = 0; b < n / kQK; ++b) {
      auto* rec = reinterpret_cast<ActRecord*>(records + static_cast<size_t>(b) * block_stride);
      rec->d = fp16_scalar(a[b].d);
      int32_t sum = 0;
      for (int i = 0; i < kQK; ++i) sum += a[b].qs[i];
      rec->start = -kBias * sum;
      std::memcpy(rec->qs, a[b].qs, kQK);
    }
  }

  static constexpr ImageLayout kLayout = image_layout(kType, 8);
  static_assert(kLayout.block_bytes == kWeightBytes && kLayout.head_bytes == 2);  // d, then the codes

  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedBlock32*>(packed);
    Derived::pack_codes(r, out->codes);
    _mm256_store_ps(out->d, widen_fp16(r.half(0)));  // d is the first field of all three
  }
  template <int C, typename Source>
  static void compute_from(const ColumnTile<C>& tile, const Source& src, int n_blocks) {
    const __m256i mask = lane_mask_vector(tile.lane_mask);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[c] = load_or_zero(tile.y[c], mask, tile.first_chunk);
    for (int b = 0; b < n_blocks; ++b) {
      src.prefetch(b);
      const auto* rec = reinterpret_cast<const ActRecord*>(tile.act + static_cast<size_t>(b) * tile.act_block_stride);
      __m256i s[C];
      if constexpr (kSigned) {
        // |w| x (a · sign w): pairs are at most 2 · 128 · 127, so each group widens to s32 at once.
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) s[c] = _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int g = 0; g < 8; ++g) {
          const __m256i w = src.codes(b, g);
          const __m256i wabs = _mm256_abs_epi8(w);
#pragma GCC unroll 8
          for (int c = 0; c < C; ++c) {
            const __m256i as = _mm256_sign_epi8(bcast_i32(rec[c].qs + 4 * g), w);
            s[c] = _mm256_add_epi32(s[c], _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, as), ones));
          }
        }
      } else {
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c)
          s[c] = unsigned_block_sum<kS16Groups>(src, b, rec[c].qs, _mm256_set1_epi32(rec[c].start));
      }
      const __m256 dw = src.scales(b);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[c] = Order::apply(acc[c], _mm256_cvtepi32_ps(s[c]), dw, _mm256_set1_ps(rec[c].d));
    }
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) store_masked(tile.y[c], mask, acc[c]);
  }
};

struct FormatQ8_0 : Block32Format<FormatQ8_0, OrderQ8_0, true, 0, sizeof(BlockQ8_0), TensorType::kQ8_0> {
  static __m256i image_codes(const BlockImage<kLayout>& r, int g) { return r.dword(offsetof(BlockQ8_0, qs) + 4 * g); }
  template <typename R>
  static void pack_codes(const R& r, uint8_t (*codes)[32]) {
    __m256i t[8];
    r.template dwords<8>(offsetof(BlockQ8_0, qs), t);
    for (int g = 0; g < 8; ++g) _mm256_store_si256(reinterpret_cast<__m256i*>(codes[g]), t[g]);
  }
};

// Nibble-packed codes: groups 0..3 the low nibbles (elements 0..15), 4..7 the high ones, each
// looked up in `lut` when use_lut.
template <typename R>
inline void unpack_nibbles(const R& r, int qs, __m256i lut, bool use_lut, uint8_t (*codes)[32]) {
  __m256i t[4];
  r.template dwords<4>(qs, t);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int g = 0; g < 4; ++g) {
    __m256i lo = _mm256_and_si256(t[g], low4);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(t[g], 4), low4);
    if (use_lut) {
      lo = _mm256_shuffle_epi8(lut, lo);
      hi = _mm256_shuffle_epi8(lut, hi);
    }
    _mm256_store_si256(reinterpret_cast<__m256i*>(codes[g]), lo);
    _mm256_store_si256(reinterpret_cast<__m256i*>(codes[g + 4]), hi);
  }
}

// Code vector g of unpack_nibbles, straight from an image block.
template <ImageLayout L>
inline __m256i image_nibbles(const BlockImage<L>& r, int qs, int g, __m256i lut, bool use_lut) {
  const __m256i t = r.dword(qs + 4 * (g % 4));
  const __m256i v = _mm256_and_si256(g < 4 ? t : _mm256_srli_epi16(t, 4), _mm256_set1_epi8(0x0F));
  return use_lut ? _mm256_shuffle_epi8(lut, v) : v;
}

struct FormatQ4_0 : Block32Format<FormatQ4_0, OrderQ4_0, false, 8, sizeof(BlockQ4_0), TensorType::kQ4_0> {
  static __m256i image_codes(const BlockImage<kLayout>& r, int g) {
    return image_nibbles(r, offsetof(BlockQ4_0, qs), g, _mm256_setzero_si256(), false);
  }
  template <typename R>
  static void pack_codes(const R& r, uint8_t (*codes)[32]) {
    unpack_nibbles(r, offsetof(BlockQ4_0, qs), _mm256_setzero_si256(), false, codes);
  }
};

// Bits first .. first+3 of each lane's qh as bit 4 of its 4 bytes: the multiply puts bit b at
// bits b, b+7, b+14, b+21 (no carries), so byte b's bit 0 is bit b (as the AVX-512 family).
inline __m256i fifth_bits(__m256i qh, int first) {
  const __m256i nib = _mm256_and_si256(_mm256_srl_epi32(qh, _mm_cvtsi32_si128(first)), _mm256_set1_epi32(0xF));
  const __m256i spread =
      _mm256_and_si256(_mm256_mullo_epi32(nib, _mm256_set1_epi32(0x00204081)), _mm256_set1_epi32(0x01010101));
  return _mm256_slli_epi32(spread, 4);
}

// q5_0 / q5_1 codes: the nibbles of qs plus bit e of qh as bit 4 (element e).
template <typename R>
inline void unpack_5bit(const R& r, int qs, int qh_offset, uint8_t (*codes)[32]) {
  __m256i t[4];
  r.template dwords<4>(qs, t);
  const __m256i qh = r.dword(qh_offset);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int g = 0; g < 4; ++g) {
    const __m256i lo = _mm256_and_si256(t[g], low4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(t[g], 4), low4);
    _mm256_store_si256(reinterpret_cast<__m256i*>(codes[g]), _mm256_or_si256(lo, fifth_bits(qh, 4 * g)));
    _mm256_store_si256(reinterpret_cast<__m256i*>(codes[g + 4]), _mm256_or_si256(hi, fifth_bits(qh, 16 + 4 * g)));
  }
}

// Code vector g of unpack_5bit, straight from an image block.
template <ImageLayout L>
inline __m256i image_5bit(const BlockImage<L>& r, int qs, int qh_offset, int g) {
  return _mm256_or_si256(image_nibbles(r, qs, g, _mm256_setzero_si256(), false),
                         fifth_bits(r.dword(qh_offset), g < 4 ? 4 * g : 16 + 4 * (g - 4)));
}

struct FormatQ5_0 : Block32Format<FormatQ5_0, OrderQ5_0, false, 16, sizeof(BlockQ5_0), TensorType::kQ5_0, 4> {
  static __m256i image_codes(const BlockImage<kLayout>& r, int g) {
    return image_5bit(r, offsetof(BlockQ5_0, qs), offsetof(BlockQ5_0, qh), g);
  }
  template <typename R>
  static void pack_codes(const R& r, uint8_t (*codes)[32]) {
    unpack_5bit(r, offsetof(BlockQ5_0, qs), offsetof(BlockQ5_0, qh), codes);
  }
};

// ---- q4_1 / q5_1 against q8_1 activations (d_a, s_a = d_a · Σ q_a) -------------------------------

struct alignas(32) PackedBlock32Min {
  uint8_t codes[8][32];
  float d[8];
  float m[8];
};

struct ActRecordQ8_1 {
  float d, s;
  int8_t qs[kQK];
};

template <typename Derived, int kWeightBytes, TensorType kType, int kS16Groups>
struct Block32MinFormat : Block32Sources<Derived, PackedBlock32Min> {
  static constexpr int kLanes = 8;
  static constexpr int kBlockElems = kQK;
  static constexpr int kWeightBlockBytes = kWeightBytes;
  static constexpr int kPackedBlockBytes = sizeof(PackedBlock32Min);
  static constexpr int kActRecordBytes = sizeof(ActRecordQ8_1);
  static constexpr int kChunkBlocks = 16;
  static constexpr int kMaxCols = 4;

  static void prep(const uint8_t* act_row, int64_t n, uint8_t* records, size_t block_stride) {
    const auto* a = reinterpret_cast<const BlockQ8_1*>(act_row);
    for (int64_t b = 0; b < n / kQK; ++b) {
      auto* rec = reinterpret_cast<ActRecordQ8_1*>(records + static_cast<size_t>(b) * block_stride);
      rec->d = fp16_scalar(a[b].d);
      rec->s = fp16_scalar(a[b].s);
      std::memcpy(rec->qs, a[b].qs, kQK);
    }
  }

  static constexpr ImageLayout kLayout = image_layout(kType, 8);
  static_assert(kLayout.block_bytes == kWeightBytes && kLayout.head_bytes == 4);  // d, m, then the body

  template <typename R>
  static void pack_block(const R& r, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedBlock32Min*>(packed);
    Derived::pack_codes(r, out->codes);
    _mm256_store_ps(out->d, widen_fp16(r.half(0)));
    _mm256_store_ps(out->m, widen_fp16(r.half(2)));
  }

  // acc += (d_w · d_a) · float(S) + m_w · s_a, as the AVX-512 family.
  template <int C, typename Source>
  static void compute_from(const ColumnTile<C>& tile, const Source& src, int n_blocks) {
    const __m256i mask = lane_mask_vector(tile.lane_mask);
    __m256 acc[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[c] = load_or_zero(tile.y[c], mask, tile.first_chunk);
    for (int b = 0; b < n_blocks; ++b) {
      src.prefetch(b);
      const auto* rec =
          reinterpret_cast<const ActRecordQ8_1*>(tile.act + static_cast<size_t>(b) * tile.act_block_stride);
      const __m256 dw = src.scales(b), mw = src.mins(b);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        const __m256i s = unsigned_block_sum<kS16Groups>(src, b, rec[c].qs, _mm256_setzero_si256());
        const __m256 scaled = _mm256_mul_ps(_mm256_mul_ps(dw, _mm256_set1_ps(rec[c].d)), _mm256_cvtepi32_ps(s));
        const __m256 offset = _mm256_mul_ps(mw, _mm256_set1_ps(rec[c].s));
        acc[c] = _mm256_add_ps(acc[c], _mm256_add_ps(scaled, offset));
      }
    }
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) store_masked(tile.y[c], mask, acc[c]);
  }
};

struct FormatQ4_1 : Block32MinFormat<FormatQ4_1, sizeof(BlockQ4_1), TensorType::kQ4_1, 8> {
  static __m256i image_codes(const BlockImage<kLayout>& r, int g) {
    return image_nibbles(r, offsetof(BlockQ4_1, qs), g, _mm256_setzero_si256(), false);
  }
  template <typename R>
  static void pack_codes(const R& r, uint8_t (*codes)[32]) {
    unpack_nibbles(r, offsetof(BlockQ4_1, qs), _mm256_setzero_si256(), false, codes);
  }
};

struct FormatQ5_1 : Block32MinFormat<FormatQ5_1, sizeof(BlockQ5_1), TensorType::kQ5_1, 4> {
  static __m256i image_codes(const BlockImage<kLayout>& r, int g) {
    return image_5bit(r, offsetof(BlockQ5_1, qs), offsetof(BlockQ5_1, qh), g);
  }
  template <typename R>
  static void pack_codes(const R& r, uint8_t (*codes)[32]) {
    unpack_5bit(r, offsetof(BlockQ5_1, qs), offsetof(BlockQ5_1, qh), codes);
  }
};

struct FormatIq4Nl : Block32Format<FormatIq4Nl, OrderIq4Nl, true, 0, sizeof(BlockIQ4_NL), TensorType::kIQ4_NL> {
  static __m256i grid_lut() {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues)));
  }
  static __m256i image_codes(const BlockImage<kLayout>& r, int g) {
    return image_nibbles(r, offsetof(BlockIQ4_NL, qs), g, grid_lut(), true);
  }
  template <typename R>
  static void pack_codes(const R& r, uint8_t (*codes)[32]) {
    unpack_nibbles(r, offsetof(BlockIQ4_NL, qs), grid_lut(), true, codes);
  }
};

}  // namespace

void avx2_gemm_q8_0(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                    int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ8_0>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_q8_0(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                          float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ8_0>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_q8_0 = row_lane_records_kernel<FormatQ8_0>();

void avx2_gemm_q4_0(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                    int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ4_0>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_q4_0(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                          float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ4_0>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_q4_0 = row_lane_records_kernel<FormatQ4_0>();

void avx2_gemm_q5_0(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                    int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ5_0>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_q5_0(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                          float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ5_0>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_q5_0 = row_lane_records_kernel<FormatQ5_0>();

void avx2_gemm_q4_1(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                    int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ4_1>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_q4_1(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                          float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ4_1>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_q4_1 = row_lane_records_kernel<FormatQ4_1>();

void avx2_gemm_q5_1(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                    int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatQ5_1>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_q5_1(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                          float* y, size_t ldy) {
  row_lane_gemm_image<FormatQ5_1>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_q5_1 = row_lane_records_kernel<FormatQ5_1>();

void avx2_gemm_iq4_nl(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                      int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FormatIq4Nl>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_iq4_nl(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                            int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm_image<FormatIq4Nl>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_iq4_nl = row_lane_records_kernel<FormatIq4Nl>();

}  // namespace hylo::kernels
