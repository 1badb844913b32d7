// Output of `hylo doctor`: human text (with a small bar chart of the memory breakdown) and JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "doctor/analysis.h"

namespace hylo::doctor {

std::string render_text(const Report& report);
nlohmann::json render_json(const Report& report);

std::string render_compare_text(const Report& report, const std::vector<CompareRow>& rows);
nlohmann::json render_compare_json(const std::vector<CompareRow>& rows);

// `--list`: the built-in model and hardware profiles and the quantisations.
std::string render_list_text();
nlohmann::json render_list_json();

}  // namespace hylo::doctor
