#include "runtime/prefix_cache.h"

#include <algorithm>

#include "base/check.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/timer.h"

namespace hylo::runtime {

struct PrefixCache::Node {
  uint64_t hash = 0;
  Node* parent = nullptr;
  int children = 0;
  std::vector<int32_t> tokens;    // [begin, end) of the prompt
  models::SeqSegment segment;     // KV rows [begin, end); recurrent state at end while a restore point
  bool point = true;              // a restore point (for recurrent models: segment.recurrent)
  std::vector<float> mtp_hidden;  // [n_embd] trunk hidden state at end − 1 for MTP drafting, or empty
  uint64_t last_used = 0;
  uint64_t bytes = 0;

  int32_t begin() const { return segment.begin; }
  int32_t end() const { return segment.end; }
  void recount() {
    bytes = sizeof(Node) + tokens.size() * sizeof(int32_t) + mtp_hidden.size() * sizeof(float) + segment.bytes();
  }
};

namespace {

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace

PrefixCache::PrefixCache(const PrefixCacheOptions& options) : options_(options) {
  options_.interval = std::max(kBlock, options_.interval / kBlock * kBlock);
  stats_.max_bytes = options_.max_bytes;
  if (enabled() && !options_.dir.empty()) {
    auto store = CheckpointStore::open(options_.dir, options_.disk_bytes, options_.identity);
    if (store.ok())
      store_ = std::move(*store);
    else
      log_warn("{}; the prefix cache stays in RAM", store.message());
  }
}

// What is in RAM survives a restart on disk, most recently used last (so kept first).
PrefixCache::~PrefixCache() {
  if (store_ == nullptr || nodes_.empty()) return;
  std::vector<const Node*> points;
  for (const auto& [hash, n] : nodes_)
    if (n->point && n->children == 0) points.push_back(n.get());
  std::sort(points.begin(), points.end(), [](const Node* a, const Node* b) { return a->last_used < b->last_used; });
  for (const Node* n : points) spill(n);
  log_info("[cache] {} checkpoints on disk ({})", store_->files(), format_bytes(store_->bytes()));
}

void PrefixCache::spill(const Node* n) {
  if (store_ == nullptr || !n->point || store_->has(n->hash, n->end())) return;
  std::vector<const Node*> chain;
  for (const Node* p = n; p != nullptr; p = p->parent) chain.push_back(p);
  std::reverse(chain.begin(), chain.end());
  // One segment from 0: the chain's KV rows end to end, the node's recurrent state.
  models::SeqSegment whole;
  whole.begin = 0;
  whole.end = n->end();
  std::vector<int32_t> tokens;
  const size_t n_kv = n->segment.k.size();
  whole.kv_rows.assign(n_kv, 0);
  whole.k.resize(n_kv);
  whole.v.resize(n_kv);
  std::vector<bool> lagging(n_kv, false);
  for (const Node* p : chain) {
    tokens.insert(tokens.end(), p->tokens.begin(), p->tokens.end());
    for (size_t i = 0; i < n_kv; ++i) {
      if (lagging[i]) continue;  // a layer that stopped short has no rows after the gap
      const auto& k = p->segment.k[i];
      const auto& v = p->segment.v[i];
      whole.k[i].insert(whole.k[i].end(), k.begin(), k.end());
      whole.v[i].insert(whole.v[i].end(), v.begin(), v.end());
      whole.kv_rows[i] += p->segment.kv_rows[i];
      lagging[i] = p->segment.kv_rows[i] < p->end() - p->begin();
    }
  }
  whole.recurrent = n->segment.recurrent;
  whole.conv = n->segment.conv;
  whole.ssm = n->segment.ssm;
  if (Status st = store_->write(n->hash, tokens, whole); !st.ok()) log_warn("{}", st.message());
}

std::vector<uint64_t> PrefixCache::block_hashes(std::span<const int32_t> tokens) {
  std::vector<uint64_t> out;
  out.reserve(tokens.size() / kBlock);
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i + kBlock <= tokens.size(); i += kBlock) {
    for (size_t j = i; j < i + kBlock; ++j) h = mix(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(tokens[j])) + 1));
    out.push_back(h);
  }
  return out;
}

PrefixCache::Node* PrefixCache::find(uint64_t hash, int32_t end) const {
  auto it = nodes_.find(hash);
  return it != nodes_.end() && it->second->end() == end ? it->second.get() : nullptr;
}

// The hash chain only narrows the search: the tokens themselves decide.
bool PrefixCache::matches(const Node* n, std::span<const int32_t> tokens) const {
  for (; n != nullptr; n = n->parent) {
    if (static_cast<size_t>(n->end()) > tokens.size()) return false;
    if (!std::equal(n->tokens.begin(), n->tokens.end(), tokens.begin() + n->begin())) return false;
    if (n->parent == nullptr && n->begin() != 0) return false;
  }
  return true;
}

