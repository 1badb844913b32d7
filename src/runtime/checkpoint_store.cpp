#include "runtime/checkpoint_store.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/log.h"
#include "base/strings.h"

namespace hylo::runtime {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'H', 'Y', 'L', 'O', 'C', 'K', 'P', '1'};
constexpr const char* kExtension = ".ckpt";
constexpr int32_t kMaxLayers = 4096;  // a header claiming more is not ours

struct FileHeader {
  char magic[8];
  uint64_t model, layout, hash;
  int32_t n_tokens, n_kv, n_rec, reserved;
  uint64_t payload_bytes, checksum;
};
static_assert(sizeof(FileHeader) == 64);

// A 64-bit checksum over the payload's fields: one multiply per 8 bytes, so it keeps up with the
// disk; each field's length is mixed in, so bytes cannot move between fields unnoticed.
class Checksum {
 public:
  void add(const void* data, size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    uint64_t h = h_;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = (h ^ w) * 0x100000001b3ull;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, p + i, n - i);
    h = (h ^ tail ^ (static_cast<uint64_t>(n) << 3)) * 0x9e3779b97f4a7c15ull;
    h_ = h ^ (h >> 29);
  }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 0xcbf29ce484222325ull;
};

// The payload's fields in order, for writing and for reading into place.
// Seg, Tokens and Sizes are const when writing, mutable when reading into place.
template <typename Seg, typename Tokens, typename Sizes, typename F>
void for_each_field(Seg& s, Tokens& tokens, Sizes& sizes, F&& f) {
  f(tokens.data(), tokens.size() * sizeof(int32_t));
  f(s.kv_rows.data(), s.kv_rows.size() * sizeof(int32_t));
  f(sizes.data(), sizes.size() * sizeof(uint64_t));
  for (size_t i = 0; i < s.k.size(); ++i) {
    f(s.k[i].data(), s.k[i].size());
    f(s.v[i].data(), s.v[i].size());
  }
  for (size_t i = 0; i < s.conv.size(); ++i) {
    f(s.conv[i].data(), s.conv[i].size() * sizeof(float));
    f(s.ssm[i].data(), s.ssm[i].size() * sizeof(float));
  }
}

}  // namespace

CheckpointIdentity checkpoint_identity(const models::Model& model, TensorType type_k, TensorType type_v) {
  Checksum m;
  const gguf::File& f = model.file();
  const uint64_t size = f.file_size();
  m.add(&size, sizeof size);
  for (const gguf::TensorInfo& t : f.tensors()) {
    m.add(t.name.data(), t.name.size());
    const int32_t type = static_cast<int32_t>(t.type);
    m.add(&type, sizeof type);
    m.add(t.ne.data(), sizeof(int64_t) * t.ne.size());
    m.add(&t.offset, sizeof t.offset);
    m.add(f.tensor_data(t), std::min<uint64_t>(t.n_bytes, 64));
  }
  Checksum l;
  const models::MemoryLayout layout = model.memory_layout();
  const int32_t kv[2] = {static_cast<int32_t>(type_k), static_cast<int32_t>(type_v)};
  l.add(kv, sizeof kv);
  // Keys are stored rotated: another RoPE (YaRN factor, base) makes other bits.
  const models::RopeParams& rope = model.rope();
  const int32_t rope_ints[2] = {rope.n_rot, static_cast<int32_t>(rope.scaling)};
  const float rope_floats[6] = {rope.freq_base,   rope.freq_scale, rope.ext_factor,
                                rope.attn_factor, rope.beta_fast,  rope.beta_slow};
  l.add(rope_ints, sizeof rope_ints);
  l.add(rope_floats, sizeof rope_floats);
  l.add(&rope.n_ctx_orig, sizeof rope.n_ctx_orig);
  for (const auto& k : layout.kv) l.add(&k, sizeof k);
  for (const auto& r : layout.recurrent) l.add(&r, sizeof r);
  return {m.value(), l.value()};
}

CheckpointStore::CheckpointStore(std::string dir, uint64_t max_bytes, const CheckpointIdentity& id)
    : dir_(std::move(dir)), max_bytes_(max_bytes), id_(id) {}

Result<std::unique_ptr<CheckpointStore>> CheckpointStore::open(const std::string& dir, uint64_t max_bytes,
                                                               const CheckpointIdentity& id) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    return make_error("[cache] cannot use {} as the cache directory: {}", dir, ec.message());
  std::unique_ptr<CheckpointStore> s(new CheckpointStore(dir, max_bytes, id));
  s->scan();
  return s;
}

