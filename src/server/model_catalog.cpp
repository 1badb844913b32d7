#include "server/model_catalog.h"


#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "base/strings.h"
#include "base/yaml_reader.h"
#include "server/ollama_api.h"

namespace hylo::server {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxDirFiles = 10000;
constexpr size_t kMaxDefinitions = 1000;



constexpr const char* kKnownKeys =
    "file, context, cache_type_k, cache_type_v, kv_type, parallel, temperature, top_p, top_k, min_p, "
    "repeat_penalty, repeat_last_n, presence_penalty, frequency_penalty, chat_template, thinking, spec, draft, "
    "keep_alive";

bool is_kv_type(const std::string& t) {
  static const std::set<std::string> kTypes = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"};
  return kTypes.count(t) > 0;
}

// One key of a definition (or of `defaults`) into `d`.
Status read_key(const YamlReader& r, const std::string& k, const std::string& key, const YAML::Node& v,
                const std::string& base_dir, ModelDefinition* d) {
  auto path = [&](const std::string& p) { return p.empty() || p[0] == '/' ? p : (fs::path(base_dir) / p).string(); };
  auto flt = [&](std::optional<float>* out, double lo, double hi) -> Status {
    HYLO_ASSIGN_OR_RETURN(double x, r.number(v, key, lo, hi));
    *out = static_cast<float>(x);
    return ok_status();
  };
  if (k == "file") {
    HYLO_ASSIGN_OR_RETURN(std::string f, r.scalar<std::string>(v, key, "a GGUF file path"));
    if (f.empty()) return r.error(v, key, "a GGUF file path expected");
    d->file = path(f);
  } else if (k == "context" || k == "ctx" || k == "num_ctx") {
    HYLO_ASSIGN_OR_RETURN(d->ctx, r.count(v, key, 256, int64_t{1} << 30));
  } else if (k == "cache_type_k" || k == "cache_type_v" || k == "kv_type") {
    HYLO_ASSIGN_OR_RETURN(std::string t, r.scalar<std::string>(v, key, "a KV cache type"));
    for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!is_kv_type(t))
      return r.error(v, key, fmt::format("'{}' is not a KV cache type (f16, bf16, f32, q8_0, q4_0, q4_1, q5_0, "
                                         "q5_1, iq4_nl)",
                                         t.substr(0, 40)));
    if (k != "cache_type_v") d->cache_type_k = t;
    if (k != "cache_type_k") d->cache_type_v = t;
  } else if (k == "parallel") {
    HYLO_ASSIGN_OR_RETURN(int64_t n, r.count(v, key, 1, 256));
    d->parallel = static_cast<int>(n);
  } else if (k == "temperature") {
    HYLO_TRY(flt(&d->temperature, 0, 100));
  } else if (k == "top_p") {
    HYLO_TRY(flt(&d->top_p, 0, 1));
  } else if (k == "min_p") {
    HYLO_TRY(flt(&d->min_p, 0, 1));
  } else if (k == "repeat_penalty") {
    HYLO_TRY(flt(&d->repeat_penalty, 0, 100));
  } else if (k == "presence_penalty") {
    HYLO_TRY(flt(&d->presence_penalty, -2, 2));
  } else if (k == "frequency_penalty") {
    HYLO_TRY(flt(&d->frequency_penalty, -2, 2));
  } else if (k == "top_k") {
    HYLO_ASSIGN_OR_RETURN(int64_t n, r.count(v, key, 0, 1 << 20));
    d->top_k = static_cast<int32_t>(n);
  } else if (k == "repeat_last_n") {
    HYLO_ASSIGN_OR_RETURN(int64_t n, r.count(v, key, -1, 1 << 20));
    d->repeat_last_n = static_cast<int32_t>(n);
  } else if (k == "chat_template") {
    HYLO_ASSIGN_OR_RETURN(std::string f, r.scalar<std::string>(v, key, "a Jinja template file path"));
    d->chat_template_file = path(f);
  } else if (k == "thinking") {
    HYLO_ASSIGN_OR_RETURN(bool b, r.scalar<bool>(v, key, "true or false"));
    d->thinking = b;
  } else if (k == "spec") {
    HYLO_ASSIGN_OR_RETURN(std::string s, r.scalar<std::string>(v, key, "none or mtp"));
    if (s != "none" && s != "mtp") return r.error(v, key, fmt::format("'{}' is not none or mtp", s.substr(0, 40)));
    d->spec = s;
  } else if (k == "draft") {
    HYLO_ASSIGN_OR_RETURN(int64_t n, r.count(v, key, 1, 8));
    d->draft = static_cast<int>(n);
  } else if (k == "keep_alive") {
    HYLO_ASSIGN_OR_RETURN(std::string s, r.scalar<std::string>(v, key, "a duration"));
    auto secs = parse_keep_alive(s);
    if (!secs.ok()) return r.error(v, key, secs.message());
    d->keep_alive = *secs;
  } else {
    return r.error(v, key, fmt::format("unknown key (known: {})", kKnownKeys));
  }
  return ok_status();
}

