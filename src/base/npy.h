// NumPy .npy (format 1.0/2.0) reading and writing for float32 / int32 / uint8 arrays, C order.
// Used by `hylo logits`, HYLO_DUMP and the tests that compare against reference fixtures.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace hylo {

struct NpyArray {
  std::string dtype;           // "<f4", "<i4", "|u1", ...
  std::vector<int64_t> shape;  // C order (outermost first)
  std::vector<uint8_t> bytes;  // raw little-endian data

  int64_t numel() const;
  const float* f32() const { return reinterpret_cast<const float*>(bytes.data()); }
  const int32_t* i32() const { return reinterpret_cast<const int32_t*>(bytes.data()); }
};

Result<NpyArray> read_npy(const std::string& path);
Status write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

}  // namespace hylo
