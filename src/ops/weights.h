// Views of weight matrices inside the memory-mapped GGUF data, used in place, or in the interleaved
// image their kernel reads (kernels/interleave.h), built once at load (ops/weight_images.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

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
  // The rows' interleaved image (kernel->image layout), or null: the rows are read in place.
  const uint8_t* image = nullptr;
  size_t image_group_bytes = 0;  // bytes per group of kernel->image.lanes rows
  std::string_view name;         // the GGUF tensor's name (owned by the file): copies cost nothing

  bool valid() const { return data != nullptr; }
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_stride; }
  // The image of the group holding row r (r a multiple of the group size).
  const uint8_t* image_group(int64_t r) const {
    return image + static_cast<size_t>(r / kernel->image.lanes) * image_group_bytes;
  }
  // Rows [r0, r0 + n) as a matrix of their own (e.g. one half of a fused gate/up tensor). The image
  // is kept when r0 starts a group (else the rows are read in place).
  Weight rows(int64_t r0, int64_t n) const {
    Weight w = *this;
    w.data = row(r0);
    w.n_out = n;
    if (image != nullptr) w.image = r0 % kernel->image.lanes == 0 ? image_group(r0) : nullptr;
    return w;
  }
  uint64_t bytes() const { return static_cast<uint64_t>(n_out) * row_stride; }
};

// n_expert matrices of n_out × n_in back to back (GGUF ne = [n_in, n_out, n_expert]).
struct ExpertWeight {
  Weight first;                    // expert 0
  size_t expert_stride = 0;        // bytes between experts
  size_t expert_image_stride = 0;  // bytes between the experts' images (when first.image is set)
  int64_t n_expert = 0;

  bool valid() const { return first.valid(); }
  Weight expert(int64_t e) const {
    Weight w = first;
    w.data = first.data + static_cast<size_t>(e) * expert_stride;
    if (w.image != nullptr) w.image = first.image + static_cast<size_t>(e) * expert_image_stride;
    return w;
  }
};

}  // namespace hylo::ops
