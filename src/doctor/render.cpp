#include "doctor/render.h"

#include <algorithm>
#include <cmath>

#include "base/strings.h"
#include "doctor/profiles.h"
#include "doctor/quant_mix.h"
#include "doctor/units.h"

namespace hylo::doctor {
namespace {

using json = nlohmann::json;

constexpr int kBarWidth = 40;

std::string params(uint64_t n) {
  const double v = static_cast<double>(n);
  return v >= 1e9 ? fmt::format("{:.2f} B", v / 1e9) : fmt::format("{:.1f} M", v / 1e6);
}

// A horizontal bar of value/scale × width columns with eighth-block precision, padded with spaces
// to exactly `width` columns.
std::string bar(uint64_t value, uint64_t scale, int width) {
  static const char* const kEighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
  const double cols =
      scale > 0 ? std::min<double>(width, static_cast<double>(value) / static_cast<double>(scale) * width) : 0;
  const int eighths = static_cast<int>(std::lround(cols * 8));
  std::string out;
  int used = 0;
  for (int i = 0; i < eighths / 8; ++i, ++used) out += "█";
  if (eighths % 8 != 0) {
    out += kEighths[eighths % 8];
    ++used;
  }
  if (value > 0 && used == 0) {  // visible even when tiny
    out += "▏";
    ++used;
  }
  return out + std::string(static_cast<size_t>(std::max(0, width - used)), ' ');
}

// The whole budget in one bar: weights █, KV ▓, recurrent state ▒, compute and reserve ░, free ·.
std::string stacked_bar(const MemoryReport& m, int width) {
  const uint64_t scale = std::max(m.available_bytes, m.total_bytes);
  const uint64_t parts[] = {m.weights_bytes, m.kv_cache_bytes, m.recurrent_state_bytes,
                            m.compute_bytes + m.reserve_bytes + m.prefix_cache_bytes};
  const char* const glyphs[] = {"█", "▓", "▒", "░"};
  std::string out;
  uint64_t cum = 0;
  int drawn = 0;
  for (int i = 0; i < 4; ++i) {
    cum += parts[i];
    const int upto = static_cast<int>(std::lround(static_cast<double>(cum) / static_cast<double>(scale) * width));
    for (; drawn < upto; ++drawn) out += glyphs[i];
  }
  const int avail =
      static_cast<int>(std::lround(static_cast<double>(m.available_bytes) / static_cast<double>(scale) * width));
  for (; drawn < avail; ++drawn) out += "·";
  if (!m.fits) out += "  ← only " + format_bytes(m.available_bytes) + " available";
  return out;
}

std::string weights_by_type(const WeightStats& w) {
  std::vector<std::pair<std::string, uint64_t>> v(w.bytes_by_type.begin(), w.bytes_by_type.end());
  std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string out;
  for (const auto& [type, n] : v) out += (out.empty() ? "" : ", ") + type + " " + format_bytes(n);
  return out;
}

std::string origin_name(Origin o) {
  switch (o) {
    case Origin::kDefault:
      return "default";
    case Origin::kFlag:
      return "flag";
    case Origin::kModelfile:
      return "modelfile";
    case Origin::kOllama:
      return "ollama";
    case Origin::kLlamaServer:
      return "llama-server";
  }
  return "?";
}

template <typename T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

}  // namespace

std::string render_text(const Report& r) {
  const Inputs& in = r.inputs;
  const ModelDesc& m = in.model;
  const Config& c = in.config;
  const Machine& mc = in.machine;
  const MemoryReport& mem = r.memory;
  const TimeReport& t = r.time;
  std::string o;
  o += fmt::format("hylo doctor: {} ({}) on {}\n\n", m.name, m.quant.empty() ? "?" : m.quant, mc.display_name);
  o += "Verdict  " + r.verdict.headline + "\n";
  if (!r.verdict.detail.empty()) o += "         " + r.verdict.detail + "\n";
  o += "\n";

  o += fmt::format("Model    {}: {} layers ({} attention", m.arch, m.n_layer, m.n_attn_layers());
  if (m.n_recurrent_layers() > 0) o += fmt::format(", {} Gated DeltaNet", m.n_recurrent_layers());
  if (m.n_mtp_layers > 0) o += fmt::format(", +{} MTP", m.n_mtp_layers);
  o += fmt::format("), {} q / {} KV heads × {}", m.n_head, m.n_head_kv, m.head_dim_k);
  if (m.n_expert > 0) o += fmt::format(", {} experts ({} used) × {}", m.n_expert, m.n_expert_used, m.n_ff_exp);
  if (m.n_ff_shexp > 0) o += fmt::format(" + shared {}", m.n_ff_shexp);
  o += fmt::format("\n         {} parameters, {} active per token; trained context {}", params(in.weights.total_params),
                   params(in.weights.active_params), tokens_str(m.n_ctx_train));
  if (m.max_supported_ctx() > m.n_ctx_train) o += fmt::format(" ({} with YaRN)", tokens_str(m.max_supported_ctx()));
  o += fmt::format("\n         source: {}\n", in.model_source);

  o += fmt::format("Config   context {} per sequence ({}); {} sequence{}; KV cache {}; batch {} / ubatch {}\n",
                   tokens_str(r.ctx), c.ctx_source.empty() ? "default: the trained context" : c.ctx_source, c.parallel,
                   c.parallel == 1 ? "" : "s", tensor_type_name(c.kv_type), c.batch, c.ubatch);
  std::vector<std::string> extra;
  if (c.prompt_tokens) extra.push_back(fmt::format("prompt {} tokens", tokens_str(*c.prompt_tokens)));
  if (c.num_predict) extra.push_back(fmt::format("answer up to {} tokens", tokens_str(*c.num_predict)));
  if (c.timeout_seconds) extra.push_back(fmt::format("client timeout {}", seconds_str(*c.timeout_seconds)));
  if (!extra.empty()) {
    o += "         ";
    for (size_t i = 0; i < extra.size(); ++i) o += (i ? "; " : "") + extra[i];
    o += "\n";
  }
  for (const std::string& s : c.sources) o += "         read " + s + "\n";

  o += fmt::format("Machine  {}: {}", mc.display_name, format_bytes(mc.total_memory_bytes()));
  if (mc.devices > 1)
    o += fmt::format(" ({} devices × {}, {} split{})", mc.devices, format_bytes(mc.memory_bytes), mc.split,
                     mc.link_bandwidth_gbs ? fmt::format(", link {:g} GB/s", *mc.link_bandwidth_gbs) : std::string());
  if (mem.gpu_limit_bytes)
    o += fmt::format(", GPU may use {}{}", format_bytes(*mem.gpu_limit_bytes),
                     mc.gpu_limit == "apple-wired" ? " (macOS default wired limit)" : "");
  if (mc.cores > 0) o += fmt::format(", {} cores, {}", mc.cores, mc.isa);
  if (t.bandwidth_gbs)
    o += fmt::format(", {:.1f} GB/s ({})", *t.bandwidth_gbs,
                     in.measured.bandwidth_gbs ? "measured" : mc.bandwidth_source);
  if (mc.compute_tflops) o += fmt::format(", {:.1f} TFLOPS ({})", *mc.compute_tflops, mc.compute_source);
  o += "\n";
  if (!mc.notes.empty()) o += "         " + mc.notes + "\n";

  const uint64_t scale = std::max(mem.available_bytes, mem.total_bytes);
  o += fmt::format("\nMemory (bars: {} = {} columns)\n", format_bytes(scale), kBarWidth);
  auto row = [&](const char* label, uint64_t v, const std::string& detail) {
    o += fmt::format("  {:<16}{:>11}  {}  {}\n", label, format_bytes(v), bar(v, scale, kBarWidth), detail);
  };
  row("weights", mem.weights_bytes, weights_by_type(in.weights));
  row("KV cache", mem.kv_cache_bytes,
      fmt::format("{}/token × {} tokens × {}", format_bytes(mem.kv_bytes_per_token), tokens_str(r.ctx), c.parallel));
  row("recurrent state", mem.recurrent_state_bytes,
      mem.recurrent_state_bytes > 0
          ? fmt::format("{}/sequence × {}", format_bytes(mem.recurrent_bytes_per_sequence), c.parallel)
          : std::string("no recurrent layers"));
  if (mem.prefix_cache_bytes > 0)
    row("prefix cache", mem.prefix_cache_bytes, "--cache-ram: checkpoints of earlier prompts, shared by all slots");
  row("compute", mem.compute_bytes,
      fmt::format("micro-batch of {} tokens: activations, logits, scratch", std::min(c.ubatch, c.batch)));
  row("reserve", mem.reserve_bytes,
      fmt::format("OS {} + runtime {}", format_bytes(mem.os_reserve_bytes), format_bytes(mem.runtime_reserve_bytes)));
  for (const ResidentModel& other : in.residents)
    row("other model", other.total_bytes(),
        fmt::format("{}: weights {} + KV {} ({} tokens) + state and compute {}", other.name,
                    format_bytes(other.weights_bytes), format_bytes(other.kv_cache_bytes), tokens_str(other.ctx),
                    format_bytes(other.recurrent_state_bytes + other.compute_bytes)));
  o += fmt::format("  {:<16}{:>11}  {}\n", "total", format_bytes(mem.total_bytes), stacked_bar(mem, kBarWidth));
  if (mem.fits)
    o += fmt::format("  fits in {} with {} headroom", format_bytes(mem.available_bytes),
                     format_bytes(static_cast<uint64_t>(mem.headroom_bytes)));
  else
    o += fmt::format("  does NOT fit in {}: {} short", format_bytes(mem.available_bytes),
                     format_bytes(static_cast<uint64_t>(-mem.headroom_bytes)));
  o += mem.largest_ctx_that_fits > 0
           ? fmt::format("; largest context that fits: {} tokens per sequence\n", tokens_str(mem.largest_ctx_that_fits))
           : std::string("; no context fits\n");
  if (mem.gpu_limit_bytes)
    o += fmt::format("  the GPU's share: {} of the {} it may use{}\n", format_bytes(mem.gpu_working_set_bytes),
                     format_bytes(*mem.gpu_limit_bytes),
                     mem.gpu_working_set_bytes > *mem.gpu_limit_bytes ? " — over the limit" : "");
  o += mem.prefix_cache_bytes > 0
           ? "  █ weights  ▓ KV cache  ▒ recurrent state  ░ prefix cache + compute + reserve + other models  · free\n"
           : "  █ weights  ▓ KV cache  ▒ recurrent state  ░ compute + reserve + other models  · free\n";

  o += "\nTime\n";
  o += fmt::format("  prefill   {} tokens ({}) at {} tok/s ({}) = {}; first token after ≈ {}\n",
                   tokens_str(t.prefill_tokens), t.prefill_basis, rate_str(t.prefill_tps), t.prefill_tps_source,
                   seconds_str(t.prefill_seconds), seconds_str(t.ttft_seconds));
  if (t.prefill_seconds_slow > t.prefill_seconds_fast * 1.001)
    o += fmt::format("            range {}–{} tok/s = {} to {}; {}\n", rate_str(t.prefill_tps_low),
                     rate_str(t.prefill_tps_high), seconds_str(t.prefill_seconds_fast),
                     seconds_str(t.prefill_seconds_slow), t.prefill_calibration);
  if (t.decode_tps_bound) {
    o += fmt::format("  decode    ≤ {} tok/s ({:.1f} GB/s ÷ {} of active weights per token)",
                     rate_str(*t.decode_tps_bound), *t.bandwidth_gbs, format_bytes(t.active_bytes_per_token));
    if (t.decode_tps_bound_at_ctx)
      o += fmt::format("; ≤ {} tok/s at {} tokens of context", rate_str(*t.decode_tps_bound_at_ctx),
                       tokens_str(t.decode_ctx));
    o += "\n";
  } else {
    o += fmt::format("  decode    bandwidth unknown; {} of active weights per token\n",
                     format_bytes(t.active_bytes_per_token));
  }
  if (t.speculative) {
    const auto& s = *t.speculative;
    o += fmt::format(
        "  spec mtp  {} drafts at {:.0f}% acceptance: {:.2f} tokens per verify step, which reads {:.2f}× a plain "
        "step's bytes (the experts of {} tokens, {} per draft for the MTP block and LM head) → {:.2f}× decode",
        s.draft, 100 * s.acceptance, s.tokens_per_step, s.bytes_plain > 0 ? s.bytes_per_step / s.bytes_plain : 1.0,
        s.draft + 1, format_bytes(s.mtp_bytes_per_draft), s.speedup);
    if (s.decode_tps_bound_at_ctx) o += fmt::format(", ≤ {} tok/s", rate_str(*s.decode_tps_bound_at_ctx));
    o += "\n";
    if (!s.model_has_mtp)
      o +=
          "            no MTP tensors here (hylo refuses --spec mtp on such a file): the estimate assumes an MTP block "
          "the size of one trunk layer, as Qwen3-Next's checkpoints carry (most converted GGUFs drop it)\n";
  }

  o += "\nFindings\n";
  if (r.findings.empty()) o += "  none\n";
  for (size_t i = 0; i < r.findings.size(); ++i) {
    const Finding& f = r.findings[i];
    o += fmt::format("  {:<8} {}\n           {}\n", severity_name(f.severity), f.id, f.message);
    if (!f.fix.empty()) o += "           fix: " + f.fix + "\n";
    // The same pasteable fix as an earlier finding is named, not repeated.
    const Finding* same = nullptr;
    for (size_t k = 0; k < i && same == nullptr && !f.fixes.empty(); ++k) {
      const std::vector<Fix>& e = r.findings[k].fixes;
      if (e.size() == f.fixes.size() && std::equal(e.begin(), e.end(), f.fixes.begin(), [](const Fix& a, const Fix& b) {
            return a.kind == b.kind && a.text == b.text;
          }))
        same = &r.findings[k];
    }
    if (same != nullptr) {
      o += fmt::format("           (to paste: the same as {} above)\n", same->id);
      continue;
    }
    for (const Fix& x : f.fixes) {
      o += fmt::format("           ┌ {}\n", x.title);
      for (const std::string& line : split(x.text, '\n'))
        if (!line.empty()) o += "           │ " + line + "\n";
      o += "           └\n";
    }
  }
  return o;
}

json render_json(const Report& r) {
  const Inputs& in = r.inputs;
  const ModelDesc& m = in.model;
  const Config& c = in.config;
  const Machine& mc = in.machine;
  const MemoryReport& mem = r.memory;
  const TimeReport& t = r.time;
  json j;
  json by_type = json::object();
  for (const auto& [type, n] : in.weights.bytes_by_type) by_type[type] = n;
  j["model"] = {
      {"name", m.name},
      {"arch", m.arch},
      {"quant", m.quant},
      {"source", in.model_source},
      {"n_layer", m.n_layer},
      {"n_attn_layers", m.n_attn_layers()},
      {"n_recurrent_layers", m.n_recurrent_layers()},
      {"n_mtp_layers", m.n_mtp_layers},
      {"n_head", m.n_head},
      {"n_head_kv", m.n_head_kv},
      {"head_dim_k", m.head_dim_k},
      {"head_dim_v", m.head_dim_v},
      {"n_embd", m.n_embd},
      {"n_vocab", m.n_vocab},
      {"n_expert", m.n_expert},
      {"n_expert_used", m.n_expert_used},
      {"n_ff_exp", m.n_ff_exp},
      {"n_ff_shexp", m.n_ff_shexp},
      {"n_ctx_train", m.n_ctx_train},
      {"max_supported_ctx", m.max_supported_ctx()},
      {"rope_scaling",
       {{"type", m.rope_scaling.type},
        {"factor", m.rope_scaling.factor},
        {"original_context_length", m.rope_scaling.original_ctx}}},
      {"ssm",
       {{"conv_kernel", m.ssm_conv_kernel},
        {"state_size", m.ssm_state_size},
        {"group_count", m.ssm_group_count},
        {"time_step_rank", m.ssm_time_step_rank},
        {"inner_size", m.ssm_inner_size}}},
      {"total_params", in.weights.total_params},
      {"active_params", in.weights.active_params},
      {"notes", m.notes},
  };
  j["config"] = {
      {"ctx", r.ctx},
      {"ctx_origin", origin_name(c.ctx_origin)},
      {"ctx_source", c.ctx_source},
      {"parallel", c.parallel},
      {"kv_type", std::string(tensor_type_name(c.kv_type))},
      {"batch", c.batch},
      {"ubatch", c.ubatch},
      {"timeout_seconds", opt(c.timeout_seconds)},
      {"prompt_tokens", opt(c.prompt_tokens)},
      {"prefill_tps", opt(c.prefill_tps)},
      {"num_predict", opt(c.num_predict)},
      {"sources", c.sources},
  };
  j["machine"] = {
      {"name", mc.name},
      {"display_name", mc.display_name},
      {"kind", mc.kind},
      {"memory_bytes", mc.memory_bytes},
      {"os_reserve_bytes", mc.os_reserve_bytes},
      {"available_now_bytes", opt(mc.available_now_bytes)},
      {"bandwidth_gbs", opt(mc.bandwidth_gbs)},
      {"bandwidth_source", mc.bandwidth_source},
      {"compute_tflops", opt(mc.compute_tflops)},
      {"compute_source", mc.compute_source},
      {"cores", mc.cores},
      {"isa", mc.isa},
  };
  j["memory"] = {
      {"weights_bytes", mem.weights_bytes},
      {"weights_by_type", by_type},
      {"kv_bytes_per_token", mem.kv_bytes_per_token},
      {"kv_cache_bytes", mem.kv_cache_bytes},
      {"recurrent_state_bytes_per_sequence", mem.recurrent_bytes_per_sequence},
      {"recurrent_state_bytes", mem.recurrent_state_bytes},
      {"prefix_cache_bytes", mem.prefix_cache_bytes},
      {"compute_bytes", mem.compute_bytes},
      {"compute",
       {{"activations", mem.compute.activations},
        {"logits", mem.compute.logits},
        {"attention", mem.compute.attention},
        {"deltanet", mem.compute.deltanet}}},
      {"os_reserve_bytes", mem.os_reserve_bytes},
      {"runtime_reserve_bytes", mem.runtime_reserve_bytes},
      {"reserve_bytes", mem.reserve_bytes},
      {"total_bytes", mem.total_bytes},
      {"available_bytes", mem.available_bytes},
      {"headroom_bytes", mem.headroom_bytes},
      {"fits", mem.fits},
      {"largest_ctx_that_fits", mem.largest_ctx_that_fits},
  };
  j["time"] = {
      {"prefill_tokens", t.prefill_tokens},
      {"prefill_basis", t.prefill_basis},
      {"prefill_tps", t.prefill_tps},
      {"prefill_tps_source", t.prefill_tps_source},
      {"prefill_seconds", t.prefill_seconds},
      {"ttft_seconds", t.ttft_seconds},
      {"bandwidth_gbs", opt(t.bandwidth_gbs)},
      {"active_bytes_per_token", t.active_bytes_per_token},
      {"decode_tps_bound", opt(t.decode_tps_bound)},
      {"decode_tps_bound_at_ctx", opt(t.decode_tps_bound_at_ctx)},
      {"decode_ctx", t.decode_ctx},
  };
  if (t.speculative) {
    const auto& s = *t.speculative;
    j["time"]["speculative"] = {{"draft", s.draft},
                                {"acceptance", s.acceptance},
                                {"model_has_mtp", s.model_has_mtp},
                                {"mtp_bytes_per_draft", s.mtp_bytes_per_draft},
                                {"tokens_per_step", s.tokens_per_step},
                                {"bytes_per_step", s.bytes_per_step},
                                {"bytes_plain", s.bytes_plain},
                                {"speedup", s.speedup},
                                {"decode_tps_bound_at_ctx", opt(s.decode_tps_bound_at_ctx)}};
  }
  j["memory"]["other_models_bytes"] = mem.other_models_bytes;
  j["memory"]["gpu_working_set_bytes"] = mem.gpu_working_set_bytes;
  j["memory"]["gpu_limit_bytes"] = opt(mem.gpu_limit_bytes);
  json residents = json::array();
  for (const ResidentModel& other : in.residents)
    residents.push_back({{"name", other.name},
                         {"source", other.source},
                         {"ctx", other.ctx},
                         {"weights_bytes", other.weights_bytes},
                         {"kv_cache_bytes", other.kv_cache_bytes},
                         {"recurrent_state_bytes", other.recurrent_state_bytes},
                         {"compute_bytes", other.compute_bytes},
                         {"total_bytes", other.total_bytes()}});
  j["other_models"] = residents;
  j["machine"]["devices"] = mc.devices;
  j["machine"]["split"] = mc.split;
  j["machine"]["link_bandwidth_gbs"] = opt(mc.link_bandwidth_gbs);
  j["machine"]["gpu_memory_bytes"] = opt(mc.gpu_memory_bytes);
  j["machine"]["gpu_limit"] = mc.gpu_limit;
  j["machine"]["family"] = mc.family;
  j["time"]["prefill_tps_low"] = t.prefill_tps_low;
  j["time"]["prefill_tps_high"] = t.prefill_tps_high;
  j["time"]["prefill_seconds_fast"] = t.prefill_seconds_fast;
  j["time"]["prefill_seconds_slow"] = t.prefill_seconds_slow;
  j["time"]["prefill_calibration"] = t.prefill_calibration;
  j["verdict"] = {{"headline", r.verdict.headline},
                  {"detail", r.verdict.detail},
                  {"hardware_problem", r.verdict.hardware_problem},
                  {"problems", r.verdict.problems}};
  json findings = json::array();
  for (const Finding& f : r.findings) {
    json fixes = json::array();
    for (const Fix& x : f.fixes) fixes.push_back({{"kind", x.kind}, {"title", x.title}, {"text", x.text}});
    findings.push_back({{"id", f.id},
                        {"severity", severity_name(f.severity)},
                        {"title", f.title},
                        {"hardware", f.hardware},
                        {"message", f.message},
                        {"fix", f.fix},
                        {"fixes", fixes}});
  }
  j["findings"] = findings;
  json quants = json::array();
  for (const QuantOption& q : in.quant_options)
    quants.push_back(
        {{"quant", q.name}, {"weights_bytes", q.weights_bytes}, {"active_bytes_per_token", q.active_bytes_per_token}});
  j["quant_options"] = quants;
  return j;
}

std::string render_compare_text(const Report& r, const std::vector<CompareRow>& rows) {
  const Inputs& in = r.inputs;
  std::string o = fmt::format(
      "hylo doctor --compare-hardware: {} ({}), context {} × {} sequence(s), KV {}; {} of weights, {} active per "
      "token\n",
      in.model.name, in.model.quant, tokens_str(r.ctx), in.config.parallel, tensor_type_name(in.config.kv_type),
      format_bytes(r.memory.weights_bytes), format_bytes(r.time.active_bytes_per_token));
  o += fmt::format("the same settings on every machine: decode at {} tokens of context; prefill of {} tokens ({})",
                   tokens_str(r.time.decode_ctx), tokens_str(r.time.prefill_tokens), r.time.prefill_basis);
  if (in.config.timeout_seconds)
    o += fmt::format(" against the {} client timeout", seconds_str(*in.config.timeout_seconds));
  if (!in.residents.empty()) o += fmt::format("; with {} other model(s) loaded", in.residents.size());
  o += "\n\n";
  o += fmt::format("{:<26} {:>10} {:>5} {:>11} {:>12} {:>8} {:>18} {:>18} {:>8}\n", "hardware", "memory", "fits",
                   "headroom", "largest ctx", "GB/s", "decode ≤ (at ctx)", "prefill", "timeout");
  for (const CompareRow& row : rows) {
    std::string headroom = row.headroom_bytes < 0 ? "-" : "";
    headroom += format_bytes(static_cast<uint64_t>(std::llabs(row.headroom_bytes)));
    std::string fits = row.fits ? "yes" : "no";
    if (row.fits && row.gpu_limit_bytes && row.gpu_working_set_bytes > *row.gpu_limit_bytes) fits = "cpu*";
    const std::string decode = row.decode_tps_bound_at_ctx ? fmt::format("{} ({})", rate_str(*row.decode_tps_bound),
                                                                         rate_str(*row.decode_tps_bound_at_ctx))
                                                           : std::string("-");
    const std::string prefill =
        row.prefill_seconds_slow > row.prefill_seconds_fast * 1.001
            ? fmt::format("{}–{}", seconds_str(row.prefill_seconds_fast), seconds_str(row.prefill_seconds_slow))
            : seconds_str(row.prefill_seconds);
    const std::string timeout = !row.within_timeout ? "-" : (*row.within_timeout ? "ok" : "over");
    o += fmt::format("{:<26} {:>10} {:>5} {:>11} {:>12} {:>8.0f} {:>18} {:>18} {:>8}\n", row.hardware,
                     format_bytes(row.available_bytes), fits, headroom,
                     row.largest_ctx_that_fits > 0 ? tokens_str(row.largest_ctx_that_fits) : "-", row.bandwidth_gbs,
                     decode, prefill, timeout);
  }
  o += "decode ≤: tok/s from the weights alone (and at the context, also reading the KV cache); prefill: the range of "
       "published measurements (data/doctor/prefill.json); cpu*: fits, but over the GPU's default limit\n";
  return o;
}

json render_compare_json(const std::vector<CompareRow>& rows) {
  json a = json::array();
  for (const CompareRow& row : rows) {
    a.push_back({{"hardware", row.hardware},
                 {"display_name", row.display_name},
                 {"kind", row.kind},
                 {"devices", row.devices},
                 {"available_bytes", row.available_bytes},
                 {"total_bytes", row.total_bytes},
                 {"headroom_bytes", row.headroom_bytes},
                 {"fits", row.fits},
                 {"largest_ctx_that_fits", row.largest_ctx_that_fits},
                 {"bandwidth_gbs", row.bandwidth_gbs},
                 {"decode_tps_bound", opt(row.decode_tps_bound)},
                 {"decode_tps_bound_at_ctx", opt(row.decode_tps_bound_at_ctx)},
                 {"decode_ctx", row.decode_ctx},
                 {"prefill_tps", row.prefill_tps},
                 {"prefill_seconds", row.prefill_seconds},
                 {"prefill_seconds_fast", row.prefill_seconds_fast},
                 {"prefill_seconds_slow", row.prefill_seconds_slow},
                 {"within_timeout", opt(row.within_timeout)},
                 {"gpu_limit_bytes", opt(row.gpu_limit_bytes)},
                 {"gpu_working_set_bytes", row.gpu_working_set_bytes},
                 {"problems", row.problems},
                 {"verdict", row.verdict}});
  }
  return a;
}

std::string render_list_text() {
  std::string o = "Model profiles (--profile NAME [--quant TYPE]):\n";
  for (const ModelProfile& p : model_profiles()) {
    std::string quants;
    for (const std::string& q : p.quants) quants += (quants.empty() ? "" : " ") + q;
    o += fmt::format("  {:<26} {:<32} {} (default {})\n", p.name, p.display_name, quants, p.default_quant);
  }
  o += "\nHardware profiles (--hardware NAME):\n";
  for (const HardwareProfile& h : hardware_profiles())
    o += fmt::format("  {:<26} {:>10} {:>8.0f} GB/s  {}\n", h.name,
                     format_bytes(h.memory_bytes * static_cast<uint64_t>(h.devices)), h.bandwidth_gbs, h.display_name);
  o += "\nQuantisations (--quant):";
  for (QuantScheme s : all_quant_schemes()) o.append(" ").append(quant_scheme_name(s));
  return o + "\n";
}

json render_list_json() {
  json models = json::array(), hardware = json::array(), quants = json::array();
  for (const ModelProfile& p : model_profiles())
    models.push_back({{"name", p.name},
                      {"display_name", p.display_name},
                      {"quants", p.quants},
                      {"default_quant", p.default_quant},
                      {"aliases", p.aliases}});
  for (const HardwareProfile& h : hardware_profiles())
    hardware.push_back({{"name", h.name},
                        {"display_name", h.display_name},
                        {"kind", h.kind},
                        {"memory_bytes", h.memory_bytes},
                        {"os_reserve_bytes", h.os_reserve_bytes},
                        {"bandwidth_gbs", h.bandwidth_gbs},
                        {"compute_tflops", h.compute_tflops},
                        {"family", h.family},
                        {"apple_gpu", h.apple_gpu},
                        {"devices", h.devices},
                        {"split", h.split},
                        {"link_bandwidth_gbs", h.link_bandwidth_gbs}});
  for (QuantScheme s : all_quant_schemes()) quants.push_back(std::string(quant_scheme_name(s)));
  return {{"models", models}, {"hardware", hardware}, {"quants", quants}};
}

}  // namespace hylo::doctor
