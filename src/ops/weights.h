// Views of weight matrices inside the memory-mapped GGUF data: used in place, never copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/tensor_type.h"
#include "kernels/quant.h"

namespace hylo::ops {

// n_out rows of n_in elements (GGUF ne = [n_in, n_out]); y = W·x.
struct Weight {
  const uint8_t* data = nullptr;
  TensorType type = TensorType::kF32;
  int64_t n_in = 0;
  int64_t n_out = 0;
  size_t row_stride = 0;  // bytes between rows
  const kernels::MatmulKernel* kernel = nullptr;
  std::string name;

  bool valid() const { return data != nullptr; }
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_stride; }
  // Rows [r0, r0 + n) as a matrix of their own (e.g. one half of a fused gate/up tensor).
  Weight rows(int64_t r0, int64_t n) const {
    Weight w = *this;
    w.data = row(r0);
    w.n_out = n;
    return w;
  }
  uint64_t bytes() const { return static_cast<uint64_t>(n_out) * row_stride; }
};

// n_expert matrices of n_out × n_in back to back (GGUF ne = [n_in, n_out, n_expert]).
struct ExpertWeight {
  Weight first;              // expert 0
  size_t expert_stride = 0;  // bytes between experts
  int64_t n_expert = 0;

  bool valid() const { return first.valid(); }
  Weight expert(int64_t e) const {
    Weight w = first;
    w.data = first.data + static_cast<size_t>(e) * expert_stride;
    return w;
  }
};

}  // namespace hylo::ops
