// `bertq tune`: the cheapest precision per module such that the whole
// model's error stays within a tolerance the user sets.
//
// 1. Sensitivity, in one pass: the float model is frozen and, beside every
//    Linear, the int8 product it would become (quantized::linear_dynamic on
//    the same input, weights packed as the passes pack them) is computed; the
//    relative L2 error of each Linear's output is gathered over the data.
//    Embeddings: the relative error of their 4-bit and 8-bit rows.
// 2. The choice: starting from the cheapest precision everywhere, the most
//    sensitive module is raised one level at a time (embeddings 4-bit, 8-bit,
//    float; Linear int8, float), which orders every upgrade. A binary search
//    over how many upgrades to apply finds the fewest that meet the tolerance,
//    each candidate converted by the real pipeline and measured on the data;
//    then each applied upgrade is undone if the model still meets it.
// The model written is one that was measured: it meets the tolerance. The
// search assumes that more upgrades never hurt; where that fails it may keep
// more float than needed (docs/tune.md).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "qconfig/engine.h"
#include "run/evaluate.h"

namespace bertq {

enum class TuneMetric {
  RelL2,         // ||q - f|| / ||f|| over all logits
  MaxAbs,        // max |q - f|
  Disagreement,  // fraction of rows whose argmax differs from float's
  F1Drop,        // float's F1 against the labels minus the quantized model's
  AccuracyDrop,  // the same for accuracy
};
std::optional<TuneMetric> tune_metric_from_name(const std::string& name);
std::string to_string(TuneMetric metric);
const std::vector<std::string>& tune_metric_names();

struct TuneOptions {
  std::string input, output;
  std::string qconfig_out;                            // the chosen qconfig, which `bertq convert` reproduces
  std::optional<std::string> report_path, html_path;  // the final conversion's report
  std::optional<std::string> tune_report_path;        // sensitivities and choices, JSON
  std::optional<std::string> tune_html_path;          // the same as a page with a sensitivity chart
  TuneMetric metric = TuneMetric::RelL2;
  double tolerance = 0;
  bool embeddings = true;  // also choose embedding precisions
  // Also measure each Linear's int8 level with full 8-bit activations, and
  // take them where they err less (refused where they are not exact).
  bool full_range_activations = false;
  DataOptions data;
  RunOptions run;
  std::optional<Engine> engine;
  // Stop the search early: at most this many trial conversions, or no new
  // trial once this many seconds have passed. The best choice found that
  // meets the tolerance is written.
  std::optional<size_t> max_trials;
  std::optional<double> time_limit;
};

// `--tolerance` as typed: a number in the metric's unit, or for the metrics
// that are fractions (rel_l2, disagreement, f1_drop, accuracy_drop) a
// percentage ("3%" is 0.03). Throws Error(Usage).
double parse_tolerance(const std::string& text, TuneMetric metric);

struct TunedModule {
  std::string path;
  std::string type_name;  // "Linear", "Embedding", ...
  // Relative L2 error of the module's output (Linear) or rows (embeddings)
  // at each quantized precision, in the order of `levels`.
  std::vector<std::string> levels;  // "int8" / "4bit", "8bit"; float is implicit
  std::string int8_scheme;          // Linear: "per_channel" or "per_tensor", whichever erred less
  int activation_bits = 0;          // Linear: 7, or 8 where --full-range-activations erred less
  std::vector<double> sensitivity;
  std::string chosen;  // a level, or "float"
  std::string why;
};

struct TuneTrial {
  size_t upgrades = 0;  // how many upgrades were applied
  double metric = 0;
  bool meets = false;
  std::string note;                     // "search", "undo <module>", ...
  uint64_t estimated_bytes = 0;         // the model's size with this choice, estimated from the weights' shapes
  std::vector<std::string> kept_float;  // modules left float
};

struct TuneResult {
  TuneMetric metric = TuneMetric::RelL2;
  double tolerance = 0;
  double final_metric = 0;
  std::vector<TunedModule> modules;
  std::vector<TuneTrial> trials;
  size_t conversions = 0;
  double seconds = 0, probe_seconds = 0;
  uint64_t output_bytes = 0, input_bytes = 0;
  std::string qconfig_json;  // what was written to qconfig_out
  // Plain `bertq convert` (per_channel_dynamic) on the same data, measured
  // before the search: what tuning starts from.
  double baseline_metric = 0;
  uint64_t baseline_estimated_bytes = 0;
  std::string stopped_early;  // "--max-trials 3" / "--time-limit 60": the search did not finish
};

// Throws Error(Tolerance) when no choice but all-float meets the tolerance
// (nothing is written then), Error(Usage) for a metric the data cannot give.
TuneResult run_tune(const TuneOptions& options, const std::string& command_line, const Progress& progress = {});

void print_tune(const TuneResult& r, std::ostream& out);
std::string tune_json(const TuneResult& r);
// A self-contained page: the sensitivity of every module as bars, worst
// first, with the precision chosen and why.
std::string tune_html(const TuneResult& r);

}  // namespace bertq
