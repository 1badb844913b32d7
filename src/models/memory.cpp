#include "models/memory.h"

#include <algorithm>

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
    : layout_(layout),
      options_(options),
      kv_slot_of_layer_(layout.n_layer, -1),
      rs_slot_of_layer_(layout.n_layer, -1),
      snapshots_(options.n_seq),
      checkpoints_(options.n_seq),
      seq_len_(options.n_seq, 0) {
  HYLO_CHECK(options.n_seq > 0 && options.n_ctx > 0);
  HYLO_CHECK(layout.kv_type_problem(options.type_k(), options.type_v()).empty(), "{}",
             layout.kv_type_problem(options.type_k(), options.type_v()));
  for (size_t i = 0; i < layout.kv.size(); ++i) {
    const auto& k = layout.kv[i];
    kv_slot_of_layer_.at(k.layer) = static_cast<int>(i);
    kv_.emplace_back();
    for (int s = 0; s < options.n_seq; ++s)
      kv_.back().push_back(
          std::make_unique<ops::KvSeqCache>(k.n_kv_head, k.head_dim, options.type_k(), options.type_v()));
  }
  for (size_t i = 0; i < layout.recurrent.size(); ++i) {
    const auto& r = layout.recurrent[i];
    rs_slot_of_layer_.at(r.layer) = static_cast<int>(i);
    rs_.emplace_back();
    for (int s = 0; s < options.n_seq; ++s)
      rs_.back().push_back(
          std::make_unique<ops::RecurrentSeqState>(r.conv_window, r.conv_dim, r.n_heads, r.d_k, r.d_v));
  }
}

void Memory::clear(int seq) {
  for (auto& layer : kv_) layer.at(seq)->clear();
  for (auto& layer : rs_) layer.at(seq)->clear();
  snapshots_.at(seq) = Snapshot{};
  checkpoints_.at(seq).pos0 = -1;
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
  checkpoints_[dst].pos0 = -1;
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
  checkpoints_[seq].pos0 = -1;
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
  if (begin < 0 || begin > end)
    return make_error("[memory] save sequence {} from {}: it holds {} positions", seq, begin, end);
  SeqSegment& s = *out;
  s = SeqSegment{};
  s.begin = begin;
  s.end = end;
  for (const auto& layer : kv_) {
    const ops::KvSeqCache& c = *layer[seq];
    const int32_t n = std::clamp(c.size() - begin, 0, end - begin);
    s.kv_rows.push_back(n);
    s.k.emplace_back(static_cast<size_t>(n) * c.k_position_bytes());
    s.v.emplace_back(static_cast<size_t>(n) * c.v_position_bytes());
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
    const size_t need_k = static_cast<size_t>(s.kv_rows[i]) * c.k_position_bytes();
    const size_t need_v = static_cast<size_t>(s.kv_rows[i]) * c.v_position_bytes();
    if (s.kv_rows[i] < 0 || s.kv_rows[i] > s.end - s.begin || s.k[i].size() != need_k || s.v[i].size() != need_v)
      return make_error("[memory] append: KV layer {} holds {} + {} bytes for {} rows of {} + {} bytes", i,
                        s.k[i].size(), s.v[i].size(), s.kv_rows[i], c.k_position_bytes(), c.v_position_bytes());
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
  checkpoints_[seq].pos0 = -1;
  seq_len_[seq] = s.end;
  return ok_status();
}

Status Memory::arm_checkpoints(int seq, int32_t n_rows) {
  if (seq < 0 || seq >= n_seq()) return make_error("[memory] checkpoints: sequence {} out of range", seq);
  if (n_rows < 1) return make_error("[memory] checkpoints for sequence {}: {} rows", seq, n_rows);
  Checkpoints& c = checkpoints_[seq];
  c.pos0 = seq_len_[seq];
  c.n = n_rows;
  c.states.resize(rs_.size());
  for (size_t i = 0; i < rs_.size(); ++i) {
    const ops::RecurrentSeqState& live = *rs_[i][seq];
    while (c.states[i].size() < static_cast<size_t>(n_rows - 1))
      c.states[i].emplace_back(live.conv_window, live.conv_dim, live.n_heads, live.d_k, live.d_v);
  }
  return ok_status();
}

ops::RecurrentSeqState* Memory::checkpoints(int layer, int seq, int32_t pos0, int64_t n) {
  Checkpoints& c = checkpoints_.at(seq);
  if (c.pos0 < 0 || c.pos0 != pos0) return nullptr;
  HYLO_CHECK(c.n == n, "sequence {} is armed for {} rows, the forward has {}", seq, c.n, n);
  const int slot = rs_slot_of_layer_.at(layer);
  HYLO_CHECK(slot >= 0, "layer {} has no recurrent state", layer);
  return c.states[slot].data();
}

Status Memory::rollback(int seq, int32_t n) {
  if (seq < 0 || seq >= n_seq()) return make_error("[memory] rollback: sequence {} out of range", seq);
  Checkpoints& c = checkpoints_[seq];
  if (c.pos0 < 0 || n <= c.pos0 || n > c.pos0 + c.n || seq_len_[seq] != c.pos0 + c.n)
    return make_error("[memory] rollback sequence {} to {}: checkpoints cover ({}, {}], it holds {}", seq, n, c.pos0,
                      c.pos0 + c.n, seq_len_[seq]);
  const int32_t idx = n - c.pos0 - 1;  // state after this row of the armed run
  if (idx < c.n - 1)
    for (size_t i = 0; i < rs_.size(); ++i) {
      std::swap(rs_[i][seq]->conv, c.states[i][idx].conv);
      std::swap(rs_[i][seq]->ssm, c.states[i][idx].ssm);
    }
  for (auto& layer : kv_) layer[seq]->truncate(n);
  if (snapshots_[seq].len > n) snapshots_[seq] = Snapshot{};
  seq_len_[seq] = n;
  c.pos0 = -1;
  return ok_status();
}

uint64_t Memory::bytes_allocated() const {
  uint64_t b = 0;
  for (const auto& layer : kv_)
    for (const auto& c : layer) b += c->bytes_allocated();
  for (const auto& layer : rs_)
    for (const auto& r : layer) b += r->bytes();
  for (const auto& c : checkpoints_)
    for (const auto& layer : c.states)
      for (const auto& r : layer) b += r.bytes();
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
