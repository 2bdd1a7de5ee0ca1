// The HTML renderer: one self-contained page (inline CSS and SVG, no script,
// no external resources) so a report can be mailed, attached to CI runs or
// opened offline and still read at a glance.
//
// Depends only on report.h's plain structs: it computes its own counts and
// renders rules itself, so it compiles and links without LibTorch.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <locale>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/report.h"
#include "report/report_css.h"
#include "base/text.h"

namespace bertq {
namespace {

// ---------------------------------------------------------------------------
// Text helpers

// Every string from the report goes through this: paths, reasons and JSON can
// hold any character, and the page must not be broken (or scripted) by them.
std::string esc(std::string_view s) {
  std::string out;
  out.reserve(s.size());
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
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string printf_double(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// Scales and errors span many decades: 3 significant digits, "1.23e-03".
std::string sci3(double v) { return printf_double("%.2e", v); }

// SQNR with one decimal; infinite when the weight was reproduced exactly.
std::string db1(double v) {
  if (std::isinf(v)) return v > 0 ? "&infin;" : "-&infin;";
  return printf_double("%.1f", v);
}

// "12,345,678": byte counts are exact, grouping makes them readable.
std::string grouped(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string signed_grouped(int64_t n) {
  if (n >= 0) return grouped(static_cast<uint64_t>(n));
  return "-" + grouped(static_cast<uint64_t>(-(n + 1)) + 1);  // safe for INT64_MIN
}

// Short byte amounts for chart labels; the exact number goes in the tooltip.
std::string short_bytes(int64_t n) {
  const double a = std::fabs(static_cast<double>(n));
  const double v = static_cast<double>(n);
  if (a >= 1e6) return printf_double("%.2f MB", v / 1e6);
  if (a >= 1e3) return printf_double("%.1f kB", v / 1e3);
  return std::to_string(n) + " B";
}

// Axis labels are round numbers: "50 kB", not "50.0 kB".
std::string tick_bytes(double v) {
  if (v >= 1e6) return printf_double("%g MB", v / 1e6);
  if (v >= 1e3) return printf_double("%g kB", v / 1e3);
  return printf_double("%g B", v);
}

// Zero points are integers except for the float-qparams scheme.
std::string zero_point_text(double v) { return printf_double("%.6g", v); }

// Same text as Rule::describe(), which lives in plan.cpp and needs LibTorch.
std::string rule_text(const Rule& rule) {
  switch (rule.kind) {
    case RuleKind::OwnKey:
      return "own key \"" + rule.key + "\"";
    case RuleKind::Inherited:
      return "inherited from \"" + rule.key + "\"";
    case RuleKind::Global:
      return "global \"\"";
    case RuleKind::OptedOut:
      return "null at \"" + rule.key + "\"";
    case RuleKind::NoQConfig:
      return "no qconfig";
  }
  return "?";
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

// Short hash for the header; the full one stays reachable in the tooltip.
std::string sha_html(const std::string& sha, bool written) {
  if (sha.empty())
    return written ? "<span class=\"muted\">unknown</span>"
                   : "<span class=\"muted\">not written</span>";
  const std::string shown = sha.size() > 12 ? esc(sha.substr(0, 12)) + "&hellip;" : esc(sha);
  return "<code title=\"" + esc(sha) + "\">" + shown + "</code>";
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// A round tick step giving at most ~5 gridlines up to `max` (1, 2 or 5 x 10^k).
double nice_step(double max) {
  if (!(max > 0) || !std::isfinite(max)) return 1;
  const double raw = max / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

// Rough width of monospace SVG text, to size the label column before drawing
// (SVG cannot measure text without a script).
double mono_width(size_t chars, double font_px) {
  return static_cast<double>(chars) * font_px * 0.6;
}

// ---------------------------------------------------------------------------
// Derived numbers

// The file sizes to compare. A dry run writes nothing, so the estimate stands
// in for the output's size.
uint64_t input_total(const Report& r) {
  return r.input.bytes ? r.input.bytes : r.input_sizes.total;
}
uint64_t output_total(const Report& r) {
  if (r.dry_run || r.output.bytes == 0) return r.output_sizes.total;
  return r.output.bytes;
}

struct Segment {
  const char* name;
  const char* css;  // class giving the fill colour, shared by the bar and the legend
  uint64_t SizeBreakdown::*field;
};

constexpr Segment kSegments[] = {
    {"modules", "seg-mod", &SizeBreakdown::modules},
    {"other tensors", "seg-oth", &SizeBreakdown::other_tensors},
    {"code and metadata", "seg-code", &SizeBreakdown::code_and_metadata},
    {"zip overhead", "seg-zip", &SizeBreakdown::zip_overhead},
};

// ---------------------------------------------------------------------------
// Sections

void write_head(const Report& r, std::ostream& out) {
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         "<meta name=\"generator\" content=\"bertq "
      << esc(r.bertq_version) << "\">\n<title>bertq report: " << esc(r.output.path) << "</title>\n";
  // Colours come from one palette so bars, legend swatches and badges agree.
  out << "<style>\n" << report_css() << "</style>\n</head>\n<body>\n";
}

void write_header(const Report& r, std::ostream& out) {
  size_t quantized = 0;
  for (const auto& m : r.modules) quantized += m.plan.quantized ? 1 : 0;
  const size_t left_float = r.modules.size() - quantized;
  const uint64_t in_b = input_total(r), out_b = output_total(r);
  const char* est = r.dry_run ? "<span class=\"est\">estimated (dry run)</span>" : "";

  out << "<header>\n<h1>bertq quantization report</h1>\n";
  out << "<p class=\"paths\"><code>" << esc(r.input.path)
      << "</code><span class=\"arrow\">&rarr;</span><code>" << esc(r.output.path) << "</code>"
      << est << "</p>\n";
  out << "<dl class=\"facts\">\n";
  auto fact = [&](const std::string& name, const std::string& value_html) {
    out << "<div class=\"fact\"><dt>" << name << "</dt><dd>" << value_html << "</dd></div>\n";
  };
  std::string ratio = "<span class=\"muted\">n/a</span>";
  if (in_b > 0)
    ratio =
        "<span class=\"big\">" +
        printf_double("%.1f%%", 100.0 * static_cast<double>(out_b) / static_cast<double>(in_b)) +
        "</span> <small>of the input</small>";
  fact("size before", esc(format_mb(in_b)) + " <small>" + grouped(in_b) + " B</small>");
  fact("size after" + std::string(r.dry_run ? " (estimated)" : ""),
       esc(format_mb(out_b)) + " <small>" + grouped(out_b) + " B</small>");
  fact("compression (output / input)", ratio);
  fact("modules quantized / left float",
       "<span class=\"big q\">" + std::to_string(quantized) +
           "</span> <span class=\"muted\">/</span> <span class=\"big f\">" +
           std::to_string(left_float) + "</span>");
  fact("mode", esc(r.mode_text()));
  fact("engine", esc(r.engine));
  fact("bertq", esc(r.bertq_version));
  fact("LibTorch", esc(r.libtorch_version));
  fact("input SHA-256", sha_html(r.input.sha256, true));
  fact("output SHA-256", sha_html(r.output.sha256, !r.dry_run));
  out << "</dl>\n</header>\n";
}

// Two stacked bars to one scale, so the shrink is visible as length.
void write_size_bars(const Report& r, std::ostream& out) {
  out << "<section>\n<h2>Where the bytes go</h2>\n";
  const uint64_t scale_total = std::max({r.input_sizes.total, r.output_sizes.total, uint64_t{1}});
  const double label_w = 70, bar_w = 780, value_w = 150, row_h = 30, gap = 12;
  const double width = label_w + bar_w + value_w;
  const double height = 2 * row_h + gap;
  out << "<div class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width
      << "\" height=\"" << height << "\" viewBox=\"0 0 " << width << ' ' << height
      << "\" role=\"img\" aria-label=\"file size before and after\">\n";
  struct Row {
    const char* label;
    const SizeBreakdown* sizes;
    bool estimated;
  };
  const Row rows[] = {{"before", &r.input_sizes, false},
                      {"after", &r.output_sizes, r.dry_run}};
  for (size_t i = 0; i < 2; ++i) {
    const Row& row = rows[i];
    const double y = static_cast<double>(i) * (row_h + gap);
    out << "<text class=\"head\" x=\"0\" y=\"" << y + row_h / 2 + 4 << "\">" << row.label
        << "</text>\n";
    double x = label_w;
    for (const auto& seg : kSegments) {
      const uint64_t b = row.sizes->*seg.field;
      if (b == 0) continue;
      const double w = bar_w * static_cast<double>(b) / static_cast<double>(scale_total);
      out << "<g><title>" << row.label << ", " << seg.name << ": " << grouped(b) << " B ("
          << esc(format_mb(b)) << ")</title><rect class=\"" << seg.css << "\" x=\"" << x
          << "\" y=\"" << y << "\" width=\"" << std::max(w, 0.5) << "\" height=\"" << row_h
          << "\"/>";
      // Label inside the segment only where it fits.
      const std::string label = format_mb(b);
      if (w > mono_width(label.size(), 11) + 10)
        out << "<text class=\"in\" x=\"" << x + 5 << "\" y=\"" << y + row_h / 2 + 4 << "\">"
            << esc(label) << "</text>";
      out << "</g>\n";
      x += w;
    }
    out << "<text x=\"" << x + 8 << "\" y=\"" << y + row_h / 2 + 4 << "\">"
        << esc(format_mb(row.sizes->total)) << (row.estimated ? " (est.)" : "") << "</text>\n";
  }
  out << "</svg></div>\n";

  // The legend doubles as the exact numbers.
  out << "<table class=\"legend\"><thead><tr><th></th><th class=\"num\">before (B)</th>"
         "<th class=\"num\">after (B)"
      << (r.dry_run ? ", estimated" : "")
      << "</th><th class=\"num\">change (B)</th></tr></thead><tbody>\n";
  auto legend_row = [&](const std::string& name_html, uint64_t before, uint64_t after) {
    const int64_t change = static_cast<int64_t>(after) - static_cast<int64_t>(before);
    out << "<tr><td>" << name_html << "</td><td class=\"num\">" << grouped(before)
        << "</td><td class=\"num\">" << grouped(after) << "</td><td class=\"num\">"
        << (change > 0 ? "+" : "") << signed_grouped(change) << "</td></tr>\n";
  };
  for (const auto& seg : kSegments)
    legend_row(std::string("<span class=\"swatch ") + seg.css + "\"></span>" + seg.name,
               r.input_sizes.*seg.field, r.output_sizes.*seg.field);
  legend_row("<b>total</b>", r.input_sizes.total, r.output_sizes.total);
  out << "</tbody></table>\n</section>\n";
}

// One row per quantized module: how faithful (SQNR) and how much it saved.
void write_layer_chart(const Report& r, std::ostream& out) {
  out << "<section>\n<h2>Per layer: weight SQNR and bytes saved</h2>\n";
  std::vector<const ModuleReport*> rows;
  for (const auto& m : r.modules)
    if (m.plan.quantized) rows.push_back(&m);
  if (rows.empty()) {
    out << "<p class=\"muted\">No module was quantized.</p>\n</section>\n";
    return;
  }

  size_t longest = 0;
  double max_sqnr = 0;
  int64_t max_saved = 0;
  for (const ModuleReport* m : rows) {
    longest = std::max(longest, m->plan.path.size());
    if (m->sqnr_db && std::isfinite(*m->sqnr_db)) max_sqnr = std::max(max_sqnr, *m->sqnr_db);
    max_saved = std::max(
        max_saved, static_cast<int64_t>(m->bytes_before) - static_cast<int64_t>(m->bytes_after));
  }
  const double sqnr_step = nice_step(max_sqnr);
  const double sqnr_scale = std::max(sqnr_step, std::ceil(max_sqnr / sqnr_step) * sqnr_step);
  const double saved_step = nice_step(static_cast<double>(max_saved));
  const double saved_scale =
      std::max(saved_step, std::ceil(static_cast<double>(max_saved) / saved_step) * saved_step);

  const double label_w = std::max(120.0, mono_width(longest, 11) + 16);
  const double bar_w = 300, value_w = 80, col_gap = 24;
  const double sqnr_x = label_w, saved_x = label_w + bar_w + value_w + col_gap;
  const double head_h = 40, row_h = 18, bar_h = 11;
  const double width = saved_x + bar_w + value_w;
  const double height = head_h + row_h * static_cast<double>(rows.size()) + 4;

  out << "<div class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width
      << "\" height=\"" << height << "\" viewBox=\"0 0 " << width << ' ' << height
      << "\" role=\"img\" aria-label=\"per-layer SQNR and bytes saved\">\n";
  out << "<text class=\"head\" x=\"0\" y=\"14\">module</text>\n";
  out << "<text class=\"head\" x=\"" << sqnr_x << "\" y=\"14\">weight SQNR (dB)</text>\n";
  out << "<text class=\"head\" x=\"" << saved_x << "\" y=\"14\">bytes saved</text>\n";

  // Gridlines with their values, drawn first so bars cover them.
  const double grid_bottom = height - 2;
  auto grid = [&](double x0, double scale, double step, bool bytes) {
    for (double v = 0; v <= scale + step / 2; v += step) {
      const double x = x0 + bar_w * v / scale;
      out << "<line class=\"grid\" x1=\"" << x << "\" y1=\"" << head_h - 6 << "\" x2=\"" << x
          << "\" y2=\"" << grid_bottom << "\"/><text class=\"tick\" x=\"" << x << "\" y=\""
          << head_h - 9 << "\" text-anchor=\"middle\">"
          << (bytes ? tick_bytes(v) : printf_double("%g", v)) << "</text>\n";
    }
  };
  for (size_t i = 0; i < rows.size(); i += 2)  // zebra behind every other row
    out << "<rect class=\"zebra\" x=\"0\" y=\"" << head_h + row_h * static_cast<double>(i)
        << "\" width=\"" << width << "\" height=\"" << row_h << "\"/>\n";
  grid(sqnr_x, sqnr_scale, sqnr_step, false);
  grid(saved_x, saved_scale, saved_step, true);

  for (size_t i = 0; i < rows.size(); ++i) {
    const ModuleReport& m = *rows[i];
    const double y = head_h + row_h * static_cast<double>(i);
    const double ty = y + row_h / 2 + 4, by = y + (row_h - bar_h) / 2;
    const int64_t saved =
        static_cast<int64_t>(m.bytes_before) - static_cast<int64_t>(m.bytes_after);
    const bool has_sqnr = m.sqnr_db && !std::isnan(*m.sqnr_db);

    std::ostringstream tip;
    tip << m.plan.path << " (" << m.plan.op << "): SQNR "
        << (has_sqnr ? (std::isinf(*m.sqnr_db) ? std::string("infinite")
                                               : printf_double("%.2f", *m.sqnr_db) + " dB")
                     : std::string("n/a"))
        << ", saved " << signed_grouped(saved) << " B (" << grouped(m.bytes_before) << " -> "
        << grouped(m.bytes_after) << ")";
    out << "<g><title>" << esc(tip.str()) << "</title>";
    out << "<text class=\"mono\" x=\"0\" y=\"" << ty << "\">" << esc(m.plan.path) << "</text>";
    if (has_sqnr) {
      // Infinite SQNR (exact weights) fills the column; negative draws nothing.
      const double v =
          std::isinf(*m.sqnr_db) ? (*m.sqnr_db > 0 ? sqnr_scale : 0) : std::max(0.0, *m.sqnr_db);
      const double w = bar_w * std::min(v, sqnr_scale) / sqnr_scale;
      out << "<rect class=\"bar-sqnr\" x=\"" << sqnr_x << "\" y=\"" << by << "\" width=\"" << w
          << "\" height=\"" << bar_h << "\" rx=\"1.5\"/>";
      out << "<text x=\"" << sqnr_x + w + 5 << "\" y=\"" << ty << "\">" << db1(*m.sqnr_db)
          << "</text>";
    } else {
      out << "<text class=\"tick\" x=\"" << sqnr_x + 2 << "\" y=\"" << ty << "\">n/a</text>";
    }
    // Growth (negative savings) clamps to no bar, but the number is printed.
    const double w = saved > 0 ? bar_w * static_cast<double>(saved) / saved_scale : 0;
    out << "<rect class=\"bar-saved\" x=\"" << saved_x << "\" y=\"" << by << "\" width=\"" << w
        << "\" height=\"" << bar_h << "\" rx=\"1.5\"/>";
    out << "<text" << (saved < 0 ? " class=\"neg\"" : "") << " x=\"" << saved_x + w + 5 << "\" y=\""
        << ty << "\">" << esc(short_bytes(saved)) << "</text>";
    out << "</g>\n";
  }
  out << "</svg></div>\n</section>\n";
}

void write_warnings(const Report& r, std::ostream& out) {
  if (r.warnings.empty()) return;
  out << "<section>\n<h2>Warnings (" << r.warnings.size() << ")</h2>\n<ul class=\"warnings\">\n";
  for (const auto& w : r.warnings) out << "<li>" << esc(w) << "</li>\n";
  out << "</ul>\n</section>\n";
}

void write_module_table(const Report& r, std::ostream& out) {
  out << "<section>\n<h2>Modules (" << r.modules.size() << ")</h2>\n";
  if (r.modules.empty()) {
    out << "<p class=\"muted\">No weight-bearing modules.</p>\n</section>\n";
    return;
  }
  out << "<div class=\"table-box\"><table class=\"modules\">\n<thead><tr>"
         "<th>path</th><th>type</th><th>state</th><th>rule</th><th>weight<br>shape</th>"
         "<th>dtype</th><th>qscheme</th><th class=\"num\">axis</th>"
         "<th class=\"num\">scale<br>min</th><th class=\"num\">scale<br>median</th>"
         "<th class=\"num\">scale<br>max</th><th class=\"num\">zero pt<br>min</th>"
         "<th class=\"num\">zero pt<br>max</th><th class=\"num\">bytes<br>before</th>"
         "<th class=\"num\">bytes<br>after</th><th class=\"num\">max abs<br>error</th>"
         "<th class=\"num\">SQNR<br>dB</th></tr></thead>\n<tbody>\n";
  for (const auto& m : r.modules) {
    const ModulePlan& p = m.plan;
    out << "<tr><td class=\"path\">" << (p.path.empty() ? std::string("(root)") : esc(p.path))
        << "</td>";
    out << "<td>" << esc(p.type_name) << "</td>";
    if (p.quantized)
      out << "<td class=\"q\">" << esc(p.op) << "</td>";
    else
      out << "<td class=\"f\">float: " << esc(p.float_reason) << "</td>";
    out << "<td>" << esc(rule_text(p.rule)) << "</td>";
    out << "<td>" << (p.weight_shape.empty() ? "" : shape_text(p.weight_shape)) << "</td>";
    out << "<td>" << esc(m.dtype) << "</td><td>" << esc(m.qscheme) << "</td>";
    out << "<td class=\"num\">" << (m.axis ? std::to_string(*m.axis) : "") << "</td>";
    if (m.scales.empty()) {
      out << "<td class=\"num\"></td><td class=\"num\"></td><td class=\"num\"></td>";
    } else {
      const auto [lo, hi] = std::minmax_element(m.scales.begin(), m.scales.end());
      out << "<td class=\"num\">" << sci3(*lo) << "</td><td class=\"num\">"
          << sci3(median_of(m.scales)) << "</td><td class=\"num\">" << sci3(*hi) << "</td>";
    }
    if (m.zero_points.empty()) {
      out << "<td class=\"num\"></td><td class=\"num\"></td>";
    } else {
      const auto [lo, hi] = std::minmax_element(m.zero_points.begin(), m.zero_points.end());
      out << "<td class=\"num\">" << zero_point_text(*lo) << "</td><td class=\"num\">"
          << zero_point_text(*hi) << "</td>";
    }
    out << "<td class=\"num\">" << grouped(m.bytes_before) << "</td><td class=\"num\">"
        << grouped(m.bytes_after) << "</td>";
    out << "<td class=\"num\">" << (m.max_abs_error ? sci3(*m.max_abs_error) : "") << "</td>";
    out << "<td class=\"num\">" << (m.sqnr_db ? db1(*m.sqnr_db) : "") << "</td></tr>\n";
  }
  out << "</tbody>\n</table></div>\n</section>\n";
}

void write_qconfig(const Report& r, std::ostream& out) {
  out << "<section>\n<h2>QConfig</h2>\n<h3>resolved (as applied)</h3>\n<pre>"
      << esc(to_json(r.qconfig).dump(2)) << "</pre>\n";
  if (!r.qconfig_text.empty())
    out << "<h3>given</h3>\n<pre>" << esc(r.qconfig_text) << "</pre>\n";
  else
    out << "<p class=\"muted\">No qconfig file given: the default dict was used.</p>\n";
  out << "</section>\n";
}

}  // namespace

void print_html(const Report& report, std::ostream& dest) {
  // Built in a classic-locale buffer: SVG coordinates must use '.' and no
  // digit grouping whatever locale the caller's stream carries.
  std::ostringstream out;
  out.imbue(std::locale::classic());
  write_head(report, out);
  write_header(report, out);
  write_size_bars(report, out);
  write_layer_chart(report, out);
  write_warnings(report, out);
  write_module_table(report, out);
  write_qconfig(report, out);
  out << "<footer>Generated by bertq " << esc(report.bertq_version) << " with LibTorch "
      << esc(report.libtorch_version) << ".</footer>\n</body>\n</html>\n";
  dest << out.str();
}

}  // namespace bertq
