#include "doctor/doctor.h"

#include <unistd.h>

#include <filesystem>

#include "base/strings.h"
#include "doctor/config.h"
#include "doctor/endpoint.h"
#include "doctor/profiles.h"
#include "doctor/quant_mix.h"
#include "gguf/gguf.h"

namespace hylo::doctor {
namespace {

// Ollama's num_ctx when neither the Modelfile nor the server environment sets one.
constexpr int64_t kOllamaDefaultCtx = 4096;
// Every Qwen3 tokenizer has this many embedding rows; used when a source omits the vocabulary.
constexpr int64_t kQwenVocab = 151936;

struct ResolvedModel {
  ModelDesc desc;
  WeightStats weights;
  std::string source;
  std::optional<RopeScaling> yarn;
};

Result<QuantScheme> scheme_named(const std::string& name) {
  if (auto s = quant_scheme_from_name(name)) return *s;
  std::string known;
  for (QuantScheme s : all_quant_schemes()) known += (known.empty() ? "" : ", ") + std::string(quant_scheme_name(s));
  return make_error("[doctor] unknown quantisation '{}' (known: {})", name, known);
}

// The profile a described model corresponds to, to borrow its YaRN recipe: same architecture and
// shapes, and a name that matches.
const ModelProfile* profile_for(const ModelDesc& d) {
  const ModelProfile* p = match_model_profile(d.name);
  if (p == nullptr) return nullptr;
  auto pd = describe_model(p->metadata);
  if (!pd.ok() || pd->arch != d.arch || pd->n_layer != d.n_layer || pd->n_embd != d.n_embd) return nullptr;
  return p;
}

Result<ResolvedModel> synthesized(ModelDesc desc, QuantScheme scheme, std::string source) {
  HYLO_ASSIGN_OR_RETURN(auto tensors, synthesize_tensors(desc, scheme));
  ResolvedModel r;
  desc.quant = std::string(quant_scheme_name(scheme));
  r.weights = weight_stats(desc, tensors);
  r.desc = std::move(desc);
  r.source = std::move(source);
  return r;
}

Result<ResolvedModel> model_from_profile(const ModelProfile& p, const std::string& quant) {
  HYLO_ASSIGN_OR_RETURN(ModelDesc desc, describe_model(p.metadata));
  desc.name = p.display_name;
  HYLO_ASSIGN_OR_RETURN(const QuantScheme scheme, scheme_named(quant.empty() ? p.default_quant : quant));
  HYLO_ASSIGN_OR_RETURN(
      ResolvedModel r,
      synthesized(std::move(desc), scheme, fmt::format("profile {} ({})", p.name, quant_scheme_name(scheme))));
  r.yarn = p.yarn;
  return r;
}

Result<ResolvedModel> model_from_file(const std::string& path, const std::string& quant) {
  HYLO_ASSIGN_OR_RETURN(gguf::File file, gguf::File::open(path));
  HYLO_ASSIGN_OR_RETURN(ModelDesc desc, describe_model(Metadata::from_gguf(file)));
  if (desc.n_vocab == 0) {
    if (const gguf::TensorInfo* emb = file.find_tensor("token_embd.weight")) desc.n_vocab = emb->ne[1];
  }
  desc.tied_output = file.find_tensor("output.weight") == nullptr;
  const ModelProfile* profile = profile_for(desc);
  ResolvedModel r;
  if (!quant.empty()) {
    HYLO_ASSIGN_OR_RETURN(const QuantScheme scheme, scheme_named(quant));
    HYLO_ASSIGN_OR_RETURN(r, synthesized(std::move(desc), scheme,
                                         fmt::format("file {}, sizes as if {}", path, quant_scheme_name(scheme))));
  } else {
    r.weights = weight_stats(desc, file.tensors());
    r.desc = std::move(desc);
    r.source = "file " + path;
  }
  if (profile != nullptr) r.yarn = profile->yarn;
  return r;
}

// Ollama's /api/show model_info holds the GGUF keys, so shapes are exact; the quantisation mix is
// reconstructed from details.quantization_level.
Result<ResolvedModel> model_from_ollama(const EndpointInfo& ep, const std::string& quant) {
  HYLO_ASSIGN_OR_RETURN(ModelDesc desc, describe_model(ep.model_info));
  desc.name = ep.model_id;
  const ModelProfile* profile = match_model_profile(ep.model_id);
  if (desc.n_vocab == 0) {
    std::optional<int64_t> vocab;
    if (profile != nullptr) vocab = describe_model(profile->metadata)->n_vocab;
    desc.n_vocab = vocab.value_or(kQwenVocab);
    desc.notes.push_back(fmt::format("vocabulary size not reported by the server: assumed {}", desc.n_vocab));
  }
  std::string q = !quant.empty() ? quant : ep.quant;
  if (!quant_scheme_from_name(q)) {
    desc.notes.push_back(fmt::format("quantisation '{}' has no known mix: sizes assume Q4_K_M", q));
    q = "Q4_K_M";
  }
  HYLO_ASSIGN_OR_RETURN(const QuantScheme scheme, scheme_named(q));
  HYLO_ASSIGN_OR_RETURN(ResolvedModel r, synthesized(std::move(desc), scheme,
                                                     fmt::format("Ollama model {} at {} ({})", ep.model_id, ep.url,
                                                                 quant_scheme_name(scheme))));
  if (profile != nullptr) r.yarn = profile->yarn;
  return r;
}

Result<ResolvedModel> model_from_name(const std::string& name, const std::string& quant, const std::string& where) {
  const ModelProfile* p = match_model_profile(name);
  if (p == nullptr)
    return make_error(
        "[doctor] {} names '{}', which matches no built-in profile (hylo doctor --list); pass --profile "
        "NAME or -m FILE.gguf",
        where, name);
  return model_from_profile(*p, !quant.empty() ? quant : match_quant_name(name));
}

Result<ResolvedModel> model_from_endpoint(const EndpointInfo& ep, const std::string& quant) {
  if (!ep.model_info.empty()) return model_from_ollama(ep, quant);
  // A server on this machine: its file is readable, and exact.
  if (ep.model_path && access(ep.model_path->c_str(), R_OK) == 0) return model_from_file(*ep.model_path, quant);
  std::string id = ep.model_id;
  if (ep.model_path) id.append(" ").append(std::filesystem::path(*ep.model_path).filename().string());
  if (trim(id).empty())
    return make_error("[doctor] endpoint {} reports no model; pass --profile NAME or -m FILE.gguf", ep.url);
  HYLO_ASSIGN_OR_RETURN(ResolvedModel r, model_from_name(id, quant, "endpoint " + ep.url));
  r.source += fmt::format(", matched from the endpoint's model '{}'", ep.model_id);
  return r;
}

void apply_endpoint(const EndpointInfo& ep, Config* cfg) {
  if (!ep.model_id.empty()) {
    cfg->model_id = ep.model_id;
    cfg->names.push_back({ep.model_id, "endpoint model"});
  }
  for (const std::string& line : ep.read) cfg->sources.push_back(ep.url + " " + line);
  const Origin origin = ep.server == "ollama" ? Origin::kOllama
                        : ep.server == "hylo" ? Origin::kFlag
                                              : Origin::kLlamaServer;
  if (ep.n_ctx) {
    cfg->ctx = *ep.n_ctx;
    cfg->ctx_origin = origin;
    cfg->ctx_source = ep.url + " " + ep.n_ctx_source;
  } else if (ep.server == "ollama") {
    cfg->ctx = kOllamaDefaultCtx;
    cfg->ctx_origin = origin;
    cfg->ctx_source = "Ollama's default num_ctx (assumed: no num_ctx parameter, model not loaded)";
  }
  if (ep.parallel) cfg->parallel = *ep.parallel;
}

// Another model loaded beside the main one, at the same serving settings (its own trained context
// unless a context was set).
Result<ResidentModel> resident(const std::string& what, const Config& cfg) {
  ResolvedModel m;
  if (ends_with(what, ".gguf")) {
    HYLO_ASSIGN_OR_RETURN(m, model_from_file(what, ""));
  } else {
    HYLO_ASSIGN_OR_RETURN(const ModelProfile* p, find_model_profile(what));
    HYLO_ASSIGN_OR_RETURN(m, model_from_profile(*p, ""));
  }
  ResidentModel r;
  r.name = m.desc.name;
  r.source = m.source;
  r.ctx = cfg.ctx > 0 ? cfg.ctx : m.desc.n_ctx_train;
  const auto parallel = static_cast<uint64_t>(cfg.parallel);
  r.weights_bytes = m.weights.total_bytes;
  r.kv_cache_bytes = m.desc.kv_bytes_per_token(cfg.kv_type) * static_cast<uint64_t>(r.ctx) * parallel;
  r.recurrent_state_bytes = m.desc.recurrent_bytes_per_sequence() * parallel;
  r.compute_bytes = compute_buffers(m.desc, cfg).total() + kRuntimeReserveBytes;
  return r;
}

std::string base_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

}  // namespace

std::vector<QuantOption> quant_options_for(const ModelDesc& model) {
  std::vector<QuantOption> out;
  if (!model.known_arch) return out;
  for (QuantScheme s : all_quant_schemes()) {
    auto tensors = synthesize_tensors(model, s);
    if (!tensors.ok()) return {};
    const WeightStats w = weight_stats(model, *tensors);
    out.push_back({std::string(quant_scheme_name(s)), w.total_bytes, w.active_bytes_per_token});
  }
  return out;
}

Result<Inputs> gather_inputs(const Options& o) {
  Inputs in;
  Config& cfg = in.config;

  std::optional<Modelfile> modelfile;
  if (!o.modelfile.empty()) {
    HYLO_ASSIGN_OR_RETURN(modelfile, read_modelfile(o.modelfile));
  }
  std::optional<EndpointInfo> endpoint;
  if (!o.endpoint.empty()) {
    HYLO_ASSIGN_OR_RETURN(endpoint,
                          read_endpoint(o.endpoint, modelfile ? modelfile->from : "", o.endpoint_timeout_seconds));
    apply_endpoint(*endpoint, &cfg);
  }
  if (modelfile) {
    HYLO_TRY(apply_modelfile(*modelfile, &cfg));
    cfg.modelfile_path = o.modelfile;
    cfg.modelfile_text = modelfile->text;
    cfg.modelfile_from = modelfile->from;
    const std::string base = base_name(o.modelfile);
    if (base != "Modelfile" && base != "modelfile") cfg.names.push_back({base, "Modelfile name"});
    if (!modelfile->from.empty() && !ends_with(modelfile->from, ".gguf")) {
      cfg.names.push_back({modelfile->from, "FROM"});
      if (cfg.model_id.empty()) cfg.model_id = modelfile->from;
    }
  }
  if (!o.ollama_name.empty()) {
    cfg.ollama_name = o.ollama_name;
    cfg.names.push_back({o.ollama_name, "--name"});
  }
  if (o.ctx) {
    cfg.ctx = *o.ctx;
    cfg.ctx_origin = Origin::kFlag;
    cfg.ctx_source = "--ctx";
  }
  if (o.parallel) cfg.parallel = *o.parallel;
  if (o.kv_type) cfg.kv_type = *o.kv_type;
  if (o.cache_bytes) cfg.cache_bytes = *o.cache_bytes;
  cfg.spec_draft = o.spec_draft;
  if (o.spec_acceptance) cfg.spec_acceptance = *o.spec_acceptance;
  if (o.batch) cfg.batch = *o.batch;
  if (o.ubatch) cfg.ubatch = *o.ubatch;
  if (o.prompt_tokens) cfg.prompt_tokens = o.prompt_tokens;
  if (o.prefill_tps) cfg.prefill_tps = o.prefill_tps;
  if (o.timeout_seconds) cfg.timeout_seconds = o.timeout_seconds;

  // The model: the most explicit source wins.
  ResolvedModel model;
  if (!o.model_path.empty()) {
    HYLO_ASSIGN_OR_RETURN(model, model_from_file(o.model_path, o.quant));
    cfg.model_ref = o.model_path;
    cfg.names.push_back({base_name(o.model_path), "file name"});
  } else if (!o.profile.empty()) {
    HYLO_ASSIGN_OR_RETURN(const ModelProfile* p, find_model_profile(o.profile));
    HYLO_ASSIGN_OR_RETURN(model, model_from_profile(*p, o.quant));
    // Fixes for Ollama name the model by its Ollama tag ("qwen3-next:80b") when the profile knows one.
    for (const std::string& alias : p->aliases)
      if (cfg.model_id.empty() && alias.find(':') != std::string::npos) cfg.model_id = alias;
  } else if (modelfile && !modelfile->from.empty()) {
    const std::string where = fmt::format("{} line {} (FROM)", modelfile->name, modelfile->from_line);
    std::filesystem::path from(modelfile->from);
    if (ends_with(modelfile->from, ".gguf")) {
      if (from.is_relative()) from = std::filesystem::path(o.modelfile).parent_path() / from;
      if (access(from.c_str(), R_OK) != 0)
        return make_error("[doctor] {}: cannot read {}; pass -m FILE.gguf or --profile NAME", where, from.string());
      HYLO_ASSIGN_OR_RETURN(model, model_from_file(from.string(), o.quant));
      cfg.model_ref = from.string();
    } else if (endpoint && endpoint->server == "ollama" && !endpoint->model_info.empty()) {
      HYLO_ASSIGN_OR_RETURN(model, model_from_endpoint(*endpoint, o.quant));
    } else {
      HYLO_ASSIGN_OR_RETURN(model, model_from_name(modelfile->from, o.quant, where));
    }
  } else if (endpoint) {
    HYLO_ASSIGN_OR_RETURN(model, model_from_endpoint(*endpoint, o.quant));
    if (endpoint->n_ctx_train && *endpoint->n_ctx_train != model.desc.n_ctx_train) {
      model.desc.notes.push_back(fmt::format("the server reports a trained context of {} (the profile says {})",
                                             format_count(static_cast<uint64_t>(*endpoint->n_ctx_train)),
                                             format_count(static_cast<uint64_t>(model.desc.n_ctx_train))));
      model.desc.n_ctx_train = *endpoint->n_ctx_train;
    }
  } else {
    return make_error(
        "[doctor] no model: give -m FILE.gguf, --profile NAME (see hylo doctor --list), a Modelfile "
        "with FROM, or --endpoint URL");
  }
  if (cfg.ubatch > cfg.batch) cfg.ubatch = cfg.batch;

  in.model = std::move(model.desc);
  in.weights = model.weights;
  in.model_source = std::move(model.source);
  in.yarn_recipe = model.yarn;
  in.quant_options = quant_options_for(in.model);

  if (!o.hardware.empty() && !o.machine_file.empty())
    return make_error("[doctor] give either --hardware NAME or --machine FILE, not both");
  if (!o.hardware.empty()) {
    HYLO_ASSIGN_OR_RETURN(const HardwareProfile* h, find_hardware_profile(o.hardware));
    in.machine = machine_from_profile(*h);
  } else if (!o.machine_file.empty()) {
    HYLO_ASSIGN_OR_RETURN(in.machine, machine_from_file(o.machine_file));
  } else {
    DetectOptions d = o.detect_options;
    d.measure_bandwidth = o.detect;
    in.machine = detect_machine(d);
  }
  HYLO_TRY(apply_machine_overrides(o.machine_overrides, &in.machine));
  in.measured = o.measured;
  in.calibration = prefill_calibration_for(in.machine);
  for (const std::string& other : o.extra_models) {
    HYLO_ASSIGN_OR_RETURN(ResidentModel r, resident(other, in.config));
    in.residents.push_back(std::move(r));
  }
  return in;
}

}  // namespace hylo::doctor
