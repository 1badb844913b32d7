// Weight quantizers for writing files (hylo make-model, hylo quantize): q4_0, q4_1, q5_0, q5_1, the K-quants
// q2_K, q3_K, q4_K, q5_K, q6_K and the non-linear iq4_nl, iq4_xs with the semantics of ggml's reference quantizers (no
// importance matrix). Not used at inference. Compiled with -ffp-contract=off: the search below compares rounded float
// errors, so the exact operation order decides which scale wins, and ggml-base (the reference) has no FMA.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/check.h"
#include "base/half.h"
#include "kernels/blocks.h"
#include "kernels/quant_internal.h"

namespace hylo::kernels {
namespace {

// Below this magnitude a group counts as all zero (ggml's GROUP_MAX_EPS).
constexpr float kGroupMaxEps = 1e-15f;

// Round half to even through the float adder, valid for |v| < 2^22 (ggml's nearest_int).
int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Affine fit x ≈ scale * L + min with L in 0..nmax (min <= 0), minimising Σ w (scale L + min - x)².
// Start from the plain min/max grid, then try `nstep + 1` stretched grids
// iscale = (nmax + rmin + rdelta * is) / (max - min); for each, solve the weighted least-squares
// problem for (scale, min) with the codes fixed and keep it if its error is lower. This is the
// search of ggml's make_qkx2_quants; the error is squared, or absolute with `absolute_error` (q2_K).
// Returns scale; *neg_min receives -min.
float fit_scale_and_min(int n, int nmax, const float* x, const float* w, uint8_t* codes, float* neg_min, float rmin,
                        float rdelta, int nstep, bool absolute_error = false) {
  auto error_of = [absolute_error](float diff) { return absolute_error ? std::fabs(diff) : diff * diff; };
  float min = x[0], max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    std::memset(codes, 0, static_cast<size_t>(n));
    *neg_min = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    codes[i] = static_cast<uint8_t>(clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax));
    const float diff = scale * static_cast<float>(codes[i]) + min - x[i];
    best_error += w[i] * error_of(diff);
  }
  uint8_t trial[32];
  HYLO_CHECK(n <= 32);
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
      trial[i] = static_cast<uint8_t>(l);
      const float fl = static_cast<float>(l);
      sum_l += w[i] * fl;
      sum_l2 += w[i] * fl * fl;
      sum_xl += w[i] * fl * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0)) continue;
    float trial_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float trial_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (trial_min > 0) {  // the offset must not be positive: refit the scale alone
      trial_min = 0;
      trial_scale = sum_xl / sum_l2;
    }
    float error = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = trial_scale * static_cast<float>(trial[i]) + trial_min - x[i];
      error += w[i] * error_of(diff);
    }
    if (error < best_error) {
      std::memcpy(codes, trial, static_cast<size_t>(n));
      best_error = error;
      scale = trial_scale;
      min = trial_min;
    }
  }
  *neg_min = -min;
  return scale;
}

// The first value of the largest magnitude (0 if all are zero); *amax receives the magnitude.
float largest_magnitude(int n, const float* x, float* amax) {
  float max = 0;
  *amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > *amax) {
      *amax = ax;
      max = x[i];
    }
  }
  return max;
}

// Symmetric fit x ≈ scale * (L - nmax) with L - nmax in -nmax..nmax-1, weights x² (ggml's
// make_qx_quants with rmse_type 1): the grid through the largest-magnitude value, then 18 stretched
// grids iscale = -(nmax + 0.1 is) / max; keep the one maximising (Σ w x l)² / Σ w l², which is the
// least-squares error reduction. Returns the least-squares scale of the winner.
float fit_symmetric_scale(int n, int nmax, const float* x, int8_t* codes) {
  float amax;
  const float max = largest_magnitude(n, x, &amax);
  if (amax < kGroupMaxEps) {
    std::memset(codes, 0, static_cast<size_t>(n));
    return 0.0f;
  }
  auto code_of = [&](float iscale, int i) { return clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1); };
  auto moments = [&](float iscale, float* sum_lx, float* sum_l2) {
    *sum_lx = 0;
    *sum_l2 = 0;
    for (int i = 0; i < n; ++i) {
      const float l = static_cast<float>(code_of(iscale, i));
      const float w = x[i] * x[i];
      *sum_lx += w * x[i] * l;
      *sum_l2 += w * l * l;
    }
  };
  float iscale = static_cast<float>(-nmax) / max;
  for (int i = 0; i < n; ++i) codes[i] = static_cast<int8_t>(code_of(iscale, i) + nmax);
  float sum_lx, sum_l2;
  moments(iscale, &sum_lx, &sum_l2);
  float scale = sum_l2 != 0 ? sum_lx / sum_l2 : 0.0f;
  float best = scale * sum_lx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    moments(iscale, &sum_lx, &sum_l2);
    if (sum_l2 > 0 && sum_lx * sum_lx > best * sum_l2) {
      for (int i = 0; i < n; ++i) codes[i] = static_cast<int8_t>(code_of(iscale, i) + nmax);
      scale = sum_lx / sum_l2;
      best = scale * sum_lx;
    }
  }
  return scale;
}

