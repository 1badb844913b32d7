// Per-thread scratch buffer (see scratch.h).
#include "kernels/scratch.h"

#include <new>

#include "base/check.h"
#include "base/huge_pages.h"

namespace hylo::kernels {
namespace {

struct ScratchBuffer {
  void* data = nullptr;
  size_t size = 0;
  ~ScratchBuffer() { deallocate_large(data, size); }
};

}  // namespace

void* thread_scratch(size_t bytes) {
  thread_local ScratchBuffer buffer;
  if (bytes > buffer.size) {
    if (buffer.data != nullptr) deallocate_large(buffer.data, buffer.size);
    buffer.data = nullptr;
    const size_t size = (bytes + 4095) / 4096 * 4096;
    try {
      buffer.data = allocate_large(size);  // huge pages when large: prefill records are MiBs
    } catch (const std::bad_alloc&) {
    }
    HYLO_CHECK(buffer.data != nullptr, "thread_scratch: out of memory ({} bytes)", size);
    buffer.size = size;
  }
  return buffer.data;
}

}  // namespace hylo::kernels
