#include "models/memory.h"

#include <algorithm>

#include "base/check.h"

namespace hylo::models {

uint64_t MemoryLayout::kv_bytes_per_token(TensorType kv_type) const {
  const uint64_t elem = kv_type == TensorType::kF16 ? 2 : 4;
  uint64_t b = 0;
  for (const Kv& k : kv) b += 2ull * k.n_kv_head * k.head_dim * elem;
  return b;
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
  for (size_t i = 0; i < layout.kv.size(); ++i) {
    const auto& k = layout.kv[i];
    kv_slot_of_layer_.at(k.layer) = static_cast<int>(i);
    kv_.emplace_back();
    for (int s = 0; s < options.n_seq; ++s)
      kv_.back().push_back(std::make_unique<ops::KvSeqCache>(k.n_kv_head, k.head_dim, options.kv_type));
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

uint64_t SeqSegment::bytes() const {
  uint64_t b = sizeof(SeqSegment);
  for (const auto& x : k) b += x.size();
  for (const auto& x : v) b += x.size();
  for (const auto& x : conv) b += x.size() * sizeof(float);
  for (const auto& x : ssm) b += x.size() * sizeof(float);
  return b;
}

Status Memory::save_segment(int seq, int32_t begin, bool with_recurrent, SeqSegment* out) const {
  if (seq < 0 || seq >= n_seq()) return make_error("[memory] save: sequence {} out of range", seq);
  const int32_t end = seq_len_[seq];
  if (begin < 0 || begin > end) return make_error("[memory] save sequence {} from {}: it holds {} positions", seq, begin, end);
  SeqSegment& s = *out;
  s = SeqSegment{};
  s.begin = begin;
  s.end = end;
  for (const auto& layer : kv_) {
    const ops::KvSeqCache& c = *layer[seq];
    const int32_t n = std::clamp(c.size() - begin, 0, end - begin);
    s.kv_rows.push_back(n);
    s.k.emplace_back(static_cast<size_t>(n) * c.row_bytes());
    s.v.emplace_back(static_cast<size_t>(n) * c.row_bytes());
    if (n > 0) c.read_rows(begin, n, s.k.back().data(), s.v.back().data());
  }
  s.recurrent = with_recurrent && has_recurrent();
  if (s.recurrent) {
    for (const auto& layer : rs_) {
      s.conv.push_back(layer[seq]->conv);
      s.ssm.push_back(layer[seq]->ssm);
    }
  }
  return ok_status();
}

Status Memory::append_segment(int seq, const SeqSegment& s, bool with_recurrent) {
  if (seq < 0 || seq >= n_seq()) return make_error("[memory] append: sequence {} out of range", seq);
  if (s.begin != seq_len_[seq] || s.end < s.begin || s.end > n_ctx())
    return make_error("[memory] append [{}, {}) to sequence {} holding {} positions (context {})", s.begin, s.end, seq,
                      seq_len_[seq], n_ctx());
  if (s.kv_rows.size() != kv_.size() || s.k.size() != kv_.size() || s.v.size() != kv_.size())
    return make_error("[memory] append: segment has {} KV layers, the model {}", s.kv_rows.size(), kv_.size());
  with_recurrent = with_recurrent && has_recurrent();
  if (with_recurrent && !s.recurrent)
    return make_error("[memory] append [{}, {}): the segment has no recurrent state", s.begin, s.end);
  if (with_recurrent && (s.conv.size() != rs_.size() || s.ssm.size() != rs_.size()))
    return make_error("[memory] append: segment has {} recurrent layers, the model {}", s.conv.size(), rs_.size());
  for (size_t i = 0; i < kv_.size(); ++i) {
    const ops::KvSeqCache& c = *kv_[i][seq];
    const size_t need = static_cast<size_t>(s.kv_rows[i]) * c.row_bytes();
    if (s.kv_rows[i] < 0 || s.kv_rows[i] > s.end - s.begin || s.k[i].size() != need || s.v[i].size() != need)
      return make_error("[memory] append: KV layer {} holds {} bytes for {} rows of {} bytes", i, s.k[i].size(),
                        s.kv_rows[i], c.row_bytes());
  }
  if (with_recurrent)
    for (size_t i = 0; i < rs_.size(); ++i)
      if (s.conv[i].size() != rs_[i][seq]->conv.size() || s.ssm[i].size() != rs_[i][seq]->ssm.size())
        return make_error("[memory] append: recurrent layer {} has the wrong size", i);
  for (size_t i = 0; i < kv_.size(); ++i) {
    ops::KvSeqCache& c = *kv_[i][seq];
    // A lagging layer (an MTP head) only continues where it stands.
    if (c.size() == s.begin) c.append_rows(s.kv_rows[i], s.k[i].data(), s.v[i].data());
  }
  if (with_recurrent) {
    for (size_t i = 0; i < rs_.size(); ++i) {
      rs_[i][seq]->conv = s.conv[i];
      rs_[i][seq]->ssm = s.ssm[i];
    }
  }
  snapshots_[seq] = Snapshot{};
  seq_len_[seq] = s.end;
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
