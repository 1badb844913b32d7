#include "base/bandwidth.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "base/timer.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace hylo {
namespace {

constexpr uint64_t kLine = 64;  // every load below covers one whole cache line
constexpr uint64_t kPage = 4096;
constexpr uint64_t kMinBytes = uint64_t{4} << 20;

// Where the folded loads go, so the compiler must perform them.
volatile uint64_t g_bandwidth_sink = 0;

// Loads every byte of [p, p + n) (n a multiple of 64) and folds them into one value, so the
// compiler cannot drop a load: the result is published through a volatile sink by the caller.
uint64_t read_lines(const uint8_t* p, uint64_t n) {
#if defined(__SSE2__)
  // Four independent accumulators keep enough loads in flight to saturate a memory channel.
  __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
  for (uint64_t i = 0; i < n; i += kLine) {
    a0 = _mm_xor_si128(a0, _mm_load_si128(reinterpret_cast<const __m128i*>(p + i)));
    a1 = _mm_xor_si128(a1, _mm_load_si128(reinterpret_cast<const __m128i*>(p + i + 16)));
    a2 = _mm_xor_si128(a2, _mm_load_si128(reinterpret_cast<const __m128i*>(p + i + 32)));
    a3 = _mm_xor_si128(a3, _mm_load_si128(reinterpret_cast<const __m128i*>(p + i + 48)));
  }
  const __m128i x = _mm_xor_si128(_mm_xor_si128(a0, a1), _mm_xor_si128(a2, a3));
  uint64_t lanes[2];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(lanes), x);
  return lanes[0] ^ lanes[1];
#else
  uint64_t acc[8] = {};
  for (uint64_t i = 0; i < n; i += kLine) {
    for (int j = 0; j < 8; ++j) {
      uint64_t v;
      std::memcpy(&v, p + i + 8 * j, sizeof v);
      acc[j] ^= v;
    }
  }
  uint64_t r = 0;
  for (uint64_t v : acc) r ^= v;
  return r;
#endif
}

// Anonymous mapping, released to the OS as soon as the measurement ends.
struct Buffer {
  uint8_t* data = nullptr;
  uint64_t size = 0;
  explicit Buffer(uint64_t bytes) : size(bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    data = p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
  }
  ~Buffer() {
    if (data) munmap(data, size);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

}  // namespace

double measure_read_bandwidth_gbs(ThreadPool& pool, uint64_t bytes, int repetitions) {
  bytes = std::max(kMinBytes, bytes / kPage * kPage);
  repetitions = std::max(1, repetitions);
  Buffer buf(bytes);
  if (buf.data == nullptr) return 0.0;
  const int64_t n_lines = static_cast<int64_t>(bytes / kLine);

  // First touch by the reading thread: faults the pages in (no zero-page sharing) and places
  // them on that thread's NUMA node.
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    split_range(n_lines, ith, nth, &b, &e);
    std::memset(buf.data + b * kLine, 0x5a + ith, static_cast<size_t>((e - b) * kLine));
  });

  std::vector<uint64_t> partial(static_cast<size_t>(pool.size()) * 8);  // one cache line apart
  double best = 0.0;
  for (int rep = 0; rep < repetitions; ++rep) {
    Timer timer;
    pool.run([&](int ith, int nth) {
      int64_t b, e;
      split_range(n_lines, ith, nth, &b, &e);
      partial[static_cast<size_t>(ith) * 8] = read_lines(buf.data + b * kLine, static_cast<uint64_t>(e - b) * kLine);
    });
    const double s = timer.seconds();
    uint64_t folded = 0;
    for (size_t i = 0; i < partial.size(); i += 8) folded ^= partial[i];
    g_bandwidth_sink = folded;
    if (s > 0) best = std::max(best, static_cast<double>(bytes) / s / 1e9);
  }
  return best;
}

uint64_t llc_bytes_hint() {
  uint64_t best = 0;
  int best_level = 0;
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index);
    std::ifstream level_in(dir + "/level"), size_in(dir + "/size");
    int level = 0;
    std::string size;
    if (!(level_in >> level) || !(size_in >> size) || size.empty()) continue;
    uint64_t value = std::strtoull(size.c_str(), nullptr, 10);
    if (size.back() == 'K') value <<= 10;
    if (size.back() == 'M') value <<= 20;
    if (level > best_level || (level == best_level && value > best)) {
      best_level = level;
      best = value;
    }
  }
  return best > 0 ? best : uint64_t{32} << 20;
}

}  // namespace hylo
