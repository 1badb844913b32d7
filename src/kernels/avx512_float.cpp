// AVX-512 matmul for float weights: f32 (f32 activations), f16 (f16 activations) and, on CPUs
// without AVX512-BF16, bf16 (bf16 activations; with the extension, avx512_bf16.cpp). Row-lane
// kernels like the integer ones (row_lane_gemm.h): lane l of a vector is weight row l.
//
// f32 and f16: 16 weight rows widened to f32 and transposed per chunk, so that one vfmadd231ps
// with a broadcast activation value advances 16 outputs of a column by one element. Per output
// y[c][r], for each chunk of 256 elements in order: two partial sums, p_even and p_odd, each
// p = fma(w[r][k], x[c][k], p) over the chunk's even (odd) elements in order, then
// y = y + (p_even + p_odd); y starts at 0. (f16 values widen exactly, so every product is exact
// before its single rounding.) Padding beyond n multiplies zeros.
#include "kernels/avx512_float.h"

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/avx512_bf16_format.h"
#include "kernels/avx512_gemm.h"
#include "kernels/avx512_util.h"
#include "kernels/denormals.h"
#include "kernels/row_lane_gemm.h"
#include "kernels/simd.h"

namespace hylo::kernels {
namespace {

// One block of 16 rows: w[k] lane l = element k of row l, as f32.
struct alignas(64) PackedFloatBlock {
  float w[kStep][16];
};

// One column's block of activations, as f32.
struct alignas(64) ActRecordF {
  float a[kStep];
};

// Storage types. kBytes per element; widen16 turns the 16 elements of a row (64 or 32 bytes at
// base + offsets[l]) into 16 vectors w[k] (lane l = element k of row l); load16 widens the
// elements of one row selected by a mask (zeros elsewhere).
struct StorageF32 {
  static constexpr int kBytes = 4;
  template <typename R>
  static void widen16(const R& r, PackedFloatBlock* out) {
    __m512i t[16];
    r.template dwords<8>(0, t);
    r.template dwords<8>(32, t + 8);
    for (int k = 0; k < 16; ++k) _mm512_store_si512(out->w[k], t[k]);
  }
  static __m512 load16(const uint8_t* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
  // w[k] of widen16, from an image block.
  template <ImageLayout L>
  static __m512 element(const BlockImage<L>& r, int k) {
    return _mm512_castsi512_ps(r.dword(4 * k));
  }
};

struct StorageF16 {
  static constexpr int kBytes = 2;
  template <typename R>
  static void widen16(const R& r, PackedFloatBlock* out) {
    __m512i t[8];  // dword g: elements 2g (low half) and 2g + 1 (high half)
    r.template dwords<8>(0, t);
    for (int g = 0; g < 8; ++g) {
      _mm512_store_ps(out->w[2 * g], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(t[g])));
      _mm512_store_ps(out->w[2 * g + 1], _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(t[g], 16))));
    }
  }
  static __m512 load16(const uint8_t* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
  template <ImageLayout L>
  static __m512 element(const BlockImage<L>& r, int k) {
    const __m512i t = r.dword(4 * (k / 2));
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(k % 2 == 0 ? t : _mm512_srli_epi32(t, 16)));
  }
};

template <typename S, TensorType kType>
struct FloatFormat {
  static constexpr int kLanes = 16;
  static constexpr int kBlockElems = kStep;
  static constexpr int kWeightBlockBytes = kStep * S::kBytes;
  static constexpr int kPackedBlockBytes = sizeof(PackedFloatBlock);
  static constexpr int kActRecordBytes = sizeof(ActRecordF);
  static constexpr int kChunkBlocks = 16;
  static constexpr bool kChunkedSums = true;  // a chunk is a partial-sum period: its size sets the bits
  static constexpr int kMaxCols = 8;
  static constexpr ImageLayout kLayout = image_layout(kType, 16);
  static_assert(kLayout.block_bytes == kWeightBlockBytes && kLayout.block_elems == kStep);

  static void prep(const uint8_t* act_row, int64_t n, uint8_t* records, size_t block_stride) {
    for (int64_t b = 0; b * kStep < n; ++b) {
      auto* rec = reinterpret_cast<ActRecordF*>(records + static_cast<size_t>(b) * block_stride);
      _mm512_store_ps(rec->a, S::load16(act_row + b * kStep * S::kBytes, first_elements(n - b * kStep)));
    }
  }

