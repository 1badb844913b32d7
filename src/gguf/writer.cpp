#include "gguf/writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <memory>

#include "base/check.h"

namespace hylo::gguf {
namespace {

class Bytes {
 public:
  template <typename T>
  void put(T v) {
    const size_t n = buf_.size();
    buf_.resize(n + sizeof(T));
    std::memcpy(buf_.data() + n, &v, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    buf_.insert(buf_.end(), s.begin(), s.end());
  }
  std::vector<uint8_t>& buf() { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

void put_scalar(Bytes& b, const Value& v) {
  switch (v.type) {
    case ValueType::kU8: b.put<uint8_t>(static_cast<uint8_t>(v.u)); break;
    case ValueType::kI8: b.put<int8_t>(static_cast<int8_t>(v.i)); break;
    case ValueType::kU16: b.put<uint16_t>(static_cast<uint16_t>(v.u)); break;
    case ValueType::kI16: b.put<int16_t>(static_cast<int16_t>(v.i)); break;
    case ValueType::kU32: b.put<uint32_t>(static_cast<uint32_t>(v.u)); break;
    case ValueType::kI32: b.put<int32_t>(static_cast<int32_t>(v.i)); break;
    case ValueType::kU64: b.put<uint64_t>(v.u); break;
    case ValueType::kI64: b.put<int64_t>(v.i); break;
    case ValueType::kF32: b.put<float>(static_cast<float>(v.f)); break;
    case ValueType::kF64: b.put<double>(v.f); break;
    case ValueType::kBool: b.put<uint8_t>(v.i ? 1 : 0); break;
    case ValueType::kString: b.put_string(v.s); break;
    case ValueType::kArray: {
      const Array& a = *v.array;
      b.put<uint32_t>(static_cast<uint32_t>(a.elem_type));
      b.put<uint64_t>(a.size());
      Value e;
      e.type = a.elem_type;
      for (size_t k = 0; k < a.size(); ++k) {
        switch (a.elem_type) {
          case ValueType::kString: b.put_string(a.strings[k]); continue;
          case ValueType::kArray: put_scalar(b, a.arrays[k]); continue;
          case ValueType::kF32: case ValueType::kF64: e.f = a.floats[k]; break;
          case ValueType::kU8: case ValueType::kU16: case ValueType::kU32: case ValueType::kU64: e.u = a.uints[k]; break;
          default: e.i = a.ints[k]; break;
        }
        put_scalar(b, e);
      }
      break;
    }
  }
}

uint64_t pad_to(uint64_t n, uint64_t align) { return (align - n % align) % align; }

}  // namespace

Writer::Writer(uint32_t alignment) : alignment_(alignment) {
  HYLO_CHECK(alignment > 0 && (alignment & (alignment - 1)) == 0);
  if (alignment != 32) set_u32("general.alignment", alignment);
}

void Writer::set(const std::string& key, Value value) {
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  kv_.emplace_back(key, std::move(value));
}

void Writer::set_string(const std::string& key, std::string v) {
  Value x;
  x.type = ValueType::kString;
  x.s = std::move(v);
  set(key, std::move(x));
}
void Writer::set_u32(const std::string& key, uint32_t v) {
  Value x;
  x.type = ValueType::kU32;
  x.u = v;
  set(key, std::move(x));
}
void Writer::set_i32(const std::string& key, int32_t v) {
  Value x;
  x.type = ValueType::kI32;
  x.i = v;
  set(key, std::move(x));
}
void Writer::set_u64(const std::string& key, uint64_t v) {
  Value x;
  x.type = ValueType::kU64;
  x.u = v;
  set(key, std::move(x));
}
void Writer::set_f32(const std::string& key, float v) {
  Value x;
  x.type = ValueType::kF32;
  x.f = v;
  set(key, std::move(x));
}
void Writer::set_bool(const std::string& key, bool v) {
  Value x;
  x.type = ValueType::kBool;
  x.i = v ? 1 : 0;
  set(key, std::move(x));
}
void Writer::set_strings(const std::string& key, std::vector<std::string> v) {
  Value x;
  x.type = ValueType::kArray;
  x.array = std::make_shared<Array>();
  x.array->elem_type = ValueType::kString;
  x.array->strings = std::move(v);
  set(key, std::move(x));
}
void Writer::set_i32s(const std::string& key, const std::vector<int32_t>& v) {
  Value x;
  x.type = ValueType::kArray;
  x.array = std::make_shared<Array>();
  x.array->elem_type = ValueType::kI32;
  x.array->ints.assign(v.begin(), v.end());
  set(key, std::move(x));
}
void Writer::set_f32s(const std::string& key, const std::vector<float>& v) {
  Value x;
  x.type = ValueType::kArray;
  x.array = std::make_shared<Array>();
  x.array->elem_type = ValueType::kF32;
  x.array->floats.assign(v.begin(), v.end());
  set(key, std::move(x));
}

void Writer::add_tensor(std::string name, TensorType type, std::vector<int64_t> ne, FillRows fill) {
  HYLO_CHECK(!ne.empty() && ne.size() <= static_cast<size_t>(kMaxDims), "tensor {}: {} dims", name, ne.size());
  PendingTensor t;
  t.info.name = std::move(name);
  t.info.type = type;
  t.info.n_dims = static_cast<uint32_t>(ne.size());
  for (size_t d = 0; d < ne.size(); ++d) t.info.ne[d] = ne[d];
  const TensorTypeInfo& ti = tensor_type_info(type);
  HYLO_CHECK(ne[0] % ti.block_elems == 0, "tensor {}: ne0 {} not a multiple of {}", t.info.name, ne[0],
             ti.block_elems);
  t.info.n_bytes = static_cast<uint64_t>(t.info.n_elements()) / ti.block_elems * ti.block_bytes;
  uint64_t offset = 0;
  if (!tensors_.empty()) {
    const TensorInfo& last = tensors_.back().info;
    offset = last.offset + last.n_bytes + pad_to(last.n_bytes, alignment_);
  }
  t.info.offset = offset;
  t.fill = std::move(fill);
  tensors_.push_back(std::move(t));
}

void Writer::add_tensor_bytes(std::string name, TensorType type, std::vector<int64_t> ne, std::vector<uint8_t> bytes) {
  auto data = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  const uint64_t row = row_bytes(type, static_cast<uint64_t>(ne[0]));
  add_tensor(std::move(name), type, std::move(ne), [data, row](uint8_t* dst, int64_t r0, int64_t r1) {
    std::memcpy(dst, data->data() + r0 * row, (r1 - r0) * row);
  });
  HYLO_CHECK(data->size() == tensors_.back().info.n_bytes, "tensor {}: {} bytes given, {} expected",
             tensors_.back().info.name, data->size(), tensors_.back().info.n_bytes);
}

uint64_t Writer::data_bytes() const {
  if (tensors_.empty()) return 0;
  const TensorInfo& last = tensors_.back().info;
  return last.offset + last.n_bytes + pad_to(last.n_bytes, alignment_);
}

Status Writer::write(const std::string& path) const {
  Bytes h;
  h.put<uint32_t>(0x46554747);
  h.put<uint32_t>(3);
  h.put<uint64_t>(tensors_.size());
  h.put<uint64_t>(kv_.size());
  for (const auto& [key, value] : kv_) {
    h.put_string(key);
    h.put<uint32_t>(static_cast<uint32_t>(value.type));
    put_scalar(h, value);
  }
  for (const auto& t : tensors_) {
    h.put_string(t.info.name);
    h.put<uint32_t>(t.info.n_dims);
    for (uint32_t d = 0; d < t.info.n_dims; ++d) h.put<uint64_t>(static_cast<uint64_t>(t.info.ne[d]));
    h.put<uint32_t>(static_cast<uint32_t>(t.info.type));
    h.put<uint64_t>(t.info.offset);
  }
  std::vector<uint8_t>& header = h.buf();
  header.resize(header.size() + pad_to(header.size(), alignment_), 0);

  const std::string tmp = path + ".tmp";
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(tmp.c_str(), "wb"), &std::fclose);
  if (!f) return make_error("[gguf] {}: cannot create: {}", tmp, std::strerror(errno));
  auto put = [&](const void* p, size_t n) { return std::fwrite(p, 1, n, f.get()) == n; };
  bool ok = put(header.data(), header.size());
  std::vector<uint8_t> chunk;
  constexpr uint64_t kChunkBytes = 64ull << 20;
  for (const auto& t : tensors_) {
    if (!ok) break;
    const uint64_t rb = row_bytes(t.info.type, static_cast<uint64_t>(t.info.ne[0]));
    const int64_t n_rows = t.info.n_elements() / t.info.ne[0];
    const int64_t rows_per_chunk = std::max<int64_t>(1, static_cast<int64_t>(kChunkBytes / std::max<uint64_t>(rb, 1)));
    for (int64_t r0 = 0; r0 < n_rows && ok; r0 += rows_per_chunk) {
      const int64_t r1 = std::min(n_rows, r0 + rows_per_chunk);
      chunk.assign(static_cast<size_t>((r1 - r0) * rb), 0);
      t.fill(chunk.data(), r0, r1);
      ok = put(chunk.data(), chunk.size());
    }
    const uint64_t pad = pad_to(t.info.n_bytes, alignment_);
    if (ok && pad) {
      chunk.assign(pad, 0);
      ok = put(chunk.data(), pad);
    }
  }
  if (!ok) {
    const int e = errno;
    f.reset();
    std::remove(tmp.c_str());
    return make_error("[gguf] {}: write failed: {}", tmp, std::strerror(e));
  }
  if (std::fflush(f.get()) != 0) return make_error("[gguf] {}: write failed: {}", tmp, std::strerror(errno));
  f.reset();
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return make_error("[gguf] cannot rename {} to {}: {}", tmp, path, std::strerror(errno));
  return ok_status();
}

}  // namespace hylo::gguf
