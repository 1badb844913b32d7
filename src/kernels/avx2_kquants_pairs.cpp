// AVX2 matmul for q2_K and q3_K against q8_K activations: the AVX-512 family's integer-scale
// arithmetic (avx512_kquants_pairs.cpp), so both families return the same bits. Row-lane kernels
// with 8 weight rows per ymm.
#include <cstddef>

#include "kernels/avx2_gemm.h"
#include "kernels/avx2_kquants.h"

namespace hylo::kernels {
namespace {

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

}  // namespace hylo::kernels
