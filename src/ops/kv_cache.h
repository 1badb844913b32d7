// Keys and values of one attention layer for one sequence, stored in pages of kPageTokens
// positions so memory grows with the sequence. K is stored after QK-norm and RoPE.
// Page layout: [n_kv_head][kPageTokens][head_dim], so one head's keys are contiguous.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/tensor_type.h"

namespace hylo::ops {

class KvSeqCache {
 public:
  static constexpr int32_t kPageTokens = 256;

  KvSeqCache(int n_kv_head, int head_dim, TensorType type);  // type: f32 or f16

  int32_t size() const { return n_; }
  TensorType type() const { return type_; }
  int n_kv_head() const { return n_kv_head_; }
  int head_dim() const { return head_dim_; }

  // Stores K and V ([n_kv_head][head_dim] each) at position pos ≤ size().
  void store(int32_t pos, const float* k, const float* v);
  void truncate(int32_t n);
  void clear() { truncate(0); }
  void copy_from(const KvSeqCache& other);
  uint64_t bytes_allocated() const;

  // Bytes of one position's keys (or values) over all heads, as stored (f16 or f32).
  size_t row_bytes() const { return static_cast<size_t>(n_kv_head_) * head_dim_ * elem_bytes(); }
  // Copies the stored K and V of positions [begin, begin + n) out, each as [n][n_kv_head][head_dim]
  // in the storage type (no conversion, so a round trip is bit-exact).
  void read_rows(int32_t begin, int32_t n, uint8_t* k, uint8_t* v) const;
  // Appends n positions at size() from buffers laid out as read_rows() writes them.
  void append_rows(int32_t n, const uint8_t* k, const uint8_t* v);

  // Elements of head h's keys/values for positions [page·kPageTokens, +kPageTokens).
  const void* k_page(int32_t page, int h) const { return k_pages_[page].get() + h * head_bytes(); }
  const void* v_page(int32_t page, int h) const { return v_pages_[page].get() + h * head_bytes(); }

 private:
  size_t elem_bytes() const { return type_ == TensorType::kF16 ? 2 : 4; }
  size_t head_bytes() const { return static_cast<size_t>(kPageTokens) * head_dim_ * elem_bytes(); }
  size_t page_bytes() const { return head_bytes() * n_kv_head_; }

  int n_kv_head_;
  int head_dim_;
  TensorType type_;
  int32_t n_ = 0;
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
