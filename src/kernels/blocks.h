// Byte layouts of ggml's quantized blocks (ggml-common.h) as packed structs, plus the small
// helpers that decode their packed fields. Layout only: no conversion or dot-product code here.
//
// Every struct is exactly the on-disk block; rows are plain arrays of blocks. Multi-byte fields are
// little-endian; fp16 fields are kept as raw uint16_t bits (hylo::fp16_to_fp32 converts them).
// "nibble packing": a 16-byte array holds 32 codes, byte j = element j (low 4 bits) | element j+16
// (high 4 bits).
//
// The helpers are `static inline` on purpose: each translation unit gets a private copy, so a copy
// compiled with AVX-512 flags can never be the one the linker keeps for portable code.
#pragma once

#include <cstdint>

namespace hylo::kernels {

inline constexpr int kQK = 32;    // elements per block of the 32-element formats
inline constexpr int kQKK = 256;  // elements per super-block of the K-quants

// q4_0: y = (q - 8) * d.
struct BlockQ4_0 {
  uint16_t d;           // fp16 scale (sign is data: ggml picks d = max / -8)
  uint8_t qs[kQK / 2];  // 4-bit codes, nibble packing
};
// q4_1: y = q * d + m.
struct BlockQ4_1 {
  uint16_t d, m;  // fp16 scale and offset
  uint8_t qs[kQK / 2];
};
// q5_0: y = (q - 16) * d, q = nibble | bit i of qh << 4.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];  // 5th bits, bit i (of the 32-bit little-endian word) for element i
  uint8_t qs[kQK / 2];
};
// q5_1: y = q * d + m.
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
// q8_0: y = q * d. Weights and the activations of q4_0/q5_0/q8_0/iq4_nl weights.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
// q8_1: activations of q4_1/q5_1 weights; s = fp16(d * sum(qs)).
struct BlockQ8_1 {
  uint16_t d, s;
  int8_t qs[kQK];
};
// q8_K: activations of the K-quants and iq4_xs. d is f32 here.
struct BlockQ8_K {
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];  // bsums[j] = sum of qs[16j .. 16j+15]
};
// q2_K: 16 sub-blocks of 16, 4-bit scale (low nibble) and 4-bit min (high nibble) each.
struct BlockQ2_K {
  uint8_t scales[kQKK / 16];
  uint8_t qs[kQKK / 4];  // element 128h + 32s + l: bits 2s, 2s+1 of qs[32h + l]
  uint16_t d, dmin;
};
// q3_K: 16 sub-blocks of 16, signed 6-bit scales (stored + 32), codes -4..3.
struct BlockQ3_K {
  uint8_t hmask[kQKK / 8];  // element 128h + 32s + l: high bit = bit 4h + s of hmask[l]
  uint8_t qs[kQKK / 4];     // low 2 bits as q2_K
  uint8_t scales[12];
  uint16_t d;
};
// q4_K: 8 sub-blocks of 32 with 6-bit scale and min. y = d * sc * q - dmin * m.
struct BlockQ4_K {
  uint16_t d, dmin;
  uint8_t scales[12];    // packed 6-bit (sc, m) pairs, see unpack_scale_min_k4
  uint8_t qs[kQKK / 2];  // chunk c: qs[32c + l] = element 64c + l | element 64c + 32 + l << 4
};
// q5_K: q4_K plus a 5th bit per element.
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[kQKK / 8];  // element 64c + l: bit 2c of qh[l]; element 64c + 32 + l: bit 2c + 1
  uint8_t qs[kQKK / 2];
};
// q6_K: 16 sub-blocks of 16 with int8 scales, codes 0..63 stored, value q - 32.
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];  // half h, quarter t, l < 32: ql[64h + 32(t & 1) + l], low nibble for t < 2
  uint8_t qh[kQKK / 4];  // bits 2t, 2t+1 of qh[32h + l]
  int8_t scales[kQKK / 16];
  uint16_t d;
};
// iq4_nl: y = d * kIq4nlValues[q].
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
// iq4_xs: 8 sub-blocks of 32 with 6-bit scales (stored + 32), values from kIq4nlValues.
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;            // bits 2b, 2b+1: high 2 bits of sub-block b's scale
  uint8_t scales_l[kQKK / 64];  // nibble b & 1 of scales_l[b / 2]: low 4 bits
  uint8_t qs[kQKK / 2];         // sub-block b: qs[16b .. 16b+15], nibble packing
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ8_K) == 292 && sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockIQ4_NL) == 18 && sizeof(BlockIQ4_XS) == 136);

