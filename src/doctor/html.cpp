#include "doctor/html.h"

#include <algorithm>
#include <cmath>

#include "base/strings.h"
#include "doctor/units.h"

namespace hylo::doctor {
namespace {

constexpr int kChartWidth = 900;
constexpr int kLabelWidth = 200;
constexpr int kBarArea = 500;
constexpr int kRowHeight = 24;
constexpr int kBarHeight = 16;
constexpr int kTop = 28;

std::string esc(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

double gib(uint64_t bytes) { return static_cast<double>(bytes) / 1073741824.0; }

std::string rect(double x, double y, double w, double h, const std::string& cls, const std::string& title) {
  return fmt::format(
      "<rect class=\"{}\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\"><title>{}</title></rect>", cls,
      x, y, std::max(0.0, w), h, esc(title));
}

std::string text(double x, double y, const std::string& s, const std::string& cls = "", const char* anchor = "start") {
  return fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"{}\" text-anchor=\"{}\">{}</text>", x, y, cls, anchor,
                     esc(s));
}

// The machine of this report is drawn bold; a machine where it goes wrong in red.
std::string label_class(const Report& r, const CompareRow& row, bool good) {
  std::string cls = good ? "label" : "label bad";
  if (row.hardware == r.inputs.machine.name) cls += " current";
  return cls;
}

std::string svg_open(const char* id, int rows, const std::string& title) {
  const int height = kTop + rows * kRowHeight + 30;
  return fmt::format(
      "<figure><figcaption>{}</figcaption><svg id=\"{}\" class=\"chart\" width=\"{}\" height=\"{}\" "
      "viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">",
      esc(title), id, kChartWidth, height, kChartWidth, height, esc(title));
}

struct Segment {
  const char* cls;
  const char* label;
  uint64_t bytes;
};

// One machine's memory: the model's parts (the same everywhere) and this machine's OS reserve.
std::vector<Segment> segments(const Report& r, const CompareRow& row) {
  const MemoryReport& m = r.memory;
  const uint64_t model_parts = m.weights_bytes + m.kv_cache_bytes + m.recurrent_state_bytes + m.compute_bytes +
                               m.runtime_reserve_bytes + m.other_models_bytes;
  const uint64_t os = row.total_bytes > model_parts ? row.total_bytes - model_parts : 0;
  return {{"seg-weights", "weights", m.weights_bytes},
          {"seg-kv", "KV cache", m.kv_cache_bytes},
          {"seg-state", "recurrent state", m.recurrent_state_bytes},
          {"seg-compute", "compute + runtime", m.compute_bytes + m.runtime_reserve_bytes},
          {"seg-os", "OS reserve", os},
          {"seg-other", "other models", m.other_models_bytes}};
}

// Each machine's bar spans the larger of its memory and the total, so the parts read as shares of
// that machine (a 24 GB card and a 512 GB Mac are both legible); the black line is its memory,
// the dashed red one what its GPU may use.
std::string memory_chart(const Report& r, const std::vector<CompareRow>& rows) {
  std::string o = svg_open("memory-chart", static_cast<int>(rows.size()),
                           fmt::format("Memory: what the model needs against each machine's memory ({} tokens × {})",
                                       tokens_str(r.ctx), r.inputs.config.parallel));
  double lx = kLabelWidth;
  for (const Segment& s : segments(r, rows.front())) {
    if (s.bytes == 0 && std::string(s.cls) != "seg-weights") continue;
    o += rect(lx, 6, 10, 10, s.cls, s.label) + text(lx + 13, 15, s.label, "legend");
    lx += 14 + 7.0 * static_cast<double>(std::string(s.label).size()) + 12;
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const CompareRow& row = rows[i];
    const double px = kBarArea / static_cast<double>(std::max<uint64_t>({1, row.total_bytes, row.available_bytes}));
    const double y = kTop + static_cast<double>(i) * kRowHeight;
    o += text(kLabelWidth - 8, y + 12, row.hardware, label_class(r, row, row.fits), "end");
    double x = kLabelWidth;
    for (const Segment& s : segments(r, row)) {
      if (s.bytes == 0) continue;
      const double w = static_cast<double>(s.bytes) * px;
      o += rect(x, y, w, kBarHeight, s.cls, fmt::format("{}: {:.1f} GiB", s.label, gib(s.bytes)));
      x += w;
    }
    const double mx = kLabelWidth + static_cast<double>(row.available_bytes) * px;
    o += fmt::format(
        "<line class=\"limit\" x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"><title>memory "
        "{:.1f} GiB</title></line>",
        mx, mx, y - 3, y + kBarHeight + 3, gib(row.available_bytes));
    if (row.gpu_limit_bytes) {
      const double gx = kLabelWidth + static_cast<double>(*row.gpu_limit_bytes) * px;
      o += fmt::format(
          "<line class=\"gpu-limit\" x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\"><title>GPU "
          "limit {:.1f} GiB</title></line>",
          gx, gx, y - 3, y + kBarHeight + 3, gib(*row.gpu_limit_bytes));
    }
    o += text(kLabelWidth + kBarArea + 8, y + 12,
              fmt::format("{:.1f} / {:.0f} GiB {}", gib(row.total_bytes), gib(row.available_bytes),
                          row.fits ? "fits" : "does not fit"),
              row.fits ? "value" : "value bad");
  }
  return o + "</svg></figure>\n";
}

std::string prefill_chart(const Report& r, const std::vector<CompareRow>& rows) {
  const std::optional<double> timeout = r.inputs.config.timeout_seconds;
  double scale = timeout ? *timeout * 1.25 : 1.0;
  for (const CompareRow& row : rows) scale = std::max(scale, std::max(row.prefill_seconds_slow, row.prefill_seconds));
  if (timeout) scale = std::min(scale, *timeout * 4);  // beyond 4× the timeout, bars are cut (marked »)
  const double px = kBarArea / scale;
  std::string o = svg_open(
      "prefill-chart", static_cast<int>(rows.size()),
      fmt::format("Prefill of {} tokens (time to first token){}", tokens_str(r.time.prefill_tokens),
                  timeout ? fmt::format(" against the {} client timeout", seconds_str(*timeout)) : std::string()));
  for (size_t i = 0; i < rows.size(); ++i) {
    const CompareRow& row = rows[i];
    const double y = kTop + static_cast<double>(i) * kRowHeight;
    const double fast = std::min(row.prefill_seconds_fast, scale), slow = std::min(row.prefill_seconds_slow, scale);
    const bool over = timeout && row.prefill_seconds_fast > *timeout;
    o += text(kLabelWidth - 8, y + 12, row.hardware, label_class(r, row, !over), "end");
    o += rect(kLabelWidth, y, fast * px, kBarHeight, over ? "bar-prefill over" : "bar-prefill",
              fmt::format("fastest {}", seconds_str(row.prefill_seconds_fast)));
    if (slow > fast)
      o += rect(kLabelWidth + fast * px, y, (slow - fast) * px, kBarHeight, "bar-range",
                fmt::format("up to {}", seconds_str(row.prefill_seconds_slow)));
    std::string label =
        row.prefill_seconds_slow > row.prefill_seconds_fast * 1.001
            ? fmt::format("{} – {}", seconds_str(row.prefill_seconds_fast), seconds_str(row.prefill_seconds_slow))
            : seconds_str(row.prefill_seconds);
    if (row.prefill_seconds_slow > scale) label += " »";
    o += text(kLabelWidth + kBarArea + 8, y + 12, label, over ? "value bad" : "value");
  }
  if (timeout) {
    const double tx = kLabelWidth + *timeout * px;
    const double bottom = kTop + static_cast<double>(rows.size()) * kRowHeight;
    o +=
        fmt::format("<line id=\"timeout-line\" class=\"timeout\" x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{}\" y2=\"{:.1f}\"/>",
                    tx, tx, kTop - 6, bottom);
    o += text(tx, bottom + 16, fmt::format("timeout {}", seconds_str(*timeout)), "timeout-label", "middle");
  }
  return o + "</svg></figure>\n";
}

std::string decode_chart(const Report& r, const std::vector<CompareRow>& rows) {
  double scale = 1;
  for (const CompareRow& row : rows) scale = std::max(scale, row.decode_tps_bound.value_or(0));
  const double px = kBarArea / scale;
  std::string o = svg_open(
      "decode-chart", static_cast<int>(rows.size()),
      fmt::format("Decode bound (tokens/s): weights only, and at {} tokens of context", tokens_str(r.time.decode_ctx)));
  for (size_t i = 0; i < rows.size(); ++i) {
    const CompareRow& row = rows[i];
    const double y = kTop + static_cast<double>(i) * kRowHeight;
    o += text(kLabelWidth - 8, y + 12, row.hardware, label_class(r, row, true), "end");
    if (!row.decode_tps_bound) {
      o += text(kLabelWidth, y + 12, "bandwidth unknown", "value");
      continue;
    }
    o += rect(kLabelWidth, y, *row.decode_tps_bound * px, kBarHeight, "bar-decode",
              fmt::format("≤ {} tok/s from the weights", rate_str(*row.decode_tps_bound)));
    if (row.decode_tps_bound_at_ctx)
      o += rect(
          kLabelWidth, y + 4, *row.decode_tps_bound_at_ctx * px, kBarHeight - 8, "bar-decode-ctx",
          fmt::format("≤ {} tok/s at {} tokens", rate_str(*row.decode_tps_bound_at_ctx), tokens_str(row.decode_ctx)));
    o += text(kLabelWidth + kBarArea + 8, y + 12,
              row.decode_tps_bound_at_ctx ? fmt::format("≤ {} ({} at ctx)", rate_str(*row.decode_tps_bound),
                                                        rate_str(*row.decode_tps_bound_at_ctx))
                                          : fmt::format("≤ {}", rate_str(*row.decode_tps_bound)),
              "value");
  }
  return o + "</svg></figure>\n";
}

constexpr const char* kStyle = R"css(
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 920px; color: #222; background: #fff; }
h1 { font-size: 20px; margin-bottom: 4px; }
.verdict { font-size: 17px; padding: 12px 16px; border-radius: 6px; margin: 12px 0; }
.verdict.ok { background: #e6f4ea; } .verdict.config { background: #fff4e0; } .verdict.hardware { background: #fde8e8; }
.finding { border-left: 4px solid #bbb; padding: 4px 12px; margin: 12px 0; }
.finding.error { border-color: #c62828; } .finding.warning { border-color: #ef8f00; }
.finding h3 { font-size: 15px; margin: 4px 0; } .fix-title { font-weight: 600; margin-top: 8px; }
pre { background: #f5f5f5; padding: 8px; overflow-x: auto; white-space: pre-wrap; }
figure { margin: 16px 0; } figcaption { font-weight: 600; margin-bottom: 4px; }
svg text { font: 12px system-ui, sans-serif; fill: #222; } svg text.bad { fill: #c62828; }
svg text.current { font-weight: 700; }
.seg-weights { fill: #4e79a7; } .seg-kv { fill: #f28e2b; } .seg-state { fill: #e15759; }
.seg-compute { fill: #76b7b2; } .seg-os { fill: #bab0ac; } .seg-other { fill: #b07aa1; }
.limit { stroke: #111; stroke-width: 2; } .gpu-limit { stroke: #c62828; stroke-width: 2; stroke-dasharray: 4 3; }
.bar-prefill { fill: #59a14f; } .bar-prefill.over { fill: #c62828; } .bar-range { fill: #b6d7a8; }
.bar-prefill.over + .bar-range { fill: #f2b8b8; }
.timeout { stroke: #111; stroke-width: 2; stroke-dasharray: 6 3; }
.bar-decode { fill: #c9d6e8; } .bar-decode-ctx { fill: #4e79a7; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: left; }
)css";

// After layout, the page records each chart's drawn size and how many of its bars have a width:
// a check that the charts render, readable from the DOM (headless browsers, tests).
constexpr const char* kLayoutCheck = R"js(
window.addEventListener('load', function () {
  var out = [];
  document.querySelectorAll('svg.chart').forEach(function (svg) {
    var box = svg.getBoundingClientRect(), bars = 0;
    svg.querySelectorAll('rect').forEach(function (r) { if (r.getBoundingClientRect().width > 0) bars++; });
    out.push(svg.id + ':' + Math.round(box.width) + 'x' + Math.round(box.height) + ':' + bars);
  });
  document.body.setAttribute('data-layout', out.join(' '));
});
)js";

}  // namespace

std::string render_html(const Report& r, const std::vector<CompareRow>& given_rows) {
  std::vector<CompareRow> rows = given_rows;
  if (rows.empty()) rows.push_back(compare_row(r.inputs, r.inputs.machine));
  const Inputs& in = r.inputs;
  const Verdict& v = r.verdict;
  std::string o = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  o += fmt::format("<title>hylo doctor: {} on {}</title>", esc(in.model.name), esc(in.machine.display_name));
  o += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'\">";
  o += fmt::format("<style>{}</style></head><body>\n", kStyle);
  o += fmt::format("<h1>hylo doctor: {} ({}) on {}</h1>\n", esc(in.model.name), esc(in.model.quant),
                   esc(in.machine.display_name));
  o += fmt::format("<div id=\"verdict\" class=\"verdict {}\"><strong>{}</strong>{}</div>\n",
                   v.problems == 0 ? "ok" : (v.hardware_problem ? "hardware" : "config"), esc(v.headline),
                   v.detail.empty() ? std::string() : "<br>" + esc(v.detail));
  o += fmt::format(
      "<p>Context {} tokens × {} sequence(s), KV cache {}; {}{}; model {} of weights, {} read per token. Machine: {} "
      "({:.0f} GiB{}).</p>\n",
      tokens_str(r.ctx), in.config.parallel, esc(tensor_type_name(in.config.kv_type)),
      in.config.prompt_tokens ? fmt::format("prompt {} tokens", tokens_str(*in.config.prompt_tokens))
                              : std::string("no prompt size given"),
      in.config.timeout_seconds ? fmt::format(", client timeout {}", seconds_str(*in.config.timeout_seconds))
                                : std::string(),
      esc(format_bytes(r.memory.weights_bytes)), esc(format_bytes(r.time.active_bytes_per_token)),
      esc(in.machine.display_name), gib(r.memory.available_bytes),
      r.memory.gpu_limit_bytes ? fmt::format(", GPU may use {:.0f} GiB", gib(*r.memory.gpu_limit_bytes))
                               : std::string());

  o += "<h2>Charts</h2>\n";
  o += memory_chart(r, rows);
  o += prefill_chart(r, rows);
  o += decode_chart(r, rows);
  if (!r.time.prefill_calibration.empty())
    o += fmt::format("<p>Prefill ranges: {}.</p>\n", esc(r.time.prefill_calibration));
  o += "<h2>Findings</h2>\n";
  if (r.findings.empty()) o += "<p>None.</p>\n";
  for (size_t i = 0; i < r.findings.size(); ++i) {
    const Finding& f = r.findings[i];
    o += fmt::format("<div class=\"finding {}\" id=\"finding-{}\"><h3>{}: {}</h3><p>{}</p>", severity_name(f.severity),
                     esc(f.id), severity_name(f.severity), esc(f.title.empty() ? f.id : f.title), esc(f.message));
    if (!f.fix.empty()) o += fmt::format("<p><em>Fix:</em> {}</p>", esc(f.fix));
    // The same pasteable fix as an earlier finding is named, not repeated.
    const Finding* same = nullptr;
    for (size_t k = 0; k < i && same == nullptr && !f.fixes.empty(); ++k) {
      const std::vector<Fix>& e = r.findings[k].fixes;
      if (e.size() == f.fixes.size() && std::equal(e.begin(), e.end(), f.fixes.begin(), [](const Fix& a, const Fix& b) {
            return a.kind == b.kind && a.text == b.text;
          }))
        same = &r.findings[k];
    }
    if (same != nullptr)
      o += fmt::format("<p>To paste: the same as <a href=\"#finding-{}\">{}</a> above.</p>", esc(same->id),
                       esc(same->title.empty() ? same->id : same->title));
    else
      for (const Fix& x : f.fixes)
        o += fmt::format("<div class=\"fix-title\">{}</div><pre class=\"fix {}\">{}</pre>", esc(x.title), esc(x.kind),
                         esc(x.text));
    o += "</div>\n";
  }

  o += fmt::format("<script>{}</script>\n</body></html>\n", kLayoutCheck);
  return o;
}

}  // namespace hylo::doctor