void CheckpointStore::scan() {
  std::vector<std::pair<fs::file_time_type, std::pair<uint64_t, Entry>>> found;
  std::error_code ec;
  for (const auto& de : fs::directory_iterator(dir_, ec)) {
    if (!de.is_regular_file() || de.path().extension() != kExtension) continue;
    const std::string path = de.path().string();
    FileHeader h{};
    std::ifstream in(path, std::ios::binary);
    const uint64_t size = de.file_size(ec);
    if (!in.read(reinterpret_cast<char*>(&h), sizeof h) || std::memcmp(h.magic, kMagic, 8) != 0) {
      log_warn("[cache] {}: not a checkpoint file, ignored", path);
      rejected_++;
      continue;
    }
    if (h.model != id_.model || h.layout != id_.layout) {
      log_warn("[cache] {}: written for another model or KV type, ignored", path);
      rejected_++;
      continue;
    }
    if (h.n_tokens <= 0 || h.n_kv < 0 || h.n_kv > kMaxLayers || h.n_rec < 0 || h.n_rec > kMaxLayers ||
        h.payload_bytes + sizeof h != size) {
      log_warn("[cache] {}: header sizes do not match the file ({} bytes), ignored", path, size);
      rejected_++;
      continue;
    }
    found.push_back({de.last_write_time(ec), {h.hash, Entry{path, h.n_tokens, size, 0}}});
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [t, he] : found) {
    he.second.last_used = ++clock_;
    bytes_ += he.second.bytes;
    index_[he.first] = std::move(he.second);
  }
  if (!index_.empty()) log_info("[cache] {}: {} checkpoints on disk ({})", dir_, index_.size(), format_bytes(bytes_));
}

bool CheckpointStore::has(uint64_t hash, int32_t n_tokens) const {
  auto it = index_.find(hash);
  return it != index_.end() && it->second.n_tokens == n_tokens;
}

void CheckpointStore::drop(uint64_t hash, const std::string& why) {
  auto it = index_.find(hash);
  if (it == index_.end()) return;
  if (!why.empty()) {
    log_warn("[cache] {}: {}, ignored", it->second.path, why);
    rejected_++;
  }
  std::error_code ec;
  if (why.empty()) fs::remove(it->second.path, ec);  // evicted; a bad file stays for inspection
  bytes_ -= it->second.bytes;
  index_.erase(it);
}

Result<std::vector<int32_t>> CheckpointStore::read_tokens(const Entry& e) const {
  std::ifstream in(e.path, std::ios::binary);
  FileHeader h{};
  std::vector<int32_t> tokens(static_cast<size_t>(e.n_tokens));
  if (!in.read(reinterpret_cast<char*>(&h), sizeof h) ||
      !in.read(reinterpret_cast<char*>(tokens.data()), static_cast<std::streamsize>(tokens.size() * sizeof(int32_t))))
    return make_error("[cache] {}: cannot read", e.path);
  return tokens;
}

int32_t CheckpointStore::lookup(std::span<const int32_t> tokens, std::span<const uint64_t> hashes, int32_t limit,
                                int32_t better_than, uint64_t* hash) {
  constexpr int32_t kBlock = 64;
  const int64_t top = std::min<int64_t>(std::max(limit, 0) / kBlock, static_cast<int64_t>(hashes.size()));
  for (int64_t i = top; i >= 1 && i * kBlock > better_than; --i) {
    auto it = index_.find(hashes[i - 1]);
    if (it == index_.end() || it->second.n_tokens != i * kBlock) continue;
    auto stored = read_tokens(it->second);
    if (!stored.ok()) {
      drop(it->first, "cannot be read");
      continue;
    }
    if (std::equal(stored->begin(), stored->end(), tokens.begin())) {
      *hash = it->first;
      return static_cast<int32_t>(i * kBlock);
    }
  }
  return 0;
}

