// Single-threaded matmul benchmarks for the best kernel family of this CPU (HYLO_ISA=scalar|avx2
// lowers it): decode shapes (1-4 activation columns, weights streamed from a pool far larger than
// the caches) reported in GB/s of weights, and prefill shapes (64-512 columns, weights cache
// resident) reported in GOPS (2 ops per multiply-add) and as % of the measured peak instruction.
//   bench_matmul [--benchmark_filter=q4_K] [--benchmark_min_time=0.2s]
#include <benchmark/benchmark.h>
#include <emmintrin.h>
#include <xmmintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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
    case TensorType::kQ4_1:
    case TensorType::kQ5_1:
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

// The pools decode streams through, in transparent huge pages as the engine's weight images are
// (ops/weight_images.cpp): with 4 KiB pages a stream takes a TLB miss every 4 KiB.
class HugePool {
 public:
  explicit HugePool(size_t bytes) : size_((bytes + kHuge - 1) / kHuge * kHuge) {
    data_ = static_cast<uint8_t*>(std::aligned_alloc(kHuge, size_));
    if (data_ == nullptr) std::abort();
    madvise(data_, size_, MADV_HUGEPAGE);
  }
  ~HugePool() { std::free(data_); }
  HugePool(const HugePool&) = delete;
  HugePool& operator=(const HugePool&) = delete;
  uint8_t* data() { return data_; }

 private:
  static constexpr size_t kHuge = size_t{2} << 20;
  size_t size_;
  uint8_t* data_;
};

// Reads `bytes` (a multiple of 64) with 16-byte loads, asking for each line 4 KiB ahead as the
// decode kernels do (without that one core keeps too few misses in flight): the roofline of one
// thread streaming them.
uint64_t read_all(const uint8_t* data, size_t bytes) {
  __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < bytes; i += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(data + i + 4096), _MM_HINT_T0);
    a0 = _mm_xor_si128(a0, _mm_load_si128(reinterpret_cast<const __m128i*>(data + i)));
    a1 = _mm_xor_si128(a1, _mm_load_si128(reinterpret_cast<const __m128i*>(data + i + 16)));
    a2 = _mm_xor_si128(a2, _mm_load_si128(reinterpret_cast<const __m128i*>(data + i + 32)));
    a3 = _mm_xor_si128(a3, _mm_load_si128(reinterpret_cast<const __m128i*>(data + i + 48)));
  }
  const __m128i x = _mm_xor_si128(_mm_xor_si128(a0, a1), _mm_xor_si128(a2, a3));
  return static_cast<uint64_t>(_mm_cvtsi128_si64(x));
}

// The decode kernel's rate as a fraction of the read rate of the same pool measured in the same
// run: whole passes of the kernel and of the plain read alternate (this host's bandwidth drifts
// between runs), and the median of the per-pair ratios is kept. `weight_bytes` are the matrix's
// GGUF bytes per pass, `pool_bytes` what the read pass streams.
template <typename Pass>
double roofline_fraction(const uint8_t* pool, size_t pool_bytes, double weight_bytes, Pass&& kernel_pass) {
  using Clock = std::chrono::steady_clock;
  std::vector<double> ratios;
  for (int round = 0; round < 5; ++round) {
    const auto t0 = Clock::now();
    kernel_pass();
    const auto t1 = Clock::now();
    benchmark::DoNotOptimize(read_all(pool, pool_bytes));
    const auto t2 = Clock::now();
    const double kernel_rate = weight_bytes / std::chrono::duration<double>(t1 - t0).count();
    const double read_rate = static_cast<double>(pool_bytes) / std::chrono::duration<double>(t2 - t1).count();
    ratios.push_back(kernel_rate / read_rate);
  }
  std::sort(ratios.begin(), ratios.end());
  return ratios[ratios.size() / 2];
}

// Decode: each iteration multiplies the next copy of the matrix from a pool of >= 1 GiB, so the
// weights always come from memory (the last-level cache here is a few hundred MB).
void bench_decode(benchmark::State& state, const MatmulKernel* k, int64_t rows, int64_t n, int64_t cols) {
  const std::vector<uint8_t> one = make_weights(k->weight, rows, n);
  const size_t pool_bytes = size_t{1} << 30;
  const size_t copies = (pool_bytes + one.size() - 1) / one.size();
  HugePool pool(copies * one.size());
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
  state.counters["%read"] =
      100.0 * roofline_fraction(pool.data(), copies * one.size(), static_cast<double>(copies * one.size()), [&] {
        for (size_t c = 0; c < copies; ++c) {
          k->gemm(n, pool.data() + c * one.size(), row_bytes(k->weight, n), rows, xq.data(), row_bytes(k->act, n),
                  cols, y.data(), rows);
        }
        benchmark::DoNotOptimize(y.data());
      });
}

