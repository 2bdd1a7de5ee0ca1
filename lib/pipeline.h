// File-level operations behind `bertq convert` and `bertq prepare`: check the
// paths, load, plan, run the passes, check the result, save, measure, and
// return a report. The CLI only parses flags and renders what this returns.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "report.h"

namespace bertq {

enum class Engine;

struct ConvertOptions {
  std::string input;
  std::string output;
  std::optional<std::string> qconfig_path;  // none: per_channel_dynamic for ""
  std::optional<Engine> engine;             // none: default_engine()
  bool debug = false;             // debug model, like quantize_dynamic_jit(debug=True)
  bool prepare_only = false;      // `bertq prepare`: stop after inserting observers
  bool dry_run = false;           // plan and estimate, write nothing
  bool allow_missing = false;     // keys naming no module warn instead of failing
  bool allow_unrunnable = false;  // write a model this LibTorch cannot run (fp16 needs fbgemm)
  bool manifest = true;           // store extra/bertq_manifest.json in the output
  std::optional<int> threads;     // LibTorch intra-op threads; the output does not depend on it
  // Coverage guards (for CI): module-name globs whose Linear modules must end
  // up quantized, and the least fraction of weight elements quantized.
  std::vector<std::string> require_quantized;
  std::optional<double> min_quantized_fraction;
};

// Throws Error; writes nothing unless it returns.
Report run_convert(const ConvertOptions& options);

// Applies the coverage guards to a plan's result; throws Error(Coverage).
void check_coverage(const Report& report, const ConvertOptions& options);

}  // namespace bertq