Status CheckpointStore::write(uint64_t hash, std::span<const int32_t> tokens_in, const models::SeqSegment& whole) {
  if (has(hash, static_cast<int32_t>(tokens_in.size()))) {
    index_[hash].last_used = ++clock_;
    return ok_status();
  }
  const models::SeqSegment& s = whole;
  std::vector<int32_t> tokens(tokens_in.begin(), tokens_in.end());
  std::vector<uint64_t> sizes;
  for (size_t i = 0; i < s.k.size(); ++i) sizes.push_back(s.k[i].size());
  for (size_t i = 0; i < s.conv.size(); ++i) {
    sizes.push_back(s.conv[i].size());
    sizes.push_back(s.ssm[i].size());
  }
  FileHeader h{};
  std::memcpy(h.magic, kMagic, 8);
  h.model = id_.model;
  h.layout = id_.layout;
  h.hash = hash;
  h.n_tokens = static_cast<int32_t>(tokens.size());
  h.n_kv = static_cast<int32_t>(s.k.size());
  h.n_rec = static_cast<int32_t>(s.conv.size());
  Checksum sum;
  for_each_field(s, tokens, sizes, [&](const void* p, size_t n) {
    h.payload_bytes += n;
    sum.add(p, n);
  });
  h.checksum = sum.value();
  const uint64_t file_bytes = sizeof h + h.payload_bytes;
  if (file_bytes > max_bytes_)
    return make_error("[cache] a checkpoint of {} is over the disk budget", format_bytes(file_bytes));
  while (bytes_ + file_bytes > max_bytes_ && !index_.empty()) {
    auto oldest = std::min_element(index_.begin(), index_.end(), [](const auto& a, const auto& b) {
      return a.second.last_used < b.second.last_used;
    });
    drop(oldest->first, "");
  }
  const std::string path = fmt::format("{}/{:016x}-{}{}", dir_, hash, h.n_tokens, kExtension);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(&h), sizeof h);
    for_each_field(s, tokens, sizes, [&](const void* p, size_t n) {
      out.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
    });
    if (!out.flush()) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return make_error("[cache] cannot write {}", tmp);
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return make_error("[cache] cannot rename {}: {}", tmp, ec.message());
  index_[hash] = Entry{path, h.n_tokens, file_bytes, ++clock_};
  bytes_ += file_bytes;
  writes_++;
  return ok_status();
}

Result<models::SeqSegment> CheckpointStore::read(uint64_t hash, int32_t n_tokens) {
  auto it = index_.find(hash);
  if (it == index_.end() || it->second.n_tokens != n_tokens)
    return make_error("[cache] no checkpoint of {} tokens on disk", n_tokens);
  const Entry e = it->second;
  std::ifstream in(e.path, std::ios::binary);
  FileHeader h{};
  auto fail = [&](const std::string& why) -> Error {
    drop(hash, why);
    return make_error("[cache] {}: {}", e.path, why);
  };
  if (!in.read(reinterpret_cast<char*>(&h), sizeof h) || std::memcmp(h.magic, kMagic, 8) != 0 || h.hash != hash ||
      h.n_tokens != n_tokens || h.model != id_.model || h.layout != id_.layout)
    return fail("the header changed");
  // Field sizes come from the file: each is checked against what is left before it is allocated.
  uint64_t left = h.payload_bytes;
  Checksum sum;
  bool ok = true;
  auto take = [&](void* p, size_t n) {
    if (!ok || n > left || !in.read(static_cast<char*>(p), static_cast<std::streamsize>(n))) {
      ok = false;
      return;
    }
    left -= n;
    sum.add(p, n);
  };
  models::SeqSegment s;
  s.begin = 0;
  s.end = n_tokens;
  std::vector<int32_t> tokens(static_cast<size_t>(n_tokens));
  take(tokens.data(), tokens.size() * sizeof(int32_t));
  s.kv_rows.resize(static_cast<size_t>(h.n_kv));
  take(s.kv_rows.data(), s.kv_rows.size() * sizeof(int32_t));
  std::vector<uint64_t> sizes(static_cast<size_t>(h.n_kv) + 2 * static_cast<size_t>(h.n_rec));
  take(sizes.data(), sizes.size() * sizeof(uint64_t));
  if (!ok) return fail("truncated");
  for (int32_t i = 0; i < h.n_kv && ok; ++i) {
    if (sizes[i] > left / 2) return fail("a KV layer is larger than the file");
    s.k.emplace_back(sizes[i]);
    s.v.emplace_back(sizes[i]);
    take(s.k.back().data(), sizes[i]);
    take(s.v.back().data(), sizes[i]);
  }
  s.recurrent = h.n_rec > 0;
  for (int32_t i = 0; i < h.n_rec && ok; ++i) {
    const uint64_t nc = sizes[h.n_kv + 2 * i], ns = sizes[h.n_kv + 2 * i + 1];
    if (nc > left / sizeof(float) || ns > left / sizeof(float))
      return fail("a recurrent layer is larger than the file");
    s.conv.emplace_back(nc);
    s.ssm.emplace_back(ns);
    take(s.conv.back().data(), nc * sizeof(float));
    take(s.ssm.back().data(), ns * sizeof(float));
  }
  if (!ok || left != 0) return fail("truncated or with trailing bytes");
  if (sum.value() != h.checksum) return fail("checksum mismatch");
  it->second.last_used = ++clock_;
  reads_++;
  return s;
}

}  // namespace hylo::runtime
