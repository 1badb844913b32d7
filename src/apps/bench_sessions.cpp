// `hylo bench --sessions N`: replays N interleaved multi-turn conversations on fewer slots than
// conversations, once without and once with the prefix cache, and reports the time to first
// token of each turn; then each conversation again with an earlier message edited. Prompts are
// random token ids (the bench model has random weights: text would mean nothing either).
#include "apps/bench_sessions.h"

#include <future>
#include <random>

#include "apps/session.h"
#include "base/log.h"
#include "base/strings.h"

namespace hylo::apps {
namespace {

struct TurnResult {
  double ttft = 0;
  int32_t n_prompt = 0, n_cached = 0;
};

TurnResult send(runtime::Engine& e, const std::vector<int32_t>& prompt, int32_t n_reply, std::vector<int32_t>* reply) {
  auto r = std::make_shared<runtime::Request>();
  r->prompt = prompt;
  r->sampling.temperature = 0;
  r->max_tokens = n_reply;
  r->ignore_eos = true;
  std::promise<runtime::RequestResult> done;
  auto first = std::make_shared<double>(-1);
  runtime::Request* raw = r.get();
  r->on_token = [&, first, raw](const runtime::TokenEvent& ev) {
    if (*first < 0) *first = raw->timer.seconds();
    if (ev.token >= 0 && reply != nullptr) reply->push_back(ev.token);
  };
  r->on_done = [&](const runtime::RequestResult& res) { done.set_value(res); };
  auto fut = done.get_future();
  const runtime::SubmitError err = e.submit(r);
  if (err.kind != runtime::SubmitError::kNone) {
    log_error("[bench] {}", err.message);
    return {};
  }
  const runtime::RequestResult res = fut.get();
  return {*first, res.n_prompt, res.n_cached};
}

struct Replay {
  std::vector<std::vector<TurnResult>> turns;  // [turn][session]
  std::vector<TurnResult> edited;              // [session]
};

// The same conversations every time: a shared system prompt, then per turn new material
// (a user message or tool output) and the model's reply.
Replay replay(runtime::Engine& e, const SessionBenchOptions& o, int32_t n_vocab) {
  const int32_t system = std::min(o.context / 4, 1024);
  const int32_t reply_len = 16;
  const int32_t per_turn = std::max(1, (o.context - system) / o.turns - reply_len);
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(1000, std::min<int32_t>(n_vocab - 1, 100000));
  auto draw = [&](int32_t n) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    for (auto& t : v) t = tok(rng);
    return v;
  };
  const std::vector<int32_t> sys = draw(system);
  std::vector<std::vector<int32_t>> conv(static_cast<size_t>(o.sessions), sys);
  Replay out;
  for (int t = 0; t < o.turns; ++t) {
    out.turns.emplace_back();
    for (int s = 0; s < o.sessions; ++s) {
      auto& c = conv[static_cast<size_t>(s)];
      const auto add = draw(per_turn);
      c.insert(c.end(), add.begin(), add.end());
      std::vector<int32_t> reply;
      out.turns.back().push_back(send(e, c, reply_len, &reply));
      c.insert(c.end(), reply.begin(), reply.end());
    }
  }
  // An agent compacts or edits an earlier message: change one token two thirds of the way in.
  for (int s = 0; s < o.sessions; ++s) {
    auto c = conv[static_cast<size_t>(s)];
    c[c.size() * 2 / 3] = tok(rng);
    out.edited.push_back(send(e, c, 1, nullptr));
  }
  return out;
}

}  // namespace

int run_session_bench(const SessionBenchOptions& o) {
  if (o.sessions < 1 || o.turns < 1 || o.context < 256) {
    log_error("[bench] --sessions and --turns must be at least 1, --context at least 256");
    return 2;
  }
  SessionFlags flags;
  flags.model = o.model;
  flags.threads = o.threads;
  flags.parallel = o.parallel;
  flags.batch = o.batch;
  flags.kv = o.kv;
  flags.ctx = o.context + 512;
  flags.cache_ram = o.cache_ram;
  flags.cache_interval = o.cache_interval;
  auto session = open_session(flags);
  if (!session.ok()) {
    log_error("{}", session.message());
    return 1;
  }
  Session& s = **session;
  log_info("[bench] {}", s.cache_reason);
  runtime::EngineOptions with = s.engine->options();
  runtime::EngineOptions without = with;
  without.cache.max_bytes = 0;
  s.engine.reset();
  const int32_t n_vocab = static_cast<int32_t>(s.model->info().n_vocab);
  Replay base, cached;
  {
    runtime::Engine e(*s.model, s.tokenizer, *s.pool, without);
    base = replay(e, o, n_vocab);
  }
  runtime::PrefixCacheStats cs;
  {
    runtime::Engine e(*s.model, s.tokenizer, *s.pool, with);
    cached = replay(e, o, n_vocab);
    cs = e.stats().cache;
  }
  fmt::print(
      "{} conversations, {} turns, {} slots, context up to {} tokens; time to first token (mean over "
      "conversations)\n\n",
      o.sessions, o.turns, o.parallel, o.context);
  fmt::print("| turn | prompt tokens | no cache: TTFT s | cache: TTFT s | cache: tokens reused |\n");
  fmt::print("|---:|---:|---:|---:|---:|\n");
  auto row = [&](const std::string& name, const std::vector<TurnResult>& a, const std::vector<TurnResult>& b) {
    double ta = 0, tb = 0, np = 0, nc = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      ta += a[i].ttft;
      tb += b[i].ttft;
      np += b[i].n_prompt;
      nc += b[i].n_cached;
    }
    const double n = static_cast<double>(a.size());
    fmt::print("| {} | {:.0f} | {:.3f} | {:.3f} | {:.0f} |\n", name, np / n, ta / n, tb / n, nc / n);
  };
  for (int t = 0; t < o.turns; ++t) row(std::to_string(t + 1), base.turns[t], cached.turns[t]);
  row("edited", base.edited, cached.edited);
  fmt::print("\nprefix cache: {} hits of {} lookups, {} tokens reused, {} checkpoints ({}) in RAM, {} evictions\n",
             cs.hits, cs.lookups, format_count(cs.tokens_reused), cs.nodes, format_bytes(cs.bytes), cs.evictions);
  auto gbs = [](uint64_t b, double s) { return s > 0 ? static_cast<double>(b) / s / 1e9 : 0.0; };
  fmt::print("checkpoint copies: saved {} in {:.3f} s ({:.1f} GB/s), restored {} in {:.3f} s ({:.1f} GB/s)\n",
             format_bytes(cs.bytes_saved), cs.save_seconds, gbs(cs.bytes_saved, cs.save_seconds),
             format_bytes(cs.bytes_restored), cs.restore_seconds, gbs(cs.bytes_restored, cs.restore_seconds));
  return 0;
}

}  // namespace hylo::apps