void PrefixCache::touch(Node* n) {
  ++clock_;
  for (; n != nullptr; n = n->parent) n->last_used = clock_;
}

PrefixCache::Match PrefixCache::lookup(std::span<const int32_t> tokens, std::span<const uint64_t> hashes,
                                       int32_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  Match m;
  if (!enabled()) return m;
  stats_.lookups++;
  const int64_t top = std::min<int64_t>(std::max(limit, 0) / kBlock, static_cast<int64_t>(hashes.size()));
  for (int64_t i = top; i >= 1; --i) {
    const Node* n = find(hashes[i - 1], static_cast<int32_t>(i * kBlock));
    if (n != nullptr && n->point && matches(n, tokens)) {
      m.n_tokens = n->end();
      m.hash = n->hash;
      break;
    }
  }
  if (store_ != nullptr) {
    uint64_t hash = 0;
    if (const int32_t n = store_->lookup(tokens, hashes, limit, m.n_tokens, &hash); n > m.n_tokens) {
      m.n_tokens = n;
      m.hash = hash;
      m.on_disk = true;
    }
  }
  return m;
}

Status PrefixCache::restore(const Match& match, std::span<const int32_t> tokens, std::span<const uint64_t> hashes,
                            models::Memory& memory, int seq, std::vector<float>* mtp_hidden) {
  std::lock_guard<std::mutex> lock(mu_);
  Timer timer;
  if (mtp_hidden != nullptr) mtp_hidden->clear();
  if (match.on_disk) {
    if (store_ == nullptr) return make_error("[cache] no disk tier");
    auto seg = store_->read(match.hash, match.n_tokens);
    if (!seg.ok()) return seg.error();
    memory.clear(seq);
    if (Status st = memory.append_segment(seq, *seg); !st.ok()) {
      memory.clear(seq);
      return make_error("[cache] checkpoint of {} tokens from disk: {}", match.n_tokens, st.message());
    }
    stats_.hits++;
    stats_.tokens_reused += static_cast<uint64_t>(match.n_tokens);
    stats_.bytes_restored += seg->bytes();
    stats_.restore_seconds += timer.seconds();
    insert_locked(tokens, hashes, memory, seq, {});  // back in RAM, where later turns extend it
    return ok_status();
  }
  Node* leaf = find(match.hash, match.n_tokens);
  if (leaf == nullptr || !leaf->point)
    return make_error("[cache] the checkpoint at {} tokens is no longer cached", match.n_tokens);
  std::vector<const Node*> chain;
  for (const Node* n = leaf; n != nullptr; n = n->parent) chain.push_back(n);
  std::reverse(chain.begin(), chain.end());
  memory.clear(seq);
  for (const Node* n : chain) {
    if (Status st = memory.append_segment(seq, n->segment, /*with_recurrent=*/n == leaf); !st.ok()) {
      memory.clear(seq);
      return st;
    }
    stats_.bytes_restored += n->segment.bytes();
  }
  stats_.restore_seconds += timer.seconds();
  if (mtp_hidden != nullptr) *mtp_hidden = leaf->mtp_hidden;
  touch(leaf);
  stats_.hits++;
  stats_.tokens_reused += static_cast<uint64_t>(match.n_tokens);
  return ok_status();
}

int32_t PrefixCache::next_boundary(int32_t pos, int32_t n_prompt) const {
  if (!enabled()) return -1;
  const int32_t by_interval = (pos / options_.interval + 1) * options_.interval;
  const int32_t prompt_end = n_prompt / kBlock * kBlock;
  if (by_interval <= prompt_end) return by_interval;
  return prompt_end > pos ? prompt_end : -1;
}

void PrefixCache::remove_leaf(Node* n, const Node* keep) {
  while (n != nullptr) {
    HYLO_CHECK(n->children == 0, "[cache] removing a node with {} children", n->children);
    Node* parent = n->parent;
    stats_.bytes -= n->bytes;
    nodes_.erase(n->hash);
    if (parent == nullptr) break;
    parent->children--;
    // A parent left without children or state of its own is of no use.
    n = parent->children == 0 && !parent->point && parent != keep ? parent : nullptr;
  }
}