  static void pack(const uint8_t* w, const int32_t* offsets, int n_blocks, int64_t n_left, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedFloatBlock*>(packed);
    pack_rows<kLayout, S::kBytes>(w, offsets, n_blocks, n_left, [&](const auto& r, int b) { S::widen16(r, &out[b]); });
  }

  // The image is zero past the end of the rows: no partial block to treat apart.
  static void pack_image(const uint8_t* group, int64_t n_blocks, int64_t b0, int nb, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedFloatBlock*>(packed);
    const GroupImage<kLayout> image(group, n_blocks, b0);
    for (int b = 0; b < nb; ++b) {
      image.prefetch(b);
      S::widen16(image.block(b), &out[b]);
    }
  }

  // Per chunk (kChunkBlocks blocks, a fixed 256 elements): even and odd elements in two partial
  // sums, then y += p_even + p_odd. Two chains per output keep the FMA pipeline busy when there is
  // only one column.
  template <int C>
  static void compute(const ColumnTile<C>& tile, const uint8_t* packed, int n_blocks) {
    compute_groups<C, 1>(tile, {tile.lane_mask}, {packed}, n_blocks);
  }

  // Prefill: two row groups per pass, each activation broadcast feeding both (half the loads per
  // FMA). 2 · 2 · C partial sums; C = 5 leaves GCC registers to spare.
  static constexpr int kPairCols = 5;
  template <int C>
  static void compute_pair(const ColumnTile<C>& tile, uint32_t lane_mask_b, const uint8_t* packed_a,
                           const uint8_t* packed_b, int n_blocks) {
    compute_groups<C, 2>(tile, {tile.lane_mask, lane_mask_b}, {packed_a, packed_b}, n_blocks);
  }

  // One chunk of G packed row groups (group r's y at tile.y[c] + 16 r); per lane the same
  // operations whatever G.
  template <int C, int G>
  static void compute_groups(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G],
                             const uint8_t* const (&packed)[G], int n_blocks) {
    __m512 p[2][G][C];  // (the unroll pragmas keep these in registers: k % 2 must be a constant)
#pragma GCC unroll 16
    for (int r = 0; r < G; ++r)
      for (int c = 0; c < C; ++c) p[0][r][c] = p[1][r][c] = _mm512_setzero_ps();
    tile.prefetch_y(G);
    for (int b = 0; b < n_blocks; ++b) {
      tile.prefetch_records(b + 2, sizeof(ActRecordF));
      const auto* rec = reinterpret_cast<const ActRecordF*>(tile.act + static_cast<size_t>(b) * tile.act_block_stride);
#pragma GCC unroll 16
      for (int k = 0; k < kStep; ++k) {  // columns innermost: 2 · G · C independent chains
        __m512 w[G];
        for (int r = 0; r < G; ++r) w[r] = _mm512_load_ps(reinterpret_cast<const PackedFloatBlock*>(packed[r])[b].w[k]);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) {
          const __m512 x = _mm512_set1_ps(rec[c].a[k]);
          for (int r = 0; r < G; ++r) p[k % 2][r][c] = _mm512_fmadd_ps(w[r], x, p[k % 2][r][c]);
        }
      }
    }
    for (int r = 0; r < G; ++r) {
      const __mmask16 mask = static_cast<__mmask16>(lane_masks[r]);
      for (int c = 0; c < C; ++c) {
        const __m512 y = load_or_zero(tile.y[c] + 16 * r, mask, tile.first_chunk);
        _mm512_mask_storeu_ps(tile.y[c] + 16 * r, mask, _mm512_add_ps(y, _mm512_add_ps(p[0][r][c], p[1][r][c])));
      }
    }
  }

  // The same arithmetic straight from G groups' images, chunk after chunk (y kept in registers
  // between chunks instead of stored and reloaded: the same values). 3 · G · C accumulators.
  static constexpr bool kFusedImage = true;
  static constexpr int image_groups(int cols) { return cols <= 1 ? 4 : (cols <= 4 ? 2 : 1); }
  template <int C, int G>
  static void compute_image(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G],
                            const uint8_t* const (&groups)[G], int64_t n_blocks) {
    GroupImage<kLayout> image[G];
    for (int r = 0; r < G; ++r) image[r] = GroupImage<kLayout>(groups[r], n_blocks, 0);
    __m512 y[G][C];
    for (int r = 0; r < G; ++r)
      for (int c = 0; c < C; ++c) y[r][c] = _mm512_setzero_ps();
    for (int64_t b0 = 0; b0 < n_blocks; b0 += kChunkBlocks) {
      const int64_t b1 = n_blocks - b0 < kChunkBlocks ? n_blocks : b0 + kChunkBlocks;
      __m512 p[2][G][C];
#pragma GCC unroll 16
      for (int r = 0; r < G; ++r)
        for (int c = 0; c < C; ++c) p[0][r][c] = p[1][r][c] = _mm512_setzero_ps();
      for (int64_t b = b0; b < b1; ++b) {
        for (int r = 0; r < G; ++r) image[r].prefetch(static_cast<int>(b));
        const auto* rec =
            reinterpret_cast<const ActRecordF*>(tile.act + static_cast<size_t>(b) * tile.act_block_stride);
#pragma GCC unroll 16
        for (int k = 0; k < kStep; ++k) {
          __m512 w[G];
          for (int r = 0; r < G; ++r) w[r] = S::element(image[r].block(static_cast<int>(b)), k);
#pragma GCC unroll 16
          for (int c = 0; c < C; ++c) {
            const __m512 x = _mm512_set1_ps(rec[c].a[k]);
            for (int r = 0; r < G; ++r) p[k % 2][r][c] = _mm512_fmadd_ps(w[r], x, p[k % 2][r][c]);
          }
        }
      }
      for (int r = 0; r < G; ++r)
        for (int c = 0; c < C; ++c) y[r][c] = _mm512_add_ps(y[r][c], _mm512_add_ps(p[0][r][c], p[1][r][c]));
    }
    for (int r = 0; r < G; ++r) {
      const __mmask16 mask = static_cast<__mmask16>(lane_masks[r]);
      for (int c = 0; c < C; ++c) _mm512_mask_storeu_ps(tile.y[c] + 16 * r, mask, y[r][c]);
    }
  }
};

