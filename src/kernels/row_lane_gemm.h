// The loop nest shared by the SIMD matmul kernels ("row lanes"): a vector lane holds one weight
// row, so a group of kLanes rows is multiplied with one activation column by broadcasting 4
// activation bytes into vpdpbusd (or its AVX2 equivalent) against 4 bytes of every row, or, for
// the float formats, one activation value into an FMA.
//
//   prep: every activation column re-laid as records [block][column] (once per call, or once
//         for all the calls that read them: RecordsKernel)
//   for each block of about 256 columns (their records stay in L2):
//     for each group of kLanes weight rows (the last one repeats its final row in spare lanes):
//       for each chunk of kChunkBlocks blocks along n:
//         pack: transpose the group's blocks into lane-interleaved, unpacked codes + scale vectors
//         for each group of up to kMaxCols columns of the block:
//           compute<C>: y[c][rows] (a vector) += the chunk's contribution, block after block
//
// Decode (at most kMaxCols columns) from the interleaved image: the formats whose image already
// holds the packed vectors (less a bias or a bit-field split: F::kFusedImage) compute straight from
// it, F::compute_image<C, G>, with no packed copy and up to 4 row groups per pass (one core keeps
// more memory streams in flight); the others pack one block at a time.
//
// Batch invariance: a lane's arithmetic never mixes with another lane's, the chunk loop only
// stores y and reloads it unchanged, and compute<C> performs for every column exactly the
// operations compute<1> performs. So y[c][r] depends only on row r, column c and n.
//
// Included only by ISA-specific sources: everything is in an anonymous namespace (each including
// translation unit gets its own copy), and it uses no library templates.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/quant.h"
#include "kernels/scratch.h"

namespace hylo::kernels {
namespace {

// What a format F provides (see avx512_q8.cpp for an example):
//   kLanes, kBlockElems, kWeightBlockBytes, kChunkBlocks, kMaxCols
//   kPackedBlockBytes: packed bytes of one block of kLanes rows
//   kActRecordBytes:   bytes of one column's activation record per block
//   static void prep(const uint8_t* act_row, int64_t n, uint8_t* records, size_t block_stride);
//   static void pack(const uint8_t* w, const int32_t* row_offsets, int n_blocks, int64_t n_left, uint8_t* packed);
// (n_left: elements of the row from the chunk's first block on; only the float formats, whose
// last block may be partial, use it.)
//   template <int C> static void compute(const ColumnTile<C>& tile, const uint8_t* packed, int n_blocks);
// and optionally:
//   kChunkedSums: compute's partial sums restart every chunk, so the chunk size is part of the
//                 arithmetic (the float formats)
//   kFusedImage + template <int C, int G> static void compute_image(tile, const uint32_t (&lane_masks)[G],
//                 const uint8_t* const (&groups)[G], int64_t n_blocks):
//                 compute<C> over all blocks straight from the images of G row groups (group r's y at
//                 tile.y[c] + r · kLanes), with image_groups(C): the largest G worth it for C columns
//   kFusedImageMaxCols: the most columns compute_image takes (default kMaxCols); tiles of more
//                 columns pack (for formats whose fused body spills registers at kMaxCols)
//   kImageIsPacked: the image's blocks are the packed blocks; prefill reads them in place
//   kPairCols + template <int C> static void compute_pair(tile, uint32_t lane_mask_b, packed_a, packed_b, n_blocks):
//                 compute<C> for two row groups at once (the second's y at tile.y[c] + kLanes), each
//                 activation broadcast feeding both: half the activation loads per multiply
//                 (prefill, tiles of up to kPairCols columns)
//
// The activations are re-laid once per call as records [block][column] (codes plus whatever side
// values the format wants precomputed), so a column tile reads one pointer plus constant offsets.
template <int C>
struct ColumnTile {
  const uint8_t* act;       // record of (the chunk's first block, the tile's first column)
  size_t act_block_stride;  // bytes from one block's records to the next
  float* y[C];              // y + c * ldy + first row of the group
  uint32_t lane_mask;       // valid rows of the group
  bool first_chunk;         // start from 0 instead of loading y

