// AVX2 matmul for float weights: f32, f16 and bf16 (activations in the same type). Row-lane
// kernels with 8 weight rows per ymm, widened to f32 at pack time.
//
// Per output the arithmetic is exactly the AVX-512 family's (see avx512_float.cpp), so both
// families return the same bits:
//   f32, f16: per chunk of 256 elements, even and odd elements accumulate by fma in two partial
//             sums, then y = y + (p_even + p_odd);
//   bf16:     vdpbf16ps's order: pairs of elements alternate between two partial sums, each pair
//             as two fmas (odd element first), denormal inputs read as zero and every result's
//             denormal flushed (the MXCSR modes DAZ and FTZ, set for the call); then
//             y = ftz(y + ftz(p_0 + p_1)).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/avx2_gemm.h"
#include "kernels/avx2_util.h"
#include "kernels/denormals.h"
#include "kernels/row_lane_gemm.h"
#include "kernels/simd.h"

namespace hylo::kernels {
namespace {

constexpr int kStep = 16;  // elements per block

struct alignas(32) PackedFloatBlock {
  float w[kStep][8];  // w[k] lane l = element k of row l
};

struct alignas(32) ActRecordF {
  float a[kStep];
};

inline void store(float* p, __m256 v) { _mm256_store_ps(p, v); }
inline void store(float* p, __m256i v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }

struct StorageF32 {
  static constexpr int kBytes = 4;
  static constexpr bool kPairs = false;  // the bf16 pair order
  template <typename R>
  static void widen16(const R& r, PackedFloatBlock* out) {
    __m256i t[16];
    r.template dwords<8>(0, t);
    r.template dwords<8>(32, t + 8);
    for (int k = 0; k < 16; ++k) store(out->w[k], t[k]);
  }
  // Element k of the 8 rows of an image block, as widen16 stores it.
  template <ImageLayout L>
  static __m256 element(const BlockImage<L>& r, int k) {
    return _mm256_castsi256_ps(r.dword(4 * k));
  }
  static void load_row(const uint8_t* p, int count, float* dst) { std::memcpy(dst, p, static_cast<size_t>(count) * 4); }
};

struct StorageF16 {
  static constexpr int kBytes = 2;
  static constexpr bool kPairs = false;
  template <typename R>
  static void widen16(const R& r, PackedFloatBlock* out) {
    __m256i t[8];  // dword g: elements 2g (low half) and 2g + 1 (high half)
    r.template dwords<8>(0, t);
    for (int g = 0; g < 8; ++g) {
      store(out->w[2 * g], widen_fp16(t[g]));
      store(out->w[2 * g + 1], widen_fp16(_mm256_srli_epi32(t[g], 16)));
    }
  }
  template <ImageLayout L>
  static __m256 element(const BlockImage<L>& r, int k) {
    const __m256i t = r.dword(4 * (k / 2));
    return widen_fp16(k % 2 == 0 ? t : _mm256_srli_epi32(t, 16));
  }
  static void load_row(const uint8_t* p, int count, float* dst) {
    for (int i = 0; i < count; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      dst[i] = fp16_scalar(h);
    }
  }
};

struct StorageBF16 {
  static constexpr int kBytes = 2;
  static constexpr bool kPairs = true;
  template <typename R>
  static void widen16(const R& r, PackedFloatBlock* out) {
    __m256i t[8];
    r.template dwords<8>(0, t);
    const __m256i upper = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
    for (int g = 0; g < 8; ++g) {
      store(out->w[2 * g], _mm256_slli_epi32(t[g], 16));  // denormals: DAZ reads them as zeros
      store(out->w[2 * g + 1], _mm256_and_si256(t[g], upper));
    }
  }
  template <ImageLayout L>
  static __m256 element(const BlockImage<L>& r, int k) {
    const __m256i t = r.dword(4 * (k / 2));
    return _mm256_castsi256_ps(k % 2 == 0 ? _mm256_slli_epi32(t, 16)
                                          : _mm256_and_si256(t, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
  }
  static void load_row(const uint8_t* p, int count, float* dst) {
    for (int i = 0; i < count; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      const uint32_t bits = (h & 0x7F80u) == 0 ? (h & 0x8000u) << 16 : static_cast<uint32_t>(h) << 16;  // denormal: 0
      std::memcpy(&dst[i], &bits, 4);
    }
  }
};

template <typename S, TensorType kType>
struct FloatFormat {
  static constexpr int kLanes = 8;
  static constexpr int kBlockElems = kStep;
  static constexpr int kWeightBlockBytes = kStep * S::kBytes;
  static constexpr int kPackedBlockBytes = sizeof(PackedFloatBlock);
  static constexpr int kActRecordBytes = sizeof(ActRecordF);
  static constexpr int kChunkBlocks = 16;  // 256 elements: the partial-sum period, as in AVX-512
  static constexpr bool kChunkedSums = true;  // a chunk is a partial-sum period: its size sets the bits
  static constexpr int kMaxCols = 6;
  static constexpr ImageLayout kLayout = image_layout(kType, 8);
  static_assert(kLayout.block_bytes == kWeightBlockBytes && kLayout.block_elems == kStep);

  static void prep(const uint8_t* act_row, int64_t n, uint8_t* records, size_t block_stride) {
    for (int64_t b = 0; b * kStep < n; ++b) {
      auto* rec = reinterpret_cast<ActRecordF*>(records + static_cast<size_t>(b) * block_stride);
      const int count = n - b * kStep >= kStep ? kStep : static_cast<int>(n - b * kStep);
      std::memset(rec->a, 0, sizeof(rec->a));
      S::load_row(act_row + b * kStep * S::kBytes, count, rec->a);
    }
  }

  static void pack(const uint8_t* w, const int32_t* offsets, int n_blocks, int64_t n_left, uint8_t* packed) {
    auto* out = reinterpret_cast<PackedFloatBlock*>(packed);
    for (int b = 0; b < n_blocks; ++b) {
      const int64_t left = n_left - static_cast<int64_t>(b) * kStep;
      const uint8_t* base = w + static_cast<size_t>(b) * kWeightBlockBytes;
      if (left >= kStep) {
        S::widen16(BlockInPlace<kLayout>{base, offsets}, &out[b]);
        continue;
      }
      alignas(32) uint8_t padded[8][kWeightBlockBytes];  // last, partial block, zero-padded
      int32_t padded_offsets[8];
      for (int l = 0; l < 8; ++l) {
        std::memset(padded[l], 0, kWeightBlockBytes);
        std::memcpy(padded[l], base + offsets[l], static_cast<size_t>(left) * S::kBytes);
        padded_offsets[l] = l * kWeightBlockBytes;
      }
      S::widen16(BlockInPlace<kLayout>{padded[0], padded_offsets}, &out[b]);
    }
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

  template <int C>
  static void compute(const ColumnTile<C>& tile, const uint8_t* packed, int n_blocks) {
    const __m256i mask = lane_mask_vector(tile.lane_mask);
    __m256 p[2][C];  // the unroll pragmas keep these in registers (k % 2 must be a constant)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) p[0][c] = p[1][c] = _mm256_setzero_ps();
    const auto* pb = reinterpret_cast<const PackedFloatBlock*>(packed);
    for (int b = 0; b < n_blocks; ++b) {
      const auto* rec = reinterpret_cast<const ActRecordF*>(tile.act + static_cast<size_t>(b) * tile.act_block_stride);
      if constexpr (S::kPairs) {
#pragma GCC unroll 8
        for (int k = 0; k < kStep; k += 2) {  // pair k / 2 into p[k / 2 % 2], odd element first
          const __m256 w_even = _mm256_load_ps(pb[b].w[k]), w_odd = _mm256_load_ps(pb[b].w[k + 1]);
#pragma GCC unroll 8
          for (int c = 0; c < C; ++c) {
            __m256& s = p[k / 2 % 2][c];
            s = _mm256_fmadd_ps(w_odd, _mm256_set1_ps(rec[c].a[k + 1]), s);  // flushed by FTZ
            s = _mm256_fmadd_ps(w_even, _mm256_set1_ps(rec[c].a[k]), s);
          }
        }
      } else {
#pragma GCC unroll 16
        for (int k = 0; k < kStep; ++k) {
          const __m256 w = _mm256_load_ps(pb[b].w[k]);
#pragma GCC unroll 8
          for (int c = 0; c < C; ++c) p[k % 2][c] = _mm256_fmadd_ps(w, _mm256_set1_ps(rec[c].a[k]), p[k % 2][c]);
        }
      }
    }
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const __m256 y = load_or_zero(tile.y[c], mask, tile.first_chunk);
      store_masked(tile.y[c], mask, _mm256_add_ps(y, _mm256_add_ps(p[0][c], p[1][c])));
    }
  }

  // Decode: compute's arithmetic straight from G groups' images, chunk after chunk (y kept in
  // registers between chunks instead of stored and reloaded: the same values), with no widened
  // copy of each block. 3 · G · C accumulators of the 16 registers: two groups for one column,
  // one for up to 4.
  static constexpr bool kFusedImage = true;
  static constexpr int kFusedImageMaxCols = 4;
  static constexpr int image_groups(int cols) { return cols <= 1 ? 2 : 1; }
  template <int C, int G>
  static void compute_image(const ColumnTile<C>& tile, const uint32_t (&lane_masks)[G],
                            const uint8_t* const (&groups)[G], int64_t n_blocks) {
    GroupImage<kLayout> image[G];
    for (int r = 0; r < G; ++r) image[r] = GroupImage<kLayout>(groups[r], n_blocks, 0);
    __m256 y[G][C];
    for (int r = 0; r < G; ++r)
      for (int c = 0; c < C; ++c) y[r][c] = _mm256_setzero_ps();
    for (int64_t b0 = 0; b0 < n_blocks; b0 += kChunkBlocks) {
      const int64_t b1 = n_blocks - b0 < kChunkBlocks ? n_blocks : b0 + kChunkBlocks;
      __m256 p[2][G][C];
#pragma GCC unroll 8
      for (int r = 0; r < G; ++r)
        for (int c = 0; c < C; ++c) p[0][r][c] = p[1][r][c] = _mm256_setzero_ps();
      for (int64_t b = b0; b < b1; ++b) {
        for (int r = 0; r < G; ++r) image[r].prefetch(static_cast<int>(b));
        const auto* rec =
            reinterpret_cast<const ActRecordF*>(tile.act + static_cast<size_t>(b) * tile.act_block_stride);
        if constexpr (S::kPairs) {
#pragma GCC unroll 8
          for (int k = 0; k < kStep; k += 2) {  // pair k / 2 into p[k / 2 % 2], odd element first
            __m256 w_even[G], w_odd[G];
            for (int r = 0; r < G; ++r) {
              w_even[r] = S::element(image[r].block(static_cast<int>(b)), k);
              w_odd[r] = S::element(image[r].block(static_cast<int>(b)), k + 1);
            }
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c)
              for (int r = 0; r < G; ++r) {
                __m256& s = p[k / 2 % 2][r][c];
                s = _mm256_fmadd_ps(w_odd[r], _mm256_set1_ps(rec[c].a[k + 1]), s);
                s = _mm256_fmadd_ps(w_even[r], _mm256_set1_ps(rec[c].a[k]), s);
              }
          }
        } else {
#pragma GCC unroll 16
          for (int k = 0; k < kStep; ++k) {
            __m256 w[G];
            for (int r = 0; r < G; ++r) w[r] = S::element(image[r].block(static_cast<int>(b)), k);
#pragma GCC unroll 8
            for (int c = 0; c < C; ++c) {
              const __m256 x = _mm256_set1_ps(rec[c].a[k]);
              for (int r = 0; r < G; ++r) p[k % 2][r][c] = _mm256_fmadd_ps(w[r], x, p[k % 2][r][c]);
            }
          }
        }
      }
      for (int r = 0; r < G; ++r)
        for (int c = 0; c < C; ++c) y[r][c] = _mm256_add_ps(y[r][c], _mm256_add_ps(p[0][r][c], p[1][r][c]));
    }
    for (int r = 0; r < G; ++r) {
      const __m256i mask = lane_mask_vector(lane_masks[r]);
      for (int c = 0; c < C; ++c) store_masked(tile.y[c] + 8 * r, mask, y[r][c]);
    }
  }
};

}  // namespace

void avx2_gemm_f32(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                   int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FloatFormat<StorageF32, TensorType::kF32>>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_f32(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                         float* y, size_t ldy) {
  row_lane_gemm_image<FloatFormat<StorageF32, TensorType::kF32>>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_f32 = row_lane_records_kernel<FloatFormat<StorageF32, TensorType::kF32>>();

void avx2_gemm_f16(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                   int64_t n_cols, float* y, size_t ldy) {
  row_lane_gemm<FloatFormat<StorageF16, TensorType::kF16>>(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_f16(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                         float* y, size_t ldy) {
  row_lane_gemm_image<FloatFormat<StorageF16, TensorType::kF16>>(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_f16 = row_lane_records_kernel<FloatFormat<StorageF16, TensorType::kF16>>();

namespace {
using Bf16 = DenormalsAsZeroKernel<FloatFormat<StorageBF16, TensorType::kBF16>>;
}  // namespace

void avx2_gemm_bf16(int64_t n, const void* w, size_t w_stride, int64_t n_rows, const void* x, size_t x_stride,
                    int64_t n_cols, float* y, size_t ldy) {
  Bf16::gemm(n, w, w_stride, n_rows, x, x_stride, n_cols, y, ldy);
}

void avx2_gemm_image_bf16(int64_t n, const void* image, int64_t n_rows, const void* x, size_t x_stride, int64_t n_cols,
                          float* y, size_t ldy) {
  Bf16::gemm_image(n, image, n_rows, x, x_stride, n_cols, y, ldy);
}

constexpr RecordsKernel avx2_records_bf16 = Bf16::records();

}  // namespace hylo::kernels
