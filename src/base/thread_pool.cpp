#include "base/thread_pool.h"

#include <algorithm>

#include "base/check.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define HYLO_PAUSE() _mm_pause()
#else
#define HYLO_PAUSE() std::this_thread::yield()
#endif

namespace hylo {
namespace {
constexpr int kSpinIterations = 1 << 14;  // ~50-100 us of spinning before sleeping

// Subnormal floats (fast-decaying DeltaNet states and gates reach them) cost x86 cores a
// microcode assist per operation — up to 100x slower. Values below 1.2e-38 carry no signal here,
// so every thread that computes flushes them to zero (FTZ) and reads them as zero (DAZ).
void flush_denormals() {
#if defined(__x86_64__)
  _mm_setcsr(_mm_getcsr() | 0x8040);
#endif
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  threads_.reserve(n_threads_ - 1);
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::run_impl(Thunk thunk, void* ctx) {
  flush_denormals();
  if (n_threads_ == 1) {
    thunk(ctx, 0, 1);
    return;
  }
  thunk_ = thunk;
  ctx_ = ctx;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  thunk(ctx, 0, n_threads_);
  int spins = 0;
  while (pending_.load(std::memory_order_acquire) != 0) {
    if (++spins < kSpinIterations) {
      HYLO_PAUSE();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::worker(int ith) {
  flush_denormals();
  // The generation when the pool was built, not when this thread got going: a job posted before
  // the thread first ran must not be skipped.
  uint32_t seen = 0;
  for (;;) {
    int spins = 0;
    uint32_t g;
    while ((g = generation_.load(std::memory_order_acquire)) == seen) {
      if (++spins < kSpinIterations) {
        HYLO_PAUSE();
      } else {
        generation_.wait(seen, std::memory_order_acquire);
      }
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    thunk_(ctx_, ith, n_threads_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace hylo