// Symmetric fit x ≈ scale * (L - nmax), L - nmax in -nmax..nmax-1, weights x² (ggml's
// make_q3_quants with rmse): the grid through the largest-magnitude value, then up to five sweeps
// that move single codes to their least-squares value while that raises (Σ w x l)² / Σ w l².
// Returns the least-squares scale Σ w x l / Σ w l².
float fit_symmetric_scale_sweeps(int n, int nmax, const float* x, int8_t* codes) {
  float amax;
  const float max = largest_magnitude(n, x, &amax);
  if (amax < kGroupMaxEps) {
    std::memset(codes, 0, static_cast<size_t>(n));
    return 0.0f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sum_lx = 0, sum_l2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    codes[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sum_lx += w * x[i] * static_cast<float>(l);
    sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int sweep = 0; sweep < 5; ++sweep) {
    int changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      const float l = static_cast<float>(codes[i]);
      float lx = sum_lx - w * x[i] * l;
      if (!(lx > 0)) continue;
      float l2 = sum_l2 - w * l * l;
      const int new_l = clamp_int(nearest_int(x[i] * l2 / lx), -nmax, nmax - 1);
      if (new_l == codes[i]) continue;
      lx += w * x[i] * static_cast<float>(new_l);
      l2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
      if (l2 > 0 && lx * lx * sum_l2 > sum_lx * sum_lx * l2) {
        codes[i] = static_cast<int8_t>(new_l);
        sum_lx = lx;
        sum_l2 = l2;
        ++changed;
      }
    }
    if (changed == 0) break;
  }
  for (int i = 0; i < n; ++i) codes[i] = static_cast<int8_t>(codes[i] + nmax);
  return sum_lx / sum_l2;
}

// The 2-bit codes of q2_K / q3_K: element 128h + 32s + l at bits 2s, 2s + 1 of qs[32h + l].
void pack_2bit_codes(const uint8_t* codes, uint8_t* qs) {
  for (int h = 0; h < 2; ++h) {
    const uint8_t* q = codes + 128 * h;
    for (int l = 0; l < 32; ++l) {
      qs[32 * h + l] = static_cast<uint8_t>(q[l] | q[l + 32] << 2 | q[l + 64] << 4 | q[l + 96] << 6);
    }
  }
}

// Packs eight 6-bit (scale, min) pairs into the 12 bytes of q4_K / q5_K (inverse of
// unpack_scale_min_k4).
void pack_scale_min_k4(const uint8_t* sc, const uint8_t* m, uint8_t* b) {
  std::memset(b, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      b[j] = sc[j];
      b[j + 4] = m[j];
    } else {
      b[j + 4] = static_cast<uint8_t>((sc[j] & 0x0F) | (m[j] & 0x0F) << 4);
      b[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
      b[j] |= static_cast<uint8_t>((m[j] >> 4) << 6);
    }
  }
}

