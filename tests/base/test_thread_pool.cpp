// The fork-join pool: every thread runs every job, even one posted right after construction,
// and parallel_for covers its range exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "base/thread_pool.h"

namespace hylo {
namespace {

TEST(ThreadPool, JobPostedImmediatelyAfterConstructionRunsOnAllThreads) {
  for (int round = 0; round < 200; ++round) {
    ThreadPool pool(3);
    std::atomic<int> ran{0};
    pool.run([&](int ith, int nth) {
      EXPECT_EQ(nth, 3);
      EXPECT_LT(ith, 3);
      ran.fetch_add(1);
    });
    EXPECT_EQ(ran.load(), 3);
  }
}

TEST(ThreadPool, ParallelForCoversTheRangeOnce) {
  ThreadPool pool(4);
  for (int64_t n : {0, 1, 7, 100, 1001}) {
    std::vector<std::atomic<int>> hits(n);
    for (int rep = 0; rep < 50; ++rep) {
      pool.parallel_for(n, 3, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      });
    }
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 50) << i;
  }
}

TEST(ThreadPool, ParallelForThreadsStartsRangesAtGrainMultiplesAndNamesTheThread) {
  ThreadPool pool(3);
  const int64_t n = 1000, grain = 64;
  std::vector<std::atomic<int>> hits(n);
  std::vector<std::atomic<int>> by_thread(3);
  pool.parallel_for_threads(n, grain, [&](int ith, int64_t b, int64_t e) {
    EXPECT_EQ(b % grain, 0);
    EXPECT_TRUE(e == n || e - b == grain);
    ASSERT_GE(ith, 0);
    ASSERT_LT(ith, 3);
    by_thread[ith].fetch_add(1);
    for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
  });
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << i;
  EXPECT_EQ(by_thread[0] + by_thread[1] + by_thread[2], (n + grain - 1) / grain);
}

TEST(ThreadPool, SplitRangeIsBalanced) {
  int64_t b = 0, e = 0, total = 0;
  for (int ith = 0; ith < 3; ++ith) {
    split_range(10, ith, 3, &b, &e);
    EXPECT_LE(e - b, 4);
    EXPECT_GE(e - b, 3);
    total += e - b;
  }
  EXPECT_EQ(total, 10);
}

}  // namespace
}  // namespace hylo