std::string stem(const fs::path& p) {
  std::string s = p.filename().string();
  if (ends_with(s, ".gguf")) s.resize(s.size() - 5);
  return s;
}

}  // namespace

bool valid_model_name(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' && c != ':' && c != '/')
      return false;
  return true;
}

Result<double> parse_keep_alive(const std::string& text) {
  const std::string t(trim(text));
  char* end = nullptr;
  const double plain = std::strtod(t.c_str(), &end);
  if (!t.empty() && *end == '\0') {
    if (!std::isfinite(plain)) return make_error("keep_alive '{}' is not a number of seconds", t.substr(0, 40));
    return plain;
  }
  nlohmann::ordered_json j = {{"keep_alive", t}};
  HYLO_ASSIGN_OR_RETURN(std::optional<double> v, ollama_keep_alive(j));
  return v.value_or(0.0);
}

Result<std::vector<ModelDefinition>> parse_model_definitions(const std::string& text, const std::string& source_name,
                                                             const std::string& base_dir) {
  YamlReader r("models", source_name);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    return make_error("[models] {}: line {}: {}", source_name, e.mark.line + 1, e.msg);
  }
  std::vector<ModelDefinition> out;
  if (root.IsNull()) return out;
  if (!root.IsMap()) return make_error("[models] {}: the file must be a mapping (defaults, models)", source_name);
  ModelDefinition defaults;
  YAML::Node models;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string k = it->first.Scalar();
    if (k == "defaults") {
      if (!it->second.IsMap()) return r.error(it->second, k, "a mapping expected");
      for (auto d = it->second.begin(); d != it->second.end(); ++d) {
        const std::string dk = d->first.Scalar();
        if (dk == "file") return r.error(d->first, "defaults.file", "each model names its own file");
        HYLO_TRY(read_key(r, dk, "defaults." + dk, d->second, base_dir, &defaults));
      }
    } else if (k == "models") {
      if (!it->second.IsMap()) return r.error(it->second, k, "a mapping of model names expected");
      models = it->second;
    } else {
      return r.error(it->first, k, "unknown key (known: defaults, models)");
    }
  }
  if (!models) return out;
  std::set<std::string> names;
  for (auto it = models.begin(); it != models.end(); ++it) {
    const std::string name = it->first.Scalar();
    const std::string base = "models." + name;
    if (!valid_model_name(name))
      return r.error(it->first, base, "a name of letters, digits, '-', '_', '.', ':' or '/' (at most 128) expected");
    if (!names.insert(name).second) return r.error(it->first, base, "the name is defined twice");
    if (out.size() >= kMaxDefinitions) return r.error(it->first, base, "more than 1000 models");
    ModelDefinition d = defaults;
    d.name = name;
    d.source = fmt::format("{} line {}", source_name, it->first.Mark().line + 1);
    if (it->second.IsScalar()) {  // `name: file.gguf`
      HYLO_TRY(read_key(r, "file", base, it->second, base_dir, &d));
    } else if (it->second.IsMap()) {
      for (auto kv = it->second.begin(); kv != it->second.end(); ++kv) {
        const std::string k = kv->first.Scalar();
        HYLO_TRY(read_key(r, k, base + "." + k, kv->second, base_dir, &d));
      }
    } else {
      return r.error(it->second, base, "a file path or a mapping expected");
    }
    if (d.file.empty()) return r.error(it->first, base, "file is required");
    if (d.draft > 0 && d.spec.empty()) d.spec = "mtp";
    out.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<ModelDefinition>> load_model_definitions(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error("[models] cannot read the definitions file {}", path);
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > (1u << 20)) return make_error("[models] {}: larger than 1 MiB", path);
  const fs::path parent = fs::path(path).parent_path();
  return parse_model_definitions(ss.str(), path, parent.empty() ? "." : parent.string());
}

