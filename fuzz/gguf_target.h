// The GGUF reader's fuzz target body, shared by the libFuzzer entry point (fuzz_gguf.cpp, clang)
// and the mutation driver in the test suite (tests/gguf/test_fuzz.cpp, any compiler).
#pragma once

#include <cstdint>
#include <cstdlib>

#include "gguf/gguf.h"

namespace hylo::fuzz {

// Parses the bytes; on success walks everything the reader returned and checks it stays inside
// the input. Any crash, sanitizer report or abort here is a bug.
inline int gguf_one_input(const uint8_t* data, size_t size) {
  auto f = gguf::File::parse(data, size, "fuzz.gguf");
  if (!f.ok()) return f.message().rfind("[gguf] fuzz.gguf: ", 0) == 0 ? 0 : (std::abort(), 0);
  size_t chars = 0;
  for (const auto& [key, value] : f->metadata()) chars += key.size() + value.to_string(4).size();
  for (const auto& t : f->tensors()) {
    const uint8_t* p = f->tensor_data(t);
    if (p < data || p + t.n_bytes > data + size) std::abort();
    if (t.n_bytes > 0) chars += p[0] + p[t.n_bytes - 1];
  }
  return chars == static_cast<size_t>(-1) ? 1 : 0;
}

}  // namespace hylo::fuzz
