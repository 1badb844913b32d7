// Matrix products of weights with batches of activation rows, split over the thread pool.
// Work is divided over output rows and column blocks only, never over the reduction, so each
// output element comes from one kernel call with a fixed operation order (batch invariance).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/huge_pages.h"
#include "base/thread_pool.h"
#include "ops/weights.h"

namespace hylo::ops {

// Activation rows converted to a kernel's activation format (q8_0, q8_K, f16, ...).
struct ActRows {
  TensorType type = TensorType::kF32;
  int64_t n = 0;      // elements per row
  int64_t rows = 0;
  size_t stride = 0;  // bytes per row
  LargeVector<uint8_t> data;
  const uint8_t* row(int64_t r) const { return data.data() + static_cast<size_t>(r) * stride; }
};

// x: [rows][n] f32 with row stride x_stride floats.
void convert_rows(ThreadPool& pool, const kernels::MatmulKernel& kernel, const float* x, int64_t rows, int64_t n,
                  int64_t x_stride, ActRows* out);

// One product of a batched call: y[t * ldy + o] = W[o] · x[x_begin + t], t < x_end - x_begin,
// o < W.n_out. The rows of x default to all of them; a range lets products share one buffer
// (each routed expert reads its tokens' rows of one gathered batch).
struct MatmulJob {
  const Weight* w;
  const ActRows* x;
  float* y;
  int64_t ldy;
  int64_t x_begin = 0;
  int64_t x_end = -1;  // -1: x->rows
};

// Runs all jobs in one parallel region (one barrier for e.g. the q, k, v projections).
void matmul(ThreadPool& pool, std::span<const MatmulJob> jobs);

// Converts x with W's kernel (into scratch) and multiplies: y = W·x, x: [rows][W.n_in], y: [rows][W.n_out].
void matmul(ThreadPool& pool, const Weight& w, const float* x, int64_t rows, float* y, ActRows* scratch);

}  // namespace hylo::ops
