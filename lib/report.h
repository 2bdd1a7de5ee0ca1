// The report of a conversion: gathered first, rendered after (text table,
// JSON, HTML), like bloaty's RollupOutput. Free of LibTorch so renderers
// compile fast and can be tested alone.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "plan.h"

namespace bertq {

struct FileInfo {
  std::string path;
  std::string sha256;  // hex; empty when the file was not written (dry run)
  uint64_t bytes = 0;
};

// What one weight-bearing module became, measured on the written model.
struct ModuleReport {
  ModulePlan plan;  // path, type, deciding rule, quantized?, op, float reason
  std::string dtype;    // weight dtype after conversion: "qint8", "float16", "float32"
  std::string qscheme;  // "per_channel_symmetric", ...; empty when float
  std::optional<int64_t> axis;  // per-channel axis
  std::vector<double> scales;
  std::vector<double> zero_points;
  std::vector<int64_t> bias_shape;  // empty when no bias
  uint64_t bytes_before = 0;  // weight and bias records in the input file
  uint64_t bytes_after = 0;   // records the module owns in the output file
  std::optional<double> max_abs_error;  // of the dequantized weight vs the float one
  std::optional<double> sqnr_db;        // 10 log10(sum w^2 / sum (w - dq(w))^2)
  std::string packed_attr;  // final model: the packed-params attribute that replaced it
};

// Where a file's bytes go. modules + other_tensors + code_and_metadata +
// zip_overhead == file size, checked on every report (check_totals).
struct SizeBreakdown {
  uint64_t modules = 0;            // tensor records owned by the modules in the report
  uint64_t other_tensors = 0;      // tensor records owned by nothing in the report
  uint64_t code_and_metadata = 0;  // code/, *.pkl, version, extra/ records
  uint64_t zip_overhead = 0;       // headers, directory, alignment padding
  uint64_t total = 0;              // the file's size
};

struct Report {
  std::string bertq_version;
  std::string libtorch_version;
  std::string engine;
  std::string mode;  // "quantize", "quantize (debug)", "prepare", "convert prepared", "dry run"
  FileInfo input;
  FileInfo output;
  std::string qconfig_given;     // the file's text, or "" for the default
  std::string qconfig_resolved;  // the dict in full form (JSON)
  std::vector<ModuleReport> modules;
  SizeBreakdown input_sizes;
  SizeBreakdown output_sizes;   // estimated for a dry run
  bool output_estimated = false;  // dry run: output_sizes.total is an estimate
  std::vector<std::string> warnings;

  size_t quantized_count() const;
  size_t skipped_count() const;
  // Fraction of the weight bytes (float, before) that ended up quantized.
  double quantized_weight_fraction() const;
};

// One empty ModuleReport per module of the plan, in plan order.
std::vector<ModuleReport> module_reports(const Plan& plan);

// Throws Error(Internal) unless each breakdown adds up to its file size and
// the per-module bytes add up to the breakdown's module share.
void check_totals(const Report& report);

// Renderers. All write to `out` only.
void print_summary(const Report& report, std::ostream& out);   // the short console summary
void print_table(const Report& report, std::ostream& out);     // the per-module table
void print_json(const Report& report, std::ostream& out);      // docs/report.md schema
void print_html(const Report& report, std::ostream& out);      // self-contained page

}  // namespace bertq