// bf16 without AVX512-BF16: a pair as two FMAs, odd element first (avx512_bf16_format.h's order).
// The elements widen exactly (a bf16 is the top half of its f32), and the denormal rule of
// vdpbf16ps is the MXCSR's: DAZ reads denormal inputs as zeros of their sign, FTZ flushes denormal
// results to zeros of their sign. So plain FMAs give its bits, with no instruction per product to
// flush (denormals.h sets the modes for each call).
struct PairsFma {
  using Record = ActRecordF;  // the activations widened to f32 once, broadcast from memory
  struct Weights {
    __m512 even, odd;
  };
  static void prep_block(const uint8_t* bf16, __mmask16 elements, Record* rec) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(elements, bf16));
    _mm512_store_si512(rec->a, _mm512_slli_epi32(wide, 16));
  }
  static Weights weights(__m512i pairs) {
    return {_mm512_castsi512_ps(_mm512_slli_epi32(pairs, 16)),
            _mm512_castsi512_ps(_mm512_and_si512(pairs, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))))};
  }
  static __m512 dot(__m512 acc, const Weights& w, const Record& rec, int g) {
    acc = _mm512_fmadd_ps(w.odd, _mm512_set1_ps(rec.a[2 * g + 1]), acc);
    return _mm512_fmadd_ps(w.even, _mm512_set1_ps(rec.a[2 * g]), acc);
  }
  static __m512 close(__m512 y, __m512 p0, __m512 p1) { return _mm512_add_ps(y, _mm512_add_ps(p0, p1)); }
};
using Bf16Fma = DenormalsAsZeroKernel<FormatBF16<PairsFma>>;

}  // namespace

void avx512_gemm_f32(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                     int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FloatFormat<StorageF32, TensorType::kF32>>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_f32(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                           float* y, size_t ldy) {
  row_lane_gemm_image<FloatFormat<StorageF32, TensorType::kF32>>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_f32 = row_lane_records_kernel<FloatFormat<StorageF32, TensorType::kF32>>();

void avx512_gemm_f16(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                     int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FloatFormat<StorageF16, TensorType::kF16>>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_f16(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                           float* y, size_t ldy) {
  row_lane_gemm_image<FloatFormat<StorageF16, TensorType::kF16>>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_f16 = row_lane_records_kernel<FloatFormat<StorageF16, TensorType::kF16>>();

void avx512_gemm_bf16_fma(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                          int64_t n_cols, float* y, size_t ldy) {
  Bf16Fma::gemm(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx512_gemm_image_bf16_fma(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride,
                                int64_t n_cols, float* y, size_t ldy) {
  Bf16Fma::gemm_image(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx512_records_bf16_fma = Bf16Fma::records();

}  // namespace hylo::kernels
