#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>

#include "error.h"
#include "text_util.h"

namespace bertq {
namespace {

using json = nlohmann::ordered_json;

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "x" : "") + std::to_string(shape[i]);
  return s;
}

std::string rule_kind_name(RuleKind k) {
  switch (k) {
    case RuleKind::OwnKey: return "own_key";
    case RuleKind::Inherited: return "inherited";
    case RuleKind::Global: return "global";
    case RuleKind::OptedOut: return "opted_out";
    case RuleKind::NoQConfig: return "no_qconfig";
  }
  return "?";
}

std::string state_text(const ModuleReport& m) {
  return m.plan.quantized ? m.plan.op : "float";
}

json breakdown_json(const SizeBreakdown& b) {
  return json{{"modules", b.modules},
              {"other_tensors", b.other_tensors},
              {"code_and_metadata", b.code_and_metadata},
              {"zip_overhead", b.zip_overhead},
              {"total", b.total}};
}

json number_or_null(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return nullptr;
  return *v;
}

// min / median / max of a list, for the table.
std::string spread(std::vector<double> v) {
  if (v.empty()) return "";
  std::sort(v.begin(), v.end());
  if (v.size() == 1) return fmt("%.3g", v[0]);
  return fmt("%.3g", v.front()) + "/" + fmt("%.3g", v[v.size() / 2]) + "/" + fmt("%.3g", v.back());
}

// Sizes in the table: kB below a megabyte, so small layers do not read 0.00.
std::string human(uint64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1e6) return fmt("%.2f MB", b / 1e6);
  if (b >= 1e3) return fmt("%.1f kB", b / 1e3);
  return std::to_string(bytes) + " B";
}

}  // namespace

std::vector<ModuleReport> module_reports(const Plan& plan) {
  std::vector<ModuleReport> out;
  for (const auto& mp : plan.modules) {
    ModuleReport r;
    r.plan = mp;
    out.push_back(std::move(r));
  }
  return out;
}

size_t Report::quantized_count() const {
  return static_cast<size_t>(std::count_if(modules.begin(), modules.end(),
                                           [](const ModuleReport& m) { return m.plan.quantized; }));
}

size_t Report::skipped_count() const { return modules.size() - quantized_count(); }

double Report::quantized_weight_fraction() const {
  double all = 0, quantized = 0;
  for (const auto& m : modules) {
    int64_t numel = 1;
    for (auto d : m.plan.weight_shape) numel *= d;
    all += static_cast<double>(numel);
    if (m.plan.quantized) quantized += static_cast<double>(numel);
  }
  return all == 0 ? 0.0 : quantized / all;
}

void check_totals(const Report& r) {
  auto check = [&](const SizeBreakdown& b, const char* which, bool has_modules) {
    if (b.total == 0) return;  // not measured (nothing written)
    const uint64_t sum = b.modules + b.other_tensors + b.code_and_metadata + b.zip_overhead;
    if (b.zip_overhead > b.total)
      throw Error(ErrorKind::Internal, std::string("size accounting: the ") + which +
                                           " records are larger than the file");
    if (sum != b.total)
      throw Error(ErrorKind::Internal, std::string("size accounting: the ") + which + " parts add up to " +
                                           std::to_string(sum) + " bytes, not the file's " +
                                           std::to_string(b.total));
    if (!has_modules) return;
    uint64_t per_module = 0;
    for (const auto& m : r.modules) per_module += std::string(which) == "input" ? m.bytes_before : m.bytes_after;
    if (per_module != b.modules)
      throw Error(ErrorKind::Internal, std::string("size accounting: the ") + which +
                                           " modules add up to " + std::to_string(per_module) +
                                           " bytes, not " + std::to_string(b.modules));
  };
  check(r.input_sizes, "input", true);
  check(r.output_sizes, "output", true);
}

void print_summary(const Report& r, std::ostream& out) {
  out << "bertq " << r.mode << ": " << r.input.path << " -> "
      << (r.output_estimated ? std::string("(nothing written)") : r.output.path) << " (engine " << r.engine << ")\n";
  out << "  size: " << format_mb(r.input.bytes) << " -> " << format_mb(r.output.bytes);
  if (r.input.bytes > 0)
    out << fmt(" (%.1f%%)", 100.0 * static_cast<double>(r.output.bytes) / static_cast<double>(r.input.bytes));
  if (r.output_estimated) out << ", estimated";
  out << "\n";
  out << "  modules: " << r.quantized_count() << " quantized, " << r.skipped_count() << " left float (of "
      << r.modules.size() << " with weights)\n";
  std::map<std::string, size_t> ops, reasons;
  for (const auto& m : r.modules) {
    if (m.plan.quantized) ++ops[m.plan.op];
    else ++reasons[m.plan.float_reason];
  }
  for (const auto& [op, n] : ops) out << "    " << n << " x " << op << "\n";
  for (const auto& [why, n] : reasons) out << "    " << n << " float: " << why << "\n";
}

