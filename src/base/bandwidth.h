// Measured memory read bandwidth: the ceiling for decode speed, which streams the active weights
// once per token. Used by `hylo doctor --detect` and by `hylo bench` (decode GB/s vs this number).
#pragma once

#include <cstdint>

#include "base/thread_pool.h"

namespace hylo {

// Streams a buffer of `bytes` (rounded to whole 4 KiB pages, at least 4 MiB) with every thread of
// `pool` reading its own contiguous part, `repetitions` times as one sequential stream and as 8
// streams side by side, and returns the best pass in GB/s (1e9 bytes per second). The buffer is on
// transparent huge pages, as the weight images are, and is allocated and first written by the
// same threads that read it (so pages are local to them on NUMA machines and resident before
// timing). Every byte is loaded. For an honest number `bytes` should be many times
// llc_bytes_hint(); smaller buffers measure the cache instead. Returns 0 if the buffer cannot be
// allocated.
double measure_read_bandwidth_gbs(ThreadPool& pool, uint64_t bytes = uint64_t{1} << 30, int repetitions = 3);

// Size of the largest (last-level) cache of CPU 0 in bytes, from sysfs; 32 MiB when unknown.
uint64_t llc_bytes_hint();

}  // namespace hylo
