// The console renderers: the short summary and the per-module table, fitted
// to the terminal's width.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <ostream>

#include "base/text.h"
#include "report/report.h"

namespace bertq {
namespace {

// min / median / max of a list, for the table.
std::string spread(std::vector<double> v) {
  if (v.empty()) return "";
  std::sort(v.begin(), v.end());
  if (v.size() == 1 || v.front() == v.back()) return fmt::format("{:.3g}", v[0]);
  return fmt::format("{:.3g}/{:.3g}/{:.3g}", v.front(), v[v.size() / 2], v.back());
}

std::string after_text(const ModuleReport& m) {
  if (m.bytes_after == 0 && m.bytes_shared > 0) return "shared";
  return format_bytes(m.bytes_after);
}

// The table's columns, most important first: when the terminal is narrow,
// columns are dropped from the end of this list, then module names are
// shortened in the middle.
enum Col { kModule, kState, kSqnr, kBefore, kAfter, kShape, kScale, kType, kRule, kZp, kCols };
const char* const kHeader[kCols] = {
    "MODULE", "STATE", "SQNR dB", "before", "after", "SHAPE", "SCALE min/med/max", "TYPE", "RULE, or why float", "ZP"};
// Printed left to right in this order; the rule (or a float module's
// reason, which can be long) last, so that it pushes no column aside.
const Col kOrder[kCols] = {kModule, kType, kState, kShape, kScale, kZp, kSqnr, kBefore, kAfter, kRule};
bool numeric(Col c) { return c == kSqnr || c == kBefore || c == kAfter; }

// Shortens `s` to `n` columns by cutting its middle (module names differ at
// both ends: the model's prefix and the layer's own name).
std::string elide(const std::string& s, size_t n) {
  if (s.size() <= n || n < 5) return s;
  const size_t tail = (n - 3) * 2 / 3, head = n - 3 - tail;
  return s.substr(0, head) + "..." + s.substr(s.size() - tail);
}

}  // namespace

void print_summary(const Report& r, std::ostream& out) {
  out << "bertq " << r.mode_text() << ": " << printable_line(r.input.path) << " -> "
      << (r.dry_run ? std::string("(nothing written)") : printable_line(r.output.path)) << " (engine " << r.engine
      << ")\n";
  const bool guard_failed =
      std::any_of(r.guards.begin(), r.guards.end(), [](const GuardResult& g) { return !g.passed; });
  out << "  size: " << format_mb(r.input.bytes) << " -> ";
  if (r.output.bytes == 0 && guard_failed) {
    out << "not written (a guard failed)";
  } else {
    out << format_mb(r.output.bytes);
    if (r.input.bytes > 0)
      out << fmt::format(" ({:.1f}%)",
                         100.0 * static_cast<double>(r.output.bytes) / static_cast<double>(r.input.bytes));
    if (r.dry_run) out << ", if written";
  }
  out << "\n";
  // A prepared model holds observers: its modules are quantized only when
  // `bertq convert` finishes it.
  out << "  modules: " << r.quantized_count()
      << (r.mode == ConvertMode::Prepare ? " observed (quantized by `bertq convert`), " : " quantized, ")
      << r.skipped_count() << " left float (of " << r.modules.size() << " with weights)\n";
  std::map<std::string, size_t> ops, reasons;
  for (const auto& m : r.modules) {
    if (m.plan.quantized)
      ++ops[m.plan.op];
    else
      ++reasons[m.plan.float_reason];
  }
  for (const auto& [op, n] : ops) out << "    " << n << " x " << op << "\n";
  for (const auto& [why, n] : reasons) out << "    " << n << " float: " << why << "\n";
  for (const auto& g : r.fusions) {
    std::vector<std::string> names;
    for (const auto& m : g.modules) names.push_back(m.empty() ? "<root>" : m);
    out << "  fused: " << join(names, " + ") << " -> " << g.packed_attr << "\n";
  }
  for (const auto& g : r.guards)
    if (!g.passed) out << "  guard failed: " << g.name << ": " << g.message << "\n";
}

void print_table(const Report& r, std::ostream& out, TableRows which, size_t width) {
  if (which == TableRows::None) return;
  std::vector<std::vector<std::string>> rows;
  size_t hidden = 0;
  for (const auto& m : r.modules) {
    if (which == TableRows::Quantized && !m.plan.quantized) {
      ++hidden;
      continue;
    }
    std::vector<std::string> c(kCols);
    c[kModule] = m.plan.path.empty() ? "<root>" : m.plan.path;
    c[kType] = m.plan.type_name;
    c[kState] = m.plan.quantized ? m.plan.op : "float";
    c[kRule] = m.plan.quantized || m.plan.float_reason.empty() ? m.plan.rule.describe() : m.plan.float_reason;
    c[kShape] = format_shape(m.plan.weight_shape);
    c[kScale] = spread(m.scales);
    c[kZp] = spread(m.zero_points);
    c[kSqnr] = m.sqnr_db && std::isfinite(*m.sqnr_db) ? fmt::format("{:.1f}", *m.sqnr_db) : "";
    c[kBefore] = format_bytes(m.bytes_before);
    c[kAfter] = after_text(m);
    rows.push_back(std::move(c));
  }
  std::vector<size_t> w(kCols);
  for (int i = 0; i < kCols; ++i) w[i] = std::string(kHeader[i]).size();
  for (const auto& row : rows)
    for (int i = 0; i < kCols; ++i) w[i] = std::max(w[i], row[i].size());
  std::vector<bool> shown(kCols, true);
  auto total = [&] {
    size_t t = 0, n = 0;
    for (int i = 0; i < kCols; ++i)
      if (shown[i]) t += w[i], ++n;
    return t + 2 * (n ? n - 1 : 0);
  };
  if (width > 0) {
    // Drop the least important columns, keeping module, state, SQNR and bytes.
    for (int i = kCols - 1; i > kAfter && total() > width; --i) shown[i] = false;
    if (total() > width) {
      const size_t others = total() - w[kModule];
      w[kModule] = std::max<size_t>(std::string(kHeader[kModule]).size(), width > others + 12 ? width - others : 12);
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    bool first = true;
    for (Col c : kOrder) {
      if (!shown[c]) continue;
      if (!first) s += "  ";
      first = false;
      std::string cell = c == kModule ? elide(cells[c], w[c]) : cells[c];
      const std::string pad(w[c] > cell.size() ? w[c] - cell.size() : 0, ' ');
      s += numeric(c) ? pad + cell : cell + pad;  // numbers right-aligned
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << "\n";
  };
  line(std::vector<std::string>(std::begin(kHeader), std::end(kHeader)));
  for (const auto& row : rows) line(row);
  if (hidden) out << "(" << hidden << " float modules not shown; --table all shows them)\n";
  for (const auto* which_file : {"input", "output"}) {
    const bool is_input = std::string(which_file) == "input";
    const SizeBreakdown& b = is_input ? r.input_sizes : r.output_sizes;
    if (b.total == 0) continue;
    out << which_file << " bytes: modules " << b.modules << " + other tensors " << b.other_tensors
        << " + code and metadata " << b.code_and_metadata << " + zip overhead " << b.zip_overhead << " = " << b.total
        << (!is_input && r.dry_run ? " (if written)" : "") << "\n";
  }
}

}  // namespace bertq