// The non-linear 4-bit grid of iq4_nl / iq4_xs (ggml-common.h kvalues_iq4nl).
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// The (v)pshufb control of dword i of a 128-bit lane that turns bytes k and k + 1 of the dword into
// its two 16-bit words, zero-extended (the q2_K / q3_K kernels' scale pairs).
constexpr int32_t byte_pair_control(int i, int k) {
  return static_cast<int32_t>(0x80008000u | static_cast<uint32_t>(4 * i + k) |
                              static_cast<uint32_t>(4 * i + k + 1) << 16);
}

// q4_K / q5_K: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes b:
// j < 4: sc = b[j] & 63, m = b[j+4] & 63;
// j >= 4: sc = (b[j+4] & 15) | (b[j-4] >> 6) << 4, m = (b[j+4] >> 4) | (b[j] >> 6) << 4.
static inline void unpack_scale_min_k4(int j, const uint8_t* b, int* sc, int* m) {
  if (j < 4) {
    *sc = b[j] & 63;
    *m = b[j + 4] & 63;
  } else {
    *sc = (b[j + 4] & 0x0F) | ((b[j - 4] >> 6) << 4);
    *m = (b[j + 4] >> 4) | ((b[j] >> 6) << 4);
  }
}

// q3_K: signed scale (6-bit value - 32) of sub-block k (0..15).
static inline int unpack_scale_q3_k(int k, const uint8_t* b) {
  const int low = k < 8 ? (b[k] & 0x0F) : (b[k - 8] >> 4);
  const int high = (b[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
  return (low | high << 4) - 32;
}

// iq4_xs: signed scale (6-bit value - 32) of sub-block b (0..7).
static inline int unpack_scale_iq4_xs(int b, const BlockIQ4_XS& blk) {
  const int low = (blk.scales_l[b / 2] >> (4 * (b & 1))) & 0x0F;
  const int high = (blk.scales_h >> (2 * b)) & 3;
  return (low | high << 4) - 32;
}

// ---- Integer codes of element e of a (super-)block, as in the layout comments above ----------

// 4-bit nibble-packed code of element j (0..31) of a 16-byte array.
static inline int nibble_code(const uint8_t* qs, int j) { return j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4); }

// q5_0 / q5_1: 5-bit code (0..31) of element j.
static inline int q5_code(const uint8_t* qh, const uint8_t* qs, int j) {
  const uint32_t h = static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
                     static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
  return nibble_code(qs, j) | static_cast<int>((h >> j) & 1) << 4;
}

// q2_K: 2-bit code (0..3) of element e (0..255).
static inline int q2k_code(const BlockQ2_K& b, int e) {
  return (b.qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3;
}

// q3_K: signed code (-4..3) of element e.
static inline int q3k_code(const BlockQ3_K& b, int e) {
  const int h = e / 128, s = (e / 32) % 4, l = e % 32;
  const int low = (b.qs[32 * h + l] >> (2 * s)) & 3;
  return ((b.hmask[l] >> (4 * h + s)) & 1) ? low : low - 4;
}

// q4_K / q5_K: low 4 bits of element e (chunk c = e / 64: low nibbles then high nibbles).
static inline int q4k_code(const uint8_t* qs, int e) {
  const int c = e / 64, l = e % 32;
  return (e % 64) < 32 ? (qs[32 * c + l] & 0x0F) : (qs[32 * c + l] >> 4);
}

// q5_K: 5-bit code (0..31) of element e; its 5th bit is bit (e / 32) of qh[e % 32].
static inline int q5k_code(const BlockQ5_K& b, int e) {
  return q4k_code(b.qs, e) | ((b.qh[e % 32] >> (e / 32)) & 1) << 4;
}

// q6_K: stored 6-bit code (0..63; the value is code - 32) of element e.
static inline int q6k_code(const BlockQ6_K& b, int e) {
  const int h = e / 128, t = (e / 32) % 4, l = e % 32;
  const uint8_t lo = b.ql[64 * h + 32 * (t & 1) + l];
  return (t < 2 ? (lo & 0x0F) : (lo >> 4)) | ((b.qh[32 * h + l] >> (2 * t)) & 3) << 4;
}

}  // namespace hylo::kernels
