#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/vec.h"
#include "ops/profile.h"

namespace hylo::ops {
namespace {

// Queries per task: a block of tokens of one run, all query heads of one KV head.
constexpr int64_t kQueryBlock = 64;

struct Task {
  int32_t run;
  int32_t kv_head;
  int64_t t0, t1;  // token range within the run
};

// Per-thread buffers, grown to the largest task seen.
struct Scratch {
  std::vector<float> q, kt, v, s, o, m, l, corr;
};

// Flash-style attention of one task: the keys are visited page by page (positions ascending);
// for each page S = scale·Q·Kᵀ, causal mask, running max / sum, O = corr·O + P·V. A row's result
// depends only on its own query and keys: pages or keys beyond its position are masked to exactly
// zero weight, so the row gives the same bits in any block, alone or batched.
void attend(const AttentionRun& r, const Task& task, const AttentionShape& s, Scratch& w) {
  const kernels::VecKernels& K = kernels::vec();
  const int group = s.n_head / s.n_kv_head;
  const int64_t d = s.head_dim, P = KvSeqCache::kPageTokens;
  const int64_t n_tok = task.t1 - task.t0, rows = n_tok * group;
  w.q.resize(rows * d);
  w.o.assign(rows * d, 0.0f);
  w.m.assign(rows, -INFINITY);
  w.l.assign(rows, 0.0f);
  w.corr.resize(rows);
  w.kt.resize(d * P);
  w.v.resize(P * d);
  w.s.resize(rows * P);
  // Row i·group + g is the query of token t0 + i, head kv_head·group + g.
  for (int64_t i = 0; i < n_tok; ++i)
    std::memcpy(w.q.data() + i * group * d,
                r.q + ((task.t0 + i) * s.n_head + static_cast<int64_t>(task.kv_head) * group) * d,
                sizeof(float) * group * d);
  const bool f16 = r.cache->type() == TensorType::kF16;
  const int64_t last_pos = r.pos0 + task.t1 - 1;
  const int64_t cached = r.cache->size();
  for (int64_t base = 0; base <= last_pos; base += P) {
    const int64_t n = std::min(P, std::min(last_pos + 1, cached) - base);  // valid keys in this page
    const int32_t page = static_cast<int32_t>(base / P);
    // Keys transposed to [d][n] and values to [n][d], in f32.
    const void* kp = r.cache->k_page(page, task.kv_head);
    const void* vp = r.cache->v_page(page, task.kv_head);
    if (f16) {
      const auto* k16 = static_cast<const uint16_t*>(kp);
      thread_local std::vector<float> row;
      row.resize(d);
      for (int64_t j = 0; j < n; ++j) {
        K.f16_to_f32(k16 + j * d, row.data(), d);
        for (int64_t c = 0; c < d; ++c) w.kt[c * n + j] = row[c];
      }
      K.f16_to_f32(static_cast<const uint16_t*>(vp), w.v.data(), n * d);
    } else {
      const auto* k32 = static_cast<const float*>(kp);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t c = 0; c < d; ++c) w.kt[c * n + j] = k32[j * d + c];
      std::memcpy(w.v.data(), vp, sizeof(float) * n * d);
    }
    K.gemm(rows, n, d, s.scale, w.q.data(), d, w.kt.data(), n, 0.0f, w.s.data(), n);
    for (int64_t row = 0; row < rows; ++row) {
      float* sr = w.s.data() + row * n;
      const int64_t pos = r.pos0 + task.t0 + row / group;
      const int64_t visible = std::clamp<int64_t>(pos + 1 - base, 0, n);
      std::fill(sr + visible, sr + n, -INFINITY);
      float mx = w.m[row];
      for (int64_t j = 0; j < visible; ++j) mx = std::max(mx, sr[j]);
      if (mx == -INFINITY) {  // nothing visible yet (cannot happen for row's own page)
        w.corr[row] = 1.0f;
        std::fill(sr, sr + n, 0.0f);
        continue;
      }
      for (int64_t j = 0; j < n; ++j) sr[j] -= mx;
      K.exp(sr, sr, n);  // masked keys: exp(-inf) = 0
      float sum = 0.0f;
      for (int64_t j = 0; j < visible; ++j) sum += sr[j];
      w.corr[row] = std::exp(w.m[row] - mx);
      w.l[row] = w.l[row] * w.corr[row] + sum;
      w.m[row] = mx;
      K.scale(w.o.data() + row * d, w.corr[row], w.o.data() + row * d, d);
    }
    K.gemm(rows, d, n, 1.0f, w.s.data(), n, w.v.data(), d, 1.0f, w.o.data(), d);
  }
  for (int64_t i = 0; i < n_tok; ++i)
    for (int g = 0; g < group; ++g) {
      const int64_t row = i * group + g;
      K.scale(w.o.data() + row * d, 1.0f / w.l[row],
              r.out + ((task.t0 + i) * s.n_head + static_cast<int64_t>(task.kv_head) * group + g) * d, d);
    }
}

}  // namespace

void attention(ThreadPool& pool, std::span<const AttentionRun> runs, const AttentionShape& shape) {
  PhaseTimer timer(Phase::kAttention);
  std::vector<Task> tasks;
  for (size_t r = 0; r < runs.size(); ++r)
    for (int64_t t0 = 0; t0 < runs[r].n_tokens; t0 += kQueryBlock)
      for (int h = 0; h < shape.n_kv_head; ++h)
        tasks.push_back({static_cast<int32_t>(r), h, t0, std::min(runs[r].n_tokens, t0 + kQueryBlock)});
  // Later blocks attend to more keys: hand them out first so the threads finish together.
  std::stable_sort(tasks.begin(), tasks.end(), [&](const Task& a, const Task& b) {
    return runs[a.run].pos0 + a.t1 > runs[b.run].pos0 + b.t1;
  });
  pool.parallel_for(static_cast<int64_t>(tasks.size()), 1, [&](int64_t b, int64_t e) {
    thread_local Scratch scratch;
    for (int64_t i = b; i < e; ++i) attend(runs[tasks[i].run], tasks[i], shape, scratch);
  });
}

}  // namespace hylo::ops