bool PrefixCache::make_room(uint64_t incoming, const Node* keep) {
  while (stats_.bytes + incoming > options_.max_bytes) {
    Node* victim = nullptr;
    for (auto& [hash, node] : nodes_) {
      Node* n = node.get();
      const bool leaf = n->children == 0 && n != keep;
      const bool sheds_state = n->children > 0 && n->point && n->segment.recurrent;
      if ((leaf || sheds_state) && (victim == nullptr || n->last_used < victim->last_used)) victim = n;
    }
    if (victim == nullptr) return false;
    stats_.evictions++;
    spill(victim);
    if (victim->children == 0) {
      remove_leaf(victim, keep);
    } else {
      // An inner node keeps its KV rows for its descendants and stops being a restore point.
      victim->segment.conv.clear();
      victim->segment.ssm.clear();
      victim->segment.recurrent = false;
      victim->point = false;
      victim->mtp_hidden = {};
      stats_.bytes -= victim->bytes;
      victim->recount();
      stats_.bytes += victim->bytes;
    }
  }
  return true;
}

void PrefixCache::insert(std::span<const int32_t> tokens, std::span<const uint64_t> hashes,
                         const models::Memory& memory, int seq, std::span<const float> mtp_hidden) {
  std::lock_guard<std::mutex> lock(mu_);
  insert_locked(tokens, hashes, memory, seq, mtp_hidden);
}

void PrefixCache::insert_locked(std::span<const int32_t> tokens, std::span<const uint64_t> hashes,
                                const models::Memory& memory, int seq, std::span<const float> mtp_hidden) {
  if (!enabled()) return;
  Timer timer;
  struct AddTime {
    Timer& t;
    double& sum;
    ~AddTime() { sum += t.seconds(); }
  } add_time{timer, stats_.save_seconds};
  const int32_t end = memory.seq_len(seq);
  if (end <= 0 || end % kBlock != 0 || static_cast<size_t>(end / kBlock) > hashes.size() ||
      static_cast<size_t>(end) > tokens.size())
    return;
  const uint64_t hash = hashes[end / kBlock - 1];
  if (auto it = nodes_.find(hash); it != nodes_.end()) {
    Node* n = it->second.get();
    // A foreign prefix with the same hash: this one is not kept.
    if (n->end() != end || !matches(n, tokens)) return;
    if (n->point) {
      if (n->mtp_hidden.empty() && !mtp_hidden.empty() && make_room(mtp_hidden.size() * sizeof(float), n)) {
        n->mtp_hidden.assign(mtp_hidden.begin(), mtp_hidden.end());
        stats_.bytes -= n->bytes;
        n->recount();
        stats_.bytes += n->bytes;
      }
      touch(n);
      return;
    }
    // A node that lost its state gets it back (it is being passed again, so it is in use).
    models::SeqSegment state;
    if (!memory.save_segment(seq, end, /*with_recurrent=*/true, &state).ok()) return;
    const uint64_t extra = state.bytes();
    if (extra > options_.max_bytes || !make_room(extra, n)) return;
    n->segment.conv = std::move(state.conv);
    n->segment.ssm = std::move(state.ssm);
    n->segment.recurrent = true;
    n->point = true;
    n->mtp_hidden.assign(mtp_hidden.begin(), mtp_hidden.end());
    stats_.bytes -= n->bytes;
    n->recount();
    stats_.bytes += n->bytes;
    touch(n);
    return;
  }
  Node* parent = nullptr;
  for (int32_t i = end / kBlock - 1; i >= 1 && parent == nullptr; --i) {
    Node* p = find(hashes[i - 1], i * kBlock);
    if (p != nullptr && matches(p, tokens)) parent = p;
  }
  auto node = std::make_unique<Node>();
  node->hash = hash;
  const int32_t begin = parent != nullptr ? parent->end() : 0;
  if (!memory.save_segment(seq, begin, /*with_recurrent=*/true, &node->segment).ok()) return;
  node->tokens.assign(tokens.begin() + begin, tokens.begin() + end);
  node->mtp_hidden.assign(mtp_hidden.begin(), mtp_hidden.end());
  node->recount();
  if (node->bytes > options_.max_bytes) return;
  if (parent != nullptr) touch(parent);  // the chain being extended is the most recent
  if (!make_room(node->bytes, parent)) return;
  // make_room never removes parent or its ancestors (they have children, or parent is kept).
  node->parent = parent;
  if (parent != nullptr) parent->children++;
  stats_.bytes += node->bytes;
  stats_.bytes_saved += node->bytes;
  stats_.checkpoints_saved++;
  Node* raw = node.get();
  nodes_.emplace(hash, std::move(node));
  touch(raw);
}

PrefixCacheStats PrefixCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  PrefixCacheStats s = stats_;
  s.nodes = nodes_.size();
  if (store_ != nullptr) {
    s.disk_bytes = store_->bytes();
    s.disk_files = store_->files();
    s.disk_reads = store_->reads();
    s.disk_writes = store_->writes();
    s.disk_rejected = store_->rejected();
  }
  return s;
}

}  // namespace hylo::runtime
