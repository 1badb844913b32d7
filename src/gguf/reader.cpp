// GGUF parser. Every read is bounds-checked against the file size, every product and sum is
// overflow-checked, and no allocation is sized by a length field before that length has been
// checked against the bytes that remain.
#include <fmt/format.h>

#include <cstring>
#include <limits>

#include "base/strings.h"
#include "gguf/gguf.h"

namespace hylo::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint32_t kMaxNestingDepth = 8;

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }
bool add_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_add_overflow(a, b, out); }

// Smallest number of bytes one element of this type occupies in the file.
uint64_t min_encoded_size(ValueType t) {
  switch (t) {
    case ValueType::kU8: case ValueType::kI8: case ValueType::kBool: return 1;
    case ValueType::kU16: case ValueType::kI16: return 2;
    case ValueType::kU32: case ValueType::kI32: case ValueType::kF32: return 4;
    case ValueType::kU64: case ValueType::kI64: case ValueType::kF64: return 8;
    case ValueType::kString: return 8;   // length prefix
    case ValueType::kArray: return 12;   // element type + count
  }
  return 1;
}

class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& name, uint32_t version)
      : data_(data), size_(size), name_(name), version_(version) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  template <typename T>
  Status read(T* out, std::string_view what) {
    if (remaining() < sizeof(T))
      return make_error("[gguf] {}: {}: needs {} bytes at offset {:#x}, file has {} left", name_, what, sizeof(T),
                        pos_, remaining());
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return ok_status();
  }

  // Counts and lengths are u64 in v2/v3 (v1 had u32 and is rejected earlier).
  Status read_count(uint64_t* out, std::string_view what) { return read(out, what); }

  Status read_string(std::string* out, std::string_view what, uint64_t max_len = UINT64_MAX) {
    uint64_t len = 0;
    HYLO_TRY(read_count(&len, what));
    if (len > remaining())
      return make_error("[gguf] {}: {}: string length {} at offset {:#x} exceeds the {} bytes left", name_, what, len,
                        pos_ - 8, remaining());
    if (len > max_len)
      return make_error("[gguf] {}: {}: string length {} exceeds the limit {}", name_, what, len, max_len);
    out->assign(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return ok_status();
  }

  const std::string& name() const { return name_; }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& name_;
  uint32_t version_;
};

Status check_value_type(uint32_t raw, const std::string& file, std::string_view what) {
  if (raw > static_cast<uint32_t>(ValueType::kF64))
    return make_error("[gguf] {}: {}: unknown metadata value type {}", file, what, raw);
  return ok_status();
}

Status read_value(Cursor& c, ValueType type, Value* out, std::string_view what, uint32_t depth);

Status read_array(Cursor& c, Array* arr, std::string_view what, uint32_t depth) {
  if (depth > kMaxNestingDepth)
    return make_error("[gguf] {}: {}: arrays nested deeper than {}", c.name(), what, kMaxNestingDepth);
  uint32_t raw_type = 0;
  HYLO_TRY(c.read(&raw_type, what));
  HYLO_TRY(check_value_type(raw_type, c.name(), what));
  arr->elem_type = static_cast<ValueType>(raw_type);
  uint64_t n = 0;
  HYLO_TRY(c.read_count(&n, what));
  uint64_t min_bytes = 0;
  const bool overflow = mul_overflows(n, min_encoded_size(arr->elem_type), &min_bytes);
  if (overflow || min_bytes > c.remaining())
    return make_error("[gguf] {}: {}: array of {} {} elements cannot fit in the {} bytes left", c.name(), what, n,
                      value_type_name(arr->elem_type), c.remaining());
  const ValueType t = arr->elem_type;
  switch (t) {
    case ValueType::kString: {
      arr->strings.resize(n);
      for (uint64_t i = 0; i < n; ++i) HYLO_TRY(c.read_string(&arr->strings[i], what));
      break;
    }
    case ValueType::kArray: {
      arr->arrays.resize(n);
      for (uint64_t i = 0; i < n; ++i) HYLO_TRY(read_value(c, ValueType::kArray, &arr->arrays[i], what, depth + 1));
      break;
    }
    case ValueType::kF32: case ValueType::kF64: {
      arr->floats.resize(n);
      for (uint64_t i = 0; i < n; ++i) {
        Value v;
        HYLO_TRY(read_value(c, t, &v, what, depth + 1));
        arr->floats[i] = v.f;
      }
      break;
    }
    case ValueType::kU8: case ValueType::kU16: case ValueType::kU32: case ValueType::kU64: {
      arr->uints.resize(n);
      for (uint64_t i = 0; i < n; ++i) {
        Value v;
        HYLO_TRY(read_value(c, t, &v, what, depth + 1));
        arr->uints[i] = v.u;
      }
      break;
    }
    default: {
      arr->ints.resize(n);
      for (uint64_t i = 0; i < n; ++i) {
        Value v;
        HYLO_TRY(read_value(c, t, &v, what, depth + 1));
        arr->ints[i] = v.i;
      }
      break;
    }
  }
  return ok_status();
}

