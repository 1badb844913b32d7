// libFuzzer entry point for the GGUF reader (built with clang: see fuzz/CMakeLists.txt).
#include "gguf_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return hylo::fuzz::gguf_one_input(data, size);
}
