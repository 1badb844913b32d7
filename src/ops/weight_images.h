// The load-time repack: weights whose kernel reads an interleaved image (kernels/interleave.h) get
// one, built once, and the file pages of their rows are dropped from this process so that memory
// does not double. Everything else stays in place in the mapping.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ops/weights.h"

namespace hylo::ops {

class WeightImages {
 public:
  // enabled = false: add() leaves every weight in place (images cost RAM the mapping would not:
  // the caller turns them off when the weights would not fit, see repack_fits()).
  explicit WeightImages(bool enabled) : enabled_(enabled) {}
  WeightImages(const WeightImages&) = delete;
  WeightImages& operator=(const WeightImages&) = delete;
  WeightImages& operator=(WeightImages&& other) noexcept;
  ~WeightImages();

  // Builds w's image when its kernel has one; sets w.image. The rows must stay mapped (they are
  // still the source of the embedding rows and of any view that does not start a group).
  void add(Weight& w, bool release_rows = true);
  void add(ExpertWeight& e);

  uint64_t bytes() const { return bytes_; }
  double build_seconds() const { return seconds_; }

 private:
  bool usable(const Weight& w) const;
  uint8_t* allocate(uint64_t bytes);  // owned here; null when out of memory
  struct Mapping {
    void* base;
    size_t size;
    void release();
  };
  bool enabled_;
  std::vector<Mapping> mappings_;
  uint64_t bytes_ = 0;
  double seconds_ = 0.0;
};

// True when images of `bytes` fit in the memory available now with room to spare (a quarter of it
// is left for the KV cache, the recurrent state and the page cache); HYLO_REPACK=0/1 overrides.
bool repack_fits(uint64_t bytes);

}  // namespace hylo::ops
