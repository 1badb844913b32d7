#include "ops/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "base/check.h"
#include "kernels/vec.h"

namespace hylo::ops {

KvSeqCache::KvSeqCache(int n_kv_head, int head_dim, TensorType type)
    : n_kv_head_(n_kv_head), head_dim_(head_dim), type_(type) {
  HYLO_CHECK(type == TensorType::kF32 || type == TensorType::kF16, "KV cache type must be f32 or f16");
}

void KvSeqCache::store(int32_t pos, const float* k, const float* v) {
  HYLO_CHECK(pos >= 0 && pos <= n_, "KV store at {} with {} positions", pos, n_);
  const int32_t page = pos / kPageTokens, slot = pos % kPageTokens;
  while (static_cast<int32_t>(k_pages_.size()) <= page) {
    k_pages_.emplace_back(new uint8_t[page_bytes()]);
    v_pages_.emplace_back(new uint8_t[page_bytes()]);
  }
  const size_t row = static_cast<size_t>(head_dim_) * elem_bytes();
  for (int h = 0; h < n_kv_head_; ++h) {
    uint8_t* kd = k_pages_[page].get() + h * head_bytes() + slot * row;
    uint8_t* vd = v_pages_[page].get() + h * head_bytes() + slot * row;
    const float* ks = k + static_cast<size_t>(h) * head_dim_;
    const float* vs = v + static_cast<size_t>(h) * head_dim_;
    if (type_ == TensorType::kF32) {
      std::memcpy(kd, ks, row);
      std::memcpy(vd, vs, row);
    } else {
      kernels::vec().f32_to_f16(ks, reinterpret_cast<uint16_t*>(kd), head_dim_);
      kernels::vec().f32_to_f16(vs, reinterpret_cast<uint16_t*>(vd), head_dim_);
    }
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
  HYLO_CHECK(other.n_kv_head_ == n_kv_head_ && other.head_dim_ == head_dim_ && other.type_ == type_);
  k_pages_.clear();
  v_pages_.clear();
  for (size_t p = 0; p < other.k_pages_.size(); ++p) {
    k_pages_.emplace_back(new uint8_t[page_bytes()]);
    v_pages_.emplace_back(new uint8_t[page_bytes()]);
    std::memcpy(k_pages_.back().get(), other.k_pages_[p].get(), page_bytes());
    std::memcpy(v_pages_.back().get(), other.v_pages_[p].get(), page_bytes());
  }
  n_ = other.n_;
}

void KvSeqCache::read_rows(int32_t begin, int32_t n, uint8_t* k, uint8_t* v) const {
  HYLO_CHECK(begin >= 0 && n >= 0 && begin + n <= n_, "KV read of [{}, {}) with {} positions", begin, begin + n, n_);
  const size_t row = static_cast<size_t>(head_dim_) * elem_bytes();
  for (int32_t i = 0; i < n; ++i) {
    const int32_t pos = begin + i, page = pos / kPageTokens, slot = pos % kPageTokens;
    for (int h = 0; h < n_kv_head_; ++h) {
      const size_t src = h * head_bytes() + slot * row, dst = (static_cast<size_t>(i) * n_kv_head_ + h) * row;
      std::memcpy(k + dst, k_pages_[page].get() + src, row);
      std::memcpy(v + dst, v_pages_[page].get() + src, row);
    }
  }
}

void KvSeqCache::append_rows(int32_t n, const uint8_t* k, const uint8_t* v) {
  const size_t row = static_cast<size_t>(head_dim_) * elem_bytes();
  for (int32_t i = 0; i < n; ++i) {
    const int32_t pos = n_ + i, page = pos / kPageTokens, slot = pos % kPageTokens;
    while (static_cast<int32_t>(k_pages_.size()) <= page) {
      k_pages_.emplace_back(new uint8_t[page_bytes()]);
      v_pages_.emplace_back(new uint8_t[page_bytes()]);
    }
    for (int h = 0; h < n_kv_head_; ++h) {
      const size_t dst = h * head_bytes() + slot * row, src = (static_cast<size_t>(i) * n_kv_head_ + h) * row;
      std::memcpy(k_pages_[page].get() + dst, k + src, row);
      std::memcpy(v_pages_[page].get() + dst, v + src, row);
    }
  }
  n_ += std::max(n, 0);
}

uint64_t KvSeqCache::bytes_allocated() const { return 2ull * k_pages_.size() * page_bytes(); }

RecurrentSeqState::RecurrentSeqState(int conv_window_, int conv_dim_, int n_heads_, int d_k_, int d_v_)
    : conv_window(conv_window_), conv_dim(conv_dim_), n_heads(n_heads_), d_k(d_k_), d_v(d_v_),
      conv(static_cast<size_t>(conv_window_) * conv_dim_, 0.0f),
      ssm(static_cast<size_t>(n_heads_) * d_k_ * d_v_, 0.0f) {}

void RecurrentSeqState::clear() {
  std::fill(conv.begin(), conv.end(), 0.0f);
  std::fill(ssm.begin(), ssm.end(), 0.0f);
}

}  // namespace hylo::ops
