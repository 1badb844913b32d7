// `hylo doctor`: explains memory, context and timeouts for a model on a machine before they bite.
// Flag parsing only; the arithmetic is in doctor/.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>

#include "apps/command.h"
#include "apps/session.h"
#include "base/cpu.h"
#include "base/strings.h"
#include "base/timer.h"
#include "doctor/config.h"
#include "doctor/doctor.h"
#include "doctor/html.h"
#include "doctor/render.h"
#include "doctor/units.h"
#include "models/model.h"
#include "router/config.h"
#include "router/policy.h"
#include "runtime/engine.h"
#include "server/model_catalog.h"

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
  std::vector<std::string> models, profiles;
  std::string quant, ctx, parallel, kv_type, batch, ubatch, modelfile, endpoint, hardware, name, cache_ram;
  std::string spec, draft, acceptance;
  std::string routes_file, models_file;
  std::vector<std::string> upstreams;
  std::string prompt_tokens, prefill_tps, timeout, html;
  std::string machine, memory, gpu_memory, bandwidth, compute, devices, link_bandwidth, split;
  bool detect = false, compare = false, json = false, list = false;
};

Status write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error("[doctor] cannot write {}", path);
  out << text;
  out.close();
  if (!out) return make_error("[doctor] writing {} failed", path);
  return ok_status();
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "hylo doctor: %s\n", message.c_str());
  return apps::kExitUsage;
}

// With a routes file (or --upstream): where typical requests of this set-up would run, as the
// router's own policy decides it (router/policy.h, the one `hylo serve` uses), given this report's
// context, prefill speed and client timeout. Computed here, where the doctor and the router meet.
struct RouteRow {
  int64_t prompt_tokens = 0;
  bool is_private = false;
  router::RoutePlan plan;
};

std::vector<RouteRow> route_rows(const Report& r, const router::RouterConfig& config) {
  std::vector<int64_t> sizes = {1000, 8000, 32000};
  if (r.inputs.config.prompt_tokens) sizes.push_back(*r.inputs.config.prompt_tokens);
  sizes.push_back(r.ctx + 1);  // one token over the local context
  std::sort(sizes.begin(), sizes.end());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  std::vector<RouteRow> rows;
  for (int64_t n : sizes) {
    for (bool is_private : {false, true}) {
      if (is_private && n != sizes.back()) continue;  // privacy matters where size would send it out
      router::RouteQuery q;
      q.model = "auto";
      if (is_private) q.private_header = true;
      q.prompt_tokens = n;
      q.budget_seconds = r.inputs.config.timeout_seconds;
      q.local_available = true;
      q.local_ctx = r.ctx;
      q.prefill_tokens_per_second = r.time.prefill_tps;
      q.prefill_source = r.time.prefill_tps_source + " by the doctor";
      rows.push_back({n, is_private, router::plan_route(config, q)});
    }
  }
  return rows;
}

std::string route_text(const std::string& source, const Report& r, const router::RouterConfig& config,
                       const std::vector<RouteRow>& rows) {
  std::string o = fmt::format(
      "\nRoutes ({}): local context {} tokens, prefill ≈ {} tok/s ({}), client timeout {}\n", source,
      doctor::tokens_str(r.ctx), doctor::rate_str(r.time.prefill_tps), r.time.prefill_tps_source,
      r.inputs.config.timeout_seconds ? fmt::format("{:g} s", *r.inputs.config.timeout_seconds) : std::string("none"));
  for (const RouteRow& row : rows) {
    const std::string what =
        fmt::format("{} tokens{}", doctor::tokens_str(row.prompt_tokens), row.is_private ? ", private" : "");
    if (row.plan.refusal_status > 0)
      o += fmt::format("  {:<24} refused (HTTP {}): {}\n", what, row.plan.refusal_status, row.plan.refusal);
    else
      o += fmt::format("  {:<24} {} — {}\n", what, router::route_name(config, row.plan.order[0]), row.plan.reason);
  }
  return o;
}

nlohmann::json route_json(const router::RouterConfig& config, const std::vector<RouteRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const RouteRow& row : rows) {
    nlohmann::json fallbacks = nlohmann::json::array();
    for (size_t i = 1; i < row.plan.order.size(); ++i)
      fallbacks.push_back(router::route_name(config, row.plan.order[i]));
    out.push_back({{"prompt_tokens", row.prompt_tokens},
                   {"private", row.is_private},
                   {"route", row.plan.order.empty() ? nlohmann::json(nullptr)
                                                    : nlohmann::json(router::route_name(config, row.plan.order[0]))},
                   {"reason", row.plan.reason},
                   {"fallbacks", fallbacks},
                   {"refusal_status", row.plan.refusal_status},
                   {"refusal", row.plan.refusal}});
  }
  return out;
}

