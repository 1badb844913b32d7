#include "ops/matmul.h"

#include <algorithm>

#include "base/check.h"
#include "ops/profile.h"

namespace hylo::ops {
namespace {

// Tasks split the output rows only: the kernels block the columns themselves, and every call
// re-packs its weight rows, so giving a call all columns amortises the packing best.
constexpr int64_t kColBlock = 1 << 30;

struct Task {
  int32_t job;
  int64_t r0, r1, c0, c1;
};

}  // namespace

void convert_rows(ThreadPool& pool, const kernels::MatmulKernel& kernel, const float* x, int64_t rows, int64_t n,
                  int64_t x_stride, ActRows* out) {
  PhaseTimer timer(Phase::kMatmul);
  out->type = kernel.act;
  out->n = n;
  out->rows = rows;
  out->stride = row_bytes(kernel.act, static_cast<uint64_t>(n));
  const size_t need = out->stride * static_cast<size_t>(rows);
  if (out->data.size() < need) out->data.resize(need);
  auto fn = [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) kernel.quantize_act(x + r * x_stride, out->data.data() + r * out->stride, n);
  };
  if (rows * n < 16384) {
    fn(0, rows);
  } else {
    pool.parallel_for(rows, 1, fn);
  }
}

void matmul(ThreadPool& pool, std::span<const MatmulJob> jobs) {
  PhaseTimer timer(Phase::kMatmul);
  // Build tasks: row blocks sized so every thread gets several, column blocks of kColBlock.
  int64_t total_rows = 0;
  for (const auto& j : jobs) total_rows += j.w->n_out;
  const int nth = pool.size();
  int64_t rows_per_task = std::max<int64_t>(16, total_rows / (nth * 8));
  rows_per_task = (rows_per_task + 15) / 16 * 16;
  // Reused (decode calls this hundreds of times a token). Named through a reference: the workers'
  // lambda must see the caller's list, not a thread_local of their own.
  thread_local std::vector<Task> reused;
  std::vector<Task>& tasks = reused;
  tasks.clear();
  for (size_t ji = 0; ji < jobs.size(); ++ji) {
    const MatmulJob& j = jobs[ji];
    HYLO_CHECK(j.w->kernel != nullptr && j.x->type == j.w->kernel->act && j.x->n == j.w->n_in,
               "matmul {}: activation {} x {} does not fit weight {} x {}", j.w->name, j.x->rows, j.x->n, j.w->n_out,
               j.w->n_in);
    for (int64_t c0 = 0; c0 < j.x->rows; c0 += kColBlock)
      for (int64_t r0 = 0; r0 < j.w->n_out; r0 += rows_per_task)
        tasks.push_back({static_cast<int32_t>(ji), r0, std::min(j.w->n_out, r0 + rows_per_task), c0,
                         std::min(j.x->rows, c0 + kColBlock)});
  }
  auto run = [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const Task& task = tasks[t];
      const MatmulJob& j = jobs[task.job];
      float* y = j.y + task.c0 * j.ldy + task.r0;
      if (j.w->image != nullptr) {  // task rows start at multiples of 16, the group size
        j.w->kernel->gemm_image(j.w->n_in, j.w->image_group(task.r0), task.r1 - task.r0, j.x->row(task.c0), j.x->stride,
                                task.c1 - task.c0, y, static_cast<size_t>(j.ldy));
      } else {
        j.w->kernel->gemm(j.w->n_in, j.w->row(task.r0), j.w->row_stride, task.r1 - task.r0, j.x->row(task.c0),
                          j.x->stride, task.c1 - task.c0, y, static_cast<size_t>(j.ldy));
      }
    }
  };
  pool.parallel_for(static_cast<int64_t>(tasks.size()), 1, run);
}

void matmul(ThreadPool& pool, const Weight& w, const float* x, int64_t rows, float* y, ActRows* scratch) {
  convert_rows(pool, *w.kernel, x, rows, w.n_in, w.n_in, scratch);
  const MatmulJob job{&w, scratch, y, w.n_out};
  matmul(pool, std::span<const MatmulJob>(&job, 1));
}

}  // namespace hylo::ops
