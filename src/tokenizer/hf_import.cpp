// Hugging Face tokenizer.json / tokenizer_config.json -> GGUF vocabulary (for `hylo make-model`).
#include "tokenizer/hf_import.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gguf/writer.h"

namespace hylo::tokenizer {
namespace {

using nlohmann::json;

Result<json> read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("[tokenizer] cannot open {}", path);
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    return make_error("[tokenizer] {}: invalid JSON: {}", path, e.what());
  }
}

// llama.cpp's converter treats "<|...|>" tokens as control even when HF marks them non-special.
bool looks_special(const std::string& t) {
  return (t.size() >= 4 && t.starts_with("<|") && t.ends_with("|>")) || t == "<pad>" || t == "<mask>";
}

// The qwen2 / qwen35 split patterns as they appear in tokenizer.json.
constexpr const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen35Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Finds the Split regex of the pre-tokenizer (possibly inside a Sequence).
void find_split_regex(const json& node, std::string* out) {
  if (!node.is_object()) return;
  if (node.value("type", "") == "Split" && node.contains("pattern") && node["pattern"].is_object() &&
      node["pattern"].contains("Regex") && node["pattern"]["Regex"].is_string()) {
    *out = node["pattern"]["Regex"].get<std::string>();
    return;
  }
  if (node.contains("pretokenizers") && node["pretokenizers"].is_array())
    for (const json& p : node["pretokenizers"]) find_split_regex(p, out);
}

}  // namespace

Result<HfTokenizerData> import_hf_tokenizer(const std::string& dir, int32_t n_vocab) {
  const std::string tj_path = dir + "/tokenizer.json";
  HYLO_ASSIGN_OR_RETURN(json tj, read_json(tj_path));
  json cfg = json::object();
  const std::string cfg_path = dir + "/tokenizer_config.json";
  if (std::filesystem::exists(cfg_path)) {
    HYLO_ASSIGN_OR_RETURN(cfg, read_json(cfg_path));
  }

  try {
    const json& model = tj.at("model");
    if (model.value("type", "") != "BPE")
      return make_error("[tokenizer] {}: model type '{}' is not BPE", tj_path, model.value("type", ""));
    const json& vocab = model.at("vocab");
    if (!vocab.is_object()) return make_error("[tokenizer] {}: model.vocab is not an object", tj_path);

    std::map<int64_t, std::string> by_id;
    std::map<int64_t, bool> added_special;  // id -> "special" flag
    for (auto it = vocab.begin(); it != vocab.end(); ++it) by_id[it.value().get<int64_t>()] = it.key();
    if (tj.contains("added_tokens"))
      for (const json& a : tj["added_tokens"]) {
        const int64_t id = a.at("id").get<int64_t>();
        by_id[id] = a.at("content").get<std::string>();
        added_special[id] = a.value("special", false);
      }
    if (by_id.empty()) return make_error("[tokenizer] {}: empty vocabulary", tj_path);
    if (by_id.begin()->first < 0) return make_error("[tokenizer] {}: negative token id", tj_path);
    const int64_t max_id = by_id.rbegin()->first;
    if (n_vocab <= 0) n_vocab = static_cast<int32_t>(max_id + 1);
    if (max_id >= n_vocab)
      return make_error("[tokenizer] {}: token id {} does not fit a vocabulary of {}", tj_path, max_id, n_vocab);

    HfTokenizerData d;
    d.tokens.reserve(n_vocab);
    d.token_types.reserve(n_vocab);
    for (int32_t i = 0; i < n_vocab; ++i) {
      auto it = by_id.find(i);
      if (it == by_id.end()) {
        d.tokens.push_back("[PAD" + std::to_string(i) + "]");
        d.token_types.push_back(static_cast<int32_t>(TokenType::kUnused));
      } else if (auto a = added_special.find(i); a != added_special.end()) {
        d.tokens.push_back(it->second);
        const bool control = a->second || looks_special(it->second);
        d.token_types.push_back(static_cast<int32_t>(control ? TokenType::kControl : TokenType::kUserDefined));
      } else {
        d.tokens.push_back(it->second);
        d.token_types.push_back(static_cast<int32_t>(TokenType::kNormal));
      }
    }
    for (const json& m : model.at("merges")) {
      if (m.is_string()) {
        d.merges.push_back(m.get<std::string>());
      } else if (m.is_array() && m.size() == 2) {
        d.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      } else {
        return make_error("[tokenizer] {}: malformed merge {}", tj_path, m.dump());
      }
    }

    std::string regex;
    if (tj.contains("pre_tokenizer")) find_split_regex(tj["pre_tokenizer"], &regex);
    if (regex == kQwen2Regex) {
      d.pre = "qwen2";
    } else if (regex == kQwen35Regex) {
      d.pre = "qwen35";
    } else {
      return make_error(
          "[tokenizer] {}: unsupported pre-tokenizer split pattern '{}' (expected the Qwen2 or Qwen3.5 one)", tj_path,
          regex);
    }

    // Special ids: the config's token (a string or {"content": ...}) or the Qwen default.
    std::map<std::string, int32_t, std::less<>> id_of;
    for (int32_t i = 0; i < n_vocab; ++i)
      if (by_id.count(i)) id_of.emplace(d.tokens[i], i);
    auto special_id = [&](const char* key, const char* fallback) -> int32_t {
      std::string name;
      if (cfg.contains(key)) {
        const json& v = cfg[key];
        if (v.is_string()) name = v.get<std::string>();
        if (v.is_object() && v.contains("content") && v["content"].is_string()) name = v["content"].get<std::string>();
      }
      if (auto it = id_of.find(name); !name.empty() && it != id_of.end()) return it->second;
      auto it = id_of.find(std::string_view(fallback));
      return it == id_of.end() ? -1 : it->second;
    };
    d.eos_id = special_id("eos_token", "<|im_end|>");
    d.pad_id = special_id("pad_token", "<|endoftext|>");
    d.bos_id = special_id("bos_token", "<|endoftext|>");
    d.add_bos = cfg.value("add_bos_token", false);

    if (cfg.contains("chat_template")) {
      const json& t = cfg["chat_template"];
      if (t.is_string()) {
        d.chat_template = t.get<std::string>();
      } else if (t.is_array()) {
        for (const json& e : t)
          if (e.value("name", "") == "default") d.chat_template = e.value("template", "");
      }
    } else if (std::filesystem::exists(dir + "/chat_template.jinja")) {
      std::ifstream in(dir + "/chat_template.jinja", std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      d.chat_template = ss.str();
    }
    return d;
  } catch (const json::exception& e) {
    return make_error("[tokenizer] {}: unexpected structure: {}", tj_path, e.what());
  }
}

void add_tokenizer_metadata(gguf::Writer& w, const HfTokenizerData& d) {
  w.set_string("tokenizer.ggml.model", d.model);
  w.set_string("tokenizer.ggml.pre", d.pre);
  w.set_strings("tokenizer.ggml.tokens", d.tokens);
  w.set_i32s("tokenizer.ggml.token_type", d.token_types);
  w.set_strings("tokenizer.ggml.merges", d.merges);
  if (d.eos_id >= 0) w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(d.eos_id));
  if (d.pad_id >= 0) w.set_u32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(d.pad_id));
  if (d.bos_id >= 0) w.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(d.bos_id));
  w.set_bool("tokenizer.ggml.add_bos_token", d.add_bos);
  if (!d.chat_template.empty()) w.set_string("tokenizer.chat_template", d.chat_template);
}

}  // namespace hylo::tokenizer
