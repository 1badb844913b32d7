// GGUF v2/v3 files: metadata, tensor directory and the memory-mapped data section.
// Knows nothing about models; every length, count and offset is validated against the file size.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/mapped_file.h"
#include "base/result.h"
#include "base/tensor_type.h"

namespace hylo::gguf {

enum class ValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
std::string_view value_type_name(ValueType t);
bool is_integer(ValueType t);

struct Value;

// A metadata array. Elements are stored in the vector that matches elem_type.
struct Array {
  ValueType elem_type = ValueType::kU8;
  std::vector<int64_t> ints;         // signed integer types and bool
  std::vector<uint64_t> uints;       // unsigned integer types
  std::vector<double> floats;        // f32, f64
  std::vector<std::string> strings;  // string
  std::vector<Value> arrays;         // nested arrays
  size_t size() const;
};

struct Value {
  ValueType type = ValueType::kU8;
  int64_t i = 0;    // signed integers, bool
  uint64_t u = 0;   // unsigned integers
  double f = 0;     // f32, f64
  std::string s;    // string
  std::shared_ptr<Array> array;

  // Numeric value as an integer, if it is an integer or bool (and fits).
  std::optional<int64_t> as_int() const;
  std::optional<double> as_double() const;
  // Short human form: scalars in full, arrays as "[type × n]" plus the first elements.
  std::string to_string(size_t max_elems = 8) const;
};

inline constexpr int kMaxDims = 4;
inline constexpr size_t kMaxNameLength = 63;  // ggml's GGML_MAX_NAME - 1

struct TensorInfo {
  std::string name;
  uint32_t n_dims = 0;
  std::array<int64_t, kMaxDims> ne{1, 1, 1, 1};  // ggml order: ne[0] is contiguous
  TensorType type = TensorType::kF32;
  uint64_t offset = 0;  // relative to the data section
  uint64_t n_bytes = 0;
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  std::string shape_string() const;  // "[2048, 151936]"
};

class File {
 public:
  // Opens and validates the file; the data section stays memory-mapped (read-only), or is read
  // into memory with read_into_memory.
  static Result<File> open(const std::string& path, bool read_into_memory = false);
  // Parses a file image already in memory (no mapping, data pointers refer to `bytes`).
  // `name` is used in error messages. Used by the fuzzer and the tests.
  static Result<File> parse(const uint8_t* bytes, uint64_t size, const std::string& name);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t file_size() const { return size_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  const Array* get_array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  // Pointer to the tensor's bytes inside the mapped data section.
  const uint8_t* tensor_data(const TensorInfo& t) const { return base_ + data_offset_ + t.offset; }
  const MappedFile* mapping() const { return map_.get(); }

 private:
  std::string path_;
  std::shared_ptr<MappedFile> map_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace hylo::gguf