  // Prefill with many columns: one block's records lie act_block_stride (n_cols records) from the
  // last, too far for the hardware prefetcher, and y is [column][row], a line per column and
  // group; with a few hundred columns neither stays in L2 between tiles. Asking ahead keeps the
  // float kernels' FMAs fed (5-15% at 512 columns; the integer kernels measured no gain).
  void prefetch_records(int64_t b, int record_bytes) const {
    const char* p = reinterpret_cast<const char*>(act) + static_cast<size_t>(b) * act_block_stride;
    for (int i = 0; i < C * record_bytes; i += 64) __builtin_prefetch(p + i);
    if ((C * record_bytes) % 64 != 0) __builtin_prefetch(p + C * record_bytes - 1);  // records need not start a line
  }
  void prefetch_y(int groups) const {
    if (first_chunk) return;
    for (int c = 0; c < C; ++c)
      for (int r = 0; r < groups; ++r) __builtin_prefetch(y[c] + 16 * r);
  }
};

// Calls fn.template operator()<C>(tile) with the ColumnTile of `cols` columns (1 <= cols <= C).
template <typename F>
constexpr int fused_image_max_cols() {
  if constexpr (requires { F::kFusedImageMaxCols; }) {
    return F::kFusedImageMaxCols;
  } else {
    return F::kMaxCols;
  }
}

template <int C, typename Fn>
void with_column_tile(int cols, const uint8_t* act, size_t act_block_stride, float* y, size_t ldy, uint32_t lane_mask,
                      bool first, Fn&& fn) {
  if (cols != C) {
    if constexpr (C > 1) with_column_tile<C - 1>(cols, act, act_block_stride, y, ldy, lane_mask, first, fn);
    return;
  }
  ColumnTile<C> tile;
  tile.act = act;
  tile.act_block_stride = act_block_stride;
  for (int c = 0; c < C; ++c) tile.y[c] = y + static_cast<size_t>(c) * ldy;
  tile.lane_mask = lane_mask;
  tile.first_chunk = first;
  fn.template operator()<C>(tile);
}

// pack() and pack_image() for a format F that packs one block at a time, F::pack_block(reader,
// packed block), from either layout: the block loop written once for every format and ISA.
// BlockInPlace and GroupImage are the including ISA's readers (avx512_util.h / avx2_util.h, which
// every kernel source includes before this header).
template <typename F>
struct BlockPacker {
  static void pack(const uint8_t* w, const int32_t* offsets, int n_blocks, int64_t, uint8_t* packed) {
    for (int b = 0; b < n_blocks; ++b) {
      F::pack_block(BlockInPlace<F::kLayout>{w + static_cast<size_t>(b) * F::kWeightBlockBytes, offsets},
                    packed + static_cast<size_t>(b) * F::kPackedBlockBytes);
    }
  }
  static void pack_image(const uint8_t* group, int64_t n_blocks, int64_t b0, int nb, uint8_t* packed) {
    const GroupImage<F::kLayout> image(group, n_blocks, b0);
    for (int b = 0; b < nb; ++b) {
      image.prefetch(b);
      F::pack_block(image.block(b), packed + static_cast<size_t>(b) * F::kPackedBlockBytes);
    }
  }
};

// compute<C> and the fused decode of a format that computes through a source, one row group per
// pass: Derived::compute_from<C>(tile, source, n_blocks) with Derived::PackedSource{packed blocks}
// (its Block the packed block type) or Derived::ImageSource{the group's GroupImage}, which computes
// the packer's vectors in registers from the image (the same values, so the same bits).
template <typename Derived>
struct SourcedCompute {
  template <int C>
  static void compute(const ColumnTile<C>& tile, const uint8_t* packed, int n_blocks) {
    using Source = typename Derived::PackedSource;
    Derived::template compute_from<C>(tile, Source{reinterpret_cast<const typename Source::Block*>(packed)}, n_blocks);
  }
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

// Where a call's weight rows come from: the GGUF rows in place, or the interleaved image built
// once at load (interleave.h). Both hand the packer the same values, so the results are the same
// bits either way; the image only spares the transposing loads and keeps a group's bytes
// contiguous. (A format that supports images provides pack_image; see avx512_q8.cpp.)
template <typename F>
struct RowsInPlace {
  static constexpr bool kImage = false;
  const uint8_t* w = nullptr;
  size_t w_stride = 0;
  const uint8_t* group = nullptr;
  int32_t offsets[F::kLanes];  // spare lanes repeat the last row: valid memory, results dropped

