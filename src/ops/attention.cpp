#include "ops/attention.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/vec.h"
#include "ops/profile.h"

namespace hylo::ops {
namespace {

struct Task {
  int32_t run;
  int32_t token;
  int32_t kv_head;
};

// Scores [group][n_pos] for the query heads of one KV head, softmax, weighted sum of V.
void attend_one(const AttentionRun& r, int32_t t, int kvh, const AttentionShape& s, std::vector<float>& scores) {
  const kernels::VecKernels& k = kernels::vec();
  const int group = s.n_head / s.n_kv_head;
  const int32_t n_pos = r.pos0 + t + 1;
  const int d = s.head_dim;
  scores.resize(static_cast<size_t>(group) * n_pos);
  const float* q = r.q + (static_cast<size_t>(t) * s.n_head + static_cast<size_t>(kvh) * group) * d;
  float* out = r.out + (static_cast<size_t>(t) * s.n_head + static_cast<size_t>(kvh) * group) * d;
  const bool f16 = r.cache->type() == TensorType::kF16;
  const int32_t pages = (n_pos + KvSeqCache::kPageTokens - 1) / KvSeqCache::kPageTokens;

  for (int32_t pg = 0; pg < pages; ++pg) {
    const int32_t base = pg * KvSeqCache::kPageTokens;
    const int32_t n = std::min(KvSeqCache::kPageTokens, n_pos - base);
    const void* kp = r.cache->k_page(pg, kvh);
    for (int g = 0; g < group; ++g) {
      const float* qg = q + static_cast<size_t>(g) * d;
      float* sg = scores.data() + static_cast<size_t>(g) * n_pos + base;
      if (f16) {
        const auto* kk = static_cast<const uint16_t*>(kp);
        for (int32_t i = 0; i < n; ++i) sg[i] = k.dot_f16(qg, kk + static_cast<size_t>(i) * d, d) * s.scale;
      } else {
        const auto* kk = static_cast<const float*>(kp);
        for (int32_t i = 0; i < n; ++i) sg[i] = k.dot(qg, kk + static_cast<size_t>(i) * d, d) * s.scale;
      }
    }
  }
  for (int g = 0; g < group; ++g) {
    float* sg = scores.data() + static_cast<size_t>(g) * n_pos;
    k.softmax(sg, n_pos);
    float* og = out + static_cast<size_t>(g) * d;
    std::memset(og, 0, sizeof(float) * d);
    for (int32_t pg = 0; pg < pages; ++pg) {
      const int32_t base = pg * KvSeqCache::kPageTokens;
      const int32_t n = std::min(KvSeqCache::kPageTokens, n_pos - base);
      const void* vp = r.cache->v_page(pg, kvh);
      if (f16) {
        const auto* vv = static_cast<const uint16_t*>(vp);
        for (int32_t i = 0; i < n; ++i) k.axpy_f16(sg[base + i], vv + static_cast<size_t>(i) * d, og, d);
      } else {
        const auto* vv = static_cast<const float*>(vp);
        for (int32_t i = 0; i < n; ++i) k.axpy(sg[base + i], vv + static_cast<size_t>(i) * d, og, d);
      }
    }
  }
}

}  // namespace

void attention(ThreadPool& pool, std::span<const AttentionRun> runs, const AttentionShape& shape) {
  PhaseTimer timer(Phase::kAttention);
  std::vector<Task> tasks;
  for (size_t r = 0; r < runs.size(); ++r)
    for (int32_t t = 0; t < runs[r].n_tokens; ++t)
      for (int h = 0; h < shape.n_kv_head; ++h) tasks.push_back({static_cast<int32_t>(r), t, h});
  // Later rows attend to more positions; interleaving keeps the dynamic chunks balanced.
  pool.parallel_for(static_cast<int64_t>(tasks.size()), 1, [&](int64_t b, int64_t e) {
    thread_local std::vector<float> scores;
    for (int64_t i = b; i < e; ++i) attend_one(runs[tasks[i].run], tasks[i].token, tasks[i].kv_head, shape, scores);
  });
}

}  // namespace hylo::ops
