#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/check.h"
#include "kernels/quant.h"
#include "kernels/vec.h"
#include "ops/profile.h"

// Attention is computed flash-style in two nested folds, both fixed by absolute positions:
//  * keys are cut into splits of kSplitPages pages (2,048 positions); inside a split the pages are
//    folded in order with a running max / sum (online softmax);
//  * the splits' partial results are merged in order.
// Decode rows (a run of a few tokens) compute their splits on different threads and merge them
// afterwards; prefill blocks compute them one after another. The arithmetic is the same either
// way, and keys past a row's position get exactly zero weight, so a row's result depends only on
// its own query and its sequence's keys: the same bits in any batch, alone or under load.

namespace hylo::ops {
namespace {

constexpr int64_t kQueryBlock = 64;  // tokens of one run per task
constexpr int64_t kSplitPages = 8;   // pages per key split
constexpr int64_t kParallelSplitMaxTokens = 4;  // runs this short spread their splits over threads

// Per-row online-softmax state over some keys: max, sum of weights, unnormalised output.
struct Partial {
  std::vector<float> m, l, o;  // [rows], [rows], [rows][d]
  void reset(int64_t rows, int64_t d) {
    m.assign(rows, -INFINITY);
    l.assign(rows, 0.0f);
    o.assign(rows * d, 0.0f);
  }
};

struct Scratch {
  std::vector<float> q, kt, v, s;  // queries, widened keys (transposed) and values, scores
  Partial part, acc;
};

struct Block {
  int32_t run;
  int32_t kv_head;
  int64_t t0, t1;  // token range within the run
  int64_t n_splits;
};

int64_t split_keys() { return kSplitPages * KvSeqCache::kPageTokens; }

// n cache elements of `type` to f32 (vector kernels with the reference dequantizers' bits, which
// the tests pin, for the quantized types).
void load_rows(TensorType type, const void* src, float* dst, int64_t n) {
  const kernels::VecKernels& K = kernels::vec();
  if (type == TensorType::kF32)
    std::memcpy(dst, src, sizeof(float) * n);
  else if (type == TensorType::kF16)
    K.f16_to_f32(static_cast<const uint16_t*>(src), dst, n);
  else if (type == TensorType::kQ8_0)
    K.dequantize_q8_0(src, dst, n);
  else if (type == TensorType::kQ4_0)
    K.dequantize_q4_0(src, dst, n);
  else
    kernels::dequantize_row(type, src, dst, n);
}

// The transposed keys' row stride: a page plus 16 floats. The product keeps a stripe of 32 of
// their columns in L1; at a stride of exactly 1 KiB its rows would fall in 4 of the 64 sets and
// evict each other.
constexpr int64_t kKeyStride = KvSeqCache::kPageTokens + 16;

constexpr int64_t kStripe = KvSeqCache::kStripe;

// Byte size of one element of a striped (float) cache type.
size_t elem_bytes(TensorType type) { return tensor_type_info(type).block_bytes; }

// rows × cols elements of a float cache type (row stride ldx) to f32 (row stride ldy).
void widen_rows(TensorType type, const void* src, int64_t rows, int64_t cols, int64_t ldx, float* dst, int64_t ldy) {
  if (type == TensorType::kF16) {
    kernels::vec().f16_to_f32_rows(static_cast<const uint16_t*>(src), rows, cols, ldx, dst, ldy);
    return;
  }
  for (int64_t i = 0; i < rows; ++i)
    load_rows(type, static_cast<const uint8_t*>(src) + i * ldx * elem_bytes(type), dst + i * ldy, cols);
}

// The page's first n keys of one head into w.kt transposed: [d][kKeyStride]. A float cache holds
// them in stripes of kStripe positions, already transposed; a quantized one as [n][d] rows.
void load_keys(const KvSeqCache& cache, const void* src, int64_t n, int64_t d, Scratch& w) {
  const TensorType type = cache.type_k();
  if (!cache.keys_striped()) {  // q8_0 or q4_0 rows: dequantized and transposed in one pass
    HYLO_CHECK(type == TensorType::kQ8_0 || type == TensorType::kQ4_0);
    const kernels::VecKernels& K = kernels::vec();
    (type == TensorType::kQ8_0 ? K.transpose_q8_0 : K.transpose_q4_0)(src, n, d, w.kt.data(), kKeyStride);
    return;
  }
  for (int64_t j = 0; j < n; j += kStripe)
    widen_rows(type, static_cast<const uint8_t*>(src) + j * d * elem_bytes(type), d, std::min(kStripe, n - j), kStripe,
               w.kt.data() + j, kKeyStride);
}

// Values are multiplied in stripes of kStripe columns, each stored contiguous: stripe c0 of the
// page is [n][width] at w.v + c0 · P. The product then streams one stripe in order from L1
// (60–62% of the FMA peak in a microbenchmark against 35–43% from [n][d] rows). A float cache
// stores them so already.
void load_values(const KvSeqCache& cache, const void* src, int64_t n, int64_t d, Scratch& w) {
  const TensorType type = cache.type_v();
  const int64_t P = KvSeqCache::kPageTokens;
  if (!cache.values_striped()) {  // quantized rows (q8_0, q4_0): each block is one stripe's row
    const TensorTypeInfo& info = tensor_type_info(type);
    HYLO_CHECK(info.block_elems == kStripe);
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c0 = 0; c0 < d; c0 += kStripe)
        load_rows(type, static_cast<const uint8_t*>(src) + (j * d + c0) / kStripe * info.block_bytes,
                  w.v.data() + c0 * P + j * kStripe, kStripe);
    return;
  }
  for (int64_t c0 = 0; c0 < d; c0 += kStripe) {
    const int64_t width = std::min(kStripe, d - c0);
    load_rows(type, static_cast<const uint8_t*>(src) + c0 * P * elem_bytes(type), w.v.data() + c0 * P, n * width);
  }
}

// Decode multiplies an f32 or f16 cache in place, reading each key and value once, in order (a
// token's query heads of one KV head are one tile of rows). Longer runs reuse every page many
// times and widen it into scratch once. gemm and gemm_f16 give the same bits, so both agree.
constexpr int64_t kInPlaceMaxTokens = 4;

bool in_place_type(TensorType type) { return type == TensorType::kF16 || type == TensorType::kF32; }

// C = alpha · A · B + beta · C with B in the cache's f16 or f32.
void product(TensorType type, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const void* b,
             int64_t ldb, float beta, float* c, int64_t ldc) {
  const kernels::VecKernels& K = kernels::vec();
  if (type == TensorType::kF16)
    K.gemm_f16(m, n, k, alpha, a, lda, static_cast<const uint16_t*>(b), ldb, beta, c, ldc);
  else
    K.gemm(m, n, k, alpha, a, lda, static_cast<const float*>(b), ldb, beta, c, ldc);
}

// rows × n scores S = scale · Q · Kᵀ over the page's first n keys.
void page_scores(const KvSeqCache& cache, const void* kp, int64_t rows, int64_t n, int64_t d, float scale,
                 bool in_place, Scratch& w) {
  const TensorType type = cache.type_k();
  if (in_place && in_place_type(type)) {
    for (int64_t j = 0; j < n; j += kStripe)
      product(type, rows, std::min(kStripe, n - j), d, scale, w.q.data(), d,
              static_cast<const uint8_t*>(kp) + j * d * elem_bytes(type), kStripe, 0.0f, w.s.data() + j, n);
    return;
  }
  load_keys(cache, kp, n, d, w);
  kernels::vec().gemm(rows, n, d, scale, w.q.data(), d, w.kt.data(), kKeyStride, 0.0f, w.s.data(), n);
}

// o += S · V over the page's first n values, one stripe of columns at a time.
void page_values(const KvSeqCache& cache, const void* vp, int64_t rows, int64_t n, int64_t d, bool in_place, Scratch& w,
                 float* o) {
  const TensorType type = cache.type_v();
  const int64_t P = KvSeqCache::kPageTokens;
  const bool direct = in_place && in_place_type(type);
  if (!direct) load_values(cache, vp, n, d, w);
  for (int64_t c0 = 0; c0 < d; c0 += kStripe) {
    const int64_t width = std::min(kStripe, d - c0);
    if (direct)
      product(type, rows, width, n, 1.0f, w.s.data(), n, static_cast<const uint8_t*>(vp) + c0 * P * elem_bytes(type),
              width, 1.0f, o + c0, d);
    else
      kernels::vec().gemm(rows, width, n, 1.0f, w.s.data(), n, w.v.data() + c0 * P, width, 1.0f, o + c0, d);
  }
}

// Online softmax of the block's rows over the keys of split `split` into `out`.
void attend_split(const AttentionRun& r, const Block& b, int64_t split, const AttentionShape& s, Scratch& w,
                  Partial& out) {
  const kernels::VecKernels& K = kernels::vec();
  const int group = s.n_head / s.n_kv_head;
  const int64_t d = s.head_dim, P = KvSeqCache::kPageTokens;
  const int64_t n_tok = b.t1 - b.t0, rows = n_tok * group;
  out.reset(rows, d);
  w.q.resize(rows * d);
  w.kt.resize(d * kKeyStride);
  w.v.resize(P * d);
  w.s.resize(rows * P);
  // Row i·group + g is the query of token t0 + i, head kv_head·group + g.
  for (int64_t i = 0; i < n_tok; ++i)
    std::memcpy(w.q.data() + i * group * d, r.q + ((b.t0 + i) * s.n_head + static_cast<int64_t>(b.kv_head) * group) * d,
                sizeof(float) * group * d);
  const int64_t last_pos = r.pos0 + b.t1 - 1;
  const int64_t end = std::min({last_pos + 1, static_cast<int64_t>(r.cache->size()), (split + 1) * split_keys()});
  for (int64_t base = split * split_keys(); base < end; base += P) {
    const int64_t n = std::min(P, end - base);  // keys of this page the block can see
    const int32_t page = static_cast<int32_t>(base / P);
    const void* kp = r.cache->k_page(page, b.kv_head);
    const void* vp = r.cache->v_page(page, b.kv_head);
    const bool in_place = n_tok <= kInPlaceMaxTokens;
    page_scores(*r.cache, kp, rows, n, d, s.scale, in_place, w);
    for (int64_t row = 0; row < rows; ++row) {
      float* sr = w.s.data() + row * n;
      const int64_t pos = r.pos0 + b.t0 + row / group;
      const int64_t visible = std::clamp<int64_t>(pos + 1 - base, 0, n);
      const float mx = std::max(out.m[row], K.max(sr, visible));
      if (mx == -INFINITY) {  // no key of this split is visible to the row yet: weights stay 0
        std::fill(sr, sr + n, 0.0f);
        continue;
      }
      const float sum = K.exp_sum(sr, visible, mx);
      std::fill(sr + visible, sr + n, 0.0f);  // keys past the row's position: weight exactly 0
      const float corr = std::exp(out.m[row] - mx);
      out.l[row] = out.l[row] * corr + sum;
      out.m[row] = mx;
      K.scale(out.o.data() + row * d, corr, out.o.data() + row * d, d);
    }
    page_values(*r.cache, vp, rows, n, d, in_place, w, out.o.data());
  }
}

// acc ← merge(acc, part), row by row; a part that saw no key of a row leaves it bit-identical.
void merge(Partial& acc, const Partial& part, int64_t d) {
  const kernels::VecKernels& K = kernels::vec();
  for (size_t row = 0; row < acc.m.size(); ++row) {
    if (part.m[row] == -INFINITY) continue;
    const float m = std::max(acc.m[row], part.m[row]);
    const float ca = acc.m[row] == -INFINITY ? 0.0f : std::exp(acc.m[row] - m);
    const float cb = std::exp(part.m[row] - m);
    float* o = acc.o.data() + row * d;
    K.scale(o, ca, o, d);
    K.axpy(cb, part.o.data() + row * d, o, d);
    acc.l[row] = acc.l[row] * ca + part.l[row] * cb;
    acc.m[row] = m;
  }
}

void write_out(const AttentionRun& r, const Block& b, const AttentionShape& s, const Partial& acc) {
  const kernels::VecKernels& K = kernels::vec();
  const int group = s.n_head / s.n_kv_head;
  for (int64_t i = 0; i < b.t1 - b.t0; ++i)
    for (int g = 0; g < group; ++g) {
      const int64_t row = i * group + g;
      K.scale(acc.o.data() + row * s.head_dim, 1.0f / acc.l[row],
              r.out + ((b.t0 + i) * s.n_head + static_cast<int64_t>(b.kv_head) * group + g) * s.head_dim,
              s.head_dim);
    }
}

}  // namespace