// Shared by q4_K and q5_K: per 32-element sub-block an affine fit with weights |x| + rms(x), then
// the 6-bit quantized scales and mins relative to the largest of each, then the codes re-derived
// from the quantized block scales. Fills d, dmin, scales and codes[256] (0..nmax).
void quantize_k4_super_block(const float* x, int nmax, float rmin, int nstep, uint16_t* d_out, uint16_t* dmin_out,
                             uint8_t* scales_out, uint8_t* codes) {
  float scales[8], mins[8];
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + 32 * j;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float rms = std::sqrt(sum_x2 / 32);
    float weights[32];
    for (int l = 0; l < 32; ++l) weights[l] = rms + std::fabs(xs[l]);
    scales[j] = fit_scale_and_min(32, nmax, xs, weights, codes + 32 * j, &mins[j], rmin, 0.1f, nstep);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; ++j) {
    ls[j] = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
    lm[j] = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
    if (ls[j] > 63) ls[j] = 63;
    if (lm[j] > 63) lm[j] = 63;
  }
  pack_scale_min_k4(ls, lm, scales_out);
  *d_out = fp32_to_fp16(max_scale / 63.0f);
  *dmin_out = fp32_to_fp16(max_min / 63.0f);
  const float d = fp16_to_fp32(*d_out), dmin = fp16_to_fp32(*dmin_out);
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    unpack_scale_min_k4(j, scales_out, &sc, &m);
    const float dl = d * static_cast<float>(sc);
    if (dl == 0) continue;  // keep the codes of the fit
    const float ml = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      codes[32 * j + l] = static_cast<uint8_t>(clamp_int(nearest_int((x[32 * j + l] + ml) / dl), 0, nmax));
    }
  }
}

// Affine 32-element block for q4_1 / q5_1: d = (max - min) / nmax, codes rounded half up from
// (x - min) / d. Returns d; *min receives the offset.
float affine_block(const float* x, int nmax, float* min) {
  float lo = x[0], hi = x[0];
  for (int j = 1; j < kQK; ++j) {
    if (x[j] < lo) lo = x[j];
    if (x[j] > hi) hi = x[j];
  }
  *min = lo;
  return (hi - lo) / static_cast<float>(nmax);
}

// The 5-bit codes of elements j and j + 16 of a q5_0 / q5_1 block: low nibbles into qs[j], fifth
// bits into bits j and j + 16 of qh.
void store_5bit_codes(int j, int q0, int q1, uint8_t* qs, uint32_t* qh) {
  qs[j] = static_cast<uint8_t>((q0 & 0x0F) | (q1 & 0x0F) << 4);
  *qh |= static_cast<uint32_t>(q0 >> 4 & 1) << j | static_cast<uint32_t>(q1 >> 4 & 1) << (j + 16);
}

// The index of the iq4_nl grid value nearest to v, ties to the upper one: ggml's best_index_int8
// (a binary search, then v - lo < hi - v), as a count of the grid gaps whose midpoint v has
// reached by that same float test. Branch-free, so the 16 scale trials of a block vectorize.
int nearest_grid_index(float v) {
  int index = 0;
  for (int k = 0; k < 15; ++k)
    index += v - static_cast<float>(kIq4nlValues[k]) >= static_cast<float>(kIq4nlValues[k + 1]) - v;
  return index;
}

// Weighted least-squares scale of one 32-element block on the iq4_nl grid, weights x²: start from
// the grid through the largest-magnitude value, then try 15 stretched grids (the search of ggml's
// quantize_row_iq4_nl_impl with ntry 7). Returns 0 for an all-zero block.
float fit_iq4_block(const float* x) {
  constexpr int kTries = 7;
  float amax;
  const float max = largest_magnitude(kQK, x, &amax);
  if (amax < kGroupMaxEps) return 0.0f;
  auto sums_for = [x](float inv_scale, float* sum_qx, float* sum_q2) {
    *sum_qx = 0;
    *sum_q2 = 0;
    for (int j = 0; j < kQK; ++j) {
      const float q = kIq4nlValues[nearest_grid_index(inv_scale * x[j])];
      const float w = x[j] * x[j];
      *sum_qx += w * q * x[j];
      *sum_q2 += w * q * q;
    }
  };
  float sum_qx, sum_q2;
  sums_for(1 / (-max / kIq4nlValues[0]), &sum_qx, &sum_q2);
  float d = sum_qx / sum_q2;
  float best = d * sum_qx;
  for (int t = -kTries; t <= kTries; ++t) {
    sums_for(static_cast<float>(t + kIq4nlValues[0]) / max, &sum_qx, &sum_q2);
    if (sum_q2 > 0 && sum_qx * sum_qx > best * sum_q2) {
      d = sum_qx / sum_q2;
      best = d * sum_qx;
    }
  }
  return d;
}

