// The HTML renderer: one self-contained page (inline CSS and SVG, no script,
// no external resources) so a report can be mailed, attached to CI runs or
// opened offline and still read at a glance.
//
// The page is a diagnostic: failed CI guards and warnings come first, then
// the quantized modules ranked worst SQNR first on an axis that spans only
// the measured values (so 1-3 dB differences show), then where the bytes
// went, the module table (in module order, worst modules marked) and the
// qconfig. Everything fits the window's width: charts are SVGs that scale
// down, table cells wrap (tests/scripts/check-html-layout.sh checks it).
//
// Depends only on report.h's plain structs: it computes its own counts and
// renders rules itself, so it compiles and links without LibTorch.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <locale>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/text.h"
#include "report/html.h"
#include "report/report.h"
#include "report/report_css.h"

namespace bertq {
namespace {

// ---------------------------------------------------------------------------
// Text helpers

// A module path that may wrap after its dots (and only there), so a narrow
// column breaks "bert.encoder.layer.11.attention.output.dense" into readable
// pieces instead of scrolling.
Html path_html(const std::string& path) {
  Html out;
  if (path.empty()) {
    out << "(root)";
    return out;
  }
  const std::string_view p(path);
  size_t start = 0;
  for (size_t dot; (dot = p.find('.', start)) != std::string_view::npos; start = dot + 1)
    out << p.substr(start, dot + 1 - start) << "<wbr>"_html;
  out << p.substr(start);
  return out;
}

// A command line that wraps between its arguments, not at the hyphens inside
// them: each word is an inline block (one wider than the line still wraps
// inside).
Html command_html(const std::string& command) {
  Html out;
  const std::string_view c(command);
  size_t start = 0;
  while (start <= c.size()) {
    size_t space = c.find(' ', start);
    if (space == std::string_view::npos) space = c.size();
    if (space > start) out << "<span class=\"arg\">"_html << c.substr(start, space - start) << "</span>"_html;
    if (space < c.size()) out << " ";
    start = space + 1;
  }
  return out;
}

// Long labels in SVG (which cannot wrap) are cut in the middle: module paths
// differ at both ends. The full text goes in the tooltip.
std::string elide_middle(const std::string& s, size_t n) {
  if (s.size() <= n || n < 7) return s;
  const size_t tail = (n - 1) * 3 / 5, head = n - 1 - tail;
  return s.substr(0, head) + "\xe2\x80\xa6" + s.substr(s.size() - tail);  // U+2026
}

std::string printf_double(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// Scales and errors: three significant digits, as the text table and
// `inspect` print them ("0.000361", "3.6e-05").
std::string sci3(double v) { return printf_double("%.3g", v); }

// SQNR with one decimal; infinite when the weight was reproduced exactly.
Html db1(double v) {
  Html out;
  if (std::isnan(v))
    out << "n/a";
  else if (std::isinf(v))
    out << (v > 0 ? "&infin;"_html : "-&infin;"_html);
  else
    out << printf_double("%.1f", v);
  return out;
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

// Axis labels are round numbers: "50 kB", not "50.0 kB".
std::string tick_bytes(double v) {
  if (v >= 1e6) return printf_double("%g MB", v / 1e6);
  if (v >= 1e3) return printf_double("%g kB", v / 1e3);
  return printf_double("%g B", v);
}

// Tick values are multiples of a round step; %g drops float noise (44.000001).
std::string tick_db(double v) {
  if (std::fabs(v) < 1e-9) v = 0;
  return printf_double("%.4g", v);
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
    case RuleKind::Flag:
      return rule.key;
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

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// A round tick step (1, 2 or 5 x 10^k) giving at most ~5 intervals over `span`.
double nice_step(double span) {
  if (!(span > 0) || !std::isfinite(span)) return 1;
  const double raw = span / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw * (1 - 1e-9)) return m * mag;
  return 10 * mag;
}

// Rough width of monospace SVG text, to size the label column before drawing
// (SVG cannot measure text without a script).
double mono_width(size_t chars, double font_px) { return static_cast<double>(chars) * font_px * 0.6; }

// An <svg> that scales to the page: as wide as its container up to its
// natural width, the height following from the viewBox.
void open_svg(HtmlWriter& out, double width, double height, const char* label) {
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"fit\" width=\"100%\" viewBox=\"0 0 "_html << width << ' '
      << height << "\" style=\"max-width:"_html << width
      << "px\" preserveAspectRatio=\"xMinYMin meet\" role=\"img\" aria-label=\""_html << label << "\">\n"_html;
}

// ---------------------------------------------------------------------------
// Derived numbers

// The output was measured: written, or written to a temporary copy for a dry
// run. When a guard fails nothing is written and the output sizes are zero.
bool output_measured(const Report& r) { return r.output_sizes.total > 0; }

bool any_guard_failed(const Report& r) {
  return std::any_of(r.guards.begin(), r.guards.end(), [](const GuardResult& g) { return !g.passed; });
}

// Why there are no output sizes, for the places that would show them.
std::string not_written_text(const Report& r) {
  return any_guard_failed(r) ? "not written (a guard failed)" : "not measured";
}

// The file sizes to compare. A dry run writes nothing, so the measurement of
// its temporary copy stands in for the output's size.
uint64_t input_total(const Report& r) { return r.input.bytes ? r.input.bytes : r.input_sizes.total; }
uint64_t output_total(const Report& r) {
  if (r.dry_run || r.output.bytes == 0) return r.output_sizes.total;
  return r.output.bytes;
}

bool is_shared(const ModuleReport& m) { return m.bytes_after == 0 && m.bytes_shared > 0; }

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
// The diagnosis: which quantized modules lost the most precision.

// At most this many of the lowest-SQNR modules are marked (a third of them
// when there are fewer than 15, none when fewer than 3: ranking two modules
// says nothing).
constexpr size_t kMaxLowest = 5;
// Modules this far below the median are outliers whatever their rank.
constexpr double kOutlierDb = 3.0;
// The SQNR axis spans at least this many dB.
constexpr double kMinAxisDb = 2.0;

enum class Flag { None, Lowest, Outlier };

struct Diagnosis {
  std::vector<const ModuleReport*> ranked;  // quantized modules, worst SQNR first
  std::unordered_map<const ModuleReport*, Flag> flags;
  size_t lowest = 0;    // how many of the lowest are marked (outliers among them in red)
  size_t outliers = 0;  // modules marked as more than kOutlierDb below the median
  size_t finite = 0;    // modules with a finite SQNR (the statistics below)
  double min = 0, median = 0, max = 0;

  Flag flag(const ModuleReport& m) const {
    const auto it = flags.find(&m);
    return it == flags.end() ? Flag::None : it->second;
  }
  double threshold() const { return median - kOutlierDb; }
};

// Sort key: -inf (nothing left of the weight) first, then finite values
// ascending, then +inf (reproduced exactly), then no SQNR at all.
int sqnr_class(const ModuleReport& m) {
  if (!m.sqnr_db || std::isnan(*m.sqnr_db)) return 3;
  if (std::isinf(*m.sqnr_db)) return *m.sqnr_db < 0 ? 0 : 2;
  return 1;
}

Diagnosis diagnose(const Report& r) {
  Diagnosis d;
  std::vector<double> values;
  for (const auto& m : r.modules) {
    if (!m.plan.quantized) continue;
    d.ranked.push_back(&m);
    if (sqnr_class(m) == 1) values.push_back(*m.sqnr_db);
  }
  // Stable: equal values keep module order.
  std::stable_sort(d.ranked.begin(), d.ranked.end(), [](const ModuleReport* a, const ModuleReport* b) {
    const int ca = sqnr_class(*a), cb = sqnr_class(*b);
    if (ca != cb) return ca < cb;
    return ca == 1 && *a->sqnr_db < *b->sqnr_db;
  });
  d.finite = values.size();
  if (values.empty()) return d;
  d.min = *std::min_element(values.begin(), values.end());
  d.max = *std::max_element(values.begin(), values.end());
  d.median = median_of(values);
  // The lowest are marked only when the spread means something: modules
  // within a few dB of each other are alike, whatever their order.
  const size_t want = values.size() < 3 || d.max - d.min < kOutlierDb ? 0 : std::min(kMaxLowest, values.size() / 3);
  d.lowest = want;
  for (size_t i = 0; i < d.ranked.size(); ++i) {
    const ModuleReport* m = d.ranked[i];
    const int c = sqnr_class(*m);
    if (c > 1) break;
    if (c == 0 || *m->sqnr_db < d.threshold()) {
      d.flags[m] = Flag::Outlier;
      ++d.outliers;
    } else if (i < want) {
      d.flags[m] = Flag::Lowest;
    }
  }
  return d;
}

const char* flag_class(Flag f) {
  switch (f) {
    case Flag::Lowest:
      return "low";
    case Flag::Outlier:
      return "out";
    case Flag::None:
      break;
  }
  return "";
}

// The SQNR axis: round values just below the lowest and at or above the
// highest finite SQNR, so the spread fills the chart.
struct Axis {
  double lo = 0, hi = 1, step = 1;
  double x(double v, double x0, double w) const { return x0 + w * (v - lo) / (hi - lo); }
};

Axis sqnr_axis(const Diagnosis& d) {
  Axis a;
  if (d.finite == 0) return a;  // nothing to place; bars show n/a or infinity
  // The axis spans at least kMinAxisDb, so that a few tenths of a dB between
  // near-identical layers do not fill the chart as if they mattered.
  const double span = std::max(d.max - d.min, kMinAxisDb);
  a.step = nice_step(span);
  a.lo = std::floor(d.min / a.step) * a.step;
  // The lowest bar keeps at least a quarter step, so it reads as a bar.
  if (a.lo > d.min - a.step / 4) a.lo -= a.step;
  a.hi = std::ceil(d.max / a.step) * a.step;
  if (a.hi <= a.lo) a.hi = a.lo + a.step;
  // Too short: widened a step at a time, alternately above and below.
  for (int k = 0; a.hi - a.lo < kMinAxisDb - a.step / 2; ++k) {
    if (k % 2 == 0)
      a.hi += a.step;
    else
      a.lo -= a.step;
  }
  return a;
}

// ---------------------------------------------------------------------------
// Sections

void write_head(const Report& r, HtmlWriter& out) {
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         "<meta name=\"generator\" content=\"bertq "_html
      << r.bertq_version << "\">\n<title>"_html << (any_guard_failed(r) ? "guard failed: " : "")
      << "bertq report: " << r.output.path << "</title>\n"_html;
  // Colours come from one palette so bars, legend swatches and badges agree.
  out << "<style>\n"_html << Markup::embedded(report_css()) << "</style>\n</head>\n<body>\n"_html;
}

// Short hash for the header; the full one stays reachable in the tooltip.
Html sha_html(const std::string& sha, const std::string& missing) {
  Html out;
  if (sha.empty()) {
    out << "<span class=\"muted\">"_html << missing << "</span>"_html;
    return out;
  }
  out << "<code title=\""_html << sha << "\">"_html << sha.substr(0, 12);
  if (sha.size() > 12) out << "&hellip;"_html;
  out << "</code>"_html;
  return out;
}

// Title, files, when and how it ran.
void write_title(const Report& r, HtmlWriter& out) {
  out << "<header>\n<h1>bertq quantization report</h1>\n"_html;
  out << "<p class=\"paths\"><code>"_html << r.input.path << "</code><span class=\"arrow\">&rarr;</span><code>"_html
      << r.output.path << "</code>"_html;
  if (r.dry_run)
    out << "<span class=\"badge est\" title=\"--dry-run: the sizes are exact, measured on a "
           "temporary copy that was deleted\">dry run: nothing written</span>"_html;
  else if (!output_measured(r) && any_guard_failed(r))
    out << "<span class=\"badge bad\">not written: a guard failed</span>"_html;
  out << "</p>\n<dl class=\"run\">\n<div><dt>created</dt><dd>"_html;
  if (r.created.empty())
    out << "<span class=\"muted\">unknown</span>"_html;
  else
    out << "<time datetime=\""_html << r.created << "\">"_html << r.created << "</time>"_html;
  out << "</dd></div>\n<div class=\"cmd\"><dt>command</dt><dd>"_html;
  if (r.command_line.empty())
    out << "<span class=\"muted\">not recorded</span>"_html;
  else
    out << "<code>"_html << command_html(r.command_line) << "</code>"_html;
  out << "</dd></div>\n</dl>\n"_html;
}

// Failed guards and warnings: the first thing on the page, because they are
// why someone opens the report from a failed CI run.
void write_alerts(const Report& r, HtmlWriter& out) {
  std::vector<const GuardResult*> failed, passed;
  for (const auto& g : r.guards) (g.passed ? passed : failed).push_back(&g);
  if (!failed.empty()) {
    out << "<section class=\"alert fail\" role=\"alert\">\n<h2>CI guards: "_html << failed.size() << " of "
        << r.guards.size() << " failed</h2>\n<ul>\n"_html;
    for (const GuardResult* g : failed) {
      out << "<li><strong>guard failed:</strong> <code>"_html << g->name << "</code>"_html;
      if (!g->message.empty()) out << "<div class=\"msg\">"_html << g->message << "</div>"_html;
      out << "</li>\n"_html;
    }
    out << "</ul>\n"_html;
    if (!r.dry_run && !output_measured(r))
      out << "<p>The output model was not written; this report was, to show why.</p>\n"_html;
    if (!passed.empty()) {
      out << "<p class=\"passed\">passed:"_html;
      for (const GuardResult* g : passed) out << " <code class=\"chip\">"_html << g->name << "</code>"_html;
      out << "</p>\n"_html;
    }
    out << "</section>\n"_html;
  } else if (!passed.empty()) {
    // What was checked, in words: the guard "nothing quantized" passing
    // means that something was.
    out << "<p class=\"alert ok\"><strong>&#10003; "_html << passed.size()
        << (passed.size() == 1 ? " CI guard" : " CI guards") << " passed:</strong>"_html;
    for (size_t i = 0; i < passed.size(); ++i)
      out << (i ? "; "_html : " "_html) << guard_check_text(passed[i]->name) << " <code class=\"chip\">"_html
          << passed[i]->name << "</code>"_html;
    out << "</p>\n"_html;
  }
  if (!r.warnings.empty()) {
    out << "<section class=\"alert warn\">\n<h2>Warnings ("_html << r.warnings.size() << ")</h2>\n<ul>\n"_html;
    for (const auto& w : r.warnings) out << "<li>"_html << w << "</li>\n"_html;
    out << "</ul>\n</section>\n"_html;
  }
  for (const auto& n : r.notes) out << "<p class=\"note\">"_html << n << "</p>\n"_html;
  for (const auto& g : r.fusions) {
    out << "<p class=\"note\">Fused into <code>"_html << g.packed_attr << "</code>:"_html;
    for (const auto& m : g.modules)
      out << " <code class=\"chip\">"_html << (m.empty() ? "<root>" : m) << "</code>"_html;
    out << "</p>\n"_html;
  }
}

void write_facts(const Report& r, const Diagnosis& d, HtmlWriter& out) {
  const size_t quantized = d.ranked.size();
  const size_t left_float = r.modules.size() - quantized;
  const uint64_t in_b = input_total(r), out_b = output_total(r);
  const bool measured = output_measured(r);

  out << "<dl class=\"facts\">\n"_html;
  auto fact = [&](const char* name, const Html& value, Markup css = ""_html) {
    out << "<div class=\"fact"_html << (css.view().empty() ? ""_html : " "_html) << css << "\"><dt>"_html << name
        << "</dt><dd>"_html << value << "</dd></div>\n"_html;
  };
  auto size_value = [&](uint64_t bytes) {
    Html v;
    v << format_mb(bytes) << " <small>"_html << grouped(bytes) << " B</small>"_html;
    return v;
  };
  fact("size before", size_value(in_b));
  if (measured) {
    Html v = size_value(out_b);
    if (r.dry_run) v << "<div class=\"sub\">exact: measured on a temporary copy</div>"_html;
    fact(r.dry_run ? "size after, if written" : "size after", v);
  } else {
    Html v;
    v << "<span class=\"muted small\">"_html << not_written_text(r) << "</span>"_html;
    fact("size after", v);
  }
  Html ratio;
  if (in_b > 0 && measured)
    ratio << "<span class=\"big\">"_html
          << printf_double("%.1f%%", 100.0 * static_cast<double>(out_b) / static_cast<double>(in_b))
          << "</span> <small>of the input"_html << (r.dry_run ? ", if written" : "") << "</small>"_html;
  else
    ratio << "<span class=\"muted\">n/a</span>"_html;
  fact("compression (output / input)", ratio);
  Html counts;
  counts << "<span class=\"big q\">"_html << quantized
         << "</span> <span class=\"muted\">/</span> <span class=\"big f\">"_html << left_float
         << "</span><div class=\"sub\">"_html << printf_double("%.1f%%", 100.0 * r.quantized_weight_fraction())
         << " of the weight elements quantized</div>"_html;
  fact("modules quantized / left float", counts);
  if (d.finite > 0) {
    const ModuleReport& worst = *d.ranked.front();
    Html v;
    v << (d.flag(worst) == Flag::Outlier ? "<span class=\"big bad\">"_html : "<span class=\"big\">"_html)
      << db1(*worst.sqnr_db) << "</span> <small>/ "_html << db1(d.median)
      << " dB</small><div class=\"sub mono\" title=\""_html << worst.plan.path << "\">"_html
      << path_html(worst.plan.path) << "</div>"_html;
    fact("weight SQNR lowest / median", v, "wide"_html);
  }
  auto text = [](const std::string& t) {
    Html v;
    v << t;
    return v;
  };
  fact("mode", text(r.mode_text()));
  fact("engine", text(r.engine));
  Html versions;
  versions << "bertq " << r.bertq_version << "<div class=\"sub\">LibTorch "_html << r.libtorch_version << "</div>"_html;
  fact("versions", versions);
  fact("input SHA-256", sha_html(r.input.sha256, "unknown"));
  fact("output SHA-256", sha_html(r.output.sha256, r.dry_run ? "not written (dry run)" : "not written"));
  out << "</dl>\n</header>\n"_html;
}

// Two stacked bars to one scale, so the shrink is visible as length.
void write_size_bars(const Report& r, HtmlWriter& out) {
  const bool measured = output_measured(r);
  const char* after_label = r.dry_run ? "after, if written" : "after";
  out << "<section>\n<h2>Where the bytes go</h2>\n"_html;
  const uint64_t scale_total = std::max({r.input_sizes.total, r.output_sizes.total, uint64_t{1}});
  const double label_w = r.dry_run ? 120 : 60, bar_w = 780, value_w = 130, row_h = 30, gap = 12;
  const double width = label_w + bar_w + value_w;
  const double height = 2 * row_h + gap;
  out << "<div class=\"chart\">"_html;
  open_svg(out, width, height, "file size before and after");
  struct Row {
    const char* label;
    const SizeBreakdown* sizes;
  };
  const Row rows[] = {{"before", &r.input_sizes}, {after_label, &r.output_sizes}};
  for (size_t i = 0; i < 2; ++i) {
    const Row& row = rows[i];
    const double y = static_cast<double>(i) * (row_h + gap);
    const double ty = y + row_h / 2 + 4;
    out << "<text class=\"head\" x=\"0\" y=\""_html << ty << "\">"_html << row.label << "</text>\n"_html;
    if (row.sizes->total == 0) {
      out << "<rect class=\"empty\" x=\""_html << label_w << "\" y=\""_html << y << "\" width=\""_html << bar_w
          << "\" height=\""_html << row_h << "\"/><text class=\"tick\" x=\""_html << label_w + 10 << "\" y=\""_html
          << ty << "\">"_html << (not_written_text(r)) << "</text>\n"_html;
      continue;
    }
    double x = label_w;
    for (const auto& seg : kSegments) {
      const uint64_t b = row.sizes->*seg.field;
      if (b == 0) continue;
      const double w = bar_w * static_cast<double>(b) / static_cast<double>(scale_total);
      out << "<g><title>"_html << row.label << ", "_html << seg.name << ": "_html << grouped(b) << " B ("_html
          << (format_mb(b)) << ")</title><rect class=\""_html << seg.css << "\" x=\""_html << x << "\" y=\""_html << y
          << "\" width=\""_html << std::max(w, 0.5) << "\" height=\""_html << row_h << "\"/>"_html;
      // Label inside the segment only where it fits.
      const std::string label = format_bytes(static_cast<int64_t>(b));
      if (w > mono_width(label.size(), 11) + 10)
        out << "<text class=\"in\" x=\""_html << x + 5 << "\" y=\""_html << ty << "\">"_html << (label)
            << "</text>"_html;
      out << "</g>\n"_html;
      x += w;
    }
    out << "<text x=\""_html << x + 8 << "\" y=\""_html << ty << "\">"_html
        << (format_bytes(static_cast<int64_t>(row.sizes->total))) << "</text>\n"_html;
  }
  out << "</svg></div>\n"_html;

  // The legend doubles as the exact numbers.
  out << "<table class=\"legend\"><thead><tr><th></th><th class=\"num\">before (B)</th>"
         "<th class=\"num\">after (B)"_html
      << (r.dry_run ? ", if written" : "") << "</th><th class=\"num\">change (B)</th></tr></thead><tbody>\n"_html;
  auto legend_row = [&](const Html& name, uint64_t before, uint64_t after) {
    out << "<tr><td>"_html << name << "</td><td class=\"num\">"_html << grouped(before) << "</td>"_html;
    if (!measured) {
      out << "<td class=\"num muted\">&mdash;</td><td class=\"num muted\">&mdash;</td></tr>\n"_html;
      return;
    }
    const int64_t change = static_cast<int64_t>(after) - static_cast<int64_t>(before);
    out << "<td class=\"num\">"_html << grouped(after) << "</td><td class=\"num\">"_html << (change > 0 ? "+" : "")
        << signed_grouped(change) << "</td></tr>\n"_html;
  };
  for (const auto& seg : kSegments) {
    Html name;
    name << "<span class=\"swatch "_html << seg.css << "\"></span>"_html << seg.name;
    legend_row(name, r.input_sizes.*seg.field, r.output_sizes.*seg.field);
  }
  Html total;
  total << "<b>total</b>"_html;
  legend_row(total, r.input_sizes.total, r.output_sizes.total);
  out << "</tbody></table>\n"_html;
  if (!measured)
    out << "<p class=\"note\">The output was not written"_html << (any_guard_failed(r) ? " because a guard failed" : "")
        << ": it has no sizes.</p>\n"_html;
  out << "</section>\n"_html;
}

// The quantized modules ranked worst SQNR first, with what each saved.
void write_layer_chart(const Report& r, const Diagnosis& d, HtmlWriter& out) {
  out << "<section>\n<h2>Per layer: weight SQNR, worst first, and bytes saved</h2>\n"_html;
  const auto& rows = d.ranked;
  if (rows.empty()) {
    out << "<p class=\"muted\">No module was quantized.</p>\n</section>\n"_html;
    return;
  }
  const bool measured = output_measured(r);
  const Axis axis = sqnr_axis(d);

  // What to look at, in words, then the legend of the colours.
  if (d.finite > 0) {
    const ModuleReport& worst = *rows.front();
    out << "<p class=\"lead\">Lowest: <code>"_html << (worst.plan.path) << "</code> at <b>"_html << db1(*worst.sqnr_db)
        << " dB</b>, "_html
        << (std::isfinite(*worst.sqnr_db) ? printf_double("%.1f", d.median - *worst.sqnr_db) + " dB"
                                          : std::string("infinitely far"))
        << " below the median of "_html << db1(d.median) << " dB. The "_html << d.finite
        << (d.finite == 1 ? " quantized module spans " : " quantized modules span ") << db1(d.min) << "&ndash;"_html
        << db1(d.max) << " dB; higher is better. The SQNR axis starts at "_html << tick_db(axis.lo)
        << " dB, not 0, so that differences of 1&ndash;3 dB show.</p>\n"_html;
  }
  out << "<ul class=\"chart-legend\">\n<li><span class=\"swatch sqnr\"></span>quantized "
         "module</li>\n"_html;
  if (d.lowest > 0)
    out << "<li><span class=\"swatch low\"></span>"_html
        << (d.lowest == 1 ? std::string("the lowest SQNR") : "among the " + std::to_string(d.lowest) + " lowest SQNR")
        << "</li>\n"_html;
  else if (d.finite >= 3)
    out << "<li>none marked as the lowest: all " << d.finite << " are within " << tick_db(kOutlierDb)
        << " dB of each other</li>\n"_html;
  if (d.finite > 0)
    out << "<li><span class=\"swatch out\"></span>more than "_html << tick_db(kOutlierDb)
        << " dB below the median (under "_html << db1(d.threshold()) << " dB): "_html
        << (d.outliers ? std::to_string(d.outliers) : std::string("none"))
        << "</li>\n<li><span class=\"swatch median\"></span>median "_html << db1(d.median) << " dB</li>\n"_html;
  if (measured) out << "<li><span class=\"swatch saved\"></span>bytes saved</li>\n"_html;
  out << "</ul>\n"_html;

  // Layout in the SVG's own units (CSS pixels at its natural width).
  size_t longest = 0;
  int64_t max_saved = 0;
  for (const ModuleReport* m : rows) {
    longest = std::max(longest, m->plan.path.size());
    max_saved = std::max(max_saved, static_cast<int64_t>(m->bytes_before) - static_cast<int64_t>(m->bytes_after));
  }
  const size_t label_chars = std::min<size_t>(longest, 60);
  const double saved_step = nice_step(static_cast<double>(max_saved));
  const double saved_scale = std::max(saved_step, std::ceil(static_cast<double>(max_saved) / saved_step) * saved_step);

  const double rank_w = 8 + mono_width(std::to_string(rows.size()).size(), 11);
  const double label_x = rank_w + 6;
  const double label_w = std::max(110.0, mono_width(label_chars, 11) + 14);
  const double sqnr_x = label_x + label_w, sqnr_w = 340, value_w = 46, col_gap = 26;
  const double saved_x = sqnr_x + sqnr_w + value_w + col_gap, saved_w = 200, saved_value_w = 64;
  const double head_h = 40, row_h = 18, bar_h = 11;
  const bool bottom_axis = rows.size() > 20;  // long charts repeat the ticks below
  const double body_h = row_h * static_cast<double>(rows.size());
  const double width = measured ? saved_x + saved_w + saved_value_w : sqnr_x + sqnr_w + value_w;
  const double height = head_h + body_h + (bottom_axis ? 22 : 4);
  const double grid_top = head_h - 6, grid_bottom = head_h + body_h + (bottom_axis ? 4 : 2);

  out << "<div class=\"chart\">"_html;
  open_svg(out, width, height, "per-layer weight SQNR, worst first, and bytes saved");
  out << "<text class=\"head\" x=\"0\" y=\"14\">#</text>\n"_html;
  out << "<text class=\"head\" x=\""_html << label_x << "\" y=\"14\">module</text>\n"_html;
  out << "<text class=\"head\" x=\""_html << sqnr_x << "\" y=\"14\">weight SQNR (dB)</text>\n"_html;
  if (measured) out << "<text class=\"head\" x=\""_html << saved_x << "\" y=\"14\">bytes saved</text>\n"_html;

  // Row backgrounds first: flagged rows tinted, the rest striped.
  for (size_t i = 0; i < rows.size(); ++i) {
    const Flag f = d.flag(*rows[i]);
    if (f == Flag::None && i % 2) continue;
    out << "<rect class=\""_html
        << (f == Flag::None     ? "zebra"
            : f == Flag::Lowest ? "row-low"
                                : "row-out")
        << "\" x=\"0\" y=\""_html << head_h + row_h * static_cast<double>(i) << "\" width=\""_html << width
        << "\" height=\""_html << row_h << "\"/>\n"_html;
  }
  // Gridlines with their values, drawn before the bars so bars cover them.
  auto tick = [&](double x, const std::string& text) {
    out << "<line class=\"grid\" x1=\""_html << x << "\" y1=\""_html << grid_top << "\" x2=\""_html << x
        << "\" y2=\""_html << grid_bottom << "\"/><text class=\"tick\" x=\""_html << x << "\" y=\""_html << head_h - 9
        << "\" text-anchor=\"middle\">"_html << text << "</text>"_html;
    if (bottom_axis)
      out << "<text class=\"tick\" x=\""_html << x << "\" y=\""_html << grid_bottom + 12
          << "\" text-anchor=\"middle\">"_html << text << "</text>"_html;
    out << "\n"_html;
  };
  const int sqnr_ticks = static_cast<int>(std::lround((axis.hi - axis.lo) / axis.step));
  for (int k = 0; k <= sqnr_ticks; ++k) {
    const double v = axis.lo + k * axis.step;
    tick(axis.x(v, sqnr_x, sqnr_w), tick_db(v));
  }
  if (measured) {
    const int saved_ticks = static_cast<int>(std::lround(saved_scale / saved_step));
    for (int k = 0; k <= saved_ticks; ++k) {
      const double v = k * saved_step;
      tick(saved_x + saved_w * v / saved_scale, tick_bytes(v));
    }
  }
  // The median, and the outlier threshold when it falls on the axis.
  if (d.finite > 0) {
    const double mx = axis.x(d.median, sqnr_x, sqnr_w);
    out << "<line class=\"median\" x1=\""_html << mx << "\" y1=\""_html << grid_top << "\" x2=\""_html << mx
        << "\" y2=\""_html << grid_bottom << "\"><title>median "_html << db1(d.median) << " dB</title></line>\n"_html;
    if (d.threshold() > axis.lo) {
      const double tx = axis.x(d.threshold(), sqnr_x, sqnr_w);
      out << "<line class=\"threshold\" x1=\""_html << tx << "\" y1=\""_html << grid_top << "\" x2=\""_html << tx
          << "\" y2=\""_html << grid_bottom << "\"><title>median - "_html << tick_db(kOutlierDb) << " dB = "_html
          << db1(d.threshold()) << " dB</title></line>\n"_html;
    }
  }

  for (size_t i = 0; i < rows.size(); ++i) {
    const ModuleReport& m = *rows[i];
    const Flag f = d.flag(m);
    const double y = head_h + row_h * static_cast<double>(i);
    const double ty = y + row_h / 2 + 4, by = y + (row_h - bar_h) / 2;
    const int64_t saved = static_cast<int64_t>(m.bytes_before) - static_cast<int64_t>(m.bytes_after);
    const bool has_sqnr = sqnr_class(m) != 3;

    std::ostringstream tip;
    tip.imbue(std::locale::classic());
    tip << "#" << i + 1 << " " << m.plan.path << " (" << m.plan.op << "): SQNR "
        << (has_sqnr ? (std::isinf(*m.sqnr_db) ? std::string(*m.sqnr_db > 0 ? "infinite" : "-infinite")
                                               : printf_double("%.2f", *m.sqnr_db) + " dB")
                     : std::string("n/a"));
    if (f == Flag::Lowest) tip << ", among the lowest";
    if (f == Flag::Outlier) tip << ", more than " << kOutlierDb << " dB below the median";
    if (measured) {
      tip << "; saved " << signed_grouped(saved) << " B (" << grouped(m.bytes_before) << " -> "
          << grouped(m.bytes_after) << ")";
      if (is_shared(m)) tip << ", its tensors stored once and counted at another module";
    }
    out << "<g"_html;
    if (f != Flag::None) out << " class=\""_html << flag_class(f) << "\""_html;
    out << "><title>"_html << tip.str() << "</title>"_html;
    out << "<text class=\"tick\" x=\"0\" y=\""_html << ty << "\">"_html << i + 1 << "</text>"_html;
    out << "<text class=\"mono label\" x=\""_html << label_x << "\" y=\""_html << ty << "\">"_html
        << (elide_middle(m.plan.path, label_chars)) << "</text>"_html;
    if (has_sqnr) {
      // Infinite SQNR (exact weights) fills the column; -inf draws nothing.
      const double v = *m.sqnr_db;
      const double end = std::isinf(v) ? (v > 0 ? sqnr_x + sqnr_w : sqnr_x)
                                       : std::clamp(axis.x(v, sqnr_x, sqnr_w), sqnr_x, sqnr_x + sqnr_w);
      out << "<rect class=\"bar-sqnr\" x=\""_html << sqnr_x << "\" y=\""_html << by << "\" width=\""_html
          << end - sqnr_x << "\" height=\""_html << bar_h << "\" rx=\"1.5\"/>"_html;
      out << "<text class=\"value\" x=\""_html << end + 4 << "\" y=\""_html << ty << "\">"_html << db1(v)
          << "</text>"_html;
    } else {
      out << "<text class=\"tick\" x=\""_html << sqnr_x + 2 << "\" y=\""_html << ty << "\">n/a</text>"_html;
    }
    if (measured) {
      // Growth (negative savings) clamps to no bar, but the number is printed.
      const double w = saved > 0 ? saved_w * static_cast<double>(saved) / saved_scale : 0;
      out << "<rect class=\"bar-saved\" x=\""_html << saved_x << "\" y=\""_html << by << "\" width=\""_html << w
          << "\" height=\""_html << bar_h << "\" rx=\"1.5\"/>"_html;
      out << "<text"_html << (saved < 0 ? " class=\"neg\""_html : ""_html) << " x=\""_html << saved_x + w + 4
          << "\" y=\""_html << ty << "\">"_html << (format_bytes(saved)) << "</text>"_html;
    }
    out << "</g>\n"_html;
  }
  out << "</svg></div>\n"_html;
  if (!measured)
    out << "<p class=\"note\">No bytes saved are shown: the output was not written"_html
        << (any_guard_failed(r) ? " because a guard failed" : "") << ".</p>\n"_html;
  out << "</section>\n"_html;
}

// Every weight-bearing module in module order, the lowest-SQNR ones marked.
// Columns are folded (type under the path, dtype with its qscheme, one cell
// for the scale spread) so the table fits the page without scrolling.
void write_module_table(const Report& r, const Diagnosis& d, HtmlWriter& out) {
  out << "<section>\n<h2>Modules ("_html << r.modules.size() << ")</h2>\n"_html;
  if (r.modules.empty()) {
    out << "<p class=\"muted\">No weight-bearing modules.</p>\n</section>\n"_html;
    return;
  }
  const bool measured = output_measured(r);
  out << "<p class=\"note\">In module order. <span class=\"mark low\"></span>marks the lowest "
         "SQNR, <span class=\"mark out\"></span>more than "_html
      << tick_db(kOutlierDb)
      << " dB below the median (the chart above ranks them). Bytes are exact; "
         "<i>shared</i>: the module's tensors are equal to another module's and stored once, "
         "counted there.</p>\n"_html;
  size_t longest = 0;
  for (const auto& m : r.modules) longest = std::max(longest, m.plan.path.size());
  out << "<div class=\"table-box\"><table class=\"modules\" style=\"--path-ch:"_html << std::min<size_t>(longest, 50)
      << "\">\n<thead><tr>"
         "<th>module <span class=\"sub\">type &middot; weight shape</span></th>"
         "<th>state <span class=\"sub\">rule that decided it</span></th>"
         "<th>weight <span class=\"sub\">qscheme, axis</span></th>"
         "<th class=\"num\">scale <span class=\"sub\">min / median / max<br>zero point</span></th>"
         "<th class=\"num\">bytes<br>before</th><th class=\"num\">bytes<br>after"_html
      << (r.dry_run ? "<span class=\"sub\">if written</span>"_html : ""_html)
      << "</th><th class=\"num\">max abs<br>error</th><th class=\"num\">SQNR<br>dB</th>"
         "</tr></thead>\n<tbody>\n"_html;
  for (const auto& m : r.modules) {
    const ModulePlan& p = m.plan;
    const Flag f = d.flag(m);
    out << "<tr"_html;
    if (f != Flag::None) out << " class=\""_html << flag_class(f) << "\""_html;
    out << "><td class=\"path\">"_html << path_html(p.path) << "<span class=\"sub\">"_html << p.type_name
        << (p.functional ? " (functional)" : "");
    if (!p.weight_shape.empty()) out << " &middot; "_html << shape_text(p.weight_shape);
    out << "</span></td>"_html;
    // The rule goes under the state, unless the reason already names it
    // ("opted out: null at ...").
    const std::string rule = rule_text(p.rule);
    const bool rule_in_reason = !p.quantized && p.float_reason.find(rule) != std::string::npos;
    if (p.quantized)
      out << "<td class=\"state\"><span class=\"q\">"_html << (p.op) << "</span>"_html;
    else
      out << "<td class=\"state f\">float<span class=\"sub\">"_html << (p.float_reason) << "</span>"_html;
    if (!rule_in_reason) out << "<span class=\"sub rule\">rule: "_html << path_html(rule) << "</span>"_html;
    out << "</td>"_html;
    out << "<td>"_html << (m.dtype);
    if (!m.qscheme.empty() || m.axis) {
      out << "<span class=\"sub\">"_html << m.qscheme;
      if (m.axis)
        out << (m.qscheme.empty() ? "" : ", ") << "<span class=\"nw\">axis "_html << *m.axis << "</span>"_html;
      out << "</span>"_html;
    }
    out << "</td><td class=\"num scale\">"_html;
    if (!m.scales.empty()) {
      const auto [lo, hi] = std::minmax_element(m.scales.begin(), m.scales.end());
      if (*lo == *hi)
        out << sci3(*lo);
      else
        out << "<span>"_html << sci3(*lo) << " /</span> <span>"_html << sci3(median_of(m.scales))
            << " /</span> <span>"_html << sci3(*hi) << "</span>"_html;
    }
    if (!m.zero_points.empty()) {
      const auto [lo, hi] = std::minmax_element(m.zero_points.begin(), m.zero_points.end());
      out << "<span class=\"sub\">zero point "_html << zero_point_text(*lo);
      if (*lo != *hi) out << "&ndash;"_html << zero_point_text(*hi);
      out << "</span>"_html;
    }
    out << "</td><td class=\"num\">"_html << grouped(m.bytes_before) << "</td><td class=\"num\">"_html;
    if (!measured)
      out << "<span class=\"muted\" title=\"the output was not written\">&mdash;</span>"_html;
    else if (is_shared(m))
      out << "<span class=\"shared\" title=\""_html << grouped(m.bytes_shared)
          << " B stored once for several modules and counted at the first of them\">shared</span>"_html;
    else
      out << grouped(m.bytes_after);
    out << "</td><td class=\"num\">"_html << (m.max_abs_error ? sci3(*m.max_abs_error) : "") << "</td>"_html;
    out << "<td class=\"num sqnr\">"_html;
    if (m.sqnr_db) out << db1(*m.sqnr_db);
    if (f == Flag::Lowest) out << "<span class=\"flag\">lowest</span>"_html;
    if (f == Flag::Outlier) out << "<span class=\"flag\">outlier</span>"_html;
    out << "</td></tr>\n"_html;
  }
  out << "</tbody>\n</table></div>\n</section>\n"_html;
}

void write_qconfig(const Report& r, HtmlWriter& out) {
  out << "<section>\n<h2>QConfig</h2>\n<h3>resolved (as applied)</h3>\n<pre>"_html << (to_json(r.qconfig).dump(2))
      << "</pre>\n"_html;
  if (!r.qconfig_text.empty())
    out << "<h3>given</h3>\n<pre>"_html << (r.qconfig_text) << "</pre>\n"_html;
  else
    out << "<p class=\"muted\">No qconfig file given: the default dict was used.</p>\n"_html;
  out << "</section>\n"_html;
}

}  // namespace

void print_html(const Report& report, std::ostream& dest) {
  // Built in a classic-locale buffer: SVG coordinates must use '.' and no
  // digit grouping whatever locale the caller's stream carries.
  std::ostringstream page;
  page.imbue(std::locale::classic());
  HtmlWriter out(page);
  const Diagnosis diagnosis = diagnose(report);
  write_head(report, out);
  write_title(report, out);
  write_alerts(report, out);
  write_facts(report, diagnosis, out);
  out << "<main>\n"_html;
  write_layer_chart(report, diagnosis, out);
  write_size_bars(report, out);
  write_module_table(report, diagnosis, out);
  write_qconfig(report, out);
  out << "</main>\n<footer>Generated by bertq "_html << (report.bertq_version) << " with LibTorch "_html
      << (report.libtorch_version);
  if (!report.libtorch_package.empty()) out << " ("_html << (report.libtorch_package) << ")"_html;
  if (!report.created.empty()) out << " at "_html << (report.created);
  out << ".</footer>\n</body>\n</html>\n"_html;
  dest << page.str();
}

}  // namespace bertq
