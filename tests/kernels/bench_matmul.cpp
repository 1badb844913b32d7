// Single-threaded matmul benchmarks for the best kernel family of this CPU (HYLO_ISA=scalar|avx2
// lowers it): decode shapes (1-4 activation columns, weights streamed from a pool far larger than
// the caches) reported in GB/s of weights, and prefill shapes (64-512 columns, weights cache
// resident) reported in GOPS (2 ops per multiply-add) and as % of the measured peak instruction.
//   bench_matmul [--benchmark_filter=q4_K] [--benchmark_min_time=0.2s]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/cpu.h"
#include "base/half.h"
#include "kernels/peak.h"
#include "kernels/quant.h"

namespace hylo::kernels {
namespace {

struct Peaks {
  double int8_gops, bf16_gflops, fma_gflops;
};
Peaks g_peaks;

// The peak the prefill numbers are compared with: vpdpbusd for the integer formats, vdpbf16ps for
// bf16 (FMA if the CPU has no AVX512-BF16), FMA for f32 / f16.
double peak_for(TensorType t) {
  switch (t) {
    case TensorType::kF32:
    case TensorType::kF16:
      return g_peaks.fma_gflops;
    case TensorType::kBF16:
      return g_peaks.bf16_gflops > 0 ? g_peaks.bf16_gflops : g_peaks.fma_gflops;
    default:
      return g_peaks.int8_gops;
  }
}

// A valid matrix fast: float types and q8_0/q4_0 quantized from random data, other types random
// code bytes with small fp16 scales (the values do not matter for speed, but NaN/denormal floats
// would).
std::vector<uint8_t> make_weights(TensorType t, int64_t rows, int64_t n) {
  std::mt19937 rng(1);
  const size_t rb = row_bytes(t, n);
  std::vector<uint8_t> w(rb * rows);
  if (t == TensorType::kF32 || t == TensorType::kF16 || t == TensorType::kBF16 || t == TensorType::kQ8_0 ||
      t == TensorType::kQ4_0) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> row(n);
    for (int64_t r = 0; r < rows; ++r) {
      for (float& v : row) v = normal(rng);
      quantize_row(t, row.data(), w.data() + r * rb, n);
    }
    return w;
  }
  for (uint8_t& b : w) b = static_cast<uint8_t>(rng());
  std::vector<size_t> fp16_fields;
  switch (t) {
    case TensorType::kQ4_K:
    case TensorType::kQ5_K:
      fp16_fields = {0, 2};
      break;
    case TensorType::kQ6_K:
      fp16_fields = {208};
      break;
    case TensorType::kQ2_K:
      fp16_fields = {80, 82};
      break;
    case TensorType::kQ3_K:
      fp16_fields = {108};
      break;
    default:
      fp16_fields = {0};
      break;
  }
  const uint16_t scale = fp32_to_fp16(0.01f);
  for (size_t off = 0; off < w.size(); off += tensor_type_info(t).block_bytes) {
    for (size_t f : fp16_fields) std::memcpy(&w[off + f], &scale, 2);
  }
  return w;
}

std::vector<uint8_t> make_activations(const MatmulKernel& k, int64_t cols, int64_t n) {
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  std::vector<uint8_t> xq(row_bytes(k.act, n) * cols);
  for (int64_t c = 0; c < cols; ++c) {
    for (float& v : x) v = normal(rng);
    k.quantize_act(x.data(), xq.data() + c * row_bytes(k.act, n), n);
  }
  return xq;
}

// Decode: each iteration multiplies the next copy of the matrix from a pool of >= 1 GiB, so the
// weights always come from memory (the last-level cache here is a few hundred MB).
void bench_decode(benchmark::State& state, const MatmulKernel* k, int64_t rows, int64_t n, int64_t cols) {
  const std::vector<uint8_t> one = make_weights(k->weight, rows, n);
  const size_t pool_bytes = size_t{1} << 30;
  const size_t copies = (pool_bytes + one.size() - 1) / one.size();
  std::vector<uint8_t> pool(copies * one.size());
  for (size_t i = 0; i < copies; ++i) std::memcpy(pool.data() + i * one.size(), one.data(), one.size());
  const std::vector<uint8_t> xq = make_activations(*k, cols, n);
  std::vector<float> y(rows * cols);
  size_t i = 0;
  for (auto _ : state) {
    k->gemm(n, pool.data() + (i++ % copies) * one.size(), row_bytes(k->weight, n), rows, xq.data(),
            row_bytes(k->act, n), cols, y.data(), rows);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(one.size()) * state.iterations(),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// Decode from the interleaved image (the load-time repack), same pool scheme.
void bench_decode_image(benchmark::State& state, const MatmulKernel* k, int64_t rows, int64_t n, int64_t cols) {
  const std::vector<uint8_t> one = make_weights(k->weight, rows, n);
  const ImageLayout& L = k->image;
  const size_t image_bytes = L.image_bytes(rows, n);
  const size_t copies = ((size_t{1} << 30) + image_bytes - 1) / image_bytes;
  std::vector<uint8_t> pool(copies * image_bytes + 64);
  auto* base = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(pool.data()) + 63) / 64 * 64);
  for (size_t i = 0; i < copies; ++i) {
    build_image(L, one.data(), row_bytes(k->weight, n), row_bytes(k->weight, n), rows, n, 0, L.groups(rows),
                base + i * image_bytes);
  }
  const std::vector<uint8_t> xq = make_activations(*k, cols, n);
  std::vector<float> y(rows * cols);
  size_t i = 0;
  for (auto _ : state) {
    k->gemm_image(n, base + (i++ % copies) * image_bytes, rows, xq.data(), row_bytes(k->act, n), cols, y.data(), rows);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(one.size()) * state.iterations(),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// The roofline of the decode benchmarks: one thread summing the same pool with plain loads.
void bench_read(benchmark::State& state) {
  const size_t bytes = size_t{1} << 30;
  std::vector<uint64_t> pool(bytes / 8, 1);
  constexpr size_t kChunk = size_t{32} << 20;
  size_t i = 0;
  for (auto _ : state) {
    const uint64_t* p = pool.data() + (i++ % (bytes / kChunk)) * (kChunk / 8);
    uint64_t acc[8] = {};
    for (size_t j = 0; j < kChunk / 8; j += 8)
      for (int u = 0; u < 8; ++u) acc[u] += p[j + u];
    benchmark::DoNotOptimize(acc);
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(kChunk) * state.iterations(),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// Prefill: the same matrix every iteration (compute-bound).
void bench_prefill(benchmark::State& state, const MatmulKernel* k, int64_t rows, int64_t n, int64_t cols) {
  const std::vector<uint8_t> w = make_weights(k->weight, rows, n);
  const std::vector<uint8_t> xq = make_activations(*k, cols, n);
  std::vector<float> y(rows * cols);
  for (auto _ : state) {
    k->gemm(n, w.data(), row_bytes(k->weight, n), rows, xq.data(), row_bytes(k->act, n), cols, y.data(), rows);
    benchmark::DoNotOptimize(y.data());
  }
  const double ops = 2.0 * static_cast<double>(rows) * static_cast<double>(cols) * static_cast<double>(n);
  state.counters["GOPS"] = benchmark::Counter(ops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  const double peak = peak_for(k->weight);
  if (peak > 0) {
    state.counters["%peak"] =
        benchmark::Counter(100.0 * ops * state.iterations() / 1e9 / peak, benchmark::Counter::kIsRate);
  }
}

void register_all() {
  benchmark::RegisterBenchmark("read/1GiB-pool", bench_read)->Unit(benchmark::kMicrosecond);
  const TensorType types[] = {TensorType::kQ8_0,   TensorType::kQ2_K,   TensorType::kQ3_K, TensorType::kQ5_0,
                              TensorType::kQ4_K,   TensorType::kQ5_K,   TensorType::kQ6_K, TensorType::kQ4_0,
                              TensorType::kIQ4_XS, TensorType::kIQ4_NL, TensorType::kF32,  TensorType::kF16,
                              TensorType::kBF16};
  for (TensorType t : types) {
    const MatmulKernel* k = matmul_kernel(t);
    if (k == nullptr) continue;
    const std::string name = std::string(tensor_type_name(t)) + "/" + isa_name(k->isa);
    struct Shape {
      int64_t rows, n, cols;
    };
    for (Shape s : {Shape{8192, 2048, 1}, Shape{8192, 2048, 4}, Shape{512, 2048, 1}, Shape{2048, 512, 1}}) {
      benchmark::RegisterBenchmark(("decode/" + name + "/" + std::to_string(s.rows) + "x" + std::to_string(s.n) +
                                    "/cols:" + std::to_string(s.cols))
                                       .c_str(),
                                   bench_decode, k, s.rows, s.n, s.cols)
          ->Unit(benchmark::kMicrosecond);
      if (k->gemm_image != nullptr) {
        benchmark::RegisterBenchmark(("decode-image/" + name + "/" + std::to_string(s.rows) + "x" +
                                      std::to_string(s.n) + "/cols:" + std::to_string(s.cols))
                                         .c_str(),
                                     bench_decode_image, k, s.rows, s.n, s.cols)
            ->Unit(benchmark::kMicrosecond);
      }
    }
    for (Shape s : {Shape{512, 2048, 64}, Shape{4096, 2048, 64}, Shape{4096, 2048, 512}}) {
      benchmark::RegisterBenchmark(("prefill/" + name + "/" + std::to_string(s.rows) + "x" + std::to_string(s.n) +
                                    "/cols:" + std::to_string(s.cols))
                                       .c_str(),
                                   bench_prefill, k, s.rows, s.n, s.cols)
          ->Unit(benchmark::kMillisecond);
    }
  }
}

}  // namespace
}  // namespace hylo::kernels

int main(int argc, char** argv) {
  using namespace hylo::kernels;
  g_peaks = {measure_int8_peak_gops(1), measure_bf16_peak_gflops(1), measure_fma_peak_gflops(1)};
  std::printf("cpu: %s, kernel family: %s\n", hylo::cpu_features().brand.c_str(), hylo::isa_name(hylo::best_isa()));
  std::printf("measured single-core peaks: int8 %.1f GOPS, bf16 %.1f GFLOPS, fma %.1f GFLOPS\n", g_peaks.int8_gops,
              g_peaks.bf16_gflops, g_peaks.fma_gflops);
  benchmark::Initialize(&argc, argv);
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
