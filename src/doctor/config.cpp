#include "doctor/config.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "base/strings.h"

namespace hylo::doctor {
namespace {

constexpr size_t kMaxModelfileBytes = 1 << 20;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string_view unquote(std::string_view s) {
  s = trim(s);
  if (s.size() >= 6 && starts_with(s, "\"\"\"") && ends_with(s, "\"\"\"")) return s.substr(3, s.size() - 6);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

size_t count_triple_quotes(std::string_view s) {
  size_t n = 0;
  for (size_t pos = s.find("\"\"\""); pos != std::string_view::npos; pos = s.find("\"\"\"", pos + 3)) ++n;
  return n;
}

// Parameters Ollama accepts in a Modelfile (api.Options and api.Runner); anything else is
// rejected by `ollama create`, so it is an error here too.
constexpr std::array kOllamaParameters = {
    "num_ctx",
    "num_batch",
    "num_predict",
    "num_keep",
    "num_gpu",
    "main_gpu",
    "num_thread",
    "seed",
    "top_k",
    "top_p",
    "min_p",
    "typical_p",
    "tfs_z",
    "temperature",
    "repeat_last_n",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
    "penalize_newline",
    "stop",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
    "numa",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mmap",
    "use_mlock",
};

}  // namespace

Result<int64_t> parse_count(std::string_view text, std::string_view what, int64_t lo, int64_t hi) {
  const std::string_view t = trim(text);
  std::string digits;
  int64_t scale = 1;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (c >= '0' && c <= '9') {
      digits += c;
    } else if ((c == ',' || c == '_') && !digits.empty()) {
      continue;
    } else if (i + 1 == t.size() && !digits.empty() && (c == 'k' || c == 'K')) {
      scale = 1024;
    } else if (i + 1 == t.size() && !digits.empty() && (c == 'm' || c == 'M')) {
      scale = 1024 * 1024;
    } else {
      return make_error("[doctor] {}: '{}' is not a whole number", what, text);
    }
  }
  if (digits.empty() || digits.size() > 15) return make_error("[doctor] {}: '{}' is not a usable number", what, text);
  const int64_t v = std::strtoll(digits.c_str(), nullptr, 10) * scale;
  if (v < lo || v > hi) return make_error("[doctor] {}: {} is outside [{}, {}]", what, v, lo, hi);
  return v;
}

Result<double> parse_positive(std::string_view text, std::string_view what, double hi) {
  const std::string s(trim(text));
  char* end = nullptr;
  const double v = s.empty() ? NAN : std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v))
    return make_error("[doctor] {}: '{}' is not a number", what, text);
  if (v <= 0 || v > hi) return make_error("[doctor] {}: {} must be above 0 and at most {}", what, v, hi);
  return v;
}

Result<TensorType> parse_kv_type(std::string_view text) {
  const std::string t = lower(trim(text));
  for (TensorType type : {TensorType::kF16, TensorType::kBF16, TensorType::kF32, TensorType::kQ8_0, TensorType::kQ4_0,
                          TensorType::kQ4_1, TensorType::kQ5_0, TensorType::kQ5_1, TensorType::kIQ4_NL}) {
    if (t == lower(tensor_type_name(type))) return type;
  }
  return make_error("[doctor] KV-cache type '{}' is not one of f16, bf16, f32, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl",
                    text);
}

const ModelfileParameter* Modelfile::find(std::string_view param) const {
  const ModelfileParameter* found = nullptr;
  for (const auto& p : parameters)
    if (p.name == param) found = &p;
  return found;
}

Result<Modelfile> parse_modelfile(std::string_view text, const std::string& name) {
  if (text.size() > kMaxModelfileBytes || text.find('\0') != std::string_view::npos)
    return make_error("[doctor] {}: not a Modelfile (binary or larger than 1 MiB)", name);
  Modelfile mf;
  mf.name = name;
  mf.text = std::string(text);
  const std::vector<std::string> lines = split(text, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    const int line_no = static_cast<int>(i) + 1;
    const std::string_view line = trim(lines[i]);
    if (line.empty() || line.front() == '#') continue;
    const size_t sp = line.find_first_of(" \t");
    const std::string instruction = upper(line.substr(0, sp));
    std::string rest(sp == std::string_view::npos ? std::string_view() : trim(line.substr(sp)));
    // A """ block may span lines; it ends at the next line holding """.
    if (count_triple_quotes(rest) % 2 == 1) {
      size_t j = i + 1;
      for (; j < lines.size(); ++j) {
        rest += "\n" + lines[j];
        if (count_triple_quotes(lines[j]) % 2 == 1) break;
      }
      if (j == lines.size()) return make_error("[doctor] {} line {}: \"\"\" is never closed", name, line_no);
      i = j;
    }
    if (instruction == "FROM") {
      mf.from = std::string(unquote(rest));
      mf.from_line = line_no;
      if (mf.from.empty()) return make_error("[doctor] {} line {}: FROM needs a model name or file", name, line_no);
    } else if (instruction == "PARAMETER") {
      const std::string_view r = trim(rest);
      const size_t psp = r.find_first_of(" \t");
      if (psp == std::string_view::npos)
        return make_error("[doctor] {} line {}: PARAMETER needs a name and a value: '{}'", name, line_no, line);
      ModelfileParameter p{lower(r.substr(0, psp)), std::string(unquote(r.substr(psp))), line_no};
      if (std::find(kOllamaParameters.begin(), kOllamaParameters.end(), p.name) == kOllamaParameters.end())
        return make_error("[doctor] {} line {}: unknown parameter '{}'", name, line_no, p.name);
      mf.parameters.push_back(std::move(p));
    } else if (instruction == "TEMPLATE" || instruction == "SYSTEM" || instruction == "ADAPTER" ||
               instruction == "LICENSE" || instruction == "MESSAGE" || instruction == "REQUIRES") {
      continue;  // nothing doctor needs
    } else {
      return make_error("[doctor] {} line {}: unknown instruction '{}'", name, line_no, line.substr(0, sp));
    }
  }
  return mf;
}

