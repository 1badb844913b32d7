// Keys and values of one attention layer for one sequence, stored in pages of kPageTokens
// positions so memory grows with the sequence. K is stored after QK-norm and RoPE.
// Page layout: [n_kv_head][kPageTokens][head_dim], so one head's keys are contiguous; each
// [head_dim] row is one row of the cache type (f32, f16, bf16, or q8_0/q4_0 blocks of 32).
// The float types (f32, f16, bf16) are stored in stripes of kStripe instead, so that attention
// multiplies them in place, each product's B one contiguous stream (no per-step copy):
//   keys:   stripe j holds positions [kStripe·j, +kStripe) transposed, [head_dim][kStripe];
//   values: stripe c holds columns [kStripe·c, +w) of every position, [kPageTokens][w], w ≤ kStripe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/tensor_type.h"

namespace hylo::ops {

// The element types a KV cache can hold, as llama.cpp names them: f32, f16, bf16, q8_0, q4_0.
bool is_kv_cache_type(TensorType type);
// Why `type` cannot store rows of head_dim elements (empty if it can).
std::string kv_cache_type_problem(TensorType type, int head_dim);

class KvSeqCache {
 public:
  static constexpr int32_t kPageTokens = 256;
  static constexpr int32_t kStripe = 32;  // positions per key stripe, columns per value stripe

  // type_k, type_v: one of kv_cache_types(); head_dim a multiple of the types' block size.
  KvSeqCache(int n_kv_head, int head_dim, TensorType type_k, TensorType type_v);

  int32_t size() const { return n_; }
  TensorType type_k() const { return type_k_; }
  TensorType type_v() const { return type_v_; }
  int n_kv_head() const { return n_kv_head_; }
  int head_dim() const { return head_dim_; }

  // Stores K and V ([n_kv_head][head_dim] each) at position pos ≤ size().
  void store(int32_t pos, const float* k, const float* v);
  void truncate(int32_t n);
  void clear() { truncate(0); }
  void copy_from(const KvSeqCache& other);
  uint64_t bytes_allocated() const;

  // Whether keys / values are stored in stripes (the float types) rather than rows.
  bool keys_striped() const { return keys_striped_; }
  bool values_striped() const { return values_striped_; }
  // Head h's keys/values for positions [page·kPageTokens, +kPageTokens), in type_k/type_v:
  // [kPageTokens][head_dim] rows, or the stripes above one after the other.
  const void* k_page(int32_t page, int h) const { return k_pages_[page].get() + h * k_head_bytes_; }
  const void* v_page(int32_t page, int h) const { return v_pages_[page].get() + h * v_head_bytes_; }
  // Bytes of one [head_dim] row of keys / values.
  size_t k_row_bytes() const { return k_row_bytes_; }
  size_t v_row_bytes() const { return v_row_bytes_; }
  // Bytes of one position's keys (or values) over all heads, as stored.
  size_t k_position_bytes() const { return static_cast<size_t>(n_kv_head_) * k_row_bytes_; }
  size_t v_position_bytes() const { return static_cast<size_t>(n_kv_head_) * v_row_bytes_; }
  // Copies the stored K and V of positions [begin, begin + n) out, as [n][n_kv_head] rows in their
  // storage types (no conversion, so a round trip is bit-exact).
  void read_rows(int32_t begin, int32_t n, uint8_t* k, uint8_t* v) const;
  // Appends n positions at size() from buffers laid out as read_rows() writes them.
  void append_rows(int32_t n, const uint8_t* k, const uint8_t* v);

 private:
  int n_kv_head_;
  int head_dim_;
  TensorType type_k_, type_v_;
  bool keys_striped_, values_striped_;
  size_t k_elem_bytes_, v_elem_bytes_;  // one element, for the striped layouts
  size_t k_row_bytes_, v_row_bytes_;    // one [head_dim] row
  size_t k_head_bytes_, v_head_bytes_;  // one head of one page: kPageTokens rows
  int32_t n_ = 0;

  void ensure_page(int32_t page);
  // One position's keys (values) of head h, [head_dim] in type_k (type_v), into / out of the page.
  void put_rows(int32_t pos, int h, const uint8_t* k, const uint8_t* v);
  void get_rows(int32_t pos, int h, uint8_t* k, uint8_t* v) const;
  template <typename F>
  void key_pieces(int32_t slot, F f) const;
  template <typename F>
  void value_pieces(int32_t slot, F f) const;
  std::vector<std::unique_ptr<uint8_t[]>> k_pages_, v_pages_;
};

// Conv window and S matrices of one Gated DeltaNet layer for one sequence (f32, as llama.cpp).
struct RecurrentSeqState {
  RecurrentSeqState(int conv_window, int conv_dim, int n_heads, int d_k, int d_v);
  void clear();
  uint64_t bytes() const { return (conv.size() + ssm.size()) * sizeof(float); }

  int conv_window, conv_dim, n_heads, d_k, d_v;
  std::vector<float> conv;  // [conv_window][conv_dim]: the last raw projections, oldest first
  std::vector<float> ssm;   // [n_heads][d_k][d_v]: S per value head, rows by key index
};

}  // namespace hylo::ops
