// `hylo perplexity`: perplexity of a model on a text file with llama.cpp's llama-perplexity method
// (chunks of n_ctx tokens from a fresh state, the second half of each chunk scored), so that weight
// and KV cache types can be compared on the same text. Not a benchmark of generation speed.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>

#include "apps/command.h"
#include "apps/common.h"
#include "apps/default_model.h"
#include "base/log.h"
#include "base/timer.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace hylo::apps {
namespace {

struct Options {
  std::string model, text_file;
  int32_t n_ctx = 512;
  int32_t n_batch = 2048;
  int32_t max_chunks = -1;
  EngineFlags engine;
};

// −log softmax(logits)[target], in double.
double negative_log_prob(const float* logits, int64_t n_vocab, int32_t target) {
  float max = logits[0];
  for (int64_t i = 1; i < n_vocab; ++i) max = std::max(max, logits[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  return std::log(sum) - (static_cast<double>(logits[target]) - max);
}

int run(const Options& o) {
  std::string path = o.model;
  if (path.empty()) {
    auto p = find_default_model();
    if (!p.ok()) return fail(p.error());
    path = *p;
  }
  std::ifstream in(o.text_file, std::ios::binary);
  if (!in) return fail(make_error("[perplexity] cannot read the text file {}", o.text_file));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (o.n_ctx < 4) return fail(make_error("[perplexity] -c {}: the context must be at least 4 tokens", o.n_ctx));
  if (o.n_batch < 1) return fail(make_error("[perplexity] -b {}: the batch must be at least 1 token", o.n_batch));

  auto model = models::load_model(path);
  if (!model.ok()) return fail(model.error());
  models::Model& m = **model;
  auto tok = tokenizer::Tokenizer::from_gguf(m.file());
  if (!tok.ok()) return fail(tok.error());
  Timer t_tok;
  const std::vector<int32_t> tokens = tok->encode(text, /*parse_special=*/false);
  const double tok_seconds = t_tok.seconds();
  const int64_t n_ctx = o.n_ctx;
  int64_t n_chunk = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (o.max_chunks >= 0) n_chunk = std::min<int64_t>(n_chunk, o.max_chunks);
  if (n_chunk < 1)
    return fail(
        make_error("[perplexity] {} has {} tokens: at least one chunk of -c {} tokens is needed (use a "
                   "longer text or a smaller -c)",
                   o.text_file, tokens.size(), n_ctx));
  if (n_ctx > m.info().n_ctx_train)
    log_warn("[perplexity] -c {} is beyond the model's trained context of {}", n_ctx, m.info().n_ctx_train);

  auto setup = o.engine.make(m, 1, static_cast<int32_t>(n_ctx), TensorType::kF16);
  if (!setup.ok()) return fail(setup.error());
  const int64_t n_vocab = m.info().n_vocab;
  const int64_t first = n_ctx / 2;  // positions before it only give the scored ones their context
  const int64_t n_batch = std::min<int64_t>(o.n_batch, n_ctx);
  std::printf("perplexity: %s, %zu tokens, %lld chunks of %lld (tokens %lld..%lld of each scored)\n",
              m.info().name.c_str(), tokens.size(), static_cast<long long>(n_chunk), static_cast<long long>(n_ctx),
              static_cast<long long>(first + 1), static_cast<long long>(n_ctx - 1));

  std::vector<float> logits;
  double nll = 0.0, nll2 = 0.0;
  int64_t count = 0;
  Timer timer;
  for (int64_t c = 0; c < n_chunk; ++c) {
    const int64_t start = c * n_ctx;
    setup->memory->clear(0);
    for (int64_t b0 = 0; b0 < n_ctx; b0 += n_batch) {
      const int64_t b1 = std::min(n_ctx, b0 + n_batch);
      std::vector<models::BatchRow> rows;
      for (int64_t i = b0; i < b1; ++i)
        rows.push_back({0, static_cast<int32_t>(i), tokens[start + i], i >= first && i < n_ctx - 1});
      int64_t n_out = 0;
      for (const auto& r : rows) n_out += r.logits;
      logits.resize(std::max<int64_t>(n_out, 1) * n_vocab);
      if (auto st = m.forward(rows, *setup->memory, *setup->pool, logits.data()); !st.ok()) return fail(st.error());
      int64_t k = 0;
      for (int64_t i = b0; i < b1; ++i) {
        if (!rows[i - b0].logits) continue;
        const double v = negative_log_prob(logits.data() + (k++) * n_vocab, n_vocab, tokens[start + i + 1]);
        nll += v;
        nll2 += v * v;
        ++count;
      }
    }
    std::printf("[%lld]%.4f,", static_cast<long long>(c + 1), std::exp(nll / count));
    std::fflush(stdout);
  }
  const double seconds = timer.seconds();
  std::printf("\n");
  // llama-perplexity's estimate: PPL = exp(mean NLL), error exp(mean) * stddev(NLL) / sqrt(count − 1).
  const double mean = nll / count;
  const double var = nll2 / count - mean * mean;
  const double ppl = std::exp(mean);
  const double err = count > 1 && var > 0 ? ppl * std::sqrt(var / (count - 1)) : 0.0;
  std::printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, err);
  std::printf("scored %lld tokens; %lld tokens evaluated in %.2f s (%.1f tokens/s), tokenizing %.2f s\n",
              static_cast<long long>(count), static_cast<long long>(n_chunk * n_ctx), seconds,
              n_chunk * n_ctx / std::max(seconds, 1e-9), tok_seconds);
  return kExitOk;
}

CommandRegistrar reg(
    "perplexity", "Perplexity of a model on a text file (llama-perplexity's method)", 45, [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_option("-m,--model", o->model,
                     "GGUF model file (default: the built-in model, trained on the King James Bible)");
      app.add_option("-f,--text,--file", o->text_file, "Text file to score")->required();
      app.add_option("-c,--ctx-size", o->n_ctx, "Tokens per chunk (the context)")->capture_default_str();
      app.add_option("-b,--batch-size", o->n_batch, "Tokens per forward pass")->capture_default_str();
      app.add_option("--chunks", o->max_chunks, "Score at most this many chunks (-1: all)")->capture_default_str();
      o->engine.add(app, /*default_kv=*/"f16");
      return [o] { return run(*o); };
    });

}  // namespace
}  // namespace hylo::apps