void attention(ThreadPool& pool, std::span<const AttentionRun> runs, const AttentionShape& shape) {
  PhaseTimer timer(Phase::kAttention);
  const int group = shape.n_head / shape.n_kv_head;
  std::vector<Block> blocks;
  for (size_t r = 0; r < runs.size(); ++r)
    for (int64_t t0 = 0; t0 < runs[r].n_tokens; t0 += kQueryBlock)
      for (int h = 0; h < shape.n_kv_head; ++h) {
        const int64_t t1 = std::min(runs[r].n_tokens, t0 + kQueryBlock);
        const int64_t keys = runs[r].pos0 + t1;
        blocks.push_back({static_cast<int32_t>(r), h, t0, t1, (keys + split_keys() - 1) / split_keys()});
      }
  // Short runs (decode) with long contexts: one task per split, merged afterwards.
  struct SplitTask {
    size_t block;
    int64_t split;
  };
  std::vector<SplitTask> split_tasks;
  std::vector<size_t> whole;  // blocks computed by one task
  std::vector<size_t> first_split(blocks.size(), 0);
  for (size_t i = 0; i < blocks.size(); ++i) {
    const Block& b = blocks[i];
    if (b.n_splits > 1 && runs[b.run].n_tokens <= kParallelSplitMaxTokens) {
      first_split[i] = split_tasks.size();
      for (int64_t sp = 0; sp < b.n_splits; ++sp) split_tasks.push_back({i, sp});
    } else {
      whole.push_back(i);
    }
  }
  // Blocks that see more keys first, so the threads finish together.
  std::stable_sort(whole.begin(), whole.end(), [&](size_t a, size_t b) {
    return runs[blocks[a].run].pos0 + blocks[a].t1 > runs[blocks[b].run].pos0 + blocks[b].t1;
  });
  std::vector<Partial> partials(split_tasks.size());
  const int64_t n_tasks = static_cast<int64_t>(whole.size() + split_tasks.size());
  pool.parallel_for(n_tasks, 1, [&](int64_t begin, int64_t end) {
    thread_local Scratch w;
    for (int64_t t = begin; t < end; ++t) {
      if (t < static_cast<int64_t>(split_tasks.size())) {
        const SplitTask& st = split_tasks[t];
        const Block& b = blocks[st.block];
        attend_split(runs[b.run], b, st.split, shape, w, partials[t]);
        continue;
      }
      const Block& b = blocks[whole[t - split_tasks.size()]];
      const int64_t rows = (b.t1 - b.t0) * group;
      w.acc.reset(rows, shape.head_dim);
      for (int64_t sp = 0; sp < b.n_splits; ++sp) {
        attend_split(runs[b.run], b, sp, shape, w, w.part);
        merge(w.acc, w.part, shape.head_dim);
      }
      write_out(runs[b.run], b, shape, w.acc);
    }
  });
  if (split_tasks.empty()) return;
  // Merge the split partials of each decode block in split order.
  std::vector<size_t> split_blocks;
  for (size_t i = 0; i < blocks.size(); ++i)
    if (blocks[i].n_splits > 1 && runs[blocks[i].run].n_tokens <= kParallelSplitMaxTokens) split_blocks.push_back(i);
  pool.parallel_for(static_cast<int64_t>(split_blocks.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const size_t i = split_blocks[k];
      const Block& b = blocks[i];
      Partial acc;
      acc.reset((b.t1 - b.t0) * group, shape.head_dim);
      for (int64_t sp = 0; sp < b.n_splits; ++sp) merge(acc, partials[first_split[i] + sp], shape.head_dim);
      write_out(runs[b.run], b, shape, acc);
    }
  });
}

}  // namespace hylo::ops
