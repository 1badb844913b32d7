#include "doctor/profiles.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

#include "base/check.h"
#include "doctor/quant_mix.h"

namespace hylo::doctor {
namespace {

using json = nlohmann::json;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "Qwen3-Coder-30B-A3B-Instruct-Q4_K_M.gguf" → "qwen3coder30ba3binstructq4kmgguf"
std::string alnum_lower(std::string_view s) {
  std::string out;
  for (char c : s)
    if (std::isalnum(static_cast<unsigned char>(c)))
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<std::string> get_str(const json& o, const char* key, std::string_view what, bool required = true) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) {
    if (!required) return std::string();
    return make_error("[doctor] {}: '{}' is missing", what, key);
  }
  if (!it->is_string()) return make_error("[doctor] {}: '{}' must be a string", what, key);
  return it->get<std::string>();
}

Result<double> get_num(const json& o, const char* key, std::string_view what, double lo, double hi) {
  auto it = o.find(key);
  if (it == o.end() || !it->is_number()) return make_error("[doctor] {}: '{}' must be a number", what, key);
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi)
    return make_error("[doctor] {}: '{}' = {} is outside [{}, {}]", what, key, v, lo, hi);
  return v;
}

Result<std::vector<std::string>> get_strings(const json& o, const char* key, std::string_view what) {
  std::vector<std::string> out;
  auto it = o.find(key);
  if (it == o.end()) return out;
  if (!it->is_array()) return make_error("[doctor] {}: '{}' must be an array of strings", what, key);
  for (const json& s : *it) {
    if (!s.is_string()) return make_error("[doctor] {}: '{}' must be an array of strings", what, key);
    out.push_back(s.get<std::string>());
  }
  return out;
}

bool is_kebab(std::string_view name) {
  if (name.empty() || name.front() == '-' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

template <typename P>
std::string names_of(const std::vector<P>& profiles) {
  std::string out;
  for (const P& p : profiles) out += (out.empty() ? "" : ", ") + p.name;
  return out;
}

}  // namespace

Result<Metadata> metadata_from_json(const json& object, std::string_view what) {
  if (!object.is_object()) return make_error("[doctor] {}: metadata must be a JSON object", what);
  Metadata md;
  for (const auto& [key, v] : object.items()) {
    if (v.is_string()) {
      md.set(key, v.get<std::string>());
    } else if (v.is_boolean()) {
      md.set(key, int64_t{v.get<bool>() ? 1 : 0});
    } else if (v.is_number_integer()) {
      md.set(key, v.get<int64_t>());
    } else if (v.is_number()) {
      md.set(key, v.get<double>());
    } else if (v.is_array()) {
      md.set_array_size(key, v.size());
      std::vector<int64_t> ints;
      bool all_int = true;
      for (const json& e : v) {
        if (e.is_boolean())
          ints.push_back(e.get<bool>() ? 1 : 0);
        else if (e.is_number_integer())
          ints.push_back(e.get<int64_t>());
        else
          all_int = false;
      }
      if (all_int) md.set(key, std::move(ints));
    }
    // null (Ollama omits big arrays unless asked) and nested objects carry nothing we use
  }
  return md;
}

Result<std::vector<ModelProfile>> parse_model_profiles(std::string_view json_text) {
  const json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object() || !root.contains("models") || !root["models"].is_array())
    return make_error("[doctor] model profiles: expected an object with a 'models' array");
  std::vector<ModelProfile> out;
  for (const json& m : root["models"]) {
    if (!m.is_object()) return make_error("[doctor] model profiles: every entry must be an object");
    ModelProfile p;
    HYLO_ASSIGN_OR_RETURN(p.name, get_str(m, "name", "model profile"));
    const std::string what = "model profile " + p.name;
    if (!is_kebab(p.name)) return make_error("[doctor] {}: name must be kebab case", what);
    HYLO_ASSIGN_OR_RETURN(p.display_name, get_str(m, "display_name", what));
    HYLO_ASSIGN_OR_RETURN(p.default_quant, get_str(m, "default_quant", what));
    HYLO_ASSIGN_OR_RETURN(p.aliases, get_strings(m, "aliases", what));
    HYLO_ASSIGN_OR_RETURN(p.quants, get_strings(m, "quants", what));
    for (const std::string& q : p.quants)
      if (!quant_scheme_from_name(q)) return make_error("[doctor] {}: unknown quantisation '{}'", what, q);
    if (!quant_scheme_from_name(p.default_quant))
      return make_error("[doctor] {}: unknown default quantisation '{}'", what, p.default_quant);
    if (m.contains("yarn")) {
      const json& y = m["yarn"];
      RopeScaling r;
      r.type = "yarn";
      HYLO_ASSIGN_OR_RETURN(r.factor, get_num(y, "factor", what + " yarn", 1, 1024));
      HYLO_ASSIGN_OR_RETURN(const double orig, get_num(y, "original_context_length", what + " yarn", 1, 1e10));
      r.original_ctx = static_cast<int64_t>(orig);
      p.yarn = r;
    }
    if (!m.contains("metadata")) return make_error("[doctor] {}: 'metadata' is missing", what);
    HYLO_ASSIGN_OR_RETURN(p.metadata, metadata_from_json(m["metadata"], what));
    HYLO_TRY(describe_model(p.metadata));  // a profile must describe a model completely
    out.push_back(std::move(p));
  }
  return out;
}

