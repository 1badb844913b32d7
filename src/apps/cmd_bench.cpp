// `hylo bench`: prefill (pp) and decode (tg) speed like llama-bench, each also as a fraction of
// this machine's roofline, measured in the same run: decode as bytes read per token (weights of
// the routed experts, KV cache, recurrent state: models/cost.h) × tok/s against the measured
// memory read bandwidth; prefill as FLOP/s against the peak of the instruction set the weights use
// (int8 dot products for quantized weights, bf16 or f32 FMA otherwise), measured with every
// thread running it at once.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "apps/bench_sessions.h"
#include "apps/command.h"
#include "apps/common.h"
#include "apps/default_model.h"
#include "apps/progress.h"
#include "base/bandwidth.h"
#include "base/cpu.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/timer.h"
#include "kernels/peak.h"
#include "models/cost.h"
#include "models/model.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

namespace hylo::apps {
namespace {

struct Options {
  std::string model;
  int32_t n_prompt = 512;
  int32_t n_gen = 128;
  int32_t n_depth = 0;  // positions already in the context before each test (llama-bench's -d)
  int threads = 0;
  int reps = 3;
  int32_t batch = 2048;
  KvCacheFlags kv;
  RopeFlags rope;
  bool json = false;
  std::string spec = "none";  // mtp: also decode through the engine with and without MTP drafts
  int draft = runtime::kDefaultDraft;
  SessionBenchOptions sessions;
};

struct Stat {
  double mean = 0, stdev = 0;
};

Stat stat_of(const std::vector<double>& v) {
  Stat s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  for (double x : v) s.stdev += (x - s.mean) * (x - s.mean);
  s.stdev = v.size() > 1 ? std::sqrt(s.stdev / static_cast<double>(v.size() - 1)) : 0;
  return s;
}

// The instruction set the matrix products run on: decided by the type holding most weight bytes.
struct Peak {
  std::string name;
  double gops = 0;  // per second, all threads
};

// The per-core peak loop run on every thread of the pool at once, summed: with all cores busy a
// CPU may clock lower than with one, and that is the peak a multi-threaded prefill can reach.
double all_threads(ThreadPool& pool, double (*per_core)(int)) {
  std::vector<double> each(static_cast<size_t>(pool.size()), 0.0);
  pool.run([&](int ith, int) { each[static_cast<size_t>(ith)] = per_core(1); });
  double sum = 0;
  for (double v : each) sum += v;
  return sum;
}

Peak measure_peak(const models::Model& m, ThreadPool& pool) {
  std::map<TensorType, uint64_t> bytes;
  for (const auto& t : m.file().tensors())
    if (t.n_dims >= 2) bytes[t.type] += t.n_bytes;
  TensorType dominant = TensorType::kF32;
  uint64_t most = 0;
  for (const auto& [t, b] : bytes)
    if (b > most) {
      most = b;
      dominant = t;
    }
  Peak p;
  if (dominant == TensorType::kBF16 && kernels::measure_bf16_peak_gflops(1) > 0) {
    p.name = "bf16";
    p.gops = all_threads(pool, kernels::measure_bf16_peak_gflops);
  } else if (dominant == TensorType::kF32 || dominant == TensorType::kF16 || dominant == TensorType::kBF16) {
    p.name = "f32 fma";
    p.gops = all_threads(pool, kernels::measure_fma_peak_gflops);
  } else {
    p.name = "int8";
    p.gops = all_threads(pool, kernels::measure_int8_peak_gops);
  }
  return p;
}

// Greedy decoding through the generation engine, without and with MTP drafts: tokens/s over the
// decode time of each request (prefill excluded) and the share of drafts accepted.
struct SpecBench {
  Stat plain, spec;  // tok/s
  uint64_t drafted = 0, accepted = 0;
};

Result<SpecBench> bench_speculative(models::Model& m, ThreadPool& pool, const Options& o, TensorType type_k,
                                    TensorType type_v) {
  HYLO_ASSIGN_OR_RETURN(tokenizer::Tokenizer tok, tokenizer::Tokenizer::from_gguf(m.file()));
  runtime::EngineOptions eo;
  eo.n_ctx = std::max<int32_t>(o.n_prompt, 1) + o.n_gen + runtime::kMaxDraft + 2;
  eo.n_batch = o.batch;
  eo.kv_type = type_k;
  eo.kv_type_v = type_v;
  runtime::Engine engine(m, tok, pool, eo);
  std::mt19937 rng(4321);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(std::min<int64_t>(m.info().n_vocab, 151643) - 1));
  SpecBench out;
  std::vector<double> plain, spec;
  for (int rep = 0; rep < o.reps + 1; ++rep) {  // repetition 0 warms up
    std::vector<int32_t> prompt(static_cast<size_t>(std::max<int32_t>(o.n_prompt, 1)));
    for (auto& t : prompt) t = pick(rng);
    for (int n_draft : {0, o.draft}) {
      auto r = std::make_shared<runtime::Request>();
      r->prompt = prompt;
      r->sampling.temperature = 0;
      r->max_tokens = o.n_gen;
      r->ignore_eos = true;
      r->n_draft = n_draft;
      std::promise<runtime::RequestResult> done;
      r->on_done = [&](const runtime::RequestResult& res) { done.set_value(res); };
      auto fut = done.get_future();
      if (auto err = engine.submit(r); err.kind != runtime::SubmitError::kNone)
        return make_error("[bench] {}", err.message);
      const runtime::RequestResult res = fut.get();
      if (res.reason == runtime::FinishReason::kError) return make_error("[bench] {}", res.error);
      if (rep == 0) continue;
      const double tps = res.decode_seconds > 0 ? res.n_generated / res.decode_seconds : 0;
      (n_draft > 0 ? spec : plain).push_back(tps);
      out.drafted += static_cast<uint64_t>(res.n_drafted);
      out.accepted += static_cast<uint64_t>(res.n_accepted);
    }
  }
  out.plain = stat_of(plain);
  out.spec = stat_of(spec);
  return out;
}

int run(const Options& o) {
  const int threads = o.threads > 0 ? o.threads : physical_core_count();
  ThreadPool pool(threads);
  std::string path = o.model;
  if (path.empty()) {
    // Speed is measured on real per-layer shapes: the random-weight bench model, not the small
    // trained default (whose 256-wide matrices say little about a real model's speed).
    auto p = ensure_bench_model(pool);
    if (!p.ok()) return fail(p.error());
    path = *p;
    log_info("[bench] no -m: the random-weight bench model {} (Qwen3-Next-80B-A3B per-layer shapes)", path);
  }
  if (o.sessions.sessions > 0) {
    SessionBenchOptions so = o.sessions;
    so.model = path;
    so.threads = o.threads;
    so.batch = o.batch;
    so.kv = o.kv;
    return run_session_bench(so);
  }
  auto loaded = models::load_model(path);
  if (!loaded.ok()) return fail(loaded.error());
  models::Model& m = **loaded;
  const models::ModelInfo& info = m.info();
  const int64_t n_vocab = info.n_vocab;

  // Read every weight page once so the first repetition measures compute, not page faults (a
  // repacked model has its matrices in memory already, and their file pages were let go).
  if (const MappedFile* map = m.file().mapping(); map != nullptr && info.repacked_bytes == 0) {
    volatile uint8_t sink = 0;
    for (uint64_t off = 0; off < map->size(); off += 4096) sink = sink ^ map->data()[off];
  }
  log_info("[bench] measuring memory bandwidth and compute peak ({} threads)", threads);
  double bandwidth = measure_read_bandwidth_gbs(pool);
  const Peak peak = measure_peak(m, pool);

  models::MemoryOptions mo;
  mo.n_seq = 1;
  mo.n_ctx = o.n_depth + o.n_prompt + o.n_gen + 1;
  auto kv = o.kv.resolve(m.memory_layout(), TensorType::kF16);
  if (!kv.ok()) return fail(kv.error());
  mo.kv_type = kv->first;
  mo.kv_type_v = kv->second;
  if (auto rope = apply_rope(m, o.rope, mo.n_ctx); !rope.ok()) return fail(rope.error());
  models::Memory mem(m.memory_layout(), mo);
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(std::min<int64_t>(n_vocab, 151643) - 1));
  std::vector<float> logits(n_vocab);
  const int32_t chunk = std::max<int32_t>(64, o.batch / 64 * 64);

