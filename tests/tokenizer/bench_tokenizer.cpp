// Encode / load throughput of the tokenizer on the fixture model's Qwen3 vocabulary.
//   bench_tokenizer [--benchmark_filter=...]       (HYLO_BENCH_TEXT=file to encode a file instead)
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>

#include "tokenizer/fixture_tokenizer.h"

namespace {

using hylo::tokenizer::Tokenizer;

// About 1 MB of English-like prose from a fixed word list (seeded), with numbers, punctuation
// and line breaks; or the file named by HYLO_BENCH_TEXT.
const std::string& english_text() {
  static const std::string text = [] {
    if (const char* path = std::getenv("HYLO_BENCH_TEXT")) return hylo::test::read_text_file(path);
    static const char* words[] = {"the",         "of",          "and",         "to",           "in",
                                  "is",          "that",        "for",         "it",           "as",
                                  "was",         "with",        "be",          "by",           "on",
                                  "not",         "he",          "this",        "are",          "or",
                                  "his",         "from",        "at",          "which",        "but",
                                  "have",        "an",          "had",         "they",         "you",
                                  "were",        "their",       "one",         "all",          "we",
                                  "can",         "her",         "has",         "there",        "been",
                                  "if",          "more",        "when",        "will",         "would",
                                  "who",         "so",          "no",          "model",        "memory",
                                  "attention",   "recurrent",   "state",       "token",        "layer",
                                  "expert",      "throughput",  "latency",     "request",      "server",
                                  "benchmark",   "quantized",   "matrix",      "vector",       "implementation",
                                  "performance", "engineering", "reasonable",  "architecture", "understanding",
                                  "however",     "therefore",   "because",     "between",      "through",
                                  "during",      "without",     "against",     "another",      "people",
                                  "government",  "information", "development", "experience",   "important",
                                  "different",   "Monday",      "London",      "Python",       "GPU",
                                  "CPU",         "it's",        "don't",       "we'll",        "they're",
                                  "O'Neil"};
    std::mt19937 rng(42);
    std::string s;
    while (s.size() < (1u << 20)) {
      const int n = 6 + static_cast<int>(rng() % 18);
      for (int i = 0; i < n; ++i) {
        std::string w = words[rng() % std::size(words)];
        if (i == 0) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
        s += w;
        if (rng() % 23 == 0) {
          s += ' ';
          s += std::to_string(rng() % 10000);
        }
        s += (i + 1 < n) ? (rng() % 11 == 0 ? ", " : " ") : "";
      }
      s += (rng() % 7 == 0) ? "?" : ".";
      s += (rng() % 5 == 0) ? "\n\n" : " ";
    }
    return s;
  }();
  return text;
}

void BM_EncodeEnglish(benchmark::State& state) {
  const Tokenizer* tok = hylo::test::fixture_tokenizer();
  if (tok == nullptr) {
    state.SkipWithError("fixture tokenizer unavailable");
    return;
  }
  const std::string& text = english_text();
  size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok->encode(text, true);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
}
BENCHMARK(BM_EncodeEnglish)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// Every word new to the cache: pseudo-random lower-case words.
void BM_EncodeUncachedWords(benchmark::State& state) {
  const Tokenizer* tok = hylo::test::fixture_tokenizer();
  if (tok == nullptr) {
    state.SkipWithError("fixture tokenizer unavailable");
    return;
  }
  std::mt19937 rng(1);
  std::string text;
  while (text.size() < (1u << 18)) {
    text += ' ';
    const int n = 3 + static_cast<int>(rng() % 9);
    for (int i = 0; i < n; ++i) text += static_cast<char>('a' + rng() % 26);
  }
  for (auto _ : state) {
    state.PauseTiming();
    // A fresh suffix per iteration keeps the words out of the cache.
    const std::string salted = text + std::to_string(state.iterations());
    for (size_t i = 1; i < salted.size(); i += 97) const_cast<char&>(salted[i]) = static_cast<char>('a' + rng() % 26);
    state.ResumeTiming();
    auto ids = tok->encode(salted, true);
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_EncodeUncachedWords)->Unit(benchmark::kMillisecond);

void BM_LoadFromGguf(benchmark::State& state) {
  const std::string path = hylo::test::fixture_model("qwen3next-tiny");
  for (auto _ : state) {
    auto file = hylo::gguf::File::open(path);
    auto tok = Tokenizer::from_gguf(*file);
    benchmark::DoNotOptimize(tok.ok());
  }
}
BENCHMARK(BM_LoadFromGguf)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
