// Architecture dispatch: general.architecture → the model implementation.
#include <functional>

#include "models/model.h"

namespace hylo::models {

Result<std::unique_ptr<Model>> load_qwen3_next(gguf::File file, const LoadOptions& options);
Result<std::unique_ptr<Model>> load_qwen3_moe(gguf::File file, const LoadOptions& options);

namespace {
struct Architecture {
  const char* name;
  Result<std::unique_ptr<Model>> (*load)(gguf::File, const LoadOptions&);
};
constexpr Architecture kArchitectures[] = {{"qwen3next", load_qwen3_next}, {"qwen3moe", load_qwen3_moe}};
}  // namespace

std::vector<std::string> supported_architectures() {
  std::vector<std::string> out;
  for (const auto& a : kArchitectures) out.emplace_back(a.name);
  return out;
}

Result<std::unique_ptr<Model>> load_model(const std::string& path, const LoadOptions& options) {
  HYLO_ASSIGN_OR_RETURN(gguf::File file, gguf::File::open(path, options.read_into_memory));
  const auto arch = file.get_string("general.architecture");
  if (!arch) return make_error("[model] {}: general.architecture is missing", path);
  for (const auto& a : kArchitectures)
    if (*arch == a.name) return a.load(std::move(file), options);
  std::string names;
  for (const auto& a : kArchitectures) names += (names.empty() ? "" : ", ") + std::string(a.name);
  return make_error("[model] {}: architecture '{}' is not supported (supported: {})", path, *arch, names);
}

}  // namespace hylo::models