// --models FILE: every definition checked as `hylo serve --models FILE` would run it (its file,
// context, slots, KV type and drafts; the other flags as given).
int check_definitions(const CliOptions& cli, const Options& base) {
  if (!base.model_path.empty() || !base.profile.empty() || !base.modelfile.empty())
    return usage_error("--models checks the models of a definitions file: give no -m, --profile or --modelfile");
  auto defs = server::load_model_definitions(cli.models_file);
  if (!defs.ok()) {
    std::fprintf(stderr, "hylo doctor: %s\n", defs.message().c_str());
    return apps::kExitError;
  }
  if (defs->empty()) {
    std::fprintf(stderr, "hylo doctor: %s defines no model\n", cli.models_file.c_str());
    return apps::kExitError;
  }
  nlohmann::json all = nlohmann::json::array();
  std::string text;
  bool failed = false;
  for (const server::ModelDefinition& d : *defs) {
    Options o = base;
    o.model_path = d.file;
    if (d.ctx > 0) o.ctx = d.ctx;
    if (d.parallel > 0) o.parallel = d.parallel;
    if (!d.cache_type_k.empty()) {
      auto t = parse_kv_type(d.cache_type_k);
      if (t.ok()) o.kv_type = *t;
    }
    if (d.spec == "mtp") o.spec_draft = d.draft > 0 ? d.draft : runtime::kDefaultDraft;
    if (d.spec == "none") o.spec_draft = 0;
    o.ollama_name = d.name;  // a name that promises another context is a finding
    const std::string head = fmt::format("model '{}' ({})", d.name, d.source);
    auto inputs = gather_inputs(o);
    if (!inputs.ok()) {
      failed = true;
      text += fmt::format("== {}\ncannot check it: {}\n\n", head, inputs.message());
      all.push_back({{"name", d.name}, {"source", d.source}, {"error", inputs.message()}});
      continue;
    }
    const Report report = analyze(*inputs);
    text += fmt::format("== {}\n{}\n", head, render_text(report));
    all.push_back({{"name", d.name}, {"source", d.source}, {"report", render_json(report)}});
  }
  std::fputs(cli.json ? (all.dump(2) + "\n").c_str() : text.c_str(), stdout);
  return failed ? apps::kExitError : apps::kExitOk;
}

