#include "base/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>

namespace hylo {

void* map_huge(size_t bytes, size_t* mapped) {
  const size_t size = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  // Over-allocate by one huge page to align the start, then trim both ends.
  void* raw = mmap(nullptr, size + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  auto* start = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(raw) + kHugePage - 1) / kHugePage * kHugePage);
  uint8_t* end = start + size;
  if (start != raw) munmap(raw, static_cast<size_t>(start - static_cast<uint8_t*>(raw)));
  if (uint8_t* raw_end = static_cast<uint8_t*>(raw) + size + kHugePage; raw_end != end)
    munmap(end, static_cast<size_t>(raw_end - end));
  madvise(start, size, MADV_HUGEPAGE);  // best effort: without it the mapping still works
  *mapped = size;
  return start;
}

void unmap_huge(void* p, size_t mapped) {
  if (p != nullptr) munmap(p, mapped);
}

void* allocate_large(size_t bytes) {
  if (bytes < kHugeMinBytes) return ::operator new (bytes, std::align_val_t{64});
  size_t mapped = 0;
  void* p = map_huge(bytes, &mapped);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void deallocate_large(void* p, size_t bytes) {
  if (bytes < kHugeMinBytes) {
    ::operator delete (p, std::align_val_t{64});
    return;
  }
  unmap_huge(p, (bytes + kHugePage - 1) / kHugePage * kHugePage);
}

}  // namespace hylo
