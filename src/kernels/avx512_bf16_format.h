// The AVX-512 bf16 kernel (row_lane_gemm.h's loop nest), written once for the two ways it
// multiplies a pair of elements: vdpbf16ps where the CPU has AVX512-BF16 (avx512_bf16.cpp, the
// only source built with it), two FMAs under the MXCSR modes DAZ and FTZ elsewhere
// (avx512_float.cpp). Both follow vdpbf16ps's order, which is the bf16 order of every family: per
// output, for each chunk of 256 elements (128 pairs), two partial sums, pair j into p[j % 2],
//   p = ftz(fma(w[2j], x[2j], ftz(fma(w[2j+1], x[2j+1], p))))   (denormal inputs read as zero),
// then y = ftz(y + ftz(p[0] + p[1])); ftz flushes a denormal result to a zero of its sign. (The
// bf16 products are exact in f32, so each step has one rounding.)
//
// The image holds, per row lane, the dword of elements 2g and 2g + 1: the operand vdpbf16ps
// wants, and two shifts from the FMA's. Included only by ISA-specific sources: everything is in an
// anonymous namespace (row_lane_gemm.h's rule).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/avx512_float.h"
#include "kernels/avx512_util.h"
#include "kernels/row_lane_gemm.h"
#include "kernels/simd.h"

namespace hylo::kernels {
namespace {

struct alignas(64) PackedPairBlock {
  uint32_t pairs[kStep / 2][16];  // pairs[g] lane l = elements 2g, 2g + 1 of row l
};

// How a pair is multiplied (Pairs):
//   Record: one column's block of 16 activations as the kernel reads it;
//   static void prep_block(const uint8_t* bf16, __mmask16 elements, Record* rec);
//   Weights + static Weights weights(__m512i pairs): a pair dword of 16 rows, ready to multiply;
//   static __m512 dot(__m512 acc, const Weights& w, const Record& rec, int g): pair g into acc;
//   static __m512 close(__m512 y, __m512 p0, __m512 p1): y = ftz(y + ftz(p0 + p1)).
template <typename Pairs>
struct FormatBF16 {
  using Record = typename Pairs::Record;
  static constexpr int kLanes = 16;
  static constexpr int kBlockElems = kStep;
  static constexpr int kWeightBlockBytes = kStep * 2;
  static constexpr int kPackedBlockBytes = sizeof(PackedPairBlock);
  static constexpr int kActRecordBytes = sizeof(Record);
  static constexpr int kChunkBlocks = 16;
  static constexpr bool kChunkedSums = true;  // a chunk is a partial-sum period: its size sets the bits
  static constexpr int kMaxCols = 8;
  static constexpr ImageLayout kLayout = image_layout(TensorType::kBF16, 16);
  static_assert(kLayout.block_bytes == kWeightBlockBytes && kLayout.block_elems == kStep);

  static void prep(const uint8_t* act_row, int64_t n, uint8_t* records, size_t block_stride) {
    for (int64_t b = 0; b * kStep < n; ++b) {
      Pairs::prep_block(act_row + b * kStep * 2, first_elements(n - b * kStep),
                        reinterpret_cast<Record*>(records + static_cast<size_t>(b) * block_stride));
    }
  }

  template <typename R>
  static void copy_pairs(const R& r, PackedPairBlock* out) {
    __m512i t[8];
    r.template dwords<8>(0, t);
    for (int g = 0; g < 8; ++g) _mm512_store_si512(out->pairs[g], t[g]);
  }

  static void pack(const uint8_t* w, const int32_t* offsets, int n_blocks, int64_t n_left, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedPairBlock*>(packed);
    pack_rows<kLayout, 2>(w, offsets, n_blocks, n_left, [&](const auto& r, int b) { copy_pairs(r, &out[b]); });
  }

  // An image block is a PackedPairBlock (the image is zero past the end of the rows): prefill
  // reads the image in place (RowsImage), with no copy.
  static constexpr bool kImageIsPacked = true;
  static_assert(16 * kLayout.body_bytes() == sizeof(PackedPairBlock) && kLayout.head_bytes + kLayout.tail_bytes == 0);

  // Where chunk_sums reads a block's pairs: the packed buffer, or (decode) the image itself.
  struct PackedSource {
    const PackedPairBlock* pb;
    __m512i pairs(int64_t b, int g) const { return _mm512_load_si512(pb[b].pairs[g]); }
    void prefetch(int64_t) const {}
  };
  struct ImageSource {
    GroupImage<kLayout> image;
    __m512i pairs(int64_t b, int g) const { return image.block(static_cast<int>(b)).dword(4 * g); }
    void prefetch(int64_t b) const { image.prefetch(static_cast<int>(b)); }
  };