// Decode from the interleaved image (the load-time repack), same pool scheme.
void bench_decode_image(benchmark::State& state, const MatmulKernel* k, int64_t rows, int64_t n, int64_t cols) {
  const std::vector<uint8_t> one = make_weights(k->weight, rows, n);
  const ImageLayout& L = k->image;
  const size_t image_bytes = L.image_bytes(rows, n);
  const char* pool_env = std::getenv("HYLO_BENCH_POOL_MB");
  const size_t pool_target = pool_env ? std::strtoull(pool_env, nullptr, 10) << 20 : size_t{1} << 30;
  // HYLO_BENCH_POOL_MB=0: one copy, cache-resident for the small shapes (the kernel's compute ceiling).
  const size_t copies = std::max<size_t>(1, (pool_target + image_bytes - 1) / image_bytes);
  HugePool pool(copies * image_bytes);
  uint8_t* base = pool.data();
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
  state.counters["%read"] =
      100.0 * roofline_fraction(base, copies * image_bytes, static_cast<double>(copies * one.size()), [&] {
        for (size_t c = 0; c < copies; ++c)
          k->gemm_image(n, base + c * image_bytes, rows, xq.data(), row_bytes(k->act, n), cols, y.data(), rows);
        benchmark::DoNotOptimize(y.data());
      });
}

// The roofline of the decode benchmarks: one thread summing the same pool with plain loads.
void bench_read(benchmark::State& state) {
  const size_t bytes = size_t{1} << 30;
  HugePool pool(bytes);
  std::memset(pool.data(), 1, bytes);
  constexpr size_t kChunk = size_t{32} << 20;
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(read_all(pool.data() + (i++ % (bytes / kChunk)) * kChunk, kChunk));
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(kChunk) * state.iterations(),
                                              benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// Prefill: the same matrix every iteration (compute-bound, the weights in cache), or, as in a
// loaded model, from its interleaved image streamed from memory: a 256 MiB pool of copies, one
// after the other.
void bench_prefill(benchmark::State& state, const MatmulKernel* k, int64_t rows, int64_t n, int64_t cols,
                   bool from_image) {
  const std::vector<uint8_t> w = make_weights(k->weight, rows, n);
  const std::vector<uint8_t> xq = make_activations(*k, cols, n);
  std::vector<float> y(rows * cols);
  if (from_image) {
    const ImageLayout& L = k->image;
    const size_t image_bytes = L.image_bytes(rows, n);
    const size_t copies = ((size_t{256} << 20) + image_bytes - 1) / image_bytes;
    HugePool pool(copies * image_bytes);
    for (size_t i = 0; i < copies; ++i) {
      build_image(L, w.data(), row_bytes(k->weight, n), row_bytes(k->weight, n), rows, n, 0, L.groups(rows),
                  pool.data() + i * image_bytes);
    }
    size_t i = 0;
    for (auto _ : state) {
      k->gemm_image(n, pool.data() + (i++ % copies) * image_bytes, rows, xq.data(), row_bytes(k->act, n), cols,
                    y.data(), rows);
      benchmark::DoNotOptimize(y.data());
    }
  } else {
    for (auto _ : state) {
      k->gemm(n, w.data(), row_bytes(k->weight, n), rows, xq.data(), row_bytes(k->act, n), cols, y.data(), rows);
      benchmark::DoNotOptimize(y.data());
    }
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
                              TensorType::kIQ4_XS, TensorType::kIQ4_NL, TensorType::kQ4_1, TensorType::kQ5_1,
                              TensorType::kF32,    TensorType::kF16,    TensorType::kBF16};
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
    // 768 x 2048 x 32: one routed expert's gate in a 512-token prefill of the qwen3moe bench model;
    // 512 x 2048 x 80 and 2048 x 512 x 80: a qwen3next bench expert's gate and down (64 experts, top-10).
    for (Shape s : {Shape{768, 2048, 32}, Shape{512, 2048, 80}, Shape{2048, 512, 80}, Shape{512, 2048, 64},
                    Shape{4096, 2048, 64}, Shape{4096, 2048, 512}}) {
      const std::string shape = std::to_string(s.rows) + "x" + std::to_string(s.n) + "/cols:" + std::to_string(s.cols);
      benchmark::RegisterBenchmark(("prefill/" + name + "/" + shape).c_str(), bench_prefill, k, s.rows, s.n, s.cols,
                                   false)
          ->Unit(benchmark::kMillisecond);
      if (k->gemm_image != nullptr) {
        benchmark::RegisterBenchmark(("prefill-image/" + name + "/" + shape).c_str(), bench_prefill, k, s.rows, s.n,
                                     s.cols, true)
            ->Unit(benchmark::kMillisecond);
      }
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
