#include "base/bandwidth.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "base/huge_pages.h"
#include "base/timer.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace hylo {
namespace {

constexpr uint64_t kLine = 64;  // every load below covers one whole cache line
constexpr uint64_t kPage = 4096;
constexpr uint64_t kMinBytes = uint64_t{4} << 20;
constexpr int kManyStreams = 8;

// Where the folded loads go, so the compiler must perform them.
volatile uint64_t g_bandwidth_sink = 0;

// Loads every byte of [p, p + n) (n a multiple of 64 · kStreams) and folds them into one value, so
// the compiler cannot drop a load: the result is published through a volatile sink by the caller.
// The range is read as kStreams equal parts side by side, as a decode kernel reads several row
// groups at once: one stream alone can leave a core's line-fill buffers idle while the
// prefetcher ramps up (on the Ice Lake cores measured, 1 stream read 20-35% less than 8).
template <int kStreams>
uint64_t read_lines(const uint8_t* p, uint64_t n) {
  const uint64_t part = n / kStreams;
#if defined(__SSE2__)
  // Four accumulators per stream keep enough loads in flight.
  __m128i acc[kStreams][4];
  for (auto& a : acc)
    for (__m128i& v : a) v = _mm_setzero_si128();
  for (uint64_t i = 0; i < part; i += kLine) {
    for (int s = 0; s < kStreams; ++s) {
      const uint8_t* line = p + s * part + i;
      for (int j = 0; j < 4; ++j)
        acc[s][j] = _mm_xor_si128(acc[s][j], _mm_load_si128(reinterpret_cast<const __m128i*>(line + 16 * j)));
    }
  }
  __m128i x = _mm_setzero_si128();
  for (const auto& a : acc)
    for (const __m128i& v : a) x = _mm_xor_si128(x, v);
  uint64_t lanes[2];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(lanes), x);
  return lanes[0] ^ lanes[1];
#else
  uint64_t acc[8] = {};
  for (uint64_t i = 0; i < part; i += kLine) {
    for (int s = 0; s < kStreams; ++s) {
      for (int j = 0; j < 8; ++j) {
        uint64_t v;
        std::memcpy(&v, p + s * part + i + 8 * j, sizeof v);
        acc[j] ^= v;
      }
    }
  }
  uint64_t r = 0;
  for (uint64_t v : acc) r ^= v;
  return r;
#endif
}

// On transparent huge pages, as the weight images decode streams (huge_pages.h): with 4 KiB pages
// the read would also pay a TLB miss every page, a two-level walk under virtualisation, and the
// ceiling would sit below what decode reaches. Released to the OS as soon as the measurement ends.
struct Buffer {
  uint8_t* data = nullptr;
  size_t mapped = 0;
  explicit Buffer(uint64_t bytes) : data(static_cast<uint8_t*>(map_huge(bytes, &mapped))) {}
  ~Buffer() { unmap_huge(data, mapped); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

}  // namespace

double measure_read_bandwidth_gbs(ThreadPool& pool, uint64_t bytes, int repetitions) {
  bytes = std::max(kMinBytes, bytes / kPage * kPage);
  repetitions = std::max(1, repetitions);
  Buffer buf(bytes);
  if (buf.data == nullptr) return 0.0;

  // Thread ith's part: whole units of kManyStreams lines, so every stream of it has whole lines.
  constexpr uint64_t kUnit = kManyStreams * kLine;
  const int64_t n_units = static_cast<int64_t>(bytes / kUnit);
  const auto part = [&](int ith, int nth) {
    int64_t b, e;
    split_range(n_units, ith, nth, &b, &e);
    return std::pair<uint8_t*, uint64_t>(buf.data + b * kUnit, static_cast<uint64_t>(e - b) * kUnit);
  };
  // First touch by the reading thread: faults the pages in (no zero-page sharing) and places
  // them on that thread's NUMA node.
  pool.run([&](int ith, int nth) {
    const auto [p, n] = part(ith, nth);
    std::memset(p, 0x5a + ith, n);
  });

  std::vector<uint64_t> partial(static_cast<size_t>(pool.size()) * 8);  // one cache line apart
  double best = 0.0;
  // The ceiling is the better of one stream and kManyStreams per thread, each at its best pass.
  for (int streams : {1, kManyStreams}) {
    for (int rep = 0; rep < repetitions; ++rep) {
      Timer timer;
      pool.run([&](int ith, int nth) {
        const auto [p, n] = part(ith, nth);
        partial[static_cast<size_t>(ith) * 8] = streams == 1 ? read_lines<1>(p, n) : read_lines<kManyStreams>(p, n);
      });
      const double s = timer.seconds();
      uint64_t folded = 0;
      for (size_t i = 0; i < partial.size(); i += 8) folded ^= partial[i];
      g_bandwidth_sink = folded;
      if (s > 0) best = std::max(best, static_cast<double>(n_units * kUnit) / s / 1e9);
    }
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
