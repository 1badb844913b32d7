// GGUF v3 writer: metadata in insertion order, tensors streamed row-chunk by row-chunk so
// multi-gigabyte files are written without holding them in memory.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/tensor_type.h"
#include "gguf/gguf.h"

namespace hylo::gguf {

class Writer {
 public:
  // Produces the bytes of rows [row0, row1) of a tensor (a row is ne[0] elements) into dst.
  using FillRows = std::function<void(uint8_t* dst, int64_t row0, int64_t row1)>;

  explicit Writer(uint32_t alignment = 32);

  void set(const std::string& key, Value value);  // replaces an existing key in place
  void set_string(const std::string& key, std::string v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_strings(const std::string& key, std::vector<std::string> v);
  void set_i32s(const std::string& key, const std::vector<int32_t>& v);
  void set_f32s(const std::string& key, const std::vector<float>& v);

  void add_tensor(std::string name, TensorType type, std::vector<int64_t> ne, FillRows fill);
  void add_tensor_bytes(std::string name, TensorType type, std::vector<int64_t> ne, std::vector<uint8_t> bytes);

  uint64_t data_bytes() const;  // total tensor bytes (with alignment padding)
  Status write(const std::string& path) const;

 private:
  struct PendingTensor {
    TensorInfo info;
    FillRows fill;
  };
  uint32_t alignment_;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace hylo::gguf
