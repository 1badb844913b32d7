// Builds interleaved weight images (interleave.h): plain C++, run once per tensor at load.
#include "kernels/interleave.h"

#include <algorithm>
#include <cstring>

namespace hylo::kernels {

void build_image(const ImageLayout& L, const void* w, size_t w_stride, size_t row_bytes, int64_t n_rows, int64_t n,
                 int64_t g_begin, int64_t g_end, void* image) {
  const auto* src = static_cast<const uint8_t*>(w);
  auto* dst = static_cast<uint8_t*>(image);
  const int64_t n_blocks = L.blocks(n);
  const size_t lanes = static_cast<size_t>(L.lanes);
  const size_t body = static_cast<size_t>(L.body_bytes());
  const size_t halves = static_cast<size_t>(L.head_bytes + L.tail_bytes);
  uint8_t block[1024];  // one row's block, zero-padded past the row's end
  for (int64_t g = g_begin; g < g_end; ++g) {
    uint8_t* group = dst + static_cast<size_t>(g) * L.group_bytes(n);
    uint8_t* body_out = group;
    uint8_t* halves_out = group + static_cast<size_t>(n_blocks) * lanes * body;
    for (size_t l = 0; l < lanes; ++l) {
      int64_t r = g * L.lanes + static_cast<int64_t>(l);
      if (r >= n_rows) r = n_rows - 1;
      const uint8_t* row = src + static_cast<size_t>(r) * w_stride;
      for (int64_t b = 0; b < n_blocks; ++b) {
        const size_t start = static_cast<size_t>(b) * static_cast<size_t>(L.block_bytes);
        const size_t have = start >= row_bytes ? 0 : std::min<size_t>(L.block_bytes, row_bytes - start);
        const uint8_t* src_block = row + start;
        if (have < static_cast<size_t>(L.block_bytes)) {  // the row ends inside this block: zero-pad
          std::memset(block, 0, static_cast<size_t>(L.block_bytes));
          std::memcpy(block, row + start, have);
          src_block = block;
        }
        uint8_t* bo = body_out + static_cast<size_t>(b) * lanes * body;
        for (size_t k = 0; k < body / 4; ++k)
          std::memcpy(bo + (k * lanes + l) * 4, src_block + L.head_bytes + 4 * k, 4);
        uint8_t* ho = halves_out + static_cast<size_t>(b) * lanes * halves;
        for (size_t k = 0; k < halves / 2; ++k) {
          const size_t off = k * 2 < static_cast<size_t>(L.head_bytes) ? k * 2 : k * 2 + body;
          std::memcpy(ho + (k * lanes + l) * 2, src_block + off, 2);
        }
      }
    }
    // Zero the alignment padding so the image is deterministic.
    const size_t used = static_cast<size_t>(n_blocks) * lanes * static_cast<size_t>(L.block_bytes);
    std::memset(group + used, 0, L.group_bytes(n) - used);
  }
}

}  // namespace hylo::kernels
