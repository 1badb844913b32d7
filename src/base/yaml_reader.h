// Reading hand-edited YAML files (the routes file, the models file) with errors that name the
// file, the line and the key: "[router] routes.yaml: line 12, key upstreams.cloud.ctx: ...".
#pragma once

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "base/result.h"

namespace hylo {

// "line 12, key upstreams.cloud.ctx"
inline std::string yaml_at(const YAML::Node& n, const std::string& key) {
  return fmt::format("line {}, key {}", n.Mark().line + 1, key);
}

class YamlReader {
 public:
  // tag: the module's message prefix ("router"); source: the file as the user named it.
  YamlReader(std::string tag, std::string source) : tag_(std::move(tag)), source_(std::move(source)) {}

  template <typename T>
  Result<T> scalar(const YAML::Node& n, const std::string& key, const char* what) const {
    if (!n.IsScalar()) return error(n, key, fmt::format("{} expected", what));
    try {
      return n.as<T>();
    } catch (const YAML::Exception&) {
      return error(n, key, fmt::format("'{}' is not {}", n.Scalar().substr(0, 80), what));
    }
  }
  Result<double> number(const YAML::Node& n, const std::string& key, double lo, double hi) const {
    HYLO_ASSIGN_OR_RETURN(double v, scalar<double>(n, key, "a number"));
    if (!std::isfinite(v) || v < lo || v > hi) return error(n, key, fmt::format("{} is outside [{}, {}]", v, lo, hi));
    return v;
  }
  // A timeout: more than 0, at most a day.
  Result<double> seconds(const YAML::Node& n, const std::string& key) const {
    HYLO_ASSIGN_OR_RETURN(double v, scalar<double>(n, key, "a number of seconds"));
    if (!std::isfinite(v) || v <= 0 || v > 86400)
      return error(n, key, fmt::format("{} is outside (0, 86400] seconds", v));
    return v;
  }
  Result<int64_t> count(const YAML::Node& n, const std::string& key, int64_t lo, int64_t hi) const {
    HYLO_ASSIGN_OR_RETURN(int64_t v, scalar<int64_t>(n, key, "an integer"));
    if (v < lo || v > hi) return error(n, key, fmt::format("{} is outside [{}, {}]", v, lo, hi));
    return v;
  }
  Error unknown(const YAML::Node& key_node, const std::string& key, const char* known) const {
    return error(key_node, key, fmt::format("unknown key (known: {})", known));
  }
  Error error(const YAML::Node& n, const std::string& key, const std::string& what) const {
    return make_error("[{}] {}: {}: {}", tag_, source_, yaml_at(n, key), what);
  }
  const std::string& source() const { return source_; }

 private:
  std::string tag_;
  std::string source_;
};

}  // namespace hylo