  // Positions [from, from + n) of random tokens, in chunks; logits of the last one only.
  auto prefill = [&](int32_t from, int32_t n_tokens) -> Status {
    for (int32_t done = 0; done < n_tokens; done += chunk) {
      const int32_t n = std::min(chunk, n_tokens - done);
      std::vector<models::BatchRow> rows(n);
      for (int32_t i = 0; i < n; ++i) rows[i] = {0, from + done + i, tok(rng), done + i == n_tokens - 1};
      if (auto st = m.forward(rows, mem, pool, logits.data()); !st.ok()) return st;
    }
    return ok_status();
  };
  const int32_t depth = o.n_depth;
  std::vector<double> pp, tg;
  for (int rep = 0; rep < o.reps + 1; ++rep) {  // repetition 0 warms up and is not counted
    if (o.n_prompt > 0) {
      mem.clear(0);
      if (auto st = prefill(0, depth); !st.ok()) return fail(st.error());
      Timer t;
      if (auto st = prefill(depth, o.n_prompt); !st.ok()) return fail(st.error());
      if (rep > 0) pp.push_back(o.n_prompt / t.seconds());
    }
    if (o.n_gen > 0) {
      mem.clear(0);
      if (auto st = prefill(0, depth); !st.ok()) return fail(st.error());
      Timer t;
      // Random input tokens: like real text they route each step to other experts, so the
      // weights really stream from memory instead of repeating a cached working set.
      for (int32_t i = depth; i < depth + o.n_gen; ++i) {
        const models::BatchRow row{0, i, tok(rng), true};
        if (auto st = m.forward(std::span<const models::BatchRow>(&row, 1), mem, pool, logits.data()); !st.ok())
          return fail(st.error());
      }
      if (rep > 0) tg.push_back(o.n_gen / t.seconds());
    }
  }
  const Stat pps = stat_of(pp), tgs = stat_of(tg);
  // The roofline is the best bandwidth seen before and after the runs: on a shared host one
  // measurement can fall in a neighbour's burst, and a fraction of a low figure would flatter decode.
  if (o.n_gen > 0) bandwidth = std::max(bandwidth, measure_read_bandwidth_gbs(pool));
  std::optional<SpecBench> sb;
  if (o.spec == "mtp" && o.n_gen > 0) {
    if (auto st = runtime::check_speculative(m, o.draft); !st.ok()) return fail(st.error());
    log_info("[bench] greedy decoding through the engine, without and with {} MTP drafts per step", o.draft);
    auto r = bench_speculative(m, pool, o, mo.type_k(), mo.type_v());
    if (!r.ok()) return fail(r.error());
    sb = *r;
  }
  const double acceptance = sb && sb->drafted > 0 ? static_cast<double>(sb->accepted) / sb->drafted : 0.0;
  // What the cost model expects at the measured acceptance when decode is bandwidth-bound.
  const models::SpecEstimate expected =
      sb ? models::speculative_estimate(m, o.draft, acceptance, o.n_prompt + o.n_gen / 2.0, mo.kv_type)
         : models::SpecEstimate{};
  // Decode roofline: bytes read per token (routed experts, KV cache, recurrent state; the mean
  // over the tg positions) over the bandwidth.
  const models::DecodeBytes decode = models::decode_bytes_mean(m, o.n_gen, mo.type_k(), mo.type_v(), depth);
  const double bytes_per_token = decode.total();
  const double decode_frac = bandwidth > 0 ? bytes_per_token * tgs.mean / (bandwidth * 1e9) : 0;
  // Prefill: the prompt's FLOPs (the LM head once, for the last row) per prompt token.
  const double flops_per_token =
      o.n_prompt > 0 ? models::prefill_flops(info, o.n_prompt, depth) / static_cast<double>(o.n_prompt) : 0.0;
  const double prefill_frac = peak.gops > 0 ? flops_per_token * pps.mean / (peak.gops * 1e9) : 0;