// Grid indices of 32 elements for scale d (index of the value nearest 0 when d is 0), nibble packed.
void pack_iq4_block(const float* x, float d, uint8_t* qs) {
  const float id = d != 0 ? 1 / d : 0.0f;
  uint8_t codes[kQK];
  for (int j = 0; j < kQK; ++j) codes[j] = static_cast<uint8_t>(nearest_grid_index(id * x[j]));
  for (int j = 0; j < kQK / 2; ++j) qs[j] = static_cast<uint8_t>(codes[j] | codes[j + kQK / 2] << 4);
}
}  // namespace

void quantize_row_q4_0_ref(const float* x, void* dst, int64_t n) {
  HYLO_CHECK(n % kQK == 0);
  BlockQ4_0* y = static_cast<BlockQ4_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax;
    const float max = largest_magnitude(kQK, x, &amax);
    const float d = max / -8;  // the largest magnitude maps to code 0 (value -8)
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      // Truncation of (v + 8.5) rounds half up within the code range.
      const int q0 = static_cast<int8_t>(x[j] * id + 8.5f);
      const int q1 = static_cast<int8_t>(x[j + 16] * id + 8.5f);
      y[i].qs[j] = static_cast<uint8_t>((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
    }
  }
}

// Per 16-element sub-block an affine fit with weights |x| and absolute error, then 4-bit scales
// and mins relative to the largest of each, then the codes re-derived from the quantized ones.
void quantize_row_q2_k_ref(const float* x, void* dst, int64_t n) {
  HYLO_CHECK(n % kQKK == 0);
  BlockQ2_K* y = static_cast<BlockQ2_K*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    uint8_t codes[kQKK];
    float scales[16], mins[16];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; ++j) {
      float weights[16];
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = fit_scale_and_min(16, 3, x + 16 * j, weights, codes + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    std::memset(y[i].scales, 0, sizeof(y[i].scales));
    y[i].d = fp32_to_fp16(0.0f);
    y[i].dmin = fp32_to_fp16(0.0f);
    if (max_scale > 0) {
      const float iscale = 15.0f / max_scale;
      for (int j = 0; j < 16; ++j) y[i].scales[j] = static_cast<uint8_t>(nearest_int(iscale * scales[j]));
      y[i].d = fp32_to_fp16(max_scale / 15.0f);
    }
    if (max_min > 0) {
      const float iscale = 15.0f / max_min;
      for (int j = 0; j < 16; ++j) y[i].scales[j] |= static_cast<uint8_t>(nearest_int(iscale * mins[j]) << 4);
      y[i].dmin = fp32_to_fp16(max_min / 15.0f);
    }
    const float d = fp16_to_fp32(y[i].d), dmin = fp16_to_fp32(y[i].dmin);
    for (int j = 0; j < 16; ++j) {
      const float dl = d * static_cast<float>(y[i].scales[j] & 0x0F);
      if (dl == 0) continue;  // keep the codes of the fit
      const float ml = dmin * static_cast<float>(y[i].scales[j] >> 4);
      for (int l = 0; l < 16; ++l) {
        codes[16 * j + l] = static_cast<uint8_t>(clamp_int(nearest_int((x[16 * j + l] + ml) / dl), 0, 3));
      }
    }
    pack_2bit_codes(codes, y[i].qs);
  }
}

