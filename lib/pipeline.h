// File-level operations behind `bertq convert` and `bertq prepare`: check the
// paths, load, plan, run the passes, check the result, save, and return a
// report. The CLI only parses flags and prints what this returns.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "plan.h"
#include "qconfig.h"

namespace bertq {

enum class Engine;

struct ConvertOptions {
  std::string input;
  std::string output;
  std::optional<std::string> qconfig_path;  // none: per_channel_dynamic for ""
  std::optional<Engine> engine;             // none: default_engine()
  bool debug = false;             // debug model, like quantize_dynamic_jit(debug=True)
  bool prepare_only = false;      // `bertq prepare`: stop after inserting observers
  bool allow_missing = false;     // keys naming no module warn instead of failing
  bool allow_unrunnable = false;  // write a model this LibTorch cannot run (fp16 needs fbgemm)
};

// What a conversion did; renderers turn it into text (and later JSON/HTML).
struct ConversionReport {
  std::string input_path;
  std::string output_path;
  uint64_t input_bytes = 0;
  uint64_t output_bytes = 0;
  std::string engine;
  std::string mode;  // "quantize", "quantize (debug)", "prepare", "convert prepared"
  std::string qconfig_json;  // the resolved dict, fully explicit
  Plan plan;
  std::vector<std::string> warnings;
};

ConversionReport run_convert(const ConvertOptions& options);

// The console summary: sizes before/after, quantized and skipped counts.
void print_summary(const ConversionReport& report, std::ostream& out);

}  // namespace bertq