  std::map<std::string, uint64_t> by_type;
  for (const auto& t : m.file().tensors()) by_type[std::string(tensor_type_name(t.type))] += t.n_bytes;
  std::string types;
  for (const auto& [t, b] : by_type)
    if (b * 10 > info.weight_bytes) types += (types.empty() ? "" : "+") + t;

  if (o.json) {
    nlohmann::json j = {{"model", info.name},
                        {"path", path},
                        {"arch", info.arch},
                        {"types", types},
                        {"size_bytes", info.weight_bytes},
                        {"active_weight_bytes", info.active_weight_bytes},
                        {"active_params", info.active_params},
                        {"repacked_bytes", info.repacked_bytes},
                        {"repack_seconds", info.repack_seconds},
                        {"threads", threads},
                        {"isa", isa_name(best_isa())},
                        {"n_prompt", o.n_prompt},
                        {"n_gen", o.n_gen},
                        {"n_depth", o.n_depth},
                        {"reps", o.reps},
                        {"pp_tps", pps.mean},
                        {"pp_tps_stdev", pps.stdev},
                        {"tg_tps", tgs.mean},
                        {"tg_tps_stdev", tgs.stdev},
                        {"bandwidth_gbs", bandwidth},
                        {"decode_gbs", bytes_per_token * tgs.mean / 1e9},
                        {"decode_bytes_per_token", bytes_per_token},
                        {"decode_weight_bytes_per_token", decode.weights},
                        {"decode_kv_bytes_per_token", decode.kv},
                        {"cache_type_k", std::string(tensor_type_name(mo.type_k()))},
                        {"cache_type_v", std::string(tensor_type_name(mo.type_v()))},
                        {"decode_state_bytes_per_token", decode.state},
                        {"decode_bandwidth_fraction", decode_frac},
                        {"peak_kind", peak.name},
                        {"peak_gops", peak.gops},
                        {"prefill_gops", flops_per_token * pps.mean / 1e9},
                        {"prefill_flops_per_token", flops_per_token},
                        {"prefill_peak_fraction", prefill_frac}};
    if (sb) {
      j["spec"] = {{"kind", "mtp"},
                   {"n_draft", o.draft},
                   {"tg_tps_plain", sb->plain.mean},
                   {"tg_tps_plain_stdev", sb->plain.stdev},
                   {"tg_tps_spec", sb->spec.mean},
                   {"tg_tps_spec_stdev", sb->spec.stdev},
                   {"speedup", sb->plain.mean > 0 ? sb->spec.mean / sb->plain.mean : 0.0},
                   {"drafted", sb->drafted},
                   {"accepted", sb->accepted},
                   {"acceptance_rate", acceptance},
                   {"expected_speedup_bandwidth_bound", expected.speedup}};
    }
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }
  std::printf("| %-34s | %10s | %8s | %7s | %7s | %18s | %-40s |\n", "model", "size", "params", "threads", "test",
              "t/s", "roofline");
  std::printf("|%s|%s|%s|%s|%s|%s|%s|\n", std::string(36, '-').c_str(), std::string(12, '-').c_str(),
              std::string(10, '-').c_str(), std::string(9, '-').c_str(), std::string(9, '-').c_str(),
              std::string(20, '-').c_str(), std::string(42, '-').c_str());
  const std::string name = fmt::format("{} {}", info.arch, types);
  const std::string at_depth = depth > 0 ? fmt::format(" @ d{}", depth) : "";  // llama-bench's label
  const std::string params = fmt::format("{:.2f} B", static_cast<double>(info.active_params) / 1e9);
  if (o.n_prompt > 0)
    std::printf("| %-34s | %10s | %8s | %7d | %7s | %18s | %-40s |\n", name.c_str(),
                format_bytes(info.weight_bytes).c_str(), params.c_str(), threads,
                (fmt::format("pp{}", o.n_prompt) + at_depth).c_str(),
                fmt::format("{:.2f} ± {:.2f}", pps.mean, pps.stdev).c_str(),
                fmt::format("{:.1f}% of {} peak ({:.0f} of {:.0f} GOPS)", prefill_frac * 100, peak.name,
                            flops_per_token * pps.mean / 1e9, peak.gops)
                    .c_str());
  if (o.n_gen > 0)
    std::printf("| %-34s | %10s | %8s | %7d | %7s | %18s | %-40s |\n", name.c_str(),
                format_bytes(info.weight_bytes).c_str(), params.c_str(), threads,
                (fmt::format("tg{}", o.n_gen) + at_depth).c_str(),
                fmt::format("{:.2f} ± {:.2f}", tgs.mean, tgs.stdev).c_str(),
                fmt::format("{:.1f}% of {:.1f} GB/s ({:.2f} GB/s)", decode_frac * 100, bandwidth,
                            bytes_per_token * tgs.mean / 1e9)
                    .c_str());
  if (sb) {
    std::printf("| %-34s | %10s | %8s | %7d | %7s | %18s | %-40s |\n", name.c_str(),
                format_bytes(info.weight_bytes).c_str(), params.c_str(), threads,
                fmt::format("tg{} g", o.n_gen).c_str(),
                fmt::format("{:.2f} ± {:.2f}", sb->plain.mean, sb->plain.stdev).c_str(), "greedy, engine, no drafts");
    std::printf("| %-34s | %10s | %8s | %7d | %7s | %18s | %-40s |\n", name.c_str(),
                format_bytes(info.weight_bytes).c_str(), params.c_str(), threads,
                fmt::format("tg{} mtp{}", o.n_gen, o.draft).c_str(),
                fmt::format("{:.2f} ± {:.2f}", sb->spec.mean, sb->spec.stdev).c_str(),
                fmt::format("{:.2f}x, {:.1f}% of {} drafts accepted",
                            sb->plain.mean > 0 ? sb->spec.mean / sb->plain.mean : 0.0, acceptance * 100, sb->drafted)
                    .c_str());
  }
  std::printf(
      "\nparams = multiply-adds per token in the matrix products (active experts only); prefill also counts\n"
      "attention and delta-rule FLOPs, the LM head once (%.2f GFLOP per token); decode reads %s per token\n"
      "(%s of weights, %s of KV cache (K %s, V %s), %s of recurrent state).\n",
      flops_per_token / 1e9, format_bytes(static_cast<uint64_t>(bytes_per_token)).c_str(),
      format_bytes(static_cast<uint64_t>(decode.weights)).c_str(),
      format_bytes(static_cast<uint64_t>(decode.kv)).c_str(), std::string(tensor_type_name(mo.type_k())).c_str(),
      std::string(tensor_type_name(mo.type_v())).c_str(), format_bytes(static_cast<uint64_t>(decode.state)).c_str());
  if (sb)
    std::printf(
        "mtp%d: %.2f tokens per verify step at %.1f%% acceptance; bandwidth-bound, a step reads %s against %s\n"
        "for one plain token (experts of %d tokens, the MTP block and LM head per draft): expected %.2fx when\n"
        "drafting every step (at low acceptance the engine pauses drafting instead).\n",
        o.draft, expected.tokens_per_step, acceptance * 100,
        format_bytes(static_cast<uint64_t>(expected.bytes_step)).c_str(),
        format_bytes(static_cast<uint64_t>(expected.bytes_plain)).c_str(), o.draft + 1, expected.speedup);
  if (info.repacked_bytes > 0)
    std::printf("weights repacked at load: %s in %.1f s.\n", format_bytes(info.repacked_bytes).c_str(),
                info.repack_seconds);
  return kExitOk;
}

