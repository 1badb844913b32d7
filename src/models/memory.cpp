#include "models/memory.h"

#include "base/check.h"

namespace hylo::models {

uint64_t MemoryLayout::kv_bytes_per_token(TensorType type_k, TensorType type_v) const {
  uint64_t b = 0;
  for (const Kv& k : kv) {
    const uint64_t n = static_cast<uint64_t>(k.n_kv_head) * k.head_dim;
    b += row_bytes(type_k, n) + row_bytes(type_v, n);
  }
  return b;
}

std::string MemoryLayout::kv_type_problem(TensorType type_k, TensorType type_v) const {
  for (const Kv& k : kv)
    for (TensorType t : {type_k, type_v})
      if (std::string p = ops::kv_cache_type_problem(t, k.head_dim); !p.empty()) return p;
  return "";
}

uint64_t MemoryLayout::recurrent_bytes_per_sequence() const {
  uint64_t b = 0;
  for (const Recurrent& r : recurrent)
    b += 4ull * (static_cast<uint64_t>(r.conv_window) * r.conv_dim + static_cast<uint64_t>(r.n_heads) * r.d_k * r.d_v);
  return b;
}

Memory::Memory(const MemoryLayout& layout, const MemoryOptions& options)
    : layout_(layout), options_(options), kv_slot_of_layer_(layout.n_layer, -1),
      rs_slot_of_layer_(layout.n_layer, -1), snapshots_(options.n_seq), seq_len_(options.n_seq, 0) {
  HYLO_CHECK(options.n_seq > 0 && options.n_ctx > 0);
  HYLO_CHECK(layout.kv_type_problem(options.type_k(), options.type_v()).empty(), "{}",
             layout.kv_type_problem(options.type_k(), options.type_v()));
  for (size_t i = 0; i < layout.kv.size(); ++i) {
    const auto& k = layout.kv[i];
    kv_slot_of_layer_.at(k.layer) = static_cast<int>(i);
    kv_.emplace_back();
    for (int s = 0; s < options.n_seq; ++s)
      kv_.back().push_back(std::make_unique<ops::KvSeqCache>(k.n_kv_head, k.head_dim, options.type_k(), options.type_v()));
  }
  for (size_t i = 0; i < layout.recurrent.size(); ++i) {
    const auto& r = layout.recurrent[i];
    rs_slot_of_layer_.at(r.layer) = static_cast<int>(i);
    rs_.emplace_back();
    for (int s = 0; s < options.n_seq; ++s)
      rs_.back().push_back(std::make_unique<ops::RecurrentSeqState>(r.conv_window, r.conv_dim, r.n_heads, r.d_k, r.d_v));
  }
}

void Memory::clear(int seq) {
  for (auto& layer : kv_) layer.at(seq)->clear();
  for (auto& layer : rs_) layer.at(seq)->clear();
  snapshots_.at(seq) = Snapshot{};
  seq_len_.at(seq) = 0;
}

Status Memory::copy(int src, int dst) {
  if (src < 0 || src >= n_seq() || dst < 0 || dst >= n_seq())
    return make_error("[memory] copy {} -> {}: sequence ids must be below {}", src, dst, n_seq());
  if (src == dst) return ok_status();
  for (auto& layer : kv_) layer[dst]->copy_from(*layer[src]);
  for (auto& layer : rs_) {
    layer[dst]->conv = layer[src]->conv;
    layer[dst]->ssm = layer[src]->ssm;
  }
  snapshots_[dst] = snapshots_[src];
  seq_len_[dst] = seq_len_[src];
  return ok_status();
}

void Memory::snapshot(int seq) {
  Snapshot& s = snapshots_.at(seq);
  s.len = seq_len_.at(seq);
  s.conv.resize(rs_.size());
  s.ssm.resize(rs_.size());
  for (size_t i = 0; i < rs_.size(); ++i) {
    s.conv[i] = rs_[i][seq]->conv;
    s.ssm[i] = rs_[i][seq]->ssm;
  }
}

Status Memory::truncate(int seq, int32_t n) {
  if (seq < 0 || seq >= n_seq()) return make_error("[memory] truncate: sequence {} out of range", seq);
  const int32_t len = seq_len_[seq];
  if (n < 0 || n > len) return make_error("[memory] truncate sequence {} to {}: it holds {} positions", seq, n, len);
  if (n == len) return ok_status();
  if (n == 0) {
    clear(seq);
    return ok_status();
  }
  if (has_recurrent()) {
    Snapshot& s = snapshots_[seq];
    if (s.len != n)
      return make_error(
          "[memory] truncate sequence {} to {}: recurrent layers cannot be rewound without a snapshot at that length",
          seq, n);
    for (size_t i = 0; i < rs_.size(); ++i) {
      rs_[i][seq]->conv = s.conv[i];
      rs_[i][seq]->ssm = s.ssm[i];
    }
  }
  for (auto& layer : kv_) layer[seq]->truncate(n);
  seq_len_[seq] = n;
  return ok_status();
}

uint64_t Memory::bytes_allocated() const {
  uint64_t b = 0;
  for (const auto& layer : kv_)
    for (const auto& c : layer) b += c->bytes_allocated();
  for (const auto& layer : rs_)
    for (const auto& r : layer) b += r->bytes();
  return b;
}

ops::KvSeqCache& Memory::kv(int layer, int seq) {
  const int slot = kv_slot_of_layer_.at(layer);
  HYLO_CHECK(slot >= 0, "layer {} has no KV cache", layer);
  return *kv_[slot].at(seq);
}

const ops::KvSeqCache& Memory::kv(int layer, int seq) const {
  const int slot = kv_slot_of_layer_.at(layer);
  HYLO_CHECK(slot >= 0, "layer {} has no KV cache", layer);
  return *kv_[slot].at(seq);
}

ops::RecurrentSeqState& Memory::recurrent(int layer, int seq) {
  const int slot = rs_slot_of_layer_.at(layer);
  HYLO_CHECK(slot >= 0, "layer {} has no recurrent state", layer);
  return *rs_[slot].at(seq);
}

}  // namespace hylo::models
