// `hylo doctor --html FILE`: the report as one self-contained page (inline CSS and SVG charts, no
// network, no external scripts): verdict, findings with their fixes, stacked memory bars against
// each machine's memory, prefill time against the client timeout, decode bounds per machine.
#pragma once

#include <string>
#include <vector>

#include "doctor/analysis.h"

namespace hylo::doctor {

// `rows`: the machines to chart (the compare rows; empty: only the report's machine).
std::string render_html(const Report& report, const std::vector<CompareRow>& rows);

}  // namespace hylo::doctor
