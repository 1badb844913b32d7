// Per-thread scratch buffer (see scratch.h).
#include "kernels/scratch.h"

#include <cstdlib>

#include "base/check.h"

namespace hylo::kernels {
namespace {

struct ScratchBuffer {
  void* data = nullptr;
  size_t size = 0;
  ~ScratchBuffer() { std::free(data); }
};

}  // namespace

void* thread_scratch(size_t bytes) {
  thread_local ScratchBuffer buffer;
  if (bytes > buffer.size) {
    std::free(buffer.data);
    const size_t size = (bytes + 4095) / 4096 * 4096;
    buffer.data = std::aligned_alloc(64, size);
    HYLO_CHECK(buffer.data != nullptr, "thread_scratch: out of memory ({} bytes)", size);
    buffer.size = size;
  }
  return buffer.data;
}

}  // namespace hylo::kernels
