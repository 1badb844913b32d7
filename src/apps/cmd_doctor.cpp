// `hylo doctor`: explains memory, context and timeouts for a model on a machine before they bite.
// Flag parsing only; the arithmetic is in doctor/.
#include <cstdio>
#include <memory>

#include "apps/command.h"
#include "apps/session.h"
#include "base/cpu.h"
#include "base/strings.h"
#include "base/timer.h"
#include "doctor/config.h"
#include "doctor/doctor.h"
#include "doctor/render.h"
#include "models/model.h"

namespace hylo::apps {
namespace {

// Prefill tokens/s of the model on this machine: one 512-token batch after a short warm-up.
Result<double> measure_prefill_tps(const std::string& path) {
  HYLO_ASSIGN_OR_RETURN(auto model, models::load_model(path, {.repack = false}));
  ThreadPool pool(physical_core_count());
  models::MemoryOptions mo;
  mo.n_ctx = 1024;
  models::Memory mem(model->memory_layout(), mo);
  std::vector<float> logits(model->info().n_vocab);
  auto prefill = [&](int32_t n) -> Result<double> {
    mem.clear(0);
    std::vector<models::BatchRow> rows;
    for (int32_t i = 0; i < n; ++i) rows.push_back({0, i, 1000 + (i * 7919) % 50000, i == n - 1});
    Timer t;
    HYLO_TRY(model->forward(rows, mem, pool, logits.data()));
    return n / t.seconds();
  };
  std::fprintf(stderr, "hylo doctor: measuring prefill speed of %s ...\n", path.c_str());
  HYLO_TRY(prefill(64));
  return prefill(512);
}

}  // namespace
}  // namespace hylo::apps