// Per 16-element sub-block a symmetric fit with sweeps, then signed 6-bit scales relative to the
// largest magnitude, then the codes (-4..3, stored + 4) re-derived from the quantized scales.
void quantize_row_q3_k_ref(const float* x, void* dst, int64_t n) {
  HYLO_CHECK(n % kQKK == 0);
  BlockQ3_K* y = static_cast<BlockQ3_K*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    int8_t codes[kQKK];  // 0..7 (value + 4)
    float scales[16];
    for (int j = 0; j < 16; ++j) scales[j] = fit_symmetric_scale_sweeps(16, 4, x + 16 * j, codes + 16 * j);
    float max_abs_scale;
    const float max_scale = largest_magnitude(16, scales, &max_abs_scale);
    // Scale j (stored + 32, 6 bits): low nibble in scales[j % 8] (high nibble for j >= 8), the two
    // high bits at bits 2 (j / 4) of scales[8 + j % 4].
    std::memset(y[i].scales, 0, sizeof(y[i].scales));
    y[i].d = fp32_to_fp16(0.0f);
    if (max_scale != 0) {
      const float iscale = -32.0f / max_scale;
      for (int j = 0; j < 16; ++j) {
        const int l = clamp_int(static_cast<int8_t>(nearest_int(iscale * scales[j])), -32, 31) + 32;
        y[i].scales[j % 8] |= static_cast<uint8_t>((l & 0x0F) << (j < 8 ? 0 : 4));
        y[i].scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      y[i].d = fp32_to_fp16(1 / iscale);
    }
    const float d = fp16_to_fp32(y[i].d);
    for (int j = 0; j < 16; ++j) {
      const int low = (j < 8 ? y[i].scales[j] : y[i].scales[j - 8] >> 4) & 0x0F;
      const int sc = (low | ((y[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
      const float dl = d * static_cast<float>(sc);
      if (dl == 0) continue;  // keep the codes of the fit
      for (int l = 0; l < 16; ++l) {
        codes[16 * j + l] = static_cast<int8_t>(clamp_int(nearest_int(x[16 * j + l] / dl), -4, 3) + 4);
      }
    }
    // The high bit of element e at bit e / 32 of hmask[e % 32]; the low two bits as q2_K.
    uint8_t low_bits[kQKK];
    std::memset(y[i].hmask, 0, sizeof(y[i].hmask));
    for (int e = 0; e < kQKK; ++e) {
      if (codes[e] > 3) y[i].hmask[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
      low_bits[e] = static_cast<uint8_t>(codes[e] & 3);
    }
    pack_2bit_codes(low_bits, y[i].qs);
  }
}

void quantize_row_q4_k_ref(const float* x, void* dst, int64_t n) {
  HYLO_CHECK(n % kQKK == 0);
  BlockQ4_K* y = static_cast<BlockQ4_K*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    uint8_t codes[kQKK];
    quantize_k4_super_block(x, 15, -1.0f, 20, &y[i].d, &y[i].dmin, y[i].scales, codes);
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        y[i].qs[32 * c + l] = static_cast<uint8_t>(codes[64 * c + l] | codes[64 * c + 32 + l] << 4);
      }
    }
  }
}

void quantize_row_q5_k_ref(const float* x, void* dst, int64_t n) {
  HYLO_CHECK(n % kQKK == 0);
  BlockQ5_K* y = static_cast<BlockQ5_K*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    uint8_t codes[kQKK];
    quantize_k4_super_block(x, 31, -0.5f, 15, &y[i].d, &y[i].dmin, y[i].scales, codes);
    std::memset(y[i].qh, 0, sizeof(y[i].qh));
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int lo = codes[64 * c + l], hi = codes[64 * c + 32 + l];
        y[i].qs[32 * c + l] = static_cast<uint8_t>((lo & 0x0F) | (hi & 0x0F) << 4);
        y[i].qh[l] |= static_cast<uint8_t>((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
      }
    }
  }
}

void quantize_row_q6_k_ref(const float* x, void* dst, int64_t n) {
  HYLO_CHECK(n % kQKK == 0);
  BlockQ6_K* y = static_cast<BlockQ6_K*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    int8_t codes[kQKK];  // 0..63 (value + 32)
    float scales[16];
    for (int k = 0; k < 16; ++k) scales[k] = fit_symmetric_scale(16, 32, x + 16 * k, codes + 16 * k);
    float max_abs_scale;
    const float max_scale = largest_magnitude(16, scales, &max_abs_scale);
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof(y[i]));
      continue;
    }
    const float iscale = -128.0f / max_scale;
    y[i].d = fp32_to_fp16(1 / iscale);
    for (int k = 0; k < 16; ++k) {
      const int s = nearest_int(iscale * scales[k]);
      y[i].scales[k] = static_cast<int8_t>(s < 127 ? s : 127);
    }
    const float d = fp16_to_fp32(y[i].d);
    for (int k = 0; k < 16; ++k) {
      const float dl = d * static_cast<float>(y[i].scales[k]);
      if (dl == 0) continue;  // keep the codes of the fit
      for (int l = 0; l < 16; ++l) {
        codes[16 * k + l] = static_cast<int8_t>(clamp_int(nearest_int(x[16 * k + l] / dl), -32, 31) + 32);
      }
    }
    for (int h = 0; h < 2; ++h) {
      const int8_t* q = codes + 128 * h;
      for (int l = 0; l < 32; ++l) {
        y[i].ql[64 * h + l] = static_cast<uint8_t>((q[l] & 0x0F) | (q[l + 64] & 0x0F) << 4);
        y[i].ql[64 * h + 32 + l] = static_cast<uint8_t>((q[l + 32] & 0x0F) | (q[l + 96] & 0x0F) << 4);
        y[i].qh[32 * h + l] =
            static_cast<uint8_t>((q[l] >> 4) | (q[l + 32] >> 4) << 2 | (q[l + 64] >> 4) << 4 | (q[l + 96] >> 4) << 6);
      }
    }
  }
}