Result<HardwareProfile> parse_hardware_profile(const json& h, bool names_required) {
  if (!h.is_object()) return make_error("[doctor] hardware profiles: every entry must be an object");
  HardwareProfile p;
  HYLO_ASSIGN_OR_RETURN(p.name, get_str(h, "name", "hardware profile", names_required));
  if (p.name.empty()) p.name = "custom";
  const std::string what = "hardware profile " + p.name;
  if (!is_kebab(p.name)) return make_error("[doctor] {}: name must be kebab case", what);
  HYLO_ASSIGN_OR_RETURN(p.display_name, get_str(h, "display_name", what, names_required));
  if (p.display_name.empty()) p.display_name = p.name;
  HYLO_ASSIGN_OR_RETURN(p.kind, get_str(h, "kind", what));
  if (p.kind != "unified" && p.kind != "gpu" && p.kind != "cpu")
    return make_error("[doctor] {}: kind must be unified, gpu or cpu, not '{}'", what, p.kind);
  HYLO_ASSIGN_OR_RETURN(const double mem, get_num(h, "memory_gib", what, 0.5, 1 << 20));
  HYLO_ASSIGN_OR_RETURN(const double reserve, get_num(h, "os_reserve_gib", what, 0, mem));
  p.memory_bytes = static_cast<uint64_t>(std::llround(mem * 1073741824.0));
  p.os_reserve_bytes = static_cast<uint64_t>(std::llround(reserve * 1073741824.0));
  HYLO_ASSIGN_OR_RETURN(p.bandwidth_gbs, get_num(h, "bandwidth_gbs", what, 0.1, 1e6));
  HYLO_ASSIGN_OR_RETURN(p.compute_tflops, get_num(h, "compute_tflops", what, 0.001, 1e6));
  HYLO_ASSIGN_OR_RETURN(p.notes, get_str(h, "notes", what, /*required=*/false));
  HYLO_ASSIGN_OR_RETURN(p.family, get_str(h, "family", what, /*required=*/false));
  if (p.family.empty()) p.family = p.kind == "cpu" ? "cpu" : "";
  if (auto it = h.find("apple_gpu"); it != h.end()) {
    if (!it->is_boolean()) return make_error("[doctor] {}: 'apple_gpu' must be true or false", what);
    p.apple_gpu = it->get<bool>();
    if (p.apple_gpu && p.family.empty()) p.family = "apple";
  }
  if (h.contains("devices")) {
    HYLO_ASSIGN_OR_RETURN(const double n, get_num(h, "devices", what, 1, 1024));
    if (n != std::floor(n)) return make_error("[doctor] {}: 'devices' must be a whole number", what);
    p.devices = static_cast<int>(n);
  }
  HYLO_ASSIGN_OR_RETURN(p.split, get_str(h, "split", what, /*required=*/false));
  if (p.split.empty()) p.split = "layer";
  if (p.split != "layer" && p.split != "tensor")
    return make_error("[doctor] {}: split must be layer or tensor, not '{}'", what, p.split);
  if (h.contains("link_bandwidth_gbs")) {
    HYLO_ASSIGN_OR_RETURN(p.link_bandwidth_gbs, get_num(h, "link_bandwidth_gbs", what, 0.01, 1e6));
  }
  return p;
}

