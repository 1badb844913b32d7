// `hylo inspect FILE`: what a GGUF file holds — architecture, hyper-parameters, context length,
// tokenizer, tensors, totals by type and the memory needed to load it. Reads metadata and the
// tensor directory only; works for any architecture and any tensor type ggml knows.
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "apps/command.h"
#include "apps/common.h"
#include "base/strings.h"
#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "models/model.h"

namespace hylo::apps {
namespace {

struct Options {
  std::string path;
  bool json = false;
  bool all_metadata = false;
  int64_t ctx = 0;  // context for the memory estimate (default: trained context)
};

struct Summary {
  std::string arch, name;
  int64_t n_ctx_train = 0;
  uint64_t weight_bytes = 0;
  uint64_t kv_bytes_per_token = 0;  // f16 cache
  uint64_t recurrent_bytes = 0;     // per sequence
  int64_t n_attention_layers = 0, n_recurrent_layers = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_type;  // type -> (tensors, bytes)
  uint64_t n_params = 0;
  bool runnable = false;
  std::string runnable_note;
};

std::optional<int64_t> arch_int(const gguf::File& f, const std::string& arch, const char* key) {
  return f.get_int(arch + "." + key);
}

Summary summarize(const gguf::File& f) {
  Summary s;
  s.arch = f.get_string("general.architecture").value_or("(none)");
  s.name = f.get_string("general.name").value_or("");
  s.n_ctx_train = arch_int(f, s.arch, "context_length").value_or(0);
  for (const auto& t : f.tensors()) {
    auto& e = s.by_type[std::string(tensor_type_name(t.type))];
    e.first++;
    e.second += t.n_bytes;
    s.weight_bytes += t.n_bytes;
    s.n_params += static_cast<uint64_t>(t.n_elements());
  }
  // Memory per token and per sequence, from the model's own layout when hylo can run it.
  auto model = models::load_model(f.path(), {.repack = false});
  if (model.ok()) {
    const models::MemoryLayout layout = (*model)->memory_layout();
    s.kv_bytes_per_token = layout.kv_bytes_per_token(TensorType::kF16);
    s.recurrent_bytes = layout.recurrent_bytes_per_sequence();
    s.n_attention_layers = static_cast<int64_t>(layout.kv.size());
    s.n_recurrent_layers = static_cast<int64_t>(layout.recurrent.size());
    s.runnable = true;
  } else {
    s.runnable_note = model.message();
    // A generic estimate for attention-only architectures: every block has a KV cache.
    const int64_t layers = arch_int(f, s.arch, "block_count").value_or(0);
    const int64_t kv_heads = arch_int(f, s.arch, "attention.head_count_kv").value_or(0);
    const int64_t head_dim = arch_int(f, s.arch, "attention.key_length").value_or(0);
    s.kv_bytes_per_token = static_cast<uint64_t>(layers * 2 * kv_heads * head_dim * 2);
    s.n_attention_layers = layers;
  }
  return s;
}

std::string tokenizer_summary(const gguf::File& f, nlohmann::json* j) {
  const auto model = f.get_string("tokenizer.ggml.model");
  if (!model) return "none";
  const gguf::Array* tokens = f.get_array("tokenizer.ggml.tokens");
  const gguf::Array* merges = f.get_array("tokenizer.ggml.merges");
  const size_t n_tokens = tokens ? tokens->strings.size() : 0;
  auto token_str = [&](const char* key) -> std::string {
    auto id = f.get_int(key);
    if (!id) return "-";
    std::string s = std::to_string(*id);
    if (tokens && *id >= 0 && static_cast<size_t>(*id) < n_tokens) s += " " + tokens->strings[*id];
    return s;
  };
  const auto tmpl = f.get_string("tokenizer.chat_template");
  (*j)["model"] = *model;
  (*j)["pre"] = f.get_string("tokenizer.ggml.pre").value_or("");
  (*j)["n_tokens"] = n_tokens;
  (*j)["n_merges"] = merges ? merges->strings.size() : 0;
  (*j)["bos"] = token_str("tokenizer.ggml.bos_token_id");
  (*j)["eos"] = token_str("tokenizer.ggml.eos_token_id");
  (*j)["chat_template_bytes"] = tmpl ? tmpl->size() : 0;
  return fmt::format("{} (pre {}), {} tokens, {} merges, bos {}, eos {}, chat template {}", *model,
                     f.get_string("tokenizer.ggml.pre").value_or("-"), format_count(n_tokens),
                     format_count(merges ? merges->strings.size() : 0), token_str("tokenizer.ggml.bos_token_id"),
                     token_str("tokenizer.ggml.eos_token_id"),
                     tmpl ? fmt::format("{} bytes", tmpl->size()) : std::string("none"));
}

int run(const Options& o) {
  auto file = gguf::File::open(o.path);
  if (!file.ok()) return fail(file.error());
  const gguf::File& f = *file;
  const Summary s = summarize(f);
  const int64_t ctx = o.ctx > 0 ? o.ctx : (s.n_ctx_train > 0 ? s.n_ctx_train : 4096);
  const uint64_t kv_total = s.kv_bytes_per_token * static_cast<uint64_t>(ctx);
  const uint64_t load_total = s.weight_bytes + kv_total + s.recurrent_bytes;

  nlohmann::json j;
  j["file"] = f.path();
  j["gguf_version"] = f.version();
  j["file_bytes"] = f.file_size();
  j["alignment"] = f.alignment();
  j["architecture"] = s.arch;
  j["name"] = s.name;
  j["context_length"] = s.n_ctx_train;
  j["runnable"] = s.runnable;
  if (!s.runnable) j["runnable_note"] = s.runnable_note;
  nlohmann::json hp = nlohmann::json::object();
  for (const auto& [key, value] : f.metadata())
    if (starts_with(key, s.arch + ".")) hp[key.substr(s.arch.size() + 1)] = value.to_string(16);
  j["hyperparameters"] = hp;
  nlohmann::json tok;
  const std::string tok_line = tokenizer_summary(f, &tok);
  j["tokenizer"] = tok;
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : f.tensors()) {
    std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    tensors.push_back({{"name", t.name},
                       {"type", tensor_type_name(t.type)},
                       {"shape", ne},
                       {"bytes", t.n_bytes},
                       {"offset", f.data_offset() + t.offset}});
  }
  j["tensors"] = tensors;
  nlohmann::json by_type = nlohmann::json::object();
  for (const auto& [type, e] : s.by_type) by_type[type] = {{"tensors", e.first}, {"bytes", e.second}};
  j["totals_by_type"] = by_type;
  j["n_params"] = s.n_params;
  j["memory"] = {{"weights_bytes", s.weight_bytes},
                 {"kv_bytes_per_token_f16", s.kv_bytes_per_token},
                 {"context", ctx},
                 {"kv_cache_bytes_f16", kv_total},
                 {"recurrent_state_bytes_per_sequence", s.recurrent_bytes},
                 {"total_bytes", load_total}};
  if (o.all_metadata) {
    nlohmann::json md = nlohmann::json::object();
    for (const auto& [key, value] : f.metadata()) md[key] = value.to_string(16);
    j["metadata"] = md;
  }
  if (o.json) {
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return kExitOk;
  }

