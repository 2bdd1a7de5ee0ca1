// The options of one conversion, and their one schema. The CLI's flags, a
// batch manifest's job fields, the arguments batch passes to its children,
// the options recorded in each output's manifest (the key that tells whether
// a batch output is up to date) and the report's "options" all come from the
// table in options.cpp: adding an option is one entry there.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "qconfig/engine.h"

namespace bertq {

struct ConvertOptions {
  std::string input;
  std::string output;
  std::optional<std::string> qconfig_path;  // none: per_channel_dynamic for ""
  std::optional<Engine> engine;             // none: the best engine available
  std::optional<std::string> embeddings;    // "8bit", "4bit" or "float" for every embedding; none: the qconfig's
  bool fuse_qkv = false;                    // one quantized linear for siblings reading one input (exact)
  bool full_range_activations = false;      // int8 linears quantize their input to 8 bits, not 7 (VNNI)
  bool debug = false;                       // debug model, like quantize_dynamic_jit(debug=True)
  bool prepare_only = false;                // `bertq prepare`: stop after inserting observers (not an option)
  bool dry_run = false;                     // plan, convert in memory, measure; write nothing
  bool allow_missing = false;               // keys naming no module warn instead of failing
  bool allow_unrunnable = false;            // write a model this LibTorch cannot run (fp16 needs fbgemm)
  bool allow_requantize = false;            // accept an input that is already quantized
  bool allow_nothing_quantized = false;     // a conversion that quantizes nothing is not an error
  bool no_manifest = false;                 // do not store extra/bertq_manifest.json
  std::optional<int> threads;               // LibTorch intra-op threads; the output does not depend on it
  // Coverage guards (for CI): module-name globs whose Linear modules must end
  // up quantized, and the least fraction of weight elements quantized.
  std::vector<std::string> require_quantized;
  std::optional<double> min_quantized_fraction;
  // Secondary outputs, written after the model (also when a guard fails).
  std::optional<std::string> report_path;  // JSON report
  std::optional<std::string> html_path;    // HTML report
};

// One option of the schema.
struct OptionSpec {
  using Field = std::variant<bool ConvertOptions::*, std::optional<std::string> ConvertOptions::*,
                             std::optional<double> ConvertOptions::*, std::optional<int> ConvertOptions::*,
                             std::optional<Engine> ConvertOptions::*, std::vector<std::string> ConvertOptions::*>;
  const char* key;   // JSON name in manifests and reports: "allow_missing"
  const char* flag;  // command-line flag: "--allow-missing"
  const char* help;
  Field field;
  bool is_path;         // a file path: relative to the manifest's folder in batch manifests
  bool changes_result;  // changes the output file or its verdict: part of the up-to-date key
  bool in_batch;        // a batch job may set it
  bool in_prepare;      // `bertq prepare` takes it
};

// Every option, in the order the CLI's help lists them.
const std::vector<OptionSpec>& convert_option_specs();

// The options that decide what a conversion produces (changes_result), as a
// JSON object with every key present. `qconfig` is given separately, as the
// resolved dict, so that the key changes when the file's content does.
nlohmann::ordered_json result_key(const ConvertOptions& options, const nlohmann::ordered_json& resolved_qconfig);

// Sets `options` from a batch manifest entry's fields (those with in_batch);
// relative paths are resolved against `base`. Throws Error(Config) naming
// `where` ("jobs[2].engine") for unknown fields and wrong types, with a
// did-you-mean. Fields listed in `own_fields` belong to the caller.
void options_from_json(const nlohmann::ordered_json& entry, const std::string& base, const std::string& source,
                       const std::string& where, const std::vector<std::string>& own_fields, ConvertOptions& options);

// The `bertq convert` arguments that reproduce `options` (paths after `--`,
// so that no path is ever read as a flag).
std::vector<std::string> options_to_args(const ConvertOptions& options);

}  // namespace bertq
