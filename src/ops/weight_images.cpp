#include "ops/weight_images.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "base/cpu.h"
#include "base/huge_pages.h"
#include "base/mapped_file.h"
#include "base/timer.h"

namespace hylo::ops {
namespace {

// fn(begin, end) over [0, n) split across up to hardware_concurrency() threads (the loader has
// no pool yet); one thread when `parallel` is false.
template <typename Fn>
void split_over_cores(int64_t n, bool parallel, Fn&& fn) {
  const int n_threads = parallel ? std::clamp<int>(static_cast<int>(std::thread::hardware_concurrency()), 1, 64) : 1;
  const int64_t per = (n + n_threads - 1) / n_threads;
  std::vector<std::thread> threads;
  for (int64_t b = per; b < n; b += per) threads.emplace_back([&fn, b, per, n] { fn(b, std::min(n, b + per)); });
  fn(int64_t{0}, std::min(n, per));
  for (auto& t : threads) t.join();
}

// Writes the image of w (n_out rows) into dst, on all cores for large matrices.
void build_into(const Weight& w, uint8_t* dst, bool parallel) {
  const kernels::ImageLayout& L = w.kernel->image;
  const size_t used = row_bytes(w.type, static_cast<uint64_t>(w.n_in));
  split_over_cores(L.groups(w.n_out), parallel, [&](int64_t g0, int64_t g1) {
    kernels::build_image(L, w.data, w.row_stride, used, w.n_out, w.n_in, g0, g1, dst);
  });
}

}  // namespace

// Images live in whole 2 MiB pages where the kernel gives them (base/huge_pages.h): decode streams
// every byte once per token, and with 4 KiB pages that is a TLB miss every 4 KiB; building the
// image also takes 512 times fewer page faults.
void WeightImages::Mapping::release() {
  unmap_huge(base, size);
  base = nullptr;
}

uint8_t* WeightImages::allocate(uint64_t bytes) {
  size_t size = 0;
  auto* start = static_cast<uint8_t*>(map_huge(bytes, &size));
  if (start == nullptr) return nullptr;
  mappings_.push_back(Mapping{start, size});
  bytes_ += bytes;
  return start;
}

WeightImages::~WeightImages() {
  for (Mapping& m : mappings_) m.release();
}

WeightImages& WeightImages::operator=(WeightImages&& other) noexcept {
  if (this != &other) {
    for (Mapping& m : mappings_) m.release();
    mappings_ = std::move(other.mappings_);
    other.mappings_.clear();
    enabled_ = other.enabled_;
    bytes_ = other.bytes_;
    seconds_ = other.seconds_;
  }
  return *this;
}

bool WeightImages::usable(const Weight& w) const {
  return enabled_ && w.kernel != nullptr && w.kernel->gemm_image != nullptr && w.image == nullptr;
}

void WeightImages::add(Weight& w, bool release_rows) {
  if (!usable(w)) return;
  const Timer timer;
  uint8_t* image = allocate(w.kernel->image.image_bytes(w.n_out, w.n_in));
  if (image == nullptr) return;  // no memory: stay in place
  build_into(w, image, w.kernel->image.image_bytes(w.n_out, w.n_in) >= (4u << 20));
  w.image = image;
  w.image_group_bytes = w.kernel->image.group_bytes(w.n_in);
  if (release_rows) MappedFile::release(w.data, w.bytes());
  seconds_ += timer.seconds();
}

void WeightImages::add(ExpertWeight& e) {
  if (!usable(e.first)) return;
  const Timer timer;
  // Every expert gets groups of its own, so that expert(x).image starts at its row 0.
  const kernels::ImageLayout& L = e.first.kernel->image;
  const uint64_t per_expert = L.image_bytes(e.first.n_out, e.first.n_in);
  uint8_t* image = allocate(per_expert * static_cast<uint64_t>(e.n_expert));
  if (image == nullptr) return;
  // Experts are small matrices: spread them over the cores rather than each one's groups.
  split_over_cores(e.n_expert, true, [&](int64_t x0, int64_t x1) {
    for (int64_t x = x0; x < x1; ++x) build_into(e.expert(x), image + static_cast<size_t>(x) * per_expert, false);
  });
  e.first.image = image;
  e.first.image_group_bytes = L.group_bytes(e.first.n_in);
  e.expert_image_stride = per_expert;
  MappedFile::release(e.first.data, e.expert_stride * static_cast<uint64_t>(e.n_expert));
  seconds_ += timer.seconds();
}

bool repack_fits(uint64_t bytes) {
  if (const char* env = std::getenv("HYLO_REPACK")) return std::strcmp(env, "0") != 0;
  return bytes <= available_memory_bytes() / 4 * 3;
}

}  // namespace hylo::ops