CommandRegistrar reg(
    "bench", "Prefill and decode speed, and their fraction of this machine's roofline", 60, [](CLI::App& app) {
      auto o = std::make_shared<Options>();
      app.add_option("-m,--model", o->model,
                     "GGUF model (default: the random-weight bench model, generated on first use)");
      app.add_option("-p,--n-prompt", o->n_prompt, "Prompt tokens for the prefill test (pp)")
          ->check(CLI::Range(0, 1 << 20))
          ->capture_default_str();
      app.add_option("-n,--n-gen", o->n_gen, "Tokens for the decode test (tg)")
          ->check(CLI::Range(0, 1 << 20))
          ->capture_default_str();
      app.add_option("-d,--n-depth", o->n_depth,
                     "Positions already in the context before each test, prefilled and not timed (llama-bench's -d)")
          ->check(CLI::Range(0, 1 << 20))
          ->capture_default_str();
      app.add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
      app.add_option("-r,--repetitions", o->reps, "Repetitions (after one warm-up)")
          ->check(CLI::Range(1, 1000))
          ->capture_default_str();
      app.add_option("-b,--batch-size", o->batch, "Prefill chunk (tokens per forward call)")
          ->check(CLI::Range(64, 1 << 16))
          ->capture_default_str();
      o->kv.add(app);
      o->rope.add(app);
      app.add_flag("--json", o->json, "One JSON object");
      app.add_option("--spec", o->spec,
                     "mtp: also decode greedily through the engine without and with MTP drafts "
                     "(tok/s of both, acceptance rate)")
          ->check(CLI::IsMember({"none", "mtp"}))
          ->capture_default_str();
      app.add_flag_callback(
          "--enable-mtp", [o] { o->spec = "mtp"; }, "Same as --spec mtp");
      app.add_option("--draft", o->draft, "Tokens drafted per step with --spec mtp")
          ->check(CLI::Range(1, runtime::kMaxDraft))
          ->capture_default_str();
      app.add_option("--sessions", o->sessions.sessions,
                     "Replay this many interleaved conversations, without and with the prefix "
                     "cache, and report time to first token per turn")
          ->check(CLI::Range(0, 256));
      app.add_option("--turns", o->sessions.turns, "Turns per conversation (--sessions)")
          ->check(CLI::Range(1, 1000))
          ->capture_default_str();
      app.add_option("--context", o->sessions.context, "Prompt tokens of each conversation's last turn (--sessions)")
          ->check(CLI::Range(256, 1 << 22))
          ->capture_default_str();
      app.add_option("--parallel,--np", o->sessions.parallel, "Slots (--sessions)")
          ->check(CLI::Range(1, 256))
          ->capture_default_str();
      app.add_option("--cache-ram", o->sessions.cache_ram, "Prefix cache budget (--sessions)")->capture_default_str();
      app.add_option("--cache-interval", o->sessions.cache_interval,
                     "Tokens between prefix cache checkpoints (--sessions)")
          ->check(CLI::Range(64, 1 << 20))
          ->capture_default_str();
      return [o] { return run(*o); };
    });

}  // namespace
}  // namespace hylo::apps