void print_table(const Report& r, std::ostream& out) {
  struct Row {
    std::vector<std::string> cells;
  };
  const std::vector<std::string> header = {"MODULE", "TYPE", "STATE", "RULE", "SHAPE", "SCALE min/med/max",
                                           "ZP", "SQNR dB", "before", "after"};
  std::vector<Row> rows;
  for (const auto& m : r.modules) {
    Row row;
    row.cells = {m.plan.path.empty() ? "<root>" : m.plan.path,
                 m.plan.type_name,
                 state_text(m),
                 m.plan.rule.describe(),
                 shape_text(m.plan.weight_shape),
                 spread(m.scales),
                 spread(m.zero_points),
                 m.sqnr_db && std::isfinite(*m.sqnr_db) ? fmt("%.1f", *m.sqnr_db) : "",
                 human(m.bytes_before),
                 human(m.bytes_after)};
    rows.push_back(row);
  }
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& row : rows)
    for (size_t i = 0; i < row.cells.size(); ++i) width[i] = std::max(width[i], row.cells[i].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t i = 0; i < cells.size(); ++i) {
      std::string c = cells[i];
      // Numbers right-aligned, text left-aligned.
      const bool numeric = i >= 7;
      std::string pad(width[i] - c.size(), ' ');
      s += numeric ? pad + c : c + pad;
      if (i + 1 < cells.size()) s += "  ";
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << "\n";
  };
  line(header);
  for (const auto& row : rows) line(row.cells);
  for (const auto* which : {"input", "output"}) {
    const SizeBreakdown& b = std::string(which) == "input" ? r.input_sizes : r.output_sizes;
    if (b.total == 0) continue;
    out << which << " bytes: modules " << b.modules << " + other tensors " << b.other_tensors
        << " + code and metadata " << b.code_and_metadata << " + zip overhead " << b.zip_overhead << " = "
        << b.total << (std::string(which) == "output" && r.output_estimated ? " (estimated)" : "") << "\n";
  }
}

void print_json(const Report& r, std::ostream& out) {
  json j;
  j["schema"] = "bertq-report/1";
  j["bertq_version"] = r.bertq_version;
  j["libtorch_version"] = r.libtorch_version;
  j["engine"] = r.engine;
  j["mode"] = r.mode;
  j["input"] = {{"path", r.input.path}, {"sha256", r.input.sha256}, {"bytes", r.input.bytes},
                {"mb", static_cast<double>(r.input.bytes) / 1e6}};
  j["output"] = {{"path", r.output.path},
                 {"sha256", r.output.sha256.empty() ? json() : json(r.output.sha256)},
                 {"bytes", r.output.bytes},
                 {"mb", static_cast<double>(r.output.bytes) / 1e6},
                 {"estimated", r.output_estimated}};
  j["compression_ratio"] = r.input.bytes ? static_cast<double>(r.output.bytes) / static_cast<double>(r.input.bytes) : 0.0;
  json given = nullptr;
  if (!r.qconfig_given.empty()) given = json::parse(r.qconfig_given, nullptr, /*allow_exceptions=*/false);
  j["qconfig"] = {{"given", given},
                  {"resolved", r.qconfig_resolved.empty() ? json() : json::parse(r.qconfig_resolved)}};
  j["summary"] = {{"modules", r.modules.size()},
                  {"quantized", r.quantized_count()},
                  {"float", r.skipped_count()},
                  {"quantized_weight_fraction", r.quantized_weight_fraction()}};
  j["sizes"] = {{"input", breakdown_json(r.input_sizes)}, {"output", breakdown_json(r.output_sizes)}};
  json modules = json::array();
  for (const auto& m : r.modules) {
    json mj;
    mj["path"] = m.plan.path;
    mj["type"] = m.plan.type_name;
    mj["state"] = m.plan.quantized ? "quantized" : "float";
    mj["op"] = m.plan.quantized ? json(m.plan.op) : json();
    mj["float_reason"] = m.plan.quantized ? json() : json(m.plan.float_reason);
    mj["rule"] = {{"kind", rule_kind_name(m.plan.rule.kind)},
                  {"key", m.plan.rule.kind == RuleKind::NoQConfig ? json() : json(m.plan.rule.key)},
                  {"text", m.plan.rule.describe()}};
    mj["weight_shape"] = m.plan.weight_shape;
    mj["bias_shape"] = m.bias_shape.empty() ? json() : json(m.bias_shape);
    mj["dtype"] = m.dtype;
    mj["qscheme"] = m.qscheme.empty() ? json() : json(m.qscheme);
    mj["axis"] = m.axis ? json(*m.axis) : json();
    mj["scales"] = m.scales;
    mj["zero_points"] = m.zero_points;
    mj["bytes_before"] = m.bytes_before;
    mj["bytes_after"] = m.bytes_after;
    mj["max_abs_error"] = number_or_null(m.max_abs_error);
    mj["sqnr_db"] = number_or_null(m.sqnr_db);
    mj["packed_attr"] = m.packed_attr.empty() ? json() : json(m.packed_attr);
    modules.push_back(mj);
  }
  j["modules"] = modules;
  j["warnings"] = r.warnings;
  out << j.dump(2) << "\n";
}

}  // namespace bertq