Status read_value(Cursor& c, ValueType type, Value* out, std::string_view what, uint32_t depth) {
  out->type = type;
  switch (type) {
    case ValueType::kU8: { uint8_t v; HYLO_TRY(c.read(&v, what)); out->u = v; break; }
    case ValueType::kI8: { int8_t v; HYLO_TRY(c.read(&v, what)); out->i = v; break; }
    case ValueType::kU16: { uint16_t v; HYLO_TRY(c.read(&v, what)); out->u = v; break; }
    case ValueType::kI16: { int16_t v; HYLO_TRY(c.read(&v, what)); out->i = v; break; }
    case ValueType::kU32: { uint32_t v; HYLO_TRY(c.read(&v, what)); out->u = v; break; }
    case ValueType::kI32: { int32_t v; HYLO_TRY(c.read(&v, what)); out->i = v; break; }
    case ValueType::kU64: { uint64_t v; HYLO_TRY(c.read(&v, what)); out->u = v; break; }
    case ValueType::kI64: { int64_t v; HYLO_TRY(c.read(&v, what)); out->i = v; break; }
    case ValueType::kF32: { float v; HYLO_TRY(c.read(&v, what)); out->f = v; break; }
    case ValueType::kF64: { double v; HYLO_TRY(c.read(&v, what)); out->f = v; break; }
    case ValueType::kBool: {
      uint8_t v;
      HYLO_TRY(c.read(&v, what));
      if (v > 1) return make_error("[gguf] {}: {}: bool value {} is neither 0 nor 1", c.name(), what, v);
      out->i = v;
      break;
    }
    case ValueType::kString: HYLO_TRY(c.read_string(&out->s, what)); break;
    case ValueType::kArray: {
      out->array = std::make_shared<Array>();
      HYLO_TRY(read_array(c, out->array.get(), what, depth));
      break;
    }
  }
  return ok_status();
}

}  // namespace

std::string_view value_type_name(ValueType t) {
  static constexpr std::string_view kNames[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                                "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < 13 ? kNames[i] : "?";
}

bool is_integer(ValueType t) {
  return t == ValueType::kU8 || t == ValueType::kI8 || t == ValueType::kU16 || t == ValueType::kI16 ||
         t == ValueType::kU32 || t == ValueType::kI32 || t == ValueType::kU64 || t == ValueType::kI64;
}

size_t Array::size() const {
  return ints.size() + uints.size() + floats.size() + strings.size() + arrays.size();
}

std::optional<int64_t> Value::as_int() const {
  switch (type) {
    case ValueType::kU8: case ValueType::kU16: case ValueType::kU32: case ValueType::kU64:
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(u);
    case ValueType::kI8: case ValueType::kI16: case ValueType::kI32: case ValueType::kI64: case ValueType::kBool:
      return i;
    default: return std::nullopt;
  }
}

std::optional<double> Value::as_double() const {
  if (type == ValueType::kF32 || type == ValueType::kF64) return f;
  if (auto v = as_int()) return static_cast<double>(*v);
  return std::nullopt;
}

std::string Value::to_string(size_t max_elems) const {
  switch (type) {
    case ValueType::kString: return s;
    case ValueType::kBool: return i ? "true" : "false";
    case ValueType::kF32: return fmt::format("{}", static_cast<float>(f));
    case ValueType::kF64: return fmt::format("{}", f);
    case ValueType::kArray: {
      const Array& a = *array;
      std::string out = fmt::format("[{} x {}]", value_type_name(a.elem_type), a.size());
      const size_t n = std::min(max_elems, a.size());
      if (n == 0) return out;
      out += " ";
      for (size_t k = 0; k < n; ++k) {
        if (k) out += ", ";
        if (!a.strings.empty()) out += fmt::format("{:?}", a.strings[k]);
        else if (!a.ints.empty()) out += std::to_string(a.ints[k]);
        else if (!a.uints.empty()) out += std::to_string(a.uints[k]);
        else if (!a.floats.empty()) out += fmt::format("{}", a.floats[k]);
        else out += a.arrays[k].to_string(2);
      }
      if (n < a.size()) out += ", ...";
      return out;
    }
    default:
      if (auto v = as_int()) return std::to_string(*v);
      return std::to_string(u);
  }
}

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (uint32_t d = 0; d < n_dims; ++d) s += (d ? ", " : "") + std::to_string(ne[d]);
  return s + "]";
}