  // The partial sums of blocks [b0, b1) (within one chunk) for G row groups and C columns.
  template <int C, int G, typename Source>
  static void chunk_sums(const ColumnTile<C>& tile, const Source (&src)[G], int64_t b0, int64_t b1,
                         __m512 (&p)[2][G][C]) {
#pragma GCC unroll 16
    for (int r = 0; r < G; ++r)
      for (int c = 0; c < C; ++c) p[0][r][c] = p[1][r][c] = _mm512_setzero_ps();
    for (int64_t b = b0; b < b1; ++b) {
      for (int r = 0; r < G; ++r) src[r].prefetch(b);
      tile.prefetch_records(b + 2, sizeof(Record));
      const auto* rec = reinterpret_cast<const Record*>(tile.act + static_cast<size_t>(b) * tile.act_block_stride);
#pragma GCC unroll 8
      for (int g = 0; g < kStep / 2; ++g) {  // columns innermost: 2 · G · C independent chains
        typename Pairs::Weights w[G];
        for (int r = 0; r < G; ++r) w[r] = Pairs::weights(src[r].pairs(b, g));
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c)
          for (int r = 0; r < G; ++r) p[g % 2][r][c] = Pairs::dot(p[g % 2][r][c], w[r], rec[c], g);
      }
    }
  }

  // One chunk of G packed row groups (group r's y at tile.y[c] + 16 r).
  template <int C, int G>
  static void compute_packed(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G], const PackedSource (&src)[G],
                             int n_blocks) {
    __m512 p[2][G][C];
    tile.prefetch_y(G);
    chunk_sums<C, G>(tile, src, 0, n_blocks, p);
    for (int r = 0; r < G; ++r) {
      const __mmask16 mask = static_cast<__mmask16>(lane_masks[r]);
      for (int c = 0; c < C; ++c) {
        const __m512 y = load_or_zero(tile.y[c] + 16 * r, mask, tile.first_chunk);
        _mm512_mask_storeu_ps(tile.y[c] + 16 * r, mask, Pairs::close(y, p[0][r][c], p[1][r][c]));
      }
    }
  }

  template <int C>
  static void compute(const ColumnTile<C>& tile, const uint8_t* packed, int n_blocks) {
    compute_packed<C, 1>(tile, {tile.lane_mask}, {PackedSource{reinterpret_cast<const PackedPairBlock*>(packed)}},
                         n_blocks);
  }

  // Prefill: two row groups per pass, each activation broadcast feeding both. 2 · 2 · C partial
  // sums: at C = 6 they would fit the 32 registers, but GCC spills; C = 5 measured 10-15% faster.
  static constexpr int kPairCols = 5;
  template <int C>
  static void compute_pair(const ColumnTile<C>& tile, uint32_t lane_mask_b, const uint8_t* packed_a,
                           const uint8_t* packed_b, int n_blocks) {
    compute_packed<C, 2>(tile, {tile.lane_mask, lane_mask_b},
                         {PackedSource{reinterpret_cast<const PackedPairBlock*>(packed_a)},
                          PackedSource{reinterpret_cast<const PackedPairBlock*>(packed_b)}},
                         n_blocks);
  }

  // Decode: straight from G groups' images, chunk after chunk, y kept in registers between chunks
  // (the same values the packed path stores and reloads). 3 · G · C accumulators.
  static constexpr bool kFusedImage = true;
  static constexpr int image_groups(int cols) { return cols <= 1 ? 4 : (cols <= 4 ? 2 : 1); }
  template <int C, int G>
  static void compute_image(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G],
                            const uint8_t* const (&groups)[G], int64_t n_blocks) {
    ImageSource src[G];
    for (int r = 0; r < G; ++r) src[r].image = GroupImage<kLayout>(groups[r], n_blocks, 0);
    __m512 y[G][C];
    for (int r = 0; r < G; ++r)
      for (int c = 0; c < C; ++c) y[r][c] = _mm512_setzero_ps();
    for (int64_t b0 = 0; b0 < n_blocks; b0 += kChunkBlocks) {
      const int64_t b1 = n_blocks - b0 < kChunkBlocks ? n_blocks : b0 + kChunkBlocks;
      __m512 p[2][G][C];
      chunk_sums<C, G>(tile, src, b0, b1, p);
      for (int r = 0; r < G; ++r)
        for (int c = 0; c < C; ++c) y[r][c] = Pairs::close(y[r][c], p[0][r][c], p[1][r][c]);
    }
    for (int r = 0; r < G; ++r) {
      const __mmask16 mask = static_cast<__mmask16>(lane_masks[r]);
      for (int c = 0; c < C; ++c) _mm512_mask_storeu_ps(tile.y[c] + 16 * r, mask, y[r][c]);
    }
  }
};

}  // namespace
}  // namespace hylo::kernels
