// Fork-join thread pool for the forward pass: run() executes one job on every thread (the caller
// is thread 0) and returns when all are done. Workers spin briefly between jobs, then sleep, so
// decode (many small jobs per token) does not pay a wake-up per op.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace hylo {

// A grain for element-wise work: chunks start at multiples of every vector width, so they end where
// one call's vectors would and the bits do not depend on the thread count.
inline constexpr int64_t kElementGrain = 16384;

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();

  int size() const { return n_threads_; }

  // fn(ith, nth) on every thread. Not reentrant: fn must not call run().
  template <typename F>
  void run(F&& fn) {
    auto thunk = [](void* ctx, int ith, int nth) { (*static_cast<F*>(ctx))(ith, nth); };
    run_impl(thunk, &fn);
  }

  // Splits [0, n) into chunks of `grain` taken dynamically by the threads: fn(begin, end).
  // Ranges start at multiples of `grain`.
  template <typename F>
  void parallel_for(int64_t n, int64_t grain, F&& fn) {
    parallel_for_threads(n, grain, [&fn](int, int64_t b, int64_t e) { fn(b, e); });
  }

  // The same, fn(ith, begin, end) also told which thread runs it (for per-thread scratch).
  template <typename F>
  void parallel_for_threads(int64_t n, int64_t grain, F&& fn) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (n_threads_ == 1 || n <= grain) {
      fn(0, int64_t{0}, n);
      return;
    }
    std::atomic<int64_t> next{0};
    run([&](int ith, int) {
      for (;;) {
        const int64_t b = next.fetch_add(grain, std::memory_order_relaxed);
        if (b >= n) break;
        fn(ith, b, std::min(n, b + grain));
      }
    });
  }

 private:
  using Thunk = void (*)(void*, int, int);
  void run_impl(Thunk thunk, void* ctx);
  void worker(int ith);

  int n_threads_;
  std::vector<std::thread> threads_;
  Thunk thunk_ = nullptr;
  void* ctx_ = nullptr;
  std::atomic<uint32_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

// Static split of [0, n) into nth nearly equal parts; part ith as [begin, end).
inline void split_range(int64_t n, int ith, int nth, int64_t* begin, int64_t* end) {
  const int64_t per = n / nth, rem = n % nth;
  *begin = ith * per + std::min<int64_t>(ith, rem);
  *end = *begin + per + (ith < rem ? 1 : 0);
}

}  // namespace hylo
