#include "base/npy.h"

#include <cerrno>
#include <cstdio>
#include <cctype>
#include <cstring>
#include <fstream>
#include <memory>

namespace hylo {

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

int64_t dtype_size(const std::string& d) {
  if (d.size() < 3) return 0;
  return std::atoi(d.c_str() + 2);
}

// Extracts the value text of key 'k' from the header dict, e.g. 'descr': '<f4'.
std::string dict_value(const std::string& h, const std::string& key) {
  const size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) return {};
  size_t p = h.find(':', k);
  if (p == std::string::npos) return {};
  ++p;
  while (p < h.size() && h[p] == ' ') ++p;
  if (p >= h.size()) return {};
  if (h[p] == '\'') {
    const size_t e = h.find('\'', p + 1);
    return e == std::string::npos ? std::string() : h.substr(p + 1, e - p - 1);
  }
  if (h[p] == '(') {
    const size_t e = h.find(')', p);
    return e == std::string::npos ? std::string() : h.substr(p, e - p + 1);
  }
  const size_t e = h.find_first_of(",}", p);
  return h.substr(p, e - p);
}

}  // namespace

Result<NpyArray> read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("[npy] {}: cannot open", path);
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) return make_error("[npy] {}: not a .npy file", path);
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    uint8_t b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) return make_error("[npy] {}: truncated header", path);
    hlen = b[0] | (b[1] << 8);
  } else {
    uint8_t b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) return make_error("[npy] {}: truncated header", path);
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
  }
  if (hlen > (1u << 20)) return make_error("[npy] {}: header length {} too large", path, hlen);
  std::string header(hlen, '\0');
  if (!in.read(header.data(), hlen)) return make_error("[npy] {}: truncated header", path);
  NpyArray a;
  a.dtype = dict_value(header, "descr");
  const bool fortran = dict_value(header, "fortran_order").find("True") != std::string::npos;
  std::string shape = dict_value(header, "shape");
  for (size_t i = 0; i < shape.size();) {
    if (std::isdigit(static_cast<unsigned char>(shape[i]))) {
      size_t j = i;
      while (j < shape.size() && std::isdigit(static_cast<unsigned char>(shape[j]))) ++j;
      a.shape.push_back(std::stoll(shape.substr(i, j - i)));
      i = j;
    } else {
      ++i;
    }
  }
  const int64_t es = dtype_size(a.dtype);
  if (es <= 0) return make_error("[npy] {}: unsupported dtype '{}'", path, a.dtype);
  a.bytes.resize(static_cast<size_t>(a.numel() * es));
  if (!in.read(reinterpret_cast<char*>(a.bytes.data()), static_cast<std::streamsize>(a.bytes.size())))
    return make_error("[npy] {}: truncated data ({} bytes expected)", path, a.bytes.size());
  if (fortran && a.shape.size() > 1) {
    // Column-major on disk: element (i0, i1, ...) at i0 + s0·(i1 + s1·(...)). Reorder to C order.
    std::vector<uint8_t> c(a.bytes.size());
    const size_t nd = a.shape.size();
    std::vector<int64_t> idx(nd, 0);
    for (int64_t flat = 0; flat < a.numel(); ++flat) {
      int64_t f_off = 0, stride = 1;
      for (size_t d = 0; d < nd; ++d) {
        f_off += idx[d] * stride;
        stride *= a.shape[d];
      }
      std::memcpy(c.data() + flat * es, a.bytes.data() + f_off * es, static_cast<size_t>(es));
      for (size_t d = nd; d-- > 0;) {  // advance the C-order index
        if (++idx[d] < a.shape[d]) break;
        idx[d] = 0;
      }
    }
    a.bytes = std::move(c);
  }
  return a;
}

Status write_npy_f32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) dict += ",";
    if (i + 1 < shape.size()) dict += " ";
    n *= shape[i];
  }
  dict += "), }";
  // magic(6) + version(2) + len(2) + dict + '\n', padded with spaces to a multiple of 64
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) return make_error("[npy] {}: cannot create: {}", path, std::strerror(errno));
  const uint16_t hl = static_cast<uint16_t>(dict.size());
  const unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<unsigned char>(hl & 0xff),
                                 static_cast<unsigned char>(hl >> 8)};
  bool ok = std::fwrite(pre, 1, 10, f.get()) == 10 && std::fwrite(dict.data(), 1, dict.size(), f.get()) == dict.size();
  ok = ok && std::fwrite(data, sizeof(float), static_cast<size_t>(n), f.get()) == static_cast<size_t>(n);
  if (!ok) return make_error("[npy] {}: write failed", path);
  return ok_status();
}

}  // namespace hylo