int run(const CliOptions& cli, const std::vector<std::string>& extras) {
  if (!extras.empty()) return usage_error("unexpected argument '" + extras.front() + "' (see hylo doctor --help)");
  if (cli.list) {
    std::fputs(cli.json ? (render_list_json().dump(2) + "\n").c_str() : render_list_text().c_str(), stdout);
    return apps::kExitOk;
  }
  if (!cli.hardware.empty() && cli.detect) return usage_error("give either --hardware NAME or --detect");
  if (!cli.hardware.empty() && !cli.machine.empty())
    return usage_error("give either --hardware NAME or --machine FILE");

  Options o;
  // The first model is the one analysed; the others are loaded beside it.
  std::vector<std::string> extra = cli.models;
  if (!extra.empty()) {
    o.model_path = extra.front();
    extra.erase(extra.begin());
    extra.insert(extra.end(), cli.profiles.begin(), cli.profiles.end());
  } else if (!cli.profiles.empty()) {
    o.profile = cli.profiles.front();
    extra.assign(cli.profiles.begin() + 1, cli.profiles.end());
  }
  o.extra_models = extra;
  o.ollama_name = cli.name;
  o.machine_file = cli.machine;
  o.machine_overrides.split = cli.split;
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
  MachineOverrides& mo = o.machine_overrides;
  number(cli.memory, "--memory", 1 << 24, &mo.memory_gib);
  number(cli.gpu_memory, "--gpu-memory", 1 << 24, &mo.gpu_memory_gib);
  number(cli.bandwidth, "--bandwidth", 1e6, &mo.bandwidth_gbs);
  number(cli.compute, "--compute", 1e6, &mo.compute_tflops);
  number(cli.link_bandwidth, "--link-bandwidth", 1e6, &mo.link_bandwidth_gbs);
  std::optional<int64_t> devices;
  count(cli.devices, "--devices", 1, 1024, &devices);
  if (devices) mo.devices = static_cast<int>(*devices);
  if (!cli.kv_type.empty() && bad.empty()) {
    auto t = parse_kv_type(cli.kv_type);
    if (t.ok())
      o.kv_type = *t;
    else
      bad = t.message();
  }
  if (!cli.spec.empty() && cli.spec != "none" && cli.spec != "mtp" && bad.empty())
    bad = fmt::format("--spec {}: expected mtp or none", cli.spec);
  if (cli.spec != "mtp" && (!cli.draft.empty() || !cli.acceptance.empty()) && bad.empty())
    bad = "--draft and --acceptance go with --spec mtp";
  if (cli.spec == "mtp" && bad.empty()) {
    std::optional<int64_t> draft;
    count(cli.draft, "--draft", 1, runtime::kMaxDraft, &draft);
    o.spec_draft = static_cast<int>(draft.value_or(runtime::kDefaultDraft));
    number(cli.acceptance, "--acceptance", 1.0, &o.spec_acceptance);
  }
  if (!cli.cache_ram.empty() && bad.empty()) {
    auto b = apps::parse_byte_size(cli.cache_ram);
    if (b.ok())
      o.cache_bytes = *b;
    else
      bad = b.message();
  }
  if (!bad.empty()) return usage_error(bad);

  if (!cli.models_file.empty()) return check_definitions(cli, o);

  if (cli.detect && !o.model_path.empty() && !o.prefill_tps) {
    // The machine and the model are both at hand: measure the real prefill speed.
    if (auto tps = hylo::apps::measure_prefill_tps(o.model_path); tps.ok()) {
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
  // Where typical requests would run, when routes are given.
  std::string routes_text;
  nlohmann::json routes_json;
  if (!cli.routes_file.empty() || !cli.upstreams.empty()) {
    auto config = router::build_config(cli.routes_file, cli.upstreams);
    if (!config.ok()) {
      std::fprintf(stderr, "hylo doctor: %s\n", config.message().c_str());
      return apps::kExitError;
    }
    const std::vector<RouteRow> rows = route_rows(report, *config);
    routes_text = route_text(cli.routes_file.empty() ? "--upstream" : cli.routes_file, report, *config, rows);
    routes_json = route_json(*config, rows);
  }
  // A machine of one's own (or an adjusted profile) leads the comparison.
  std::vector<CompareRow> rows;
  if (cli.compare || !cli.html.empty()) {
    if (!cli.machine.empty() || o.machine_overrides.any() || cli.hardware.empty())
      rows.push_back(compare_row(*inputs, inputs->machine));
    for (CompareRow& row : compare_hardware(*inputs, hardware_profiles())) rows.push_back(std::move(row));
  }
  if (!cli.html.empty()) {
    if (auto written = write_text_file(cli.html, render_html(report, rows)); !written.ok()) {
      std::fprintf(stderr, "hylo doctor: %s\n", written.message().c_str());
      return apps::kExitError;
    }
    std::fprintf(stderr, "hylo doctor: report written to %s\n", cli.html.c_str());
  }
  if (cli.compare) {
    if (cli.json) {
      nlohmann::json j = render_json(report);
      j["compare"] = render_compare_json(rows);
      if (!routes_json.is_null()) j["routes"] = routes_json;
      std::fputs((j.dump(2) + "\n").c_str(), stdout);
    } else {
      std::fputs((render_compare_text(report, rows) + routes_text).c_str(), stdout);
    }
    return apps::kExitOk;
  }
  if (cli.json) {
    nlohmann::json j = render_json(report);
    if (!routes_json.is_null()) j["routes"] = routes_json;
    std::fputs((j.dump(2) + "\n").c_str(), stdout);
  } else {
    std::fputs((render_text(report) + routes_text).c_str(), stdout);
  }
  return apps::kExitOk;
}

apps::CommandRegistrar reg(
    "doctor", "Explain memory, context and timeouts for a model on a machine", /*order=*/40,
    [](CLI::App& app) -> std::function<int()> {
      auto cli = std::make_shared<CliOptions>();
      app.allow_extras();
      app.add_option("-m,--model", cli->models,
                     "GGUF file (only its metadata and tensor directory are read); again for models loaded at the "
                     "same time")
          ->type_name("FILE.gguf")
          ->allow_extra_args(false);
      app.add_option("--profile", cli->profiles,
                     "Built-in model profile (see --list); again for models loaded at "
                     "the same time")
          ->type_name("NAME")
          ->allow_extra_args(false);
      app.add_option("--name", cli->name, "Name the Ollama model is created under (checked against its context)")
          ->type_name("NAME");
      app.add_option("--quant", cli->quant, "Quantisation for a profile, or what-if for a file (Q4_K_M, Q8_0, ...)")
          ->type_name("TYPE");
      app.add_option("--ctx", cli->ctx, "Context per sequence in tokens (e.g. 262144 or 256k)")->type_name("N");
      app.add_option("--parallel", cli->parallel, "Sequences served at once")->type_name("N");
      app.add_option("--kv-type", cli->kv_type, "KV-cache type: f16, q8_0, bf16, f32, ...")->type_name("TYPE");
      app.add_option(
             "--spec", cli->spec,
             "mtp: estimate decode with speculative decoding by the model's MTP block (as hylo serve --spec mtp)")
          ->type_name("mtp");
      app.add_option("--draft", cli->draft, "Drafts per verify step with --spec mtp (default 2)")->type_name("N");
      app.add_option("--acceptance", cli->acceptance, "Share of drafts accepted, 0 to 1 (default 0.7)")->type_name("A");
      app.add_option("--routes", cli->routes_file,
                     "Routes file (as for hylo serve): say which typical requests would run locally and which "
                     "upstream")
          ->check(CLI::ExistingFile);
      app.add_option("--upstream", cli->upstreams, "NAME=URL[,model=M,ctx=N,key-env=VAR] (as for hylo serve)")
          ->type_name("SPEC");
      app.add_option("--cache-ram", cli->cache_ram, "hylo's prefix cache budget to count (512M, 8G)")
          ->type_name("SIZE");
      app.add_option("--batch", cli->batch, "Logical batch size (default 2048)")->type_name("N");
      app.add_option("--ubatch", cli->ubatch, "Micro-batch size (default 512)")->type_name("N");
      app.add_option("--modelfile", cli->modelfile, "Ollama Modelfile to check (FROM, PARAMETER num_ctx, ...)")
          ->type_name("FILE");
      app.add_option("--models", cli->models_file,
                     "Model definitions file (as for hylo serve --models): check every model it defines")
          ->type_name("FILE");
      app.add_option("--endpoint", cli->endpoint, "Running hylo, llama-server or Ollama server to read settings from")
          ->type_name("URL");
      app.add_option("--hardware", cli->hardware, "Hardware profile (see --list)")->type_name("NAME");
      app.add_option("--machine", cli->machine, "A machine of one's own: JSON with the fields of a hardware profile")
          ->type_name("FILE");
      app.add_option("--memory", cli->memory, "Machine memory in GiB (per device)")->type_name("GIB");
      app.add_option("--gpu-memory", cli->gpu_memory, "Memory the GPU may use, in GiB per device")->type_name("GIB");
      app.add_option("--bandwidth", cli->bandwidth, "Memory bandwidth in GB/s (per device)")->type_name("GB/S");
      app.add_option("--compute", cli->compute, "Dense FP16 peak in TFLOPS (per device), for prefill")
          ->type_name("TFLOPS");
      app.add_option("--devices", cli->devices, "Devices working together (GPUs, linked machines)")->type_name("N");
      app.add_option("--link-bandwidth", cli->link_bandwidth, "Bandwidth between devices in GB/s")->type_name("GB/S");
      app.add_option("--split", cli->split, "How a model is spread over devices: layer (pipeline) or tensor")
          ->type_name("layer|tensor");
      app.add_flag("--detect", cli->detect, "Use this machine and measure its memory bandwidth (~1 s)");
      app.add_option("--prompt-tokens", cli->prompt_tokens, "Prompt size to check, in tokens")->type_name("N");
      app.add_option("--prefill-tps", cli->prefill_tps, "Known prefill speed in tokens/s (else estimated)")
          ->type_name("X");
      app.add_option("--timeout", cli->timeout, "Client request timeout in seconds")->type_name("SECONDS");
      app.add_flag("--compare-hardware", cli->compare, "Tabulate fit and speed bounds across hardware profiles");
      app.add_flag("--json", cli->json, "Machine-readable output");
      app.add_option("--html", cli->html, "Also write a self-contained HTML report with charts")->type_name("FILE");
      app.add_flag("--list", cli->list, "List model and hardware profiles and quantisations");
      return [cli, &app] { return run(*cli, app.remaining()); };
    });

}  // namespace