void quantize_row_q4_1_ref(const float* x, void* dst, int64_t n) {
  HYLO_CHECK(n % kQK == 0);
  BlockQ4_1* y = static_cast<BlockQ4_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float min;
    const float d = affine_block(x, 15, &min);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = static_cast<int8_t>((x[j] - min) * id + 0.5f);
      const int q1 = static_cast<int8_t>((x[j + 16] - min) * id + 0.5f);
      y[i].qs[j] = static_cast<uint8_t>((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
    }
  }
}

void quantize_row_q5_0_ref(const float* x, void* dst, int64_t n) {
  HYLO_CHECK(n % kQK == 0);
  BlockQ5_0* y = static_cast<BlockQ5_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float amax;
    const float d = largest_magnitude(kQK, x, &amax) / -16;  // the largest magnitude maps to code 0
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
      const int q1 = std::min(31, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 16.5f)));
      store_5bit_codes(j, q0, q1, y[i].qs, &qh);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

void quantize_row_q5_1_ref(const float* x, void* dst, int64_t n) {
  HYLO_CHECK(n % kQK == 0);
  BlockQ5_1* y = static_cast<BlockQ5_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    float min;
    const float d = affine_block(x, 31, &min);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].m = fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      // No clamp: (max - min) / d rounds to 31 at most.
      const int q0 = static_cast<uint8_t>((x[j] - min) * id + 0.5f);
      const int q1 = static_cast<uint8_t>((x[j + 16] - min) * id + 0.5f);
      store_5bit_codes(j, q0, q1, y[i].qs, &qh);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

// Per 32-element block the fitted scale, stored as fp16; the codes follow the fitted (unrounded)
// scale, as ggml's do.
void quantize_row_iq4_nl_ref(const float* x, void* dst, int64_t n) {
  HYLO_CHECK(n % kQK == 0);
  BlockIQ4_NL* y = static_cast<BlockIQ4_NL*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i, x += kQK) {
    const float d = fit_iq4_block(x);
    y[i].d = fp32_to_fp16(d);
    pack_iq4_block(x, d, y[i].qs);
  }
}

// Per 32-element sub-block the fitted scale, then 6-bit scales relative to the super-block scale
// d = -(the fitted scale of largest magnitude) / 32, and the codes re-derived from the quantized
// scales.
void quantize_row_iq4_xs_ref(const float* x, void* dst, int64_t n) {
  HYLO_CHECK(n % kQKK == 0);
  BlockIQ4_XS* y = static_cast<BlockIQ4_XS*>(dst);
  for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
    float scales[kQKK / kQK];
    float max_scale = 0, amax_scale = 0;
    for (int b = 0; b < kQKK / kQK; ++b) {
      scales[b] = fit_iq4_block(x + kQK * b);
      if (std::fabs(scales[b]) > amax_scale) {
        amax_scale = std::fabs(scales[b]);
        max_scale = scales[b];
      }
    }
    const float d = -max_scale / 32;
    const float id = d != 0 ? 1 / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    y[i].scales_h = 0;
    std::memset(y[i].scales_l, 0, sizeof(y[i].scales_l));
    for (int b = 0; b < kQKK / kQK; ++b) {
      const int l = clamp_int(nearest_int(id * scales[b]), -32, 31);
      pack_iq4_block(x + kQK * b, d * static_cast<float>(l), y[i].qs + 16 * b);
      y[i].scales_l[b / 2] |= static_cast<uint8_t>(((l + 32) & 0x0F) << (4 * (b & 1)));
      y[i].scales_h |= static_cast<uint16_t>(((l + 32) >> 4) << (2 * b));
    }
  }
}

}  // namespace hylo::kernels
