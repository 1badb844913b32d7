// `hylo models import`: an Ollama Modelfile as a model definition for `hylo serve --models`
// (printed, to paste under `models:`). Checking definitions is `hylo doctor --models`.
#include <cstdio>
#include <filesystem>

#include "apps/command.h"
#include "apps/common.h"
#include "doctor/config.h"
#include "server/model_catalog.h"

namespace hylo::apps {
namespace {

namespace fs = std::filesystem;

struct ImportOptions {
  std::string modelfile, name;
};

Result<std::string> import_modelfile(const ImportOptions& o) {
  HYLO_ASSIGN_OR_RETURN(doctor::Modelfile mf, doctor::read_modelfile(o.modelfile));
  if (mf.from.empty()) return make_error("[models] {}: no FROM line", o.modelfile);
  server::ModelDefinition d;
  std::vector<std::string> notes;
  notes.push_back(fmt::format("imported from the Modelfile {}", o.modelfile));
  // FROM: a GGUF file (relative to the Modelfile), or an Ollama model name hylo cannot open.
  fs::path from = mf.from;
  if (from.is_relative()) from = fs::path(o.modelfile).parent_path() / from;
  std::error_code ec;
  if (fs::is_regular_file(from, ec)) {
    d.file = fs::absolute(from, ec).lexically_normal().string();
  } else {
    d.file = mf.from;
    notes.push_back(fmt::format("FROM {} is not a file here: set file to the GGUF it names", mf.from));
  }
  d.name = o.name;
  if (d.name.empty()) {
    const std::string base = fs::path(o.modelfile).filename().string();
    d.name = base == "Modelfile" || base.empty() ? fs::path(mf.from).stem().string() : fs::path(base).stem().string();
  }
  if (!server::valid_model_name(d.name))
    return make_error("[models] '{}' is not a model name (letters, digits, '-', '_', '.', ':', '/'); give one with --name",
                      d.name);
  auto number = [&](const doctor::ModelfileParameter& p) -> Result<double> {
    char* end = nullptr;
    const double v = std::strtod(p.value.c_str(), &end);
    if (p.value.empty() || *end != '\0')
      return make_error("[models] {}: line {}: PARAMETER {} {} is not a number", o.modelfile, p.line, p.name, p.value);
    return v;
  };
  for (const doctor::ModelfileParameter& p : mf.parameters) {  // the last one wins, as in Ollama
    if (p.name == "num_ctx") {
      HYLO_ASSIGN_OR_RETURN(d.ctx, doctor::parse_count(p.value, "PARAMETER num_ctx", 256, int64_t{1} << 30));
    } else if (p.name == "temperature" || p.name == "top_p" || p.name == "min_p" || p.name == "repeat_penalty" ||
               p.name == "presence_penalty" || p.name == "frequency_penalty") {
      HYLO_ASSIGN_OR_RETURN(double v, number(p));
      auto& slot = p.name == "temperature"        ? d.temperature
                   : p.name == "top_p"            ? d.top_p
                   : p.name == "min_p"            ? d.min_p
                   : p.name == "repeat_penalty"   ? d.repeat_penalty
                   : p.name == "presence_penalty" ? d.presence_penalty
                                                  : d.frequency_penalty;
      slot = static_cast<float>(v);
    } else if (p.name == "top_k" || p.name == "repeat_last_n") {
      HYLO_ASSIGN_OR_RETURN(double v, number(p));
      (p.name == "top_k" ? d.top_k : d.repeat_last_n) = static_cast<int32_t>(v);
    } else {
      notes.push_back(fmt::format("PARAMETER {} {} (line {}) is set per request in hylo, not in a definition", p.name,
                                  p.value, p.line));
    }
  }
  if (mf.text.find("\nTEMPLATE") != std::string::npos || mf.text.rfind("TEMPLATE", 0) == 0)
    notes.push_back("TEMPLATE is a Go template: hylo renders the GGUF's own Jinja template (chat_template: FILE.jinja "
                    "sets another)");
  if (mf.text.find("\nSYSTEM") != std::string::npos || mf.text.rfind("SYSTEM", 0) == 0)
    notes.push_back("SYSTEM is not carried over: clients send their system message");
  return server::definition_yaml(d, notes);
}

CommandRegistrar reg("models", "Model definitions for hylo serve --models: import an Ollama Modelfile", 62,
                     [](CLI::App& app) {
                       auto o = std::make_shared<ImportOptions>();
                       app.require_subcommand(1);
                       CLI::App* imp = app.add_subcommand(
                           "import", "Print an Ollama Modelfile as a model definition (paste it under models:)");
                       imp->add_option("modelfile", o->modelfile, "The Modelfile")->required()->check(CLI::ExistingFile);
                       imp->add_option("--name", o->name,
                                       "The model's name (default: the Modelfile's file name, or FROM's for a file "
                                       "called Modelfile)");
                       return [o] {
                         auto out = import_modelfile(*o);
                         if (!out.ok()) return fail(out.error());
                         std::fputs(out->c_str(), stdout);
                         return kExitOk;
                       };
                     });

}  // namespace
}  // namespace hylo::apps
