#include "ops/matmul.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "base/check.h"
#include "ops/profile.h"

namespace hylo::ops {
namespace {

// Tasks split the output rows only: the kernels block the columns themselves, and every call
// re-packs its weight rows, so giving a call all columns amortises the packing best.
// Activations of at least this many columns (prefill, large batches) are re-laid into the
// kernel's records once, shared by every task that reads them, when more than one does: the
// row tasks of a product, and products of the same input (q/k/v, an expert's gate and up).
// Fewer columns (decode) keep the per-call records, hot in the calling thread's cache.
constexpr int64_t kSharedRecordsMinCols = 16;
constexpr int64_t kPrepareCols = 16;  // columns per prepare task

struct Task {
  int32_t job;
  int64_t r0, r1;  // output rows; all the job's columns
};

// The records of one input for one kernel, at `offset` in the arena.
struct SharedRecords {
  const ActRows* x;
  int64_t x_begin, n_cols;  // the rows of x they hold
  const kernels::RecordsKernel* kernel;
  int64_t n_tasks;
  size_t offset;
};

struct PrepareTask {
  int32_t records;
  int64_t c0, c1;
};

// Per calling thread, reused: decode and prefill call matmul hundreds of times a step.
struct MatmulPlan {
  std::vector<Task> tasks;
  std::vector<SharedRecords> records;
  std::vector<int32_t> job_records;  // index into records, or -1
  std::vector<PrepareTask> prepare;
  LargeVector<uint8_t> arena;
  uint8_t* arena_base(size_t bytes) {
    if (arena.size() < bytes + 64) arena.resize(bytes + 64);
    return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(arena.data()) + 63) / 64 * 64);
  }
};

int64_t job_cols(const MatmulJob& j) { return (j.x_end < 0 ? j.x->rows : j.x_end) - j.x_begin; }

// Which jobs read shared records; fills plan.records, plan.job_records and the arena offsets and
// returns the arena's size in bytes (0: none).
size_t plan_shared_records(std::span<const MatmulJob> jobs, MatmulPlan& plan) {
  plan.records.clear();
  plan.job_records.assign(jobs.size(), -1);
  for (const Task& t : plan.tasks) {
    const MatmulJob& j = jobs[t.job];
    const kernels::RecordsKernel* k = j.w->kernel->records;
    const int64_t n_cols = job_cols(j);
    if (k == nullptr || n_cols < kSharedRecordsMinCols) continue;
    int32_t& r = plan.job_records[t.job];
    if (r < 0) {
      for (size_t i = 0; i < plan.records.size() && r < 0; ++i) {
        const SharedRecords& o = plan.records[i];
        if (o.x == j.x && o.x_begin == j.x_begin && o.n_cols == n_cols && o.kernel == k) r = static_cast<int32_t>(i);
      }
      if (r < 0) {
        r = static_cast<int32_t>(plan.records.size());
        plan.records.push_back({j.x, j.x_begin, n_cols, k, 0, 0});
      }
    }
    ++plan.records[r].n_tasks;
  }
  size_t bytes = 0;
  for (SharedRecords& r : plan.records) {
    if (r.n_tasks < 2) continue;  // one reader: its own call prepares them, in its own cache
    r.offset = bytes;
    bytes += (r.kernel->bytes(r.x->n, r.n_cols) + 63) / 64 * 64;
  }
  for (int32_t& r : plan.job_records)
    if (r >= 0 && plan.records[r].n_tasks < 2) r = -1;
  return bytes;
}

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
  // Build tasks: row blocks sized so every thread gets several.
  int64_t total_rows = 0;
  for (const auto& j : jobs) total_rows += j.w->n_out;
  const int nth = pool.size();
  int64_t rows_per_task = std::max<int64_t>(16, total_rows / (nth * 8));
  rows_per_task = (rows_per_task + 15) / 16 * 16;
  // Named through a reference: the workers' lambdas must see the caller's plan, not a
  // thread_local of their own.
  thread_local MatmulPlan reused;
  MatmulPlan& plan = reused;
  std::vector<Task>& tasks = plan.tasks;
  tasks.clear();
  for (size_t ji = 0; ji < jobs.size(); ++ji) {
    const MatmulJob& j = jobs[ji];
    const int64_t n_cols = job_cols(j);
    HYLO_CHECK(j.w->kernel != nullptr && j.x->type == j.w->kernel->act && j.x->n == j.w->n_in && j.x_begin >= 0 &&
                   n_cols >= 0 && j.x_begin + n_cols <= j.x->rows,
               "matmul {}: activation rows [{}, {}) of {} x {} do not fit weight {} x {}", j.w->name, j.x_begin,
               j.x_begin + n_cols, j.x->rows, j.x->n, j.w->n_out, j.w->n_in);
    if (n_cols == 0) continue;
    for (int64_t r0 = 0; r0 < j.w->n_out; r0 += rows_per_task)
      tasks.push_back({static_cast<int32_t>(ji), r0, std::min(j.w->n_out, r0 + rows_per_task)});
  }

  // Shared records first, in one parallel region of column ranges.
  const size_t arena_bytes = plan_shared_records(jobs, plan);
  uint8_t* arena = arena_bytes > 0 ? plan.arena_base(arena_bytes) : nullptr;
  if (arena_bytes > 0) {
    plan.prepare.clear();
    for (size_t i = 0; i < plan.records.size(); ++i) {
      const SharedRecords& r = plan.records[i];
      if (r.n_tasks < 2) continue;
      for (int64_t c0 = 0; c0 < r.n_cols; c0 += kPrepareCols)
        plan.prepare.push_back({static_cast<int32_t>(i), c0, std::min(r.n_cols, c0 + kPrepareCols)});
    }
    pool.parallel_for(static_cast<int64_t>(plan.prepare.size()), 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const PrepareTask& p = plan.prepare[i];
        const SharedRecords& r = plan.records[p.records];
        r.kernel->prepare(r.x->n, r.x->row(r.x_begin), r.x->stride, p.c0, p.c1, r.n_cols, arena + r.offset);
      }
    });
  }

  auto run = [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const Task& task = tasks[t];
      const MatmulJob& j = jobs[task.job];
      float* y = j.y + task.r0;
      const int64_t rows = task.r1 - task.r0, cols = job_cols(j);
      const int32_t shared = plan.job_records[task.job];
      if (shared >= 0) {
        const uint8_t* records = arena + plan.records[shared].offset;
        const kernels::RecordsKernel& k = *plan.records[shared].kernel;
        if (j.w->image != nullptr) {
          k.gemm_image(j.w->n_in, j.w->image_group(task.r0), rows, records, cols, y, static_cast<size_t>(j.ldy));
        } else {
          k.gemm(j.w->n_in, j.w->row(task.r0), j.w->row_stride, rows, records, cols, y, static_cast<size_t>(j.ldy));
        }
      } else if (j.w->image != nullptr) {  // task rows start at multiples of 16, the group size
        j.w->kernel->gemm_image(j.w->n_in, j.w->image_group(task.r0), rows, j.x->row(j.x_begin), j.x->stride, cols, y,
                                static_cast<size_t>(j.ldy));
      } else {
        j.w->kernel->gemm(j.w->n_in, j.w->row(task.r0), j.w->row_stride, rows, j.x->row(j.x_begin), j.x->stride, cols,
                          y, static_cast<size_t>(j.ldy));
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
