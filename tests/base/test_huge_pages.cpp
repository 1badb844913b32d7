#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>

#include "base/huge_pages.h"

namespace hylo {
namespace {

uintptr_t address(const void* p) { return reinterpret_cast<uintptr_t>(p); }

TEST(HugePages, SmallAllocationsComeFromTheHeapAligned) {
  void* p = allocate_large(1000);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(address(p) % 64, 0u);
  deallocate_large(p, 1000);
}

TEST(HugePages, LargeAllocationsAreWholeAlignedHugePages) {
  const size_t bytes = kHugeMinBytes * 3 + 12345;
  auto* p = static_cast<uint8_t*>(allocate_large(bytes));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(address(p) % kHugePage, 0u);
  p[0] = 1;
  p[bytes - 1] = 2;  // the whole range is writable
  EXPECT_EQ(p[0] + p[bytes - 1], 3);
  deallocate_large(p, bytes);
}

TEST(HugePages, LargeVectorGrowsAcrossTheThresholdKeepingItsValues) {
  LargeVector<float> v(1000);
  std::iota(v.begin(), v.end(), 0.0f);
  v.resize(kHugeMinBytes / sizeof(float) * 2);  // moves from the heap to a mapping
  EXPECT_EQ(address(v.data()) % kHugePage, 0u);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(v[i], static_cast<float>(i));
  EXPECT_EQ(v.back(), 0.0f);
  LargeVector<float> copy = v;
  EXPECT_EQ(copy, v);
  v.clear();
  v.shrink_to_fit();  // back to nothing: the mapping is released
  EXPECT_EQ(v.capacity(), 0u);
}

}  // namespace
}  // namespace hylo