namespace {

using namespace hylo;
using namespace hylo::doctor;

// Numbers arrive as text so that a bad value is a usage error (exit 2) with our own message.
struct CliOptions {
  std::string model, profile, quant, ctx, parallel, kv_type, batch, ubatch, modelfile, endpoint, hardware, cache_ram;
  std::string prompt_tokens, prefill_tps, timeout;
  bool detect = false, compare = false, json = false, list = false;
};

int usage_error(const std::string& message) {
  std::fprintf(stderr, "hylo doctor: %s\n", message.c_str());
  return apps::kExitUsage;
}

int run(const CliOptions& cli, const std::vector<std::string>& extras) {
  if (!extras.empty()) return usage_error("unexpected argument '" + extras.front() + "' (see hylo doctor --help)");
  if (cli.list) {
    std::fputs(cli.json ? (render_list_json().dump(2) + "\n").c_str() : render_list_text().c_str(), stdout);
    return apps::kExitOk;
  }
  if (!cli.model.empty() && !cli.profile.empty()) return usage_error("give either -m FILE.gguf or --profile NAME");
  if (!cli.hardware.empty() && cli.detect) return usage_error("give either --hardware NAME or --detect");

  Options o;
  o.model_path = cli.model;
  o.profile = cli.profile;
  o.quant = cli.quant;
  o.modelfile = cli.modelfile;
  o.endpoint = cli.endpoint;
  o.hardware = cli.hardware;
  o.detect = cli.detect;
  // Parses the optional number flags; the first bad value is reported.
  std::string bad;
  auto count = [&](const std::string& text, const char* flag, int64_t lo, int64_t hi, std::optional<int64_t>* out) {
    if (text.empty() || !bad.empty()) return;
    auto v = parse_count(text, flag, lo, hi);
    if (v.ok())
      *out = *v;
    else
      bad = v.message();
  };
  auto number = [&](const std::string& text, const char* flag, double hi, std::optional<double>* out) {
    if (text.empty() || !bad.empty()) return;
    auto v = parse_positive(text, flag, hi);
    if (v.ok())
      *out = *v;
    else
      bad = v.message();
  };
  count(cli.ctx, "--ctx", 1, kMaxCtx, &o.ctx);
  count(cli.parallel, "--parallel", 1, kMaxParallel, &o.parallel);
  count(cli.batch, "--batch", 1, kMaxBatch, &o.batch);
  count(cli.ubatch, "--ubatch", 1, kMaxBatch, &o.ubatch);
  count(cli.prompt_tokens, "--prompt-tokens", 1, kMaxCtx, &o.prompt_tokens);
  number(cli.prefill_tps, "--prefill-tps", 1e9, &o.prefill_tps);
  number(cli.timeout, "--timeout", kMaxSeconds, &o.timeout_seconds);
  if (!cli.kv_type.empty() && bad.empty()) {
    auto t = parse_kv_type(cli.kv_type);
    if (t.ok())
      o.kv_type = *t;
    else
      bad = t.message();
  }
  if (!cli.cache_ram.empty() && bad.empty()) {
    auto b = apps::parse_byte_size(cli.cache_ram);
    if (b.ok())
      o.cache_bytes = *b;
    else
      bad = b.message();
  }
  if (!bad.empty()) return usage_error(bad);

  if (cli.detect && !cli.model.empty() && !o.prefill_tps) {
    // The machine and the model are both at hand: measure the real prefill speed.
    if (auto tps = hylo::apps::measure_prefill_tps(cli.model); tps.ok()) {
      o.measured.prefill_tps = *tps;
    } else {
      std::fprintf(stderr, "hylo doctor: prefill not measured: %s\n", tps.message().c_str());
    }
  }
  auto inputs = gather_inputs(o);
  if (!inputs.ok()) {
    std::fprintf(stderr, "hylo doctor: %s\n", inputs.message().c_str());
    return apps::kExitError;
  }
  const Report report = analyze(*inputs);
  if (cli.compare) {
    const auto rows = compare_hardware(*inputs, hardware_profiles());
    if (cli.json) {
      nlohmann::json j = render_json(report);
      j["compare"] = render_compare_json(rows);
      std::fputs((j.dump(2) + "\n").c_str(), stdout);
    } else {
      std::fputs(render_compare_text(report, rows).c_str(), stdout);
    }
    return apps::kExitOk;
  }
  std::fputs(cli.json ? (render_json(report).dump(2) + "\n").c_str() : render_text(report).c_str(), stdout);
  return apps::kExitOk;
}

apps::CommandRegistrar reg(
    "doctor", "Explain memory, context and timeouts for a model on a machine", /*order=*/40,
    [](CLI::App& app) -> std::function<int()> {
      auto cli = std::make_shared<CliOptions>();
      app.allow_extras();
      app.add_option("-m,--model", cli->model, "GGUF file (only its metadata and tensor directory are read)")
          ->type_name("FILE.gguf");
      app.add_option("--profile", cli->profile, "Built-in model profile (see --list)")->type_name("NAME");
      app.add_option("--quant", cli->quant, "Quantisation for a profile, or what-if for a file (Q4_K_M, Q8_0, ...)")
          ->type_name("TYPE");
      app.add_option("--ctx", cli->ctx, "Context per sequence in tokens (e.g. 262144 or 256k)")->type_name("N");
      app.add_option("--parallel", cli->parallel, "Sequences served at once")->type_name("N");
      app.add_option("--kv-type", cli->kv_type, "KV-cache type: f16, q8_0, bf16, f32, ...")->type_name("TYPE");
      app.add_option("--cache-ram", cli->cache_ram, "hylo's prefix cache budget to count (512M, 8G)")
          ->type_name("SIZE");
      app.add_option("--batch", cli->batch, "Logical batch size (default 2048)")->type_name("N");
      app.add_option("--ubatch", cli->ubatch, "Micro-batch size (default 512)")->type_name("N");
      app.add_option("--modelfile", cli->modelfile, "Ollama Modelfile to check (FROM, PARAMETER num_ctx, ...)")
          ->type_name("FILE");
      app.add_option("--endpoint", cli->endpoint, "Running hylo, llama-server or Ollama server to read settings from")
          ->type_name("URL");
      app.add_option("--hardware", cli->hardware, "Hardware profile (see --list)")->type_name("NAME");
      app.add_flag("--detect", cli->detect, "Use this machine and measure its memory bandwidth (~1 s)");
      app.add_option("--prompt-tokens", cli->prompt_tokens, "Prompt size to check, in tokens")->type_name("N");
      app.add_option("--prefill-tps", cli->prefill_tps, "Known prefill speed in tokens/s (else estimated)")
          ->type_name("X");
      app.add_option("--timeout", cli->timeout, "Client request timeout in seconds")->type_name("SECONDS");
      app.add_flag("--compare-hardware", cli->compare, "Tabulate fit and speed bounds across hardware profiles");
      app.add_flag("--json", cli->json, "Machine-readable output");
      app.add_flag("--list", cli->list, "List model and hardware profiles and quantisations");
      return [cli, &app] { return run(*cli, app.remaining()); };
    });

}  // namespace
