// Runs the fuzz target body over the seed corpus and over deterministic mutations of it (bit
// flips, byte sets, truncations, insertions, splices), so every build exercises the reader's
// validation even where libFuzzer (clang) is not available.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "../../fuzz/gguf_target.h"
#include "common/fixtures.h"

namespace hylo {
namespace {

std::vector<std::vector<uint8_t>> corpus() {
  std::vector<std::vector<uint8_t>> out;
  for (const auto& e : std::filesystem::directory_iterator(test::source_dir() + "/fuzz/corpus/gguf")) {
    const std::string s = test::read_text_file(e.path().string());
    out.emplace_back(s.begin(), s.end());
  }
  return out;
}

TEST(GgufFuzz, SeedCorpusParses) {
  const auto c = corpus();
  ASSERT_GE(c.size(), 4u);
  int ok = 0;
  for (const auto& f : c) {
    EXPECT_EQ(fuzz::gguf_one_input(f.data(), f.size()), 0);
    ok += gguf::File::parse(f.data(), f.size(), "seed").ok();
  }
  EXPECT_EQ(ok, static_cast<int>(c.size()));
}

TEST(GgufFuzz, DeterministicMutations) {
  const auto c = corpus();
  std::mt19937_64 rng(20261123);
  int parsed = 0, rejected = 0;
  for (int i = 0; i < 30000; ++i) {
    std::vector<uint8_t> m = c[rng() % c.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !m.empty(); ++e) {
      const size_t pos = rng() % m.size();
      switch (rng() % 6) {
        case 0: m[pos] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: m[pos] = static_cast<uint8_t>(rng()); break;
        case 2: m.resize(pos); break;
        case 3: m.insert(m.begin() + static_cast<long>(pos), static_cast<uint8_t>(rng())); break;
        case 4: {  // an interesting 8-byte value (length / count / offset fields)
          static const uint64_t kValues[] = {0, 1, 0x7f, 0xff, 0xffffffffull, 0x7fffffffffffffffull, ~0ull, 1ull << 32};
          const uint64_t v = kValues[rng() % 8];
          for (int b = 0; b < 8 && pos + b < m.size(); ++b) m[pos + b] = static_cast<uint8_t>(v >> (8 * b));
          break;
        }
        default: {  // splice in bytes from another seed
          const auto& other = c[rng() % c.size()];
          const size_t from = rng() % other.size(), len = std::min<size_t>(16, other.size() - from);
          for (size_t k = 0; k < len && pos + k < m.size(); ++k) m[pos + k] = other[from + k];
        }
      }
    }
    ASSERT_EQ(fuzz::gguf_one_input(m.data(), m.size()), 0);
    (gguf::File::parse(m.data(), m.size(), "m").ok() ? parsed : rejected)++;
  }
  EXPECT_GT(rejected, 1000);  // the mutations do reach the error paths
  EXPECT_GT(parsed, 100);     // and some still parse
}

}  // namespace
}  // namespace hylo