Result<File> File::parse(const uint8_t* bytes, uint64_t size, const std::string& name) {
  File f;
  f.path_ = name;
  f.base_ = bytes;
  f.size_ = size;
  Cursor c(bytes, size, f.path_, 0);

  uint32_t magic = 0;
  if (size < 4) return make_error("[gguf] {}: file is {} bytes, too short for a GGUF header", name, size);
  HYLO_TRY(c.read(&magic, "magic"));
  if (magic != kMagic) {
    return make_error("[gguf] {}: not a GGUF file (magic {:02x} {:02x} {:02x} {:02x}, expected 47 47 55 46 \"GGUF\")",
                      name, bytes[0], bytes[1], bytes[2], bytes[3]);
  }
  HYLO_TRY(c.read(&f.version_, "version"));
  if (f.version_ == 1) return make_error("[gguf] {}: GGUF version 1 is not supported (only 2 and 3)", name);
  if (f.version_ > 3) {
    if ((f.version_ & 0xffff) == 0)
      return make_error("[gguf] {}: version field {:#x} looks byte-swapped: big-endian GGUF is not supported", name,
                        f.version_);
    return make_error("[gguf] {}: GGUF version {} is not supported (only 2 and 3)", name, f.version_);
  }
  if (f.version_ < 1) return make_error("[gguf] {}: invalid GGUF version 0", name);

  uint64_t n_tensors = 0, n_kv = 0;
  HYLO_TRY(c.read_count(&n_tensors, "tensor count"));
  HYLO_TRY(c.read_count(&n_kv, "metadata count"));
  // Each key-value needs at least 8 (key length) + 4 (type) + 1 bytes; each tensor info
  // 8 + 4 + 4 + 8 + 8 bytes. Reject counts the file cannot possibly hold.
  uint64_t need = 0;
  if (mul_overflows(n_kv, 13, &need) || need > c.remaining())
    return make_error("[gguf] {}: metadata count {} cannot fit in the {} bytes of the file", name, n_kv, size);
  if (mul_overflows(n_tensors, 32, &need) || need > c.remaining())
    return make_error("[gguf] {}: tensor count {} cannot fit in the {} bytes of the file", name, n_tensors, size);

  f.kv_.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key;
    HYLO_TRY(c.read_string(&key, fmt::format("metadata key #{}", k), 1 << 16));
    uint32_t raw_type = 0;
    HYLO_TRY(c.read(&raw_type, key));
    HYLO_TRY(check_value_type(raw_type, name, key));
    Value v;
    HYLO_TRY(read_value(c, static_cast<ValueType>(raw_type), &v, fmt::format("metadata {}", key), 0));
    if (f.kv_index_.count(key)) return make_error("[gguf] {}: duplicate metadata key {}", name, key);
    f.kv_index_.emplace(key, f.kv_.size());
    f.kv_.emplace_back(std::move(key), std::move(v));
  }

  if (const Value* a = f.find("general.alignment")) {
    auto v = a->as_int();
    if (a->type != ValueType::kU32 || !v || *v == 0 || (*v & (*v - 1)) != 0)
      return make_error("[gguf] {}: general.alignment must be a non-zero power of two u32, got {} ({})", name,
                        a->to_string(), value_type_name(a->type));
    f.alignment_ = static_cast<uint32_t>(*v);
  }

  f.tensors_.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t;
    HYLO_TRY(c.read_string(&t.name, fmt::format("tensor #{} name", k), 1 << 16));
    if (t.name.size() > kMaxNameLength)
      return make_error("[gguf] {}: tensor #{} name is {} bytes, longer than ggml's limit of {}", name, k,
                        t.name.size(), kMaxNameLength);
    HYLO_TRY(c.read(&t.n_dims, t.name));
    if (t.n_dims == 0 || t.n_dims > kMaxDims)
      return make_error("[gguf] {}: tensor {}: {} dimensions (1 to {} supported)", name, t.name, t.n_dims, kMaxDims);
    uint64_t n_el = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      uint64_t ne = 0;
      HYLO_TRY(c.read(&ne, t.name));
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          mul_overflows(n_el, ne, &n_el) || n_el > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return make_error("[gguf] {}: tensor {}: dimension {} = {} overflows the element count", name, t.name, d, ne);
      t.ne[d] = static_cast<int64_t>(ne);
    }
    uint32_t raw_type = 0;
    HYLO_TRY(c.read(&raw_type, t.name));
    auto info = tensor_type_info(raw_type);
    if (!info) return make_error("[gguf] {}: tensor {}: unknown tensor type {}", name, t.name, raw_type);
    t.type = info->type;
    HYLO_TRY(c.read(&t.offset, t.name));
    if (t.ne[0] % info->block_elems != 0)
      return make_error("[gguf] {}: tensor {}: row length {} is not a multiple of the {} block size {}", name, t.name,
                        t.ne[0], info->name, info->block_elems);
    if (mul_overflows(n_el / info->block_elems, info->block_bytes, &t.n_bytes))
      return make_error("[gguf] {}: tensor {}: byte size overflows", name, t.name);
    if (t.offset % f.alignment_ != 0)
      return make_error("[gguf] {}: tensor {}: data offset {:#x} is not a multiple of the alignment {}", name, t.name,
                        t.offset, f.alignment_);
    if (f.tensor_index_.count(t.name)) return make_error("[gguf] {}: duplicate tensor name {}", name, t.name);
    f.tensor_index_.emplace(t.name, f.tensors_.size());
    f.tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  const uint64_t header_end = c.pos();
  uint64_t padded = 0;
  if (add_overflows(header_end, f.alignment_ - 1, &padded))
    return make_error("[gguf] {}: header size overflows", name);
  f.data_offset_ = padded / f.alignment_ * f.alignment_;
  if (f.data_offset_ > size && !f.tensors_.empty())
    return make_error("[gguf] {}: data section starts at {:#x}, beyond end of file ({:#x})", name, f.data_offset_,
                      size);
  for (const TensorInfo& t : f.tensors_) {
    uint64_t begin = 0, end = 0;
    if (add_overflows(f.data_offset_, t.offset, &begin) || add_overflows(begin, t.n_bytes, &end) || end > size)
      return make_error("[gguf] {}: tensor {}: data [{:#x}, +{:#x}) beyond end of file ({:#x})", name, t.name, begin,
                        t.n_bytes, size);
  }
  return f;
}

