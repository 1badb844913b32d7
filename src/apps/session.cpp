#include "apps/session.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/default_model.h"
#include "apps/memory_fit.h"
#include "apps/progress.h"
#include "base/cpu.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/timer.h"

namespace hylo::apps {

void SessionFlags::add(CLI::App& app, bool with_parallel) {
  app.add_option("-m,--model", model, "GGUF model file (default: the built-in model, trained on the King James Bible)");
  app.add_option("-t,--threads", threads, "Threads (default: physical cores)")->check(CLI::Range(0, 1024));
  app.add_option("-c,--ctx-size", ctx, "Context size per sequence (default: trained context, capped by memory)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  kv.add(app);
  rope.add(app);
  app.add_flag("--mmap", mmap,
               "Load even when weights, KV cache and buffers exceed available memory: the weights are mapped and "
               "streamed from disk (slow). Without it such a model is refused with the numbers and the options");
  app.add_flag("--no-mmap", no_mmap, "Read the weights into memory instead of mapping the file");
  app.add_flag("--mlock", mlock, "Lock the weights in memory so they are never paged out (may need ulimit -l)");
  app.add_option("-b,--batch-size", batch, "Tokens per forward call (prefill chunk)")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  app.add_option("--chat-template", chat_template_file, "Jinja chat template file instead of the model's");
  app.add_option("--spec", spec,
                 "Speculative decoding: mtp drafts tokens with the model's multi-token-prediction block (greedy "
                 "output unchanged, sampled output distributed as without it), none")
      ->check(CLI::IsMember({"none", "mtp"}))
      ->capture_default_str();
  app.add_flag_callback(
      "--enable-mtp", [this] { spec = "mtp"; }, "Same as --spec mtp");
  app.add_option("--draft", draft, "Tokens drafted per step with --spec mtp")
      ->check(CLI::Range(1, runtime::kMaxDraft))
      ->capture_default_str();
  app.add_option("--cache-ram", cache_ram,
                 "Prefix cache budget shared by all slots: a size (512M, 8G), 0 for none, or auto (half the "
                 "memory left free)")
      ->capture_default_str();
  app.add_option("--cache-interval", cache_interval, "Tokens between prefix cache checkpoints (multiple of 64)")
      ->check(CLI::Range(64, 1 << 20))
      ->capture_default_str();
  app.add_option("--cache-dir", cache_dir,
                 "Directory for prefix cache checkpoints evicted from RAM or left at exit; read back on later "
                 "requests and after a restart");
  app.add_option("--cache-disk", cache_disk, "Budget of --cache-dir (at most half its free space)")
      ->capture_default_str();
  if (with_parallel)
    app.add_option("--parallel,--np", parallel, "Sequences decoded together (slots)")
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
}

ContextChoice choose_context(const models::Model& model, int64_t requested, int parallel, TensorType type_k,
                             TensorType type_v, int64_t n_batch, uint64_t available_bytes) {
  const models::MemoryLayout layout = model.memory_layout();
  const uint64_t per_token = std::max<uint64_t>(1, layout.kv_bytes_per_token(type_k, type_v)) * parallel;
  const int64_t trained = model.info().n_ctx_train;
  // Memory for the cache: what is available now, minus the weights still to be paged in (counted
  // whole, to be safe), the recurrent state and the compute buffers (models/cost.h).
  const models::MemoryNeed base = models::memory_need(model, 0, parallel, type_k, type_v, n_batch);
  const uint64_t weights = base.weights;
  const uint64_t used = base.total();
  const uint64_t budget = available_bytes > used ? available_bytes - used : 0;
  const int64_t fits = static_cast<int64_t>(budget / per_token) / 256 * 256;
  ContextChoice c;
  if (requested > 0) {
    c.n_ctx = static_cast<int32_t>(std::min<int64_t>(requested, INT32_MAX));
    c.reason = fmt::format("context {} tokens (set with -c)", format_count(static_cast<uint64_t>(c.n_ctx)));
    if (requested > fits)
      c.reason += fmt::format("; the KV cache may not fit in memory ({} per token, {} available)",
                              format_bytes(per_token), format_bytes(budget));
    return c;
  }
  if (fits >= trained) {
    c.n_ctx = static_cast<int32_t>(std::min<int64_t>(trained, INT32_MAX));
    c.reason = fmt::format("context {} tokens: the model's trained context ({} of KV cache per token{})",
                           format_count(static_cast<uint64_t>(c.n_ctx)), format_bytes(per_token),
                           parallel > 1 ? fmt::format(" for {} slots", parallel) : "");
  } else {
    c.n_ctx = static_cast<int32_t>(std::max<int64_t>(256, fits));
    c.reason = fmt::format(
        "context {} tokens: the trained {} would need {} of KV cache, {} is free beside the {} of weights "
        "(-c sets it)",
        format_count(static_cast<uint64_t>(c.n_ctx)), format_count(static_cast<uint64_t>(trained)),
        format_bytes(per_token * static_cast<uint64_t>(trained)), format_bytes(budget), format_bytes(weights));
  }
  return c;
}

Result<uint64_t> parse_byte_size(const std::string& text) {
  const std::string t(trim(text));
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(t, &used);
  } catch (const std::exception&) {
    return make_error("[cache] '{}' is not a size (examples: 0, 512M, 8G)", text);
  }
  std::string unit(trim(std::string_view(t).substr(used)));
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (ends_with(unit, "IB"))
    unit = unit.substr(0, unit.size() - 2);
  else if (unit.size() == 2 && unit[1] == 'B')
    unit = unit.substr(0, 1);
  double scale = 1;
  if (unit == "" || unit == "B")
    scale = 1;
  else if (unit == "K")
    scale = 1024.0;
  else if (unit == "M")
    scale = 1024.0 * 1024;
  else if (unit == "G")
    scale = 1024.0 * 1024 * 1024;
  else if (unit == "T")
    scale = 1024.0 * 1024 * 1024 * 1024;
  else
    return make_error("[cache] '{}': unknown unit '{}' (K, M, G or T)", text, unit);
  const double bytes = value * scale;
  if (!(bytes >= 0) || bytes > 1e18) return make_error("[cache] '{}' is not a size between 0 and 1 EB", text);
  return static_cast<uint64_t>(bytes);
}

Result<CacheChoice> choose_cache_budget(const models::Model& model, const std::string& requested, int32_t n_ctx,
                                        int parallel, TensorType type_k, TensorType type_v, uint64_t available_bytes) {
  CacheChoice c;
  if (requested != "auto") {
    HYLO_ASSIGN_OR_RETURN(c.bytes, parse_byte_size(requested));
    c.reason = c.bytes == 0 ? "prefix cache off (--cache-ram 0)"
                            : fmt::format("prefix cache up to {} in RAM (set with --cache-ram)", format_bytes(c.bytes));
    return c;
  }
  const models::MemoryLayout layout = model.memory_layout();
  const uint64_t slots = (layout.kv_bytes_per_token(type_k, type_v) * static_cast<uint64_t>(n_ctx) +
                          layout.recurrent_bytes_per_sequence()) *
                         static_cast<uint64_t>(parallel);
  const uint64_t used = model.info().weight_bytes + slots + (1ull << 30);
  c.bytes = available_bytes > used ? (available_bytes - used) / 2 : 0;
  c.reason = fmt::format("prefix cache up to {} in RAM: half of the {} free beside the weights and slots (--cache-ram)",
                         format_bytes(c.bytes), format_bytes(available_bytes > used ? available_bytes - used : 0));
  return c;
}

namespace {

// Reads every page of the weights once, so the first request does not pay for page faults and
// a cold disk shows up as a progress bar instead of a slow first token.
void warm_weights(const models::Model& model) {
  const MappedFile* map = model.file().mapping();
  if (map == nullptr || map->size() < (256ull << 20)) return;
  Progress progress("loading " + model.info().name, static_cast<int64_t>(map->size() >> 20), "MiB");
  constexpr uint64_t kChunk = 64ull << 20;
  volatile uint8_t sink = 0;
  for (uint64_t off = 0; off < map->size(); off += kChunk) {
    const uint64_t end = std::min(map->size(), off + kChunk);
    map->prefetch(off, end - off);
    uint8_t acc = 0;
    for (uint64_t p = off; p < end; p += 4096) acc ^= map->data()[p];
    sink = sink ^ acc;
    progress.update(static_cast<int64_t>(end >> 20));
  }
  progress.finish();
}

void read_sampling_defaults(const gguf::File& f, bool thinking, runtime::SamplingParams* p) {
  // The Qwen3 model cards: thinking 0.6 / 0.95 / 20, instruct 0.7 / 0.8 / 20; min_p 0.
  p->temperature = thinking ? 0.6f : 0.7f;
  p->top_p = thinking ? 0.95f : 0.8f;
  p->top_k = 20;
  p->min_p = 0.0f;
  if (auto v = f.get_float("general.sampling.temp")) p->temperature = static_cast<float>(*v);
  if (auto v = f.get_int("general.sampling.top_k")) p->top_k = static_cast<int32_t>(*v);
  if (auto v = f.get_float("general.sampling.top_p")) p->top_p = static_cast<float>(*v);
  if (auto v = f.get_float("general.sampling.min_p")) p->min_p = static_cast<float>(*v);
  if (auto v = f.get_float("general.sampling.penalty_repeat")) p->repeat_penalty = static_cast<float>(*v);
  if (auto v = f.get_int("general.sampling.penalty_last_n")) p->repeat_last_n = static_cast<int32_t>(*v);
}

}  // namespace

Result<std::string> Session::render(const nlohmann::ordered_json& messages, const nlohmann::ordered_json& tools,
                                    std::optional<bool> enable_thinking, bool add_generation_prompt) const {
  return chat_template->render(messages, tools, add_generation_prompt, enable_thinking,
                               chat::special_tokens_of(tokenizer));
}

Result<std::unique_ptr<Session>> open_session(const SessionFlags& flags) {
  auto s = std::make_unique<Session>();
  s->pool = std::make_unique<ThreadPool>(flags.threads > 0 ? flags.threads : physical_core_count());
  std::string path = flags.model;
  if (path.empty()) {
    HYLO_ASSIGN_OR_RETURN(path, find_default_model());
    s->default_model = true;
  }
  if (flags.mmap && flags.no_mmap) return make_error("[cli] --mmap and --no-mmap: choose one");
  // Shapes first (weights stay in the mapping, untouched): does the run fit in memory?
  HYLO_ASSIGN_OR_RETURN(std::unique_ptr<models::Model> shapes, models::load_model(path, {.repack = false}));
  const models::MemoryLayout layout = shapes->memory_layout();
  HYLO_ASSIGN_OR_RETURN(const auto kv, flags.kv.resolve(layout, TensorType::kF16));
  s->cache_type_k = kv.first;
  s->cache_type_v = kv.second;
  s->kv_bytes_per_token = layout.kv_bytes_per_token(kv.first, kv.second);
  const uint64_t available = available_memory_bytes();
  const ContextChoice ctx =
      choose_context(*shapes, flags.ctx, flags.parallel, kv.first, kv.second, flags.batch, available);
  s->n_ctx = ctx.n_ctx;
  s->ctx_reason = ctx.reason;
  if (kv.first != TensorType::kF16 || kv.second != TensorType::kF16)
    s->ctx_reason += fmt::format("; KV cache K {} V {}", tensor_type_name(kv.first), tensor_type_name(kv.second));
  FitInputs fit_in{.n_ctx = s->n_ctx,
                   .n_seq = flags.parallel,
                   .type_k = kv.first,
                   .type_v = kv.second,
                   .n_batch = flags.batch,
                   .available = available,
                   .command = flags.command};
  FitReport fit = check_fit(*shapes, fit_in);
  if (!fit.fits) {
    fit_in.disk_read_gbs = measure_file_read_gbs(path);
    fit = check_fit(*shapes, fit_in);
  }
  s->memory_summary = fit.summary;
  if (!fit.fits && (!flags.mmap || flags.no_mmap))
    return make_error("[memory] {} does not fit in memory: {}.\nOptions:\n{}Nothing was loaded.", path, fit.summary,
                      fit.options);
  if (!fit.fits)
    log_warn("[memory] {} does not fit in memory ({}); --mmap: the weights are streamed from disk{}", path, fit.summary,
             fit.streaming_tok_s > 0 ? fmt::format(", expect about {:.2g} tokens/s", fit.streaming_tok_s) : "");
  else
    log_debug("[memory] {}", fit.summary);
  shapes.reset();

  HYLO_ASSIGN_OR_RETURN(s->model, models::load_model(path, {.repack = true, .read_into_memory = flags.no_mmap}));
  if (const auto& info = s->model->info(); info.repacked_bytes > 0)
    log_info("[model] weights repacked for the kernels in {:.1f} s ({})", info.repack_seconds,
             format_bytes(info.repacked_bytes));
  HYLO_ASSIGN_OR_RETURN(s->tokenizer, tokenizer::Tokenizer::from_gguf(s->model->file()));
  if (s->tokenizer.n_vocab() > s->model->info().n_vocab)
    return make_error("[model] {}: the tokenizer has {} tokens, the embedding only {} rows", path,
                      s->tokenizer.n_vocab(), s->model->info().n_vocab);
  s->random_weights = s->model->file().get_bool("hylo.random_weights").value_or(false);
  const int n_draft = flags.spec == "mtp" ? flags.draft : 0;
  HYLO_TRY(runtime::check_speculative(*s->model, n_draft));

  std::string tmpl = s->tokenizer.chat_template();
  if (!flags.chat_template_file.empty()) {
    std::ifstream in(flags.chat_template_file);
    if (!in) return make_error("[chat] cannot read the chat template {}", flags.chat_template_file);
    std::stringstream ss;
    ss << in.rdbuf();
    tmpl = ss.str();
  }
  if (tmpl.empty()) {
    tmpl = chat::chatml_fallback_template();
    s->chatml_fallback = true;
    log_warn("[chat] {} has no chat template: using plain ChatML", path);
  }
  HYLO_ASSIGN_OR_RETURN(chat::ChatTemplate ct, chat::ChatTemplate::parse(tmpl));
  s->chat_template = std::move(ct);
  auto probe = s->render(nlohmann::ordered_json::array({{{"role", "user"}, {"content", "hi"}}}));
  s->thinking_model = probe.ok() && chat::prompt_opens_thinking(*probe);
  read_sampling_defaults(s->model->file(), s->thinking_model, &s->sampling);

  HYLO_ASSIGN_OR_RETURN(s->rope_reason, apply_rope(*s->model, flags.rope, s->n_ctx));
  if (flags.warm && fit.fits) warm_weights(*s->model);  // streaming: reading it all in would only thrash
  runtime::EngineOptions eo;
  eo.n_slots = flags.parallel;
  eo.n_ctx = s->n_ctx;
  eo.n_batch = flags.batch;
  eo.max_queue = flags.max_queue;
  eo.kv_type = kv.first;
  eo.kv_type_v = kv.second;
  eo.n_draft = n_draft;
  HYLO_ASSIGN_OR_RETURN(CacheChoice cache, choose_cache_budget(*s->model, flags.cache_ram, s->n_ctx, flags.parallel,
                                                               kv.first, kv.second, available_memory_bytes()));
  eo.cache.max_bytes = cache.bytes;
  eo.cache.interval = flags.cache_interval;
  s->cache_reason = cache.reason;
  if (!flags.cache_dir.empty() && cache.bytes > 0) {
    HYLO_ASSIGN_OR_RETURN(uint64_t disk, parse_byte_size(flags.cache_disk));
    std::error_code ec;
    std::filesystem::create_directories(flags.cache_dir, ec);
    const std::filesystem::space_info space = std::filesystem::space(flags.cache_dir, ec);
    if (ec) return make_error("[cache] --cache-dir {}: {}", flags.cache_dir, ec.message());
    disk = std::min<uint64_t>(disk, space.available / 2);
    eo.cache.dir = flags.cache_dir;
    eo.cache.disk_bytes = disk;
    s->cache_reason += fmt::format("; up to {} on disk in {}", format_bytes(disk), flags.cache_dir);
  }
  s->engine = std::make_unique<runtime::Engine>(*s->model, s->tokenizer, *s->pool, eo);
  if (flags.mlock && mlockall(MCL_CURRENT) != 0)
    log_warn("[memory] --mlock: locking {} in memory failed ({}); raise the limit with ulimit -l", path,
             std::strerror(errno));
  return s;
}

}  // namespace hylo::apps
