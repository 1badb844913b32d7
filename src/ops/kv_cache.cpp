#include "ops/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "base/check.h"
#include "kernels/quant.h"
#include "kernels/vec.h"

namespace hylo::ops {

bool is_kv_cache_type(TensorType type) {
  return type == TensorType::kF32 || type == TensorType::kF16 || type == TensorType::kBF16 ||
         type == TensorType::kQ8_0 || type == TensorType::kQ4_0;
}

std::string kv_cache_type_problem(TensorType type, int head_dim) {
  if (!is_kv_cache_type(type))
    return fmt::format("KV cache type {} is not supported (f32, f16, bf16, q8_0, q4_0)", tensor_type_name(type));
  const uint32_t block = tensor_type_info(type).block_elems;
  if (head_dim <= 0 || head_dim % block != 0)
    return fmt::format("KV cache type {} stores blocks of {} elements; the head dimension {} is not a multiple",
                       tensor_type_name(type), block, head_dim);
  return "";
}

KvSeqCache::KvSeqCache(int n_kv_head, int head_dim, TensorType type_k, TensorType type_v)
    : n_kv_head_(n_kv_head), head_dim_(head_dim), type_k_(type_k), type_v_(type_v) {
  HYLO_CHECK(kv_cache_type_problem(type_k, head_dim).empty(), "{}", kv_cache_type_problem(type_k, head_dim));
  HYLO_CHECK(kv_cache_type_problem(type_v, head_dim).empty(), "{}", kv_cache_type_problem(type_v, head_dim));
  keys_striped_ = tensor_type_info(type_k).block_elems == 1;
  values_striped_ = tensor_type_info(type_v).block_elems == 1;
  k_elem_bytes_ = tensor_type_info(type_k).block_bytes;
  v_elem_bytes_ = tensor_type_info(type_v).block_bytes;
  k_row_bytes_ = row_bytes(type_k, static_cast<uint64_t>(head_dim));
  v_row_bytes_ = row_bytes(type_v, static_cast<uint64_t>(head_dim));
  k_head_bytes_ = k_row_bytes_ * kPageTokens;
  v_head_bytes_ = v_row_bytes_ * kPageTokens;
}

namespace {
// One [head_dim] row into the cache's type. f16 keeps the vector kernel the cache always used
// (round to nearest even, the same bits as the reference); the others use the reference
// quantizers (ggml's quantize_row_*_ref, as llama.cpp's KV copies use).
void store_row(TensorType type, const float* src, uint8_t* dst, int n) {
  if (type == TensorType::kF32)
    std::memcpy(dst, src, sizeof(float) * n);
  else if (type == TensorType::kF16)
    kernels::vec().f32_to_f16(src, reinterpret_cast<uint16_t*>(dst), n);
  else
    kernels::quantize_row(type, src, dst, n);
}
}  // namespace

void KvSeqCache::ensure_page(int32_t page) {
  while (static_cast<int32_t>(k_pages_.size()) <= page) {
    k_pages_.emplace_back(new uint8_t[k_head_bytes_ * n_kv_head_]);
    v_pages_.emplace_back(new uint8_t[v_head_bytes_ * n_kv_head_]);
  }
}

namespace {
constexpr int32_t kStripe = KvSeqCache::kStripe, kPage = KvSeqCache::kPageTokens;
// Striped layouts (kv_cache.h), byte offsets inside one head's page: element i of the key at
// `slot`, and the run of value columns [c0, c0 + width) at `slot`.
size_t key_offset(int32_t slot, int i, int d, size_t elem) {
  return ((static_cast<size_t>(slot / kStripe) * d + i) * kStripe + slot % kStripe) * elem;
}
size_t value_offset(int32_t slot, int c0, int width, size_t elem) {
  return (static_cast<size_t>(c0) * kPage + static_cast<size_t>(slot) * width) * elem;
}
}  // namespace

// The pieces of one position's key (value) row in head h's page: f(byte offset in the page,
// byte offset in the row, bytes). One piece for a row layout, one per element (per value stripe)
// for the striped ones.
template <typename F>
void KvSeqCache::key_pieces(int32_t slot, F f) const {
  if (!keys_striped_) return f(slot * k_row_bytes_, size_t{0}, k_row_bytes_);
  for (int i = 0; i < head_dim_; ++i)
    f(key_offset(slot, i, head_dim_, k_elem_bytes_), i * k_elem_bytes_, k_elem_bytes_);
}

template <typename F>
void KvSeqCache::value_pieces(int32_t slot, F f) const {
  if (!values_striped_) return f(slot * v_row_bytes_, size_t{0}, v_row_bytes_);
  for (int c0 = 0; c0 < head_dim_; c0 += kStripe) {
    const int width = std::min(kStripe, head_dim_ - c0);
    f(value_offset(slot, c0, width, v_elem_bytes_), c0 * v_elem_bytes_, width * v_elem_bytes_);
  }
}

void KvSeqCache::put_rows(int32_t pos, int h, const uint8_t* k, const uint8_t* v) {
  const int32_t page = pos / kPageTokens, slot = pos % kPageTokens;
  uint8_t* kh = k_pages_[page].get() + h * k_head_bytes_;
  uint8_t* vh = v_pages_[page].get() + h * v_head_bytes_;
  key_pieces(slot, [&](size_t at, size_t off, size_t n) { std::memcpy(kh + at, k + off, n); });
  value_pieces(slot, [&](size_t at, size_t off, size_t n) { std::memcpy(vh + at, v + off, n); });
}

void KvSeqCache::get_rows(int32_t pos, int h, uint8_t* k, uint8_t* v) const {
  const int32_t page = pos / kPageTokens, slot = pos % kPageTokens;
  const uint8_t* kh = k_pages_[page].get() + h * k_head_bytes_;
  const uint8_t* vh = v_pages_[page].get() + h * v_head_bytes_;
  key_pieces(slot, [&](size_t at, size_t off, size_t n) { std::memcpy(k + off, kh + at, n); });
  value_pieces(slot, [&](size_t at, size_t off, size_t n) { std::memcpy(v + off, vh + at, n); });
}

void KvSeqCache::store(int32_t pos, const float* k, const float* v) {
  HYLO_CHECK(pos >= 0 && pos <= n_, "KV store at {} with {} positions", pos, n_);
  ensure_page(pos / kPageTokens);
  // One row of each in the cache types, then into their places.
  thread_local std::vector<uint8_t> k_row, v_row;
  k_row.resize(k_row_bytes_);
  v_row.resize(v_row_bytes_);
  for (int h = 0; h < n_kv_head_; ++h) {
    store_row(type_k_, k + static_cast<size_t>(h) * head_dim_, k_row.data(), head_dim_);
    store_row(type_v_, v + static_cast<size_t>(h) * head_dim_, v_row.data(), head_dim_);
    put_rows(pos, h, k_row.data(), v_row.data());
  }
  n_ = std::max(n_, pos + 1);
}

void KvSeqCache::truncate(int32_t n) {
  n_ = std::min(n_, std::max(n, 0));
  const size_t pages = static_cast<size_t>((n_ + kPageTokens - 1) / kPageTokens);
  k_pages_.resize(std::min(k_pages_.size(), pages));
  v_pages_.resize(std::min(v_pages_.size(), pages));
}

void KvSeqCache::copy_from(const KvSeqCache& other) {
  HYLO_CHECK(other.n_kv_head_ == n_kv_head_ && other.head_dim_ == head_dim_ && other.type_k_ == type_k_ &&
             other.type_v_ == type_v_);
  k_pages_.clear();
  v_pages_.clear();
  const size_t kb = k_head_bytes_ * n_kv_head_, vb = v_head_bytes_ * n_kv_head_;
  for (size_t p = 0; p < other.k_pages_.size(); ++p) {
    k_pages_.emplace_back(new uint8_t[kb]);
    v_pages_.emplace_back(new uint8_t[vb]);
    std::memcpy(k_pages_.back().get(), other.k_pages_[p].get(), kb);
    std::memcpy(v_pages_.back().get(), other.v_pages_[p].get(), vb);
  }
  n_ = other.n_;
}

void KvSeqCache::read_rows(int32_t begin, int32_t n, uint8_t* k, uint8_t* v) const {
  HYLO_CHECK(begin >= 0 && n >= 0 && begin + n <= n_, "KV read of [{}, {}) with {} positions", begin, begin + n, n_);
  for (int32_t i = 0; i < n; ++i) {
    const int32_t pos = begin + i;
    for (int h = 0; h < n_kv_head_; ++h) {
      const size_t row = static_cast<size_t>(i) * n_kv_head_ + h;
      get_rows(pos, h, k + row * k_row_bytes_, v + row * v_row_bytes_);
    }
  }
}

void KvSeqCache::append_rows(int32_t n, const uint8_t* k, const uint8_t* v) {
  for (int32_t i = 0; i < n; ++i) {
    const int32_t pos = n_ + i;
    ensure_page(pos / kPageTokens);
    for (int h = 0; h < n_kv_head_; ++h) {
      const size_t row = static_cast<size_t>(i) * n_kv_head_ + h;
      put_rows(pos, h, k + row * k_row_bytes_, v + row * v_row_bytes_);
    }
  }
  n_ += std::max(n, 0);
}

uint64_t KvSeqCache::bytes_allocated() const {
  return static_cast<uint64_t>(k_pages_.size()) * (k_head_bytes_ + v_head_bytes_) * n_kv_head_;
}

RecurrentSeqState::RecurrentSeqState(int conv_window_, int conv_dim_, int n_heads_, int d_k_, int d_v_)
    : conv_window(conv_window_),
      conv_dim(conv_dim_),
      n_heads(n_heads_),
      d_k(d_k_),
      d_v(d_v_),
      conv(static_cast<size_t>(conv_window_) * conv_dim_, 0.0f),
      ssm(static_cast<size_t>(n_heads_) * d_k_ * d_v_, 0.0f) {}

void RecurrentSeqState::clear() {
  std::fill(conv.begin(), conv.end(), 0.0f);
  std::fill(ssm.begin(), ssm.end(), 0.0f);
}

}  // namespace hylo::ops
