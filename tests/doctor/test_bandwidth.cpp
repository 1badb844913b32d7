// The bandwidth probe returns a plausible number quickly; its accuracy is `hylo bench`'s business.
#include <gtest/gtest.h>

#include "base/bandwidth.h"
#include "base/thread_pool.h"
#include "base/timer.h"

namespace hylo {
namespace {

TEST(Bandwidth, SmallProbeIsPositiveAndFast) {
  ThreadPool pool(2);
  Timer timer;
  const double gbs = measure_read_bandwidth_gbs(pool, uint64_t{64} << 20, 2);
  EXPECT_GT(gbs, 0.1);
  EXPECT_LT(gbs, 100000.0);
  EXPECT_LT(timer.seconds(), 5.0);  // generous: a shared 2-core machine
}

TEST(Bandwidth, TinyRequestsAreRoundedUp) {
  ThreadPool pool(1);
  EXPECT_GT(measure_read_bandwidth_gbs(pool, 1, 1), 0.0);
}

TEST(Bandwidth, LlcHintIsPlausible) {
  const uint64_t llc = llc_bytes_hint();
  EXPECT_GE(llc, uint64_t{256} << 10);
  EXPECT_LE(llc, uint64_t{4} << 30);
}

}  // namespace
}  // namespace hylo