  std::printf("file          %s (GGUF v%u, %s, alignment %u)\n", f.path().c_str(), f.version(),
              format_bytes(f.file_size()).c_str(), f.alignment());
  std::printf("architecture  %s%s%s\n", s.arch.c_str(), s.name.empty() ? "" : "  ", s.name.c_str());
  std::printf("context       %s tokens (trained)\n", format_count(static_cast<uint64_t>(s.n_ctx_train)).c_str());
  std::printf("runs in hylo  %s\n", s.runnable ? "yes" : ("no: " + s.runnable_note).c_str());
  std::printf("\nhyper-parameters\n");
  for (const auto& [key, value] : f.metadata()) {
    if (!starts_with(key, s.arch + ".")) continue;
    std::printf("  %-44s %s\n", key.substr(s.arch.size() + 1).c_str(), value.to_string(8).c_str());
  }
  if (o.all_metadata) {
    std::printf("\nmetadata\n");
    for (const auto& [key, value] : f.metadata()) std::printf("  %-44s %s\n", key.c_str(), value.to_string(8).c_str());
  }
  std::printf("\ntokenizer     %s\n", tok_line.c_str());
  std::printf("\n%-44s %-8s %-26s %12s\n", "tensor", "type", "shape", "bytes");
  for (const auto& t : f.tensors())
    std::printf("%-44s %-8s %-26s %12s\n", t.name.c_str(), std::string(tensor_type_name(t.type)).c_str(),
                t.shape_string().c_str(), format_bytes(t.n_bytes).c_str());
  std::printf("\ntotals by type\n");
  for (const auto& [type, e] : s.by_type)
    std::printf("  %-8s %5llu tensors %12s%s\n", type.c_str(), static_cast<unsigned long long>(e.first),
                format_bytes(e.second).c_str(),
                kernels::has_matmul(*tensor_type_from_name(type)) || type == "f32" ? "" : "  (no matmul kernel)");
  std::printf("  %-8s %5zu tensors %12s  (%s parameters)\n", "all", f.tensors().size(),
              format_bytes(s.weight_bytes).c_str(), format_count(s.n_params).c_str());
  std::printf("\nmemory to load (weights memory-mapped, f16 KV cache)\n");
  std::printf("  weights                 %12s\n", format_bytes(s.weight_bytes).c_str());
  std::printf("  KV cache                %12s  (%s per token x %s tokens, %lld attention layers)\n",
              format_bytes(kv_total).c_str(), format_bytes(s.kv_bytes_per_token).c_str(),
              format_count(static_cast<uint64_t>(ctx)).c_str(), static_cast<long long>(s.n_attention_layers));
  if (s.n_recurrent_layers > 0)
    std::printf("  recurrent state         %12s  (per sequence, %lld DeltaNet layers)\n",
                format_bytes(s.recurrent_bytes).c_str(), static_cast<long long>(s.n_recurrent_layers));
  std::printf("  total                   %12s  (plus compute buffers; see hylo doctor)\n",
              format_bytes(load_total).c_str());
  return kExitOk;
}

CommandRegistrar reg("inspect", "Describe a GGUF file: architecture, hyper-parameters, tensors, memory", 10,
                     [](CLI::App& app) {
                       auto o = std::make_shared<Options>();
                       app.add_option("file", o->path, "GGUF file")->required();
                       app.add_flag("--json", o->json, "Machine-readable output");
                       app.add_flag("--metadata", o->all_metadata, "Also list every metadata key");
                       app.add_option("-c,--ctx", o->ctx, "Context for the memory estimate (default: trained)")
                           ->check(CLI::Range(int64_t{1}, int64_t{1} << 32));
                       return [o] { return run(*o); };
                     });

}  // namespace
}  // namespace hylo::apps
