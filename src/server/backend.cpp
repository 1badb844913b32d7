#include "server/backend.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <map>

#include "server/token_filters.h"

namespace hylo::server {

nlohmann::ordered_json runtime_settings(const Backend& b) {
  const runtime::EngineOptions& eo = b.engine->options();
  const models::RopeParams& r = b.model->rope();
  return {{"cache_type_k", std::string(tensor_type_name(eo.kv_type))},
          {"cache_type_v", std::string(tensor_type_name(eo.kv_type_v.value_or(eo.kv_type)))},
          {"rope_scaling",
           {{"type", std::string(models::rope_scaling_name(r.scaling))},
            {"factor", r.factor()},
            {"original_context_length", r.n_ctx_orig},
            {"freq_base", r.freq_base},
            {"ext_factor", r.ext_factor},
            {"attn_factor", r.attn_factor},
            {"beta_fast", r.beta_fast},
            {"beta_slow", r.beta_slow},
            {"mscale", r.mscale()}}}};
}

std::shared_ptr<const TokenTrie> Backend::token_trie() const {
  std::call_once(trie_once_, [this] { trie_ = TokenTrie::from_tokenizer(*tokenizer); });
  return trie_;
}

ModelDescription describe_model(const models::Model& model, const std::string& alias) {
  ModelDescription d;
  const models::ModelInfo& info = model.info();
  d.path = info.path.empty() ? model.file().path() : info.path;
  d.id = alias;
  if (d.id.empty()) {
    const size_t slash = d.path.find_last_of('/');
    d.id = slash == std::string::npos ? d.path : d.path.substr(slash + 1);
  }
  d.arch = info.arch;
  d.size_bytes = model.file().file_size();
  d.n_ctx_train = info.n_ctx_train;
  d.n_embd = info.n_embd;
  d.n_layer = info.n_layer;
  d.n_vocab = info.n_vocab;
  std::map<std::string, uint64_t> bytes_by_type;
  for (const auto& t : model.file().tensors()) {
    d.n_params += static_cast<uint64_t>(t.n_elements());
    bytes_by_type[std::string(tensor_type_name(t.type))] += t.n_bytes;
  }
  auto most = std::max_element(bytes_by_type.begin(), bytes_by_type.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  if (most != bytes_by_type.end()) {
    d.quantization = most->first;
    std::transform(d.quantization.begin(), d.quantization.end(), d.quantization.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  }
  struct stat st {};
  if (stat(d.path.c_str(), &st) == 0) d.modified_unix = static_cast<int64_t>(st.st_mtime);
  // FNV-1a over what identifies the file here (path, size, mtime); clients only display it.
  uint64_t h = 1469598103934665603ull;
  const std::string key = fmt::format("{}|{}|{}", d.path, d.size_bytes, d.modified_unix);
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  d.digest = fmt::format("{:016x}", h);
  return d;
}

}  // namespace hylo::server
