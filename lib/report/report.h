// The report of a conversion: gathered first, rendered after (text table,
// JSON, HTML), like bloaty's RollupOutput. Free of LibTorch so renderers
// compile fast and can be tested alone.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "plan/options.h"
#include "plan/plan.h"
#include "qconfig/qconfig.h"

namespace bertq {

struct FileInfo {
  std::string path;
  std::string sha256;  // hex; empty when the file was not written (dry run)
  uint64_t bytes = 0;
};

// What one weight-bearing module became, measured on the written model.
struct ModuleReport {
  ModulePlan plan;              // path, type, deciding rule, quantized?, op, float reason
  std::string dtype;            // weight dtype after conversion: "qint8", "float16", "float32"
  std::string qscheme;          // the quantized tensor's qscheme, as PyTorch names it; empty when float
  std::optional<int64_t> axis;  // per-channel axis
  std::vector<double> scales;
  std::vector<double> zero_points;  // integers except for per_channel_affine_float_qparams
  std::vector<int64_t> bias_shape;  // empty when no bias
  uint64_t bytes_before = 0;        // weight and bias records in the input file
  uint64_t bytes_after = 0;         // records the module owns in the output file
  // Bytes of this module's tensors that are stored once for several modules
  // (a frozen model keeps one copy of equal constants, e.g. LayerNorm
  // weights of ones) and counted at the first of them.
  uint64_t bytes_shared = 0;
  std::optional<double> max_abs_error;  // of the dequantized weight vs the float one
  std::optional<double> sqnr_db;        // 10 log10(sum w^2 / sum (w - dq(w))^2)
  std::string packed_attr;              // final model: the packed-params attribute that replaced it
  // Further packed-params attributes holding the same weight: PyTorch packs
  // the weight of a module called several times once per call.
  std::vector<std::string> extra_packed_attrs;
  // --fuse-qkv: this module's output rows [first, second) of the packed
  // weight `packed_attr`, which it shares with its siblings. Its bytes_after
  // is its share of that weight's records, by rows (each record is rows
  // times a fixed width, so the share is exact).
  std::optional<std::pair<int64_t, int64_t>> fused_rows;
  // Final int8 linears: the bits their input is quantized to, as the graph
  // runs it: 7 (PyTorch's reduce_range=True) or 8 (full_range_activations).
  std::optional<int> activation_bits;
};

// Sibling Linears that --fuse-qkv turned into one quantized linear.
struct FusedGroup {
  std::string packed_attr;           // the fused packed-params attribute
  std::vector<std::string> modules;  // module paths, in output-column order
  std::vector<int64_t> rows;         // each module's output features
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

// What a conversion did, as an enum (rendered by to_string).
enum class ConvertMode { Quantize, Prepare, ConvertPrepared };
std::string to_string(ConvertMode mode, bool debug);

// One CI guard (--require-quantized, --min-quantized-fraction, nothing quantized).
struct GuardResult {
  std::string name;  // "require_quantized \"bert.encoder.*\"", ...
  bool passed = true;
  std::string message;  // why it failed
};

// What a guard checks, in words ("at least one weight is quantized" for
// "nothing quantized", whose name says what it guards against).
std::string guard_check_text(const std::string& name);

struct Report {
  std::string bertq_version;
  std::string libtorch_version;  // the LibTorch that converted (1.13.1, 2.6.0)
  std::string libtorch_package;  // "libtorch-dev 1.13.1+dfsg-4", "" if not a package
  std::string engine;
  ConvertMode mode = ConvertMode::Quantize;
  bool debug = false;
  bool dry_run = false;      // nothing written; output sizes from a copy in a temporary folder
  std::string command_line;  // as given, for the HTML page's record
  std::string created;       // ISO 8601 UTC time of the conversion
  FileInfo input;
  FileInfo output;
  ConvertOptions options;    // what was asked for
  std::string qconfig_text;  // the qconfig file as given ("" for the default)
  QConfigDict qconfig;       // the dict that was applied
  std::vector<ModuleReport> modules;
  // Quantized weights counted in the output itself (packed params, quantized
  // ops, debug qparams or weight observers); equals quantized_count().
  size_t quantized_in_output = 0;
  std::optional<int64_t> max_positions;  // the model's position-embedding rows, if it has them
  SizeBreakdown input_sizes;
  SizeBreakdown output_sizes;
  std::vector<GuardResult> guards;
  std::vector<std::string> warnings;
  // Facts worth saying that are not problems (bertq going beyond
  // quantize_dynamic_jit, for instance).
  std::vector<std::string> notes;
  std::vector<FusedGroup> fusions;  // --fuse-qkv

  size_t quantized_count() const;
  size_t skipped_count() const;
  // Fraction of the weight elements that ended up quantized.
  double quantized_weight_fraction() const;
  // "quantize", "quantize (debug)", "prepare", "convert prepared", "dry run"
  std::string mode_text() const;
};

// One empty ModuleReport per module of the plan, in plan order.
std::vector<ModuleReport> module_reports(const Plan& plan);

// Throws Error(Internal) unless each breakdown adds up to its file size and
// the per-module bytes add up to the breakdown's module share.
void check_totals(const Report& report);

// The manifest bertq stores in the archives it writes
// (archive/manifest.h), for this report's conversion, as JSON text.
std::string manifest_json(const Report& report);

// Which module rows the text table shows.
enum class TableRows { None, Quantized, All };

// Renderers. All write to `out` only.
void print_summary(const Report& report, std::ostream& out);  // the short console summary
// The per-module table, fitted to `width` columns (0: no limit).
void print_table(const Report& report, std::ostream& out, TableRows rows = TableRows::All, size_t width = 0);
void print_json(const Report& report, std::ostream& out);  // docs/report.md schema
void print_html(const Report& report, std::ostream& out);  // self-contained page

}  // namespace bertq
