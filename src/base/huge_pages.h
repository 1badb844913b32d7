// Memory on transparent huge pages for the buffers that are streamed: weight images, and the work
// buffers of a forward pass (activations, expert hidden rows, matmul records). Not for small or
// long-lived bookkeeping, which stays on the ordinary heap.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace hylo {

inline constexpr size_t kHugePage = size_t{2} << 20;

// An anonymous mapping of whole 2 MiB pages, aligned to one and advised MADV_HUGEPAGE; null when
// the system is out of memory. *mapped receives the mapping's size, for unmap_huge().
void* map_huge(size_t bytes, size_t* mapped);
void unmap_huge(void* p, size_t mapped);

// Allocations of at least kHugeMinBytes get a huge-page mapping, smaller ones the heap (64-byte
// aligned). Why: with 4 KiB pages a prefill's activations (tens of MiB) take a TLB miss, and under
// virtualisation a two-level page walk, every 4 KiB; the mapping also takes 512 times fewer page
// faults the first time it is written.
inline constexpr size_t kHugeMinBytes = kHugePage;
void* allocate_large(size_t bytes);
void deallocate_large(void* p, size_t bytes);

template <typename T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() noexcept = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(allocate_large(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { deallocate_large(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }
};

// A work buffer that may grow large: huge pages once it passes kHugeMinBytes.
template <typename T>
using LargeVector = std::vector<T, HugePageAllocator<T>>;

}  // namespace hylo