Result<File> File::open(const std::string& path, bool read_into_memory) {
  HYLO_ASSIGN_OR_RETURN(MappedFile map, MappedFile::open(path, read_into_memory));
  auto shared = std::make_shared<MappedFile>(std::move(map));
  std::string shown = path;
  if (auto slash = path.rfind('/'); slash != std::string::npos) shown = path.substr(slash + 1);
  HYLO_ASSIGN_OR_RETURN(File f, parse(shared->data(), shared->size(), shown));
  f.path_ = path;
  f.map_ = std::move(shared);
  return f;
}

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

std::optional<std::string> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr || v->type != ValueType::kString) return std::nullopt;
  return v->s;
}

std::optional<int64_t> File::get_int(std::string_view key) const {
  const Value* v = find(key);
  return v == nullptr ? std::nullopt : v->as_int();
}

std::optional<double> File::get_float(std::string_view key) const {
  const Value* v = find(key);
  return v == nullptr ? std::nullopt : v->as_double();
}

std::optional<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr || v->type != ValueType::kBool) return std::nullopt;
  return v->i != 0;
}

const Array* File::get_array(std::string_view key) const {
  const Value* v = find(key);
  return (v == nullptr || v->type != ValueType::kArray) ? nullptr : v->array.get();
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace hylo::gguf