Result<std::vector<HardwareProfile>> parse_hardware_profiles(std::string_view json_text) {
  const json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object() || !root.contains("hardware") || !root["hardware"].is_array())
    return make_error("[doctor] hardware profiles: expected an object with a 'hardware' array");
  std::vector<HardwareProfile> out;
  for (const json& h : root["hardware"]) {
    HYLO_ASSIGN_OR_RETURN(HardwareProfile p, parse_hardware_profile(h, /*names_required=*/true));
    out.push_back(std::move(p));
  }
  return out;
}

const std::vector<ModelProfile>& model_profiles() {
  static const std::vector<ModelProfile> profiles = [] {
    auto parsed = parse_model_profiles(embedded_models_json());
    HYLO_CHECK(parsed.ok(), "embedded data/doctor/models.json: {}", parsed.ok() ? "" : parsed.message());
    return std::move(parsed).value();
  }();
  return profiles;
}

const std::vector<HardwareProfile>& hardware_profiles() {
  static const std::vector<HardwareProfile> profiles = [] {
    auto parsed = parse_hardware_profiles(embedded_hardware_json());
    HYLO_CHECK(parsed.ok(), "embedded data/doctor/hardware.json: {}", parsed.ok() ? "" : parsed.message());
    return std::move(parsed).value();
  }();
  return profiles;
}

Result<const ModelProfile*> find_model_profile(std::string_view name) {
  const std::string want = lower(name);
  for (const ModelProfile& p : model_profiles())
    if (p.name == want) return &p;
  return make_error("[doctor] unknown model profile '{}' (known: {})", name, names_of(model_profiles()));
}

Result<const HardwareProfile*> find_hardware_profile(std::string_view name) {
  const std::string want = lower(name);
  for (const HardwareProfile& p : hardware_profiles())
    if (p.name == want) return &p;
  return make_error("[doctor] unknown hardware profile '{}' (known: {})", name, names_of(hardware_profiles()));
}

const ModelProfile* match_model_profile(std::string_view model_id) {
  const std::string id = alnum_lower(model_id);
  const ModelProfile* best = nullptr;
  size_t best_len = 0;
  for (const ModelProfile& p : model_profiles()) {
    std::vector<std::string> keys = p.aliases;
    keys.push_back(p.name);
    for (const std::string& key : keys) {
      const std::string k = alnum_lower(key);
      if (!k.empty() && k.size() > best_len && id.find(k) != std::string::npos) {
        best = &p;
        best_len = k.size();
      }
    }
  }
  return best;
}

std::string match_quant_name(std::string_view model_id) {
  const std::string id = alnum_lower(model_id);
  std::string best;
  for (QuantScheme s : all_quant_schemes()) {
    const std::string name(quant_scheme_name(s));
    const std::string k = alnum_lower(name);
    // Longest match wins: "bf16" over the "f16" inside it.
    if (id.find(k) != std::string::npos && k.size() > alnum_lower(best).size()) best = name;
  }
  return best;
}

}  // namespace hylo::doctor
