#include "server/metrics.h"

#include <fmt/format.h>

namespace hylo::server {

void Metrics::count_request(std::string_view route, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  requests_[{std::string(route), status}]++;
}

void Metrics::count_client_gone() {
  std::lock_guard<std::mutex> lock(mu_);
  client_gone_++;
}

void Metrics::count_ping() {
  std::lock_guard<std::mutex> lock(mu_);
  pings_++;
}

void Metrics::count_rejected(std::string_view reason) {
  std::lock_guard<std::mutex> lock(mu_);
  rejected_[std::string(reason)]++;
}

namespace {

void family(std::string* out, std::string_view name, std::string_view type, std::string_view help) {
  *out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

template <typename T>
void metric(std::string* out, std::string_view name, std::string_view type, std::string_view help, T value) {
  family(out, name, type, help);
  *out += fmt::format("{} {}\n", name, value);
}

double rate(uint64_t tokens, double seconds) { return seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0; }

}  // namespace

std::string Metrics::render(const runtime::EngineStats* e) const {
  std::string out;
  metric(&out, "hylo_model_loaded", "gauge", "1 once the model is loaded and requests are served", e ? 1 : 0);
  metric(&out, "hylo_uptime_seconds", "gauge", "Seconds since the server started", uptime_.seconds());
  if (e != nullptr) {
    metric(&out, "hylo_requests_running", "gauge", "Requests holding a slot (prefilling or decoding)", e->slots_busy);
    metric(&out, "hylo_requests_waiting", "gauge", "Requests queued for a free slot", e->queued);
    metric(&out, "hylo_slots_total", "gauge", "Sequence slots (--parallel)", e->slots_total);
    metric(&out, "hylo_slots_busy", "gauge", "Slots with a request", e->slots_busy);
    metric(&out, "hylo_requests_completed_total", "counter", "Requests the engine finished (any reason)",
           e->requests_done);
    metric(&out, "hylo_prompt_tokens_total", "counter", "Prompt tokens of admitted requests", e->prompt_tokens);
    metric(&out, "hylo_prompt_tokens_processed_total", "counter",
           "Prompt tokens prefilled (prompt tokens minus those reused from a slot or the prefix cache)",
           e->prefilled_tokens);
    metric(&out, "hylo_generated_tokens_total", "counter", "Tokens generated", e->generated_tokens);
    metric(&out, "hylo_draft_tokens_total", "counter", "Tokens drafted by the MTP head and verified (--spec mtp)",
           e->drafted_tokens);
    metric(&out, "hylo_draft_tokens_accepted_total", "counter", "Drafted tokens the model agreed with",
           e->accepted_tokens);
    metric(&out, "hylo_draft_acceptance_rate", "gauge", "Accepted over drafted tokens since the start",
           rate(e->accepted_tokens, static_cast<double>(e->drafted_tokens)));
    metric(&out, "hylo_prefill_seconds_total", "counter", "Scheduler time spent on prefill rows", e->prefill_seconds);
    metric(&out, "hylo_decode_seconds_total", "counter", "Scheduler time spent on decode rows", e->decode_seconds);
    metric(&out, "hylo_prompt_tokens_per_second", "gauge", "Prefill throughput over the time spent prefilling",
           rate(e->prefilled_tokens, e->prefill_seconds));
    metric(&out, "hylo_generated_tokens_per_second", "gauge", "Decode throughput over the time spent decoding",
           rate(e->generated_tokens, e->decode_seconds));
    family(&out, "hylo_time_to_first_token_seconds", "summary", "From submission to the first generated token");
    out += fmt::format("hylo_time_to_first_token_seconds_sum {}\nhylo_time_to_first_token_seconds_count {}\n",
                       e->ttft_seconds_sum, e->ttft_count);
    metric(&out, "hylo_kv_cache_bytes", "gauge", "Bytes of KV cache and recurrent state allocated", e->memory_bytes);
    const runtime::PrefixCacheStats& c = e->cache;
    metric(&out, "hylo_prefix_cache_lookups_total", "counter", "Prompts looked up in the prefix cache", c.lookups);
    metric(&out, "hylo_prefix_cache_hits_total", "counter", "Prompts whose state was restored from the prefix cache",
           c.hits);
    metric(&out, "hylo_prefix_cache_tokens_reused_total", "counter", "Prompt tokens restored from the prefix cache",
           c.tokens_reused);
    metric(&out, "hylo_prefix_cache_checkpoints_saved_total", "counter", "Checkpoints stored in the prefix cache",
           c.checkpoints_saved);
    metric(&out, "hylo_prefix_cache_evictions_total", "counter",
           "Checkpoints evicted from RAM (or inner checkpoints that gave up their recurrent state)", c.evictions);
    metric(&out, "hylo_prefix_cache_checkpoints", "gauge", "Checkpoints held in RAM", c.nodes);
    family(&out, "hylo_prefix_cache_bytes", "gauge", "Bytes held by the prefix cache, by tier");
    out += fmt::format("hylo_prefix_cache_bytes{{tier=\"ram\"}} {}\nhylo_prefix_cache_bytes{{tier=\"disk\"}} {}\n",
                       c.bytes, c.disk_bytes);
    metric(&out, "hylo_prefix_cache_disk_reads_total", "counter", "Checkpoints read back from --cache-dir",
           c.disk_reads);
    metric(&out, "hylo_prefix_cache_disk_writes_total", "counter", "Checkpoints written to --cache-dir", c.disk_writes);
    metric(&out, "hylo_prefix_cache_disk_rejected_total", "counter",
           "Checkpoint files ignored: damaged, truncated or written for another model", c.disk_rejected);
    metric(&out, "hylo_prefix_cache_budget_bytes", "gauge", "RAM budget of the prefix cache (--cache-ram)",
           c.max_bytes);
  }
  std::lock_guard<std::mutex> lock(mu_);
  family(&out, "hylo_http_requests_total", "counter", "HTTP requests answered, by route and status");
  for (const auto& [key, n] : requests_)
    out += fmt::format("hylo_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
  family(&out, "hylo_requests_rejected_total", "counter", "Generation requests refused, by reason");
  for (const auto& [reason, n] : rejected_)
    out += fmt::format("hylo_requests_rejected_total{{reason=\"{}\"}} {}\n", reason, n);
  metric(&out, "hylo_client_disconnects_total", "counter", "Requests cancelled because the client went away",
         client_gone_);
  metric(&out, "hylo_stream_pings_total", "counter", "Keep-alive comments sent on idle SSE streams", pings_);
  return out;
}

}  // namespace hylo::server
