// Tensor element types as numbered by ggml/GGUF, with their block geometry. This is the one
// table both the file layer (gguf/) and the kernels (kernels/) agree on.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace hylo {

enum class TensorType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15,
  kIQ2_XXS = 16, kIQ2_XS = 17, kIQ3_XXS = 18, kIQ1_S = 19, kIQ4_NL = 20, kIQ3_S = 21, kIQ2_S = 22,
  kIQ4_XS = 23, kI8 = 24, kI16 = 25, kI32 = 26, kI64 = 27, kF64 = 28, kIQ1_M = 29, kBF16 = 30,
  kTQ1_0 = 34, kTQ2_0 = 35, kMXFP4 = 39,
};

struct TensorTypeInfo {
  TensorType type;
  std::string_view name;     // ggml's name: "f32", "q4_K", ...
  uint32_t block_elems;      // elements per block
  uint32_t block_bytes;      // bytes per block
};

// nullopt for ids ggml never assigned (or retired ones, e.g. 4, 5, 31-33, 36-38).
std::optional<TensorTypeInfo> tensor_type_info(uint32_t id);
const TensorTypeInfo& tensor_type_info(TensorType t);
std::string_view tensor_type_name(TensorType t);
std::optional<TensorType> tensor_type_from_name(std::string_view name);  // case-insensitive

// Bytes of a row of n elements; n must be a multiple of the block size.
inline uint64_t row_bytes(const TensorTypeInfo& info, uint64_t n) { return n / info.block_elems * info.block_bytes; }
uint64_t row_bytes(TensorType t, uint64_t n);

constexpr uint32_t kQK_K = 256;  // super-block size of the K-quants

}  // namespace hylo
