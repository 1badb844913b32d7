#include "doctor/fixes.h"

#include <cmath>
#include <filesystem>

#include "base/strings.h"
#include "doctor/analysis.h"
#include "doctor/config.h"
#include "doctor/units.h"

namespace hylo::doctor {
namespace {

std::string kv_name(TensorType t) {
  std::string s(tensor_type_name(t));
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// An Ollama model name from a tag or path: "hf.co/org/repo:Q4_K_M" → "repo-q4_k_m".
std::string sanitized(std::string_view id) {
  std::string s(id);
  if (const size_t slash = s.rfind('/'); slash != std::string::npos) s = s.substr(slash + 1);
  for (char& c : s) {
    if (c == ':') c = '-';
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (ends_with(s, ".gguf")) s.resize(s.size() - 5);
  return s.empty() ? std::string("my-model") : s;
}

std::string model_arg(const Config& c) { return c.model_ref.empty() ? std::string("MODEL.gguf") : c.model_ref; }

bool uses_ollama(const Config& c) {
  return c.ctx_origin == Origin::kModelfile || c.ctx_origin == Origin::kOllama || !c.modelfile_text.empty();
}

}  // namespace

std::string ollama_model_name(const Report& r) {
  const Config& c = r.inputs.config;
  if (!c.ollama_name.empty()) return c.ollama_name;
  if (!c.modelfile_path.empty()) {
    std::string base = std::filesystem::path(c.modelfile_path).filename().string();
    std::string low = base;
    for (char& ch : low) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (starts_with(low, "modelfile.")) base = base.substr(10);
    if (ends_with(low, ".modelfile")) base.resize(base.size() - 10);
    if (!base.empty() && low != "modelfile") return base;
  }
  if (!c.model_id.empty()) return sanitized(c.model_id);
  if (!c.modelfile_from.empty()) return sanitized(c.modelfile_from);
  return sanitized(r.inputs.model.name);
}

std::vector<Fix> change_fixes(const Report& r, const Change& ch) {
  const Config& c = r.inputs.config;
  const int64_t ctx = ch.ctx.value_or(r.ctx);
  const TensorType kv = ch.kv_type.value_or(c.kv_type);
  const bool kv_quantised = kv != TensorType::kF16 && kv != TensorType::kBF16 && kv != TensorType::kF32;
  std::vector<Fix> out;

  if (uses_ollama(c) || ch.gpu_engines) {
    std::string text = c.modelfile_text;
    if (text.empty()) {
      const std::string from = !c.modelfile_from.empty() ? c.modelfile_from
                               : !c.model_id.empty()     ? c.model_id
                                                         : sanitized(r.inputs.model.name);
      text = "FROM " + from + "\n";
    }
    std::string title = "Modelfile";
    if (ch.ctx) {
      text = patch_modelfile(text, "num_ctx", std::to_string(ctx));
      title = fmt::format("Modelfile (num_ctx {} → {}), saved as Modelfile", tokens_str(r.ctx), tokens_str(ctx));
    }
    out.push_back({"modelfile", title, text});
    const std::string name = ollama_model_name(r);
    std::string create_name = name;
    if (auto named = context_in_name(name); named && ch.ctx && !figure_matches(*named, ctx))
      create_name = rename_for_context(name, ctx);
    std::string cmd = fmt::format("ollama create {} -f Modelfile", create_name);
    if (create_name != name) cmd += fmt::format("\nollama rm {}", name);
    out.push_back({"shell",
                   create_name != name ? fmt::format("create it under a name that says {} (and drop the old "
                                                     "one, whose name promised another context)",
                                                     tokens_str(ctx))
                                       : std::string("apply it"),
                   cmd});
    if (kv_quantised)
      out.push_back({"env", "Ollama server: quantised KV cache (needs flash attention; applies to every model)",
                     fmt::format("OLLAMA_FLASH_ATTENTION=1 OLLAMA_KV_CACHE_TYPE={} ollama serve", kv_name(kv))});
    if (ch.ctx && c.ctx_origin == Origin::kOllama)
      out.push_back({"env", "or, for models whose Modelfile sets no num_ctx: the Ollama server's default",
                     fmt::format("OLLAMA_CONTEXT_LENGTH={} ollama serve", ctx)});
  }

  if (c.ctx_origin == Origin::kLlamaServer || ch.gpu_engines) {
    std::string cmd = fmt::format("llama-server -m {} -c {}", model_arg(c), ctx * c.parallel);
    if (c.parallel > 1) cmd += fmt::format(" --parallel {}", c.parallel);
    if (kv_quantised) cmd += fmt::format(" -fa on -ctk {} -ctv {}", kv_name(kv), kv_name(kv));
    if (ch.yarn_factor)
      cmd +=
          fmt::format(" --rope-scaling yarn --rope-scale {:g} --yarn-orig-ctx {}", *ch.yarn_factor, ch.yarn_orig_ctx);
    out.push_back({"llama-server",
                   c.parallel > 1 ? fmt::format("llama-server (-c is split over the {} slots)", c.parallel)
                                  : std::string("llama-server"),
                   cmd});
  }

  if (ch.gpu_engines) return out;
  namespace f = hylo_flags;
  std::string cmd = fmt::format("hylo serve {} {} {} {}", f::kModel, model_arg(c), f::kCtx, ctx);
  if (c.parallel > 1) cmd += fmt::format(" {} {}", f::kParallel, c.parallel);
  if (kv_quantised) cmd += fmt::format(" {} {} {} {}", f::kCacheTypeK, kv_name(kv), f::kCacheTypeV, kv_name(kv));
  if (ch.yarn_factor)
    cmd += fmt::format(" {} yarn {} {:g} {} {}", f::kRopeScaling, f::kRopeScale, *ch.yarn_factor, f::kYarnOrigCtx,
                       ch.yarn_orig_ctx);
  out.push_back({"hylo", "hylo serve (-c is per sequence)", cmd});
  return out;
}

std::vector<Fix> timeout_fixes(const Report& r, double seconds) {
  const Config& c = r.inputs.config;
  const int64_t s = static_cast<int64_t>(std::ceil(seconds));
  std::vector<Fix> out;
  out.push_back({"client", "OpenAI SDK (Python; the JavaScript SDK takes milliseconds)",
                 fmt::format("client = OpenAI(base_url=\"http://127.0.0.1:8080/v1\", api_key=\"none\", timeout={})\n"
                             "// JavaScript: new OpenAI({{ baseURL: \"http://127.0.0.1:8080/v1\", apiKey: \"none\", "
                             "timeout: {} }})",
                             s, s * 1000)});
  out.push_back({"shell", "curl", fmt::format("curl --max-time {} http://127.0.0.1:8080/v1/chat/completions ...", s)});
  namespace f = hylo_flags;
  out.push_back(
      {"hylo",
       "hylo serve: keep streamed requests alive while the prompt is read (for clients and proxies with an "
       "idle timeout)",
       fmt::format("hylo serve {} {} {} {} {} 15", f::kModel, model_arg(c), f::kCtx, r.ctx, f::kPingInterval)});
  return out;
}

Fix apple_wired_limit_fix(uint64_t limit_mb, uint64_t memory_bytes) {
  const uint64_t left = memory_bytes > (limit_mb << 20) ? memory_bytes - (limit_mb << 20) : 0;
  return {"shell",
          fmt::format("raise macOS's GPU limit to {} (leaves {} for macOS and every other program: too little makes "
                      "the system swap or freeze; lasts until reboot; 0 restores the default)",
                      format_bytes(limit_mb << 20), format_bytes(left)),
          fmt::format("sudo sysctl iogpu.wired_limit_mb={}", limit_mb)};
}

}  // namespace hylo::doctor