Result<Modelfile> read_modelfile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("[doctor] cannot read Modelfile {}", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_modelfile(ss.str(), path);
}

Status apply_modelfile(const Modelfile& mf, Config* config) {
  auto where = [&](const ModelfileParameter& p) { return fmt::format("{} line {}: {}", mf.name, p.line, p.name); };
  if (const ModelfileParameter* p = mf.find("num_ctx")) {
    HYLO_ASSIGN_OR_RETURN(config->ctx, parse_count(p->value, where(*p), 1, kMaxCtx));
    config->ctx_origin = Origin::kModelfile;
    config->ctx_source = fmt::format("Modelfile line {}", p->line);
    config->sources.push_back(fmt::format("{} line {}: PARAMETER num_ctx {}", mf.name, p->line, p->value));
  }
  if (const ModelfileParameter* p = mf.find("num_batch")) {
    // Ollama runs the whole batch as one micro-batch (n_ubatch = n_batch).
    HYLO_ASSIGN_OR_RETURN(config->batch, parse_count(p->value, where(*p), 1, kMaxBatch));
    config->ubatch = config->batch;
    config->sources.push_back(fmt::format("{} line {}: PARAMETER num_batch {}", mf.name, p->line, p->value));
  }
  if (const ModelfileParameter* p = mf.find("num_predict")) {
    // -1 (unlimited) and -2 (fill the context) say nothing about the answer length.
    const std::string_view v = trim(p->value);
    if (v != "-1" && v != "-2") {
      HYLO_ASSIGN_OR_RETURN(const int64_t n, parse_count(v, where(*p), 1, kMaxCtx));
      config->num_predict = n;
      config->sources.push_back(fmt::format("{} line {}: PARAMETER num_predict {}", mf.name, p->line, p->value));
    }
  }
  return ok_status();
}

std::string patch_modelfile(std::string_view text, std::string_view name, std::string_view value) {
  std::vector<std::string> lines = split(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  const std::string want = lower(name);
  int last = -1, from = -1;
  bool in_block = false;  // inside a """ value (TEMPLATE, SYSTEM): its lines are text, not instructions
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = trim(lines[i]);
    const bool was_in_block = in_block;
    if (count_triple_quotes(line) % 2 == 1) in_block = !in_block;
    if (was_in_block) continue;
    const size_t sp = line.find_first_of(" \t");
    if (sp == std::string_view::npos) continue;
    const std::string instruction = upper(line.substr(0, sp));
    if (instruction == "FROM" && from < 0) from = static_cast<int>(i);
    if (instruction != "PARAMETER") continue;
    const std::string_view rest = trim(line.substr(sp));
    if (lower(rest.substr(0, rest.find_first_of(" \t"))) == want) last = static_cast<int>(i);
  }
  const std::string patched = fmt::format("PARAMETER {} {}", want, value);
  if (last >= 0) {
    lines[static_cast<size_t>(last)] = patched;
  } else {
    lines.insert(lines.begin() + (from + 1), patched);
  }
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

std::optional<NamedContext> context_in_name(std::string_view name) {
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  std::optional<NamedContext> found;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(name[i])) || (i > 0 && alnum(name[i - 1]))) continue;
    size_t j = i;
    while (j < name.size() && std::isdigit(static_cast<unsigned char>(name[j]))) ++j;
    if (j >= name.size() || j - i > 4) continue;
    const char unit = static_cast<char>(std::tolower(static_cast<unsigned char>(name[j])));
    if ((unit != 'k' && unit != 'm') || (j + 1 < name.size() && alnum(name[j + 1]))) continue;
    const int64_t n = std::strtoll(std::string(name.substr(i, j - i)).c_str(), nullptr, 10);
    if (n <= 0) continue;
    // The last figure wins: "qwen3-30b-32k-v-128k" is about the 128k.
    found = NamedContext{unit == 'k' ? n * 1024 : n * 1024 * 1024, std::string(name.substr(i, j - i + 1))};
    i = j;
  }
  return found;
}

bool figure_matches(const NamedContext& named, int64_t ctx) {
  // 1024-based (131,072) and 1000-based (128,000) readings, and "262k" for 262,144, all within 3%.
  const double binary = static_cast<double>(named.tokens);
  for (const double promised : {binary, binary * 1000.0 / 1024.0})
    if (std::abs(promised - static_cast<double>(ctx)) <= 0.03 * static_cast<double>(ctx)) return true;
  return false;
}

std::string rename_for_context(std::string_view name, int64_t ctx) {
  const std::string figure = ctx % (1024 * 1024) == 0 ? fmt::format("{}m", ctx / (1024 * 1024))
                             : ctx % 1024 == 0        ? fmt::format("{}k", ctx / 1024)
                                                      : fmt::format("{}k", (ctx + 500) / 1000);
  if (auto named = context_in_name(name)) {
    const size_t pos = std::string_view(name).rfind(named->figure);
    if (pos != std::string_view::npos)
      return std::string(name.substr(0, pos)) + figure + std::string(name.substr(pos + named->figure.size()));
  }
  return std::string(name) + "-" + figure;
}

}  // namespace hylo::doctor