  void start_group(int64_t r0, int rows) {
    for (int l = 0; l < F::kLanes; ++l) offsets[l] = static_cast<int32_t>((l < rows ? l : rows - 1) * w_stride);
    group = w + static_cast<size_t>(r0) * w_stride;
  }
  // Blocks b0 .. b0 + nb of the group, packed into `packed`; returns where they are.
  const uint8_t* pack(int64_t b0, int nb, int64_t n_left, uint8_t* packed) const {
    F::pack(group + static_cast<size_t>(b0) * F::kWeightBlockBytes, offsets, nb, n_left, packed);
    return packed;
  }
};

template <typename F>
struct RowsImage {
  static constexpr bool kImage = true;
  const uint8_t* image;  // the first group's image
  size_t group_bytes;    // F::kLayout.group_bytes(n)
  int64_t n_blocks;
  const uint8_t* group = nullptr;

  void start_group(int64_t r0, int) { group = image + static_cast<size_t>(r0 / F::kLanes) * group_bytes; }
  // The same from the image: a format whose image blocks are its packed blocks
  // (F::kImageIsPacked) is read in place, with no copy.
  const uint8_t* pack(int64_t b0, int nb, int64_t, uint8_t* packed) const {
    if constexpr (requires { F::kImageIsPacked; }) {
      return group + static_cast<size_t>(b0) * F::kPackedBlockBytes;
    } else {
      F::pack_image(group, n_blocks, b0, nb, packed);
      return packed;
    }
  }
};

// Rows r0.. in groups of kLanes, against columns [c_begin, c_end).
// `packed` holds two chunks: the second for the second group of a pair (F::kPairCols).
template <typename F, typename Rows>
void row_lane_column_block(int64_t n_blocks, int64_t n, Rows& src, int64_t n_rows, const uint8_t* act,
                           size_t act_block_stride, int64_t c_begin, int64_t c_end, float* y, size_t ldy,
                           uint8_t* packed) {
  constexpr int kLanes = F::kLanes;
  auto lanes_of = [&](int64_t r) {
    const int rows = n_rows - r < kLanes ? static_cast<int>(n_rows - r) : kLanes;
    return rows == 32 ? ~0u : (1u << rows) - 1;
  };
  for (int64_t r0 = 0; r0 < n_rows; r0 += kLanes) {
    const int rows = n_rows - r0 < kLanes ? static_cast<int>(n_rows - r0) : kLanes;
    const uint32_t lane_mask = lanes_of(r0);
    src.start_group(r0, rows);
    if constexpr (Rows::kImage && requires { F::kFusedImage; }) {
      // One column tile (decode, short verify batches): compute straight from the image, all
      // blocks in one pass, over up to 4 row groups at once. One core reaches the memory
      // bandwidth only with several streams in flight; per lane the operations are those of one
      // group, and of the chunked path (a chunk only stores y and reloads it unchanged), so the
      // same bits.
      if (c_end - c_begin <= fused_image_max_cols<F>()) {
        const int64_t groups_left = (n_rows - r0 + kLanes - 1) / kLanes;
        int groups = 1;
        with_column_tile<fused_image_max_cols<F>()>(
            static_cast<int>(c_end - c_begin), act + static_cast<size_t>(c_begin) * F::kActRecordBytes,
            act_block_stride, y + static_cast<size_t>(c_begin) * ldy + r0, ldy, lane_mask, true,
            [&]<int C>(const ColumnTile<C>& tile) {
              const auto run = [&]<int G>() {
                uint32_t masks[G];
                const uint8_t* images[G];
                for (int g = 0; g < G; ++g) {
                  masks[g] = lanes_of(r0 + g * kLanes);
                  images[g] = src.group + static_cast<size_t>(g) * src.group_bytes;
                }
                F::template compute_image<C, G>(tile, masks, images, n_blocks);
                groups = G;
              };
              constexpr int kMaxGroups = F::image_groups(C);
              if constexpr (kMaxGroups >= 4) {
                if (groups_left >= 4) return run.template operator()<4>();
              }
              if constexpr (kMaxGroups >= 2) {
                if (groups_left >= 2) return run.template operator()<2>();
              }
              run.template operator()<1>();
            });
        r0 += static_cast<int64_t>(groups - 1) * kLanes;
        continue;
      }
    }
    if constexpr (requires { F::kPairCols; }) {
      // Two row groups against many columns (prefill): both groups' chunks packed, then every
      // column tile multiplies both. Per lane the same operations as compute<C>, so the same bits.
      if (r0 + kLanes < n_rows && c_end - c_begin > F::kMaxCols) {
        Rows second = src;
        second.start_group(r0 + kLanes, n_rows - r0 - kLanes < kLanes ? static_cast<int>(n_rows - r0 - kLanes) : kLanes);
        const uint32_t lane_mask_b = lanes_of(r0 + kLanes);
        uint8_t* packed_b = packed + F::kChunkBlocks * F::kPackedBlockBytes;
        for (int64_t b0 = 0; b0 < n_blocks; b0 += F::kChunkBlocks) {
          const int nb = n_blocks - b0 < F::kChunkBlocks ? static_cast<int>(n_blocks - b0) : F::kChunkBlocks;
          const uint8_t* chunk_a = src.pack(b0, nb, n - b0 * F::kBlockElems, packed);
          const uint8_t* chunk_b = second.pack(b0, nb, n - b0 * F::kBlockElems, packed_b);
          const uint8_t* act_chunk = act + static_cast<size_t>(b0) * act_block_stride;
          for (int64_t c0 = c_begin; c0 < c_end; c0 += F::kPairCols) {
            const int cols = c_end - c0 < F::kPairCols ? static_cast<int>(c_end - c0) : F::kPairCols;
            with_column_tile<F::kPairCols>(cols, act_chunk + static_cast<size_t>(c0) * F::kActRecordBytes,
                                           act_block_stride,
                                           y + static_cast<size_t>(c0) * ldy + static_cast<size_t>(r0), ldy, lane_mask,
                                           b0 == 0, [&]<int C>(const ColumnTile<C>& tile) {
                                             F::template compute_pair<C>(tile, lane_mask_b, chunk_a, chunk_b, nb);
                                           });
          }
        }
        r0 += kLanes;  // the second group is done too
        continue;
      }
    }
    // One column tile from an image (decode): pack and compute block after block, so the packed
    // block stays in L1 and the next block's loads overlap this one's arithmetic. Chunks only
    // store y and reload it unchanged, so the chunk size changes no bits.
    // (Not for formats whose chunk is a partial-sum period, F::kChunkedSums.)
    constexpr bool kChunkFree = !requires { F::kChunkedSums; };
    const int chunk = kChunkFree && Rows::kImage && c_end - c_begin <= F::kMaxCols ? 1 : F::kChunkBlocks;
    for (int64_t b0 = 0; b0 < n_blocks; b0 += chunk) {
      const int nb = n_blocks - b0 < chunk ? static_cast<int>(n_blocks - b0) : chunk;
      const uint8_t* chunk_w = src.pack(b0, nb, n - b0 * F::kBlockElems, packed);
      const uint8_t* act_chunk = act + static_cast<size_t>(b0) * act_block_stride;
      for (int64_t c0 = c_begin; c0 < c_end; c0 += F::kMaxCols) {
        const int cols = c_end - c0 < F::kMaxCols ? static_cast<int>(c_end - c0) : F::kMaxCols;
        with_column_tile<F::kMaxCols>(
            cols, act_chunk + static_cast<size_t>(c0) * F::kActRecordBytes, act_block_stride,
            y + static_cast<size_t>(c0) * ldy + static_cast<size_t>(r0), ldy, lane_mask, b0 == 0,
            [&]<int C>(const ColumnTile<C>& tile) { F::template compute<C>(tile, chunk_w, nb); });
      }
    }
  }
}

// The activation records of n_cols columns, [block][column]: what every call of a product reads.
template <typename F>
size_t row_lane_records_bytes(int64_t n, int64_t n_cols) {
  const int64_t n_blocks = (n + F::kBlockElems - 1) / F::kBlockElems;
  return static_cast<size_t>(n_cols) * F::kActRecordBytes * static_cast<size_t>(n_blocks);
}

// Columns [c0, c1) of X into the records of n_cols columns (threads may prepare disjoint ranges).
template <typename F>
void row_lane_prepare(int64_t n, const void* x, size_t x_stride, int64_t c0, int64_t c1, int64_t n_cols,
                      void* records) {
  const size_t act_block_stride = static_cast<size_t>(n_cols) * F::kActRecordBytes;
  for (int64_t c = c0; c < c1; ++c) {
    F::prep(static_cast<const uint8_t*>(x) + static_cast<size_t>(c) * x_stride, n,
            static_cast<uint8_t*>(records) + static_cast<size_t>(c) * F::kActRecordBytes, act_block_stride);
  }
}

// The product of the rows with n_cols columns whose records are prepared.
template <typename F, typename Rows>
void row_lane_gemm_records(int64_t n, Rows& src, int64_t n_rows, const uint8_t* act, int64_t n_cols, float* y,
                           size_t ldy) {
  const int64_t n_blocks = (n + F::kBlockElems - 1) / F::kBlockElems;
  const size_t act_block_stride = static_cast<size_t>(n_cols) * F::kActRecordBytes;
  // Columns in blocks whose activation records stay in L2 (about 256 columns, a multiple of
  // kMaxCols); the weights are packed again for every block, a small cost at that ratio.
  constexpr int64_t kColumnBlock = F::kMaxCols * (256 / F::kMaxCols);
  alignas(64) uint8_t packed[2 * F::kChunkBlocks * F::kPackedBlockBytes];
  for (int64_t cb = 0; cb < n_cols; cb += kColumnBlock) {
    const int64_t cb_end = n_cols - cb < kColumnBlock ? n_cols : cb + kColumnBlock;
    row_lane_column_block<F>(n_blocks, n, src, n_rows, act, act_block_stride, cb, cb_end, y, ldy, packed);
  }
}

// One call with its own records (decode, and any call whose activations no other call reads).
template <typename F, typename Rows>
void row_lane_gemm_rows(int64_t n, Rows& src, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols, float* y,
                        size_t ldy) {
  auto* act = static_cast<uint8_t*>(thread_scratch(row_lane_records_bytes<F>(n, n_cols)));
  row_lane_prepare<F>(n, x, x_stride, 0, n_cols, n_cols, act);
  row_lane_gemm_records<F>(n, src, n_rows, act, n_cols, y, ldy);
}

template <typename F>
void row_lane_gemm(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                   int64_t n_cols, float* y, size_t ldy) {
  RowsInPlace<F> src;
  src.w = static_cast<const uint8_t*>(w);
  src.w_stride = w_stride;
  row_lane_gemm_rows<F>(n, src, n_rows, x, x_stride, n_cols, y, ldy);
}

// The same product from the interleaved image of the rows (interleave.h).
template <typename F>
void row_lane_gemm_image(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                         float* y, size_t ldy) {
  RowsImage<F> src{static_cast<const uint8_t*>(image), F::kLayout.group_bytes(n), F::kLayout.blocks(n)};
  row_lane_gemm_rows<F>(n, src, n_rows, x, x_stride, n_cols, y, ldy);
}

// The RecordsKernel of a format (quant.h): both readers of the rows from shared records.
template <typename F>
void row_lane_records_gemm(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* records,
                           int64_t n_cols, float* y, size_t ldy) {
  RowsInPlace<F> src;
  src.w = static_cast<const uint8_t*>(w);
  src.w_stride = w_stride;
  row_lane_gemm_records<F>(n, src, n_rows, static_cast<const uint8_t*>(records), n_cols, y, ldy);
}

template <typename F>
void row_lane_records_gemm_image(int64_t n, const void* image, int64_t n_rows, const void* records, int64_t n_cols,
                                 float* y, size_t ldy) {
  RowsImage<F> src{static_cast<const uint8_t*>(image), F::kLayout.group_bytes(n), F::kLayout.blocks(n)};
  row_lane_gemm_records<F>(n, src, n_rows, static_cast<const uint8_t*>(records), n_cols, y, ldy);
}

template <typename F>
constexpr RecordsKernel row_lane_records_kernel() {
  return {&row_lane_records_bytes<F>, &row_lane_prepare<F>, &row_lane_records_gemm<F>, &row_lane_records_gemm_image<F>};
}

}  // namespace
}  // namespace hylo::kernels
