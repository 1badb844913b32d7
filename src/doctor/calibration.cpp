// Calibration of prefill estimates against published measurements (data/doctor/prefill.json):
// each point's measured speed over the roofline estimate for the same model, quantisation,
// prompt length and hardware profile, pooled per hardware family.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "base/check.h"
#include "base/strings.h"
#include "doctor/analysis.h"
#include "doctor/profiles.h"
#include "doctor/quant_mix.h"

namespace hylo::doctor {
namespace {

using json = nlohmann::json;

struct Table {
  std::map<std::string, std::vector<double>> ratios;  // family → measured ÷ estimated
  PrefillCalibration uncalibrated{0.5, 1.0, 1.5, 0, "uncalibrated: no published measurement for this family"};
};

Result<double> ratio_of(const json& p) {
  if (!p.is_object()) return make_error("[doctor] prefill.json: every point must be an object");
  for (const char* key : {"hardware", "model", "quant"})
    if (!p.contains(key) || !p[key].is_string()) return make_error("[doctor] prefill.json: '{}' must be a string", key);
  for (const char* key : {"tokens", "ubatch", "tps"})
    if (!p.contains(key) || !p[key].is_number() || p[key].get<double>() <= 0)
      return make_error("[doctor] prefill.json: '{}' must be a positive number", key);
  HYLO_ASSIGN_OR_RETURN(const HardwareProfile* h, find_hardware_profile(p["hardware"].get<std::string>()));
  HYLO_ASSIGN_OR_RETURN(const ModelProfile* m, find_model_profile(p["model"].get<std::string>()));
  const auto scheme = quant_scheme_from_name(p["quant"].get<std::string>());
  if (!scheme) return make_error("[doctor] prefill.json: unknown quantisation {}", p["quant"].dump());
  HYLO_ASSIGN_OR_RETURN(const ModelDesc desc, describe_model(m->metadata));
  HYLO_ASSIGN_OR_RETURN(const auto tensors, synthesize_tensors(desc, *scheme));
  const WeightStats w = weight_stats(desc, tensors);
  const auto tokens = static_cast<int64_t>(p["tokens"].get<double>());
  const auto ubatch = static_cast<int64_t>(p["ubatch"].get<double>());
  const double seconds = estimate_prefill_seconds(desc, w, h->compute_tflops, h->bandwidth_gbs, tokens, ubatch);
  if (seconds <= 0) return make_error("[doctor] prefill.json: no estimate for {}", p.dump());
  return p["tps"].get<double>() / (static_cast<double>(tokens) / seconds);
}

const Table& table() {
  static const Table t = [] {
    Table t;
    const json root = json::parse(embedded_prefill_json(), nullptr, /*allow_exceptions=*/false);
    HYLO_CHECK(!root.is_discarded() && root.contains("points"), "embedded data/doctor/prefill.json is malformed");
    if (root.contains("uncalibrated")) {
      const json& u = root["uncalibrated"];
      t.uncalibrated.low = u.value("low", 0.5);
      t.uncalibrated.typical = u.value("typical", 1.0);
      t.uncalibrated.high = u.value("high", 1.5);
    }
    for (const json& p : root["points"]) {
      auto r = ratio_of(p);
      HYLO_CHECK(r.ok(), "embedded data/doctor/prefill.json: {}", r.ok() ? "" : r.message());
      t.ratios[p.value("family", std::string("?"))].push_back(*r);
    }
    return t;
  }();
  return t;
}

}  // namespace

PrefillCalibration prefill_calibration_for(const Machine& machine) {
  const Table& t = table();
  auto it = t.ratios.find(machine.family);
  if (it == t.ratios.end() || it->second.empty()) return t.uncalibrated;
  std::vector<double> r = it->second;
  std::sort(r.begin(), r.end());
  const size_t n = r.size();
  PrefillCalibration c;
  c.low = r.front();
  c.high = r.back();
  c.typical = n % 2 == 1 ? r[n / 2] : 0.5 * (r[n / 2 - 1] + r[n / 2]);
  c.points = static_cast<int>(n);
  c.basis = fmt::format(
      "calibrated on {} published measurement{} on {} machines (data/doctor/prefill.json): ×{:.2f}–{:.2f} "
      "of the roofline estimate",
      n, n == 1 ? "" : "s", machine.family, c.low, c.high);
  return c;
}

}  // namespace hylo::doctor