Result<std::vector<ModelDefinition>> scan_models_dir(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return make_error("[models] --models-dir {}: not a directory", dir);
  std::map<std::string, std::string> by_name;
  auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink |
                                                      fs::directory_options::skip_permission_denied,
                                             ec);
  if (ec) return make_error("[models] --models-dir {}: {}", dir, ec.message());
  size_t seen = 0;
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return make_error("[models] --models-dir {}: {}", dir, ec.message());
    if (++seen > 100 * kMaxDirFiles)
      return make_error("[models] --models-dir {}: more than {} entries", dir, 100 * kMaxDirFiles);
    if (it.depth() > 16) {
      it.disable_recursion_pending();
      continue;
    }
    const fs::path& p = it->path();
    if (!ends_with(p.filename().string(), ".gguf") || !fs::is_regular_file(p, ec)) continue;
    const std::string name = stem(p);
    if (!valid_model_name(name)) continue;  // a name no client could send
    if (by_name.size() >= kMaxDirFiles)
      return make_error("[models] --models-dir {}: more than {} GGUF files", dir, kMaxDirFiles);
    auto [at, fresh] = by_name.emplace(name, p.string());
    if (!fresh)
      return make_error("[models] --models-dir {}: two files are named {}: {} and {} (rename one, or name them in "
                        "a definitions file)",
                        dir, name, at->second, p.string());
  }
  std::vector<ModelDefinition> out;
  for (const auto& [name, file] : by_name) {
    ModelDefinition d;
    d.name = name;
    d.file = file;
    d.source = "--models-dir " + dir;
    out.push_back(std::move(d));
  }
  return out;
}

Result<std::vector<ModelDefinition>> merge_catalog(std::vector<ModelDefinition> definitions,
                                                   std::vector<ModelDefinition> from_dir) {
  std::set<std::string> names;
  for (const ModelDefinition& d : definitions)
    if (!names.insert(d.name).second) return make_error("[models] model '{}' is defined twice", d.name);
  for (ModelDefinition& d : from_dir)
    if (names.insert(d.name).second) definitions.push_back(std::move(d));
  return definitions;
}

std::string definition_yaml(const ModelDefinition& d, const std::vector<std::string>& comments) {
  YAML::Emitter e;
  e << YAML::BeginMap << YAML::Key << "models" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << d.name << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "file" << YAML::Value << d.file;
  if (d.ctx > 0) e << YAML::Key << "context" << YAML::Value << d.ctx;
  if (!d.cache_type_k.empty()) e << YAML::Key << "cache_type_k" << YAML::Value << d.cache_type_k;
  if (!d.cache_type_v.empty()) e << YAML::Key << "cache_type_v" << YAML::Value << d.cache_type_v;
  if (d.parallel > 0) e << YAML::Key << "parallel" << YAML::Value << d.parallel;
  auto f = [&](const char* k, const std::optional<float>& v) {
    if (v) e << YAML::Key << k << YAML::Value << fmt::format("{}", *v);
  };
  f("temperature", d.temperature);
  f("top_p", d.top_p);
  if (d.top_k) e << YAML::Key << "top_k" << YAML::Value << *d.top_k;
  f("min_p", d.min_p);
  f("repeat_penalty", d.repeat_penalty);
  if (d.repeat_last_n) e << YAML::Key << "repeat_last_n" << YAML::Value << *d.repeat_last_n;
  f("presence_penalty", d.presence_penalty);
  f("frequency_penalty", d.frequency_penalty);
  if (!d.chat_template_file.empty()) e << YAML::Key << "chat_template" << YAML::Value << d.chat_template_file;
  if (d.thinking) e << YAML::Key << "thinking" << YAML::Value << *d.thinking;
  if (!d.spec.empty()) e << YAML::Key << "spec" << YAML::Value << d.spec;
  if (d.draft > 0) e << YAML::Key << "draft" << YAML::Value << d.draft;
  if (d.keep_alive) e << YAML::Key << "keep_alive" << YAML::Value << fmt::format("{}", *d.keep_alive);
  e << YAML::EndMap << YAML::EndMap << YAML::EndMap;
  std::string out;
  for (const std::string& c : comments) out += "# " + c + "\n";
  return out + e.c_str() + "\n";
}

}  // namespace hylo::server
