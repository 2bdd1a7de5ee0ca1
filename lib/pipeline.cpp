#include "pipeline.h"

#include <fnmatch.h>
#include <spdlog/spdlog.h>
#include <torch/script.h>
#include <torch/version.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <set>
#include <sstream>

#include "analyze.h"
#include "error.h"
#include "json_util.h"
#include "manifest.h"
#include "model_file.h"
#include "quantize.h"
#include "sha256.h"
#include "text_util.h"
#include "zip_index.h"

namespace bertq {
namespace {

void check_paths(const ConvertOptions& o) {
  if (o.output.empty() && !o.dry_run) throw Error(ErrorKind::Usage, "no output path given");
  if (o.dry_run) return;
  if (o.input == o.output || same_file(o.input, o.output))
    throw Error(ErrorKind::Usage,
                "output " + o.output + " is the input file; bertq never overwrites its input",
                "choose another output path");
}

// Ops that pack weights at run time. After Finalize they are folded into
// packed-parameter attributes; one left in the graph means packing failed for
// this engine (e.g. no fp16 prepack in onednn/qnnpack) and the model's first
// forward will fail.
std::vector<std::string> unfolded_prepacks(const torch::jit::Module& m) {
  std::set<std::string> kinds;
  auto graph = m.get_method("forward").graph();
  std::function<void(torch::jit::Block*)> visit = [&](torch::jit::Block* b) {
    for (torch::jit::Node* n : b->nodes()) {
      const std::string kind = n->kind().toQualString();
      if (kind.find("prepack") != std::string::npos) kinds.insert(kind);
      for (torch::jit::Block* sub : n->blocks()) visit(sub);
    }
  };
  visit(graph->block());
  return {kinds.begin(), kinds.end()};
}

// A key that quantizes nothing is as silent as a key that names nothing.
void warn_idle_keys(const QConfigDict& dict, const Plan& plan, std::vector<std::string>& warnings) {
  for (const auto& e : dict.entries) {
    if (!e.qconfig) continue;
    bool used = false;
    std::vector<std::string> reasons;
    for (const auto& mp : plan.modules) {
      if (mp.rule.key != e.key || mp.rule.kind == RuleKind::OptedOut) continue;
      if (mp.quantized) used = true;
      else if (reasons.size() < 3)
        reasons.push_back((mp.path.empty() ? "<root>" : mp.path) + ": " + mp.float_reason);
    }
    if (!used)
      warnings.push_back("qconfig key \"" + e.key + "\" quantized nothing" +
                         (reasons.empty() ? std::string(" (no weight-bearing module under it)")
                                          : " (" + join(reasons, "; ") + ")"));
  }
}

// The process's peak resident memory so far (VmHWM), in MiB.
long peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6)) / 1024;
  return -1;
}

// Logs how long each step took (with -v), so users can see where time goes.
class StepTimer {
 public:
  void done(const char* step) {
    const auto now = std::chrono::steady_clock::now();
    spdlog::debug("{}: {:.2f} s, peak RSS {} MiB", step, std::chrono::duration<double>(now - last_).count(),
                  peak_rss_mib());
    last_ = now;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace

void check_coverage(const Report& r, const ConvertOptions& o) {
  for (const auto& pattern : o.require_quantized) {
    size_t matched = 0;
    std::vector<std::string> still_float;
    for (const auto& m : r.modules) {
      if (m.plan.type_name != "Linear" || fnmatch(pattern.c_str(), m.plan.path.c_str(), 0) != 0) continue;
      ++matched;
      if (!m.plan.quantized) still_float.push_back(m.plan.path + " (" + m.plan.float_reason + ")");
    }
    if (matched == 0)
      throw Error(ErrorKind::Coverage,
                  "--require-quantized \"" + pattern + "\" matches no Linear module",
                  "patterns are globs over module names, e.g. \"bert.encoder.*\"");
    if (!still_float.empty()) {
      std::vector<std::string> head(still_float.begin(),
                                    still_float.begin() + std::min<size_t>(still_float.size(), 5));
      throw Error(ErrorKind::Coverage,
                  "--require-quantized \"" + pattern + "\": " + std::to_string(still_float.size()) + " of " +
                      std::to_string(matched) + " matching Linear modules stay float: " + join(head, ", ") +
                      (still_float.size() > 5 ? ", ..." : ""));
    }
  }
  if (o.min_quantized_fraction) {
    const double f = r.quantized_weight_fraction();
    if (f < *o.min_quantized_fraction) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "%.3f of the weight elements are quantized, less than --min-quantized-fraction %.3f",
                    f, *o.min_quantized_fraction);
      throw Error(ErrorKind::Coverage, buf, "the report lists why each float module stays float");
    }
  }
}

Report run_convert(const ConvertOptions& o) {
  check_paths(o);
  Report report;
  report.bertq_version = BERTQ_VERSION;
  report.libtorch_version = TORCH_VERSION;
  report.input.path = o.input;
  report.output.path = o.dry_run ? "" : o.output;
  const Engine engine = o.engine ? *o.engine : default_engine();
  report.engine = to_string(engine);

  // Load the qconfig first: a typo there should not cost a model load.
  std::optional<QConfigDict> dict;
  if (o.qconfig_path) {
    dict = load_qconfig_file(*o.qconfig_path);
    report.qconfig_given = read_text_file(*o.qconfig_path, ErrorKind::Config);
  }

  set_engine(engine);
  if (o.threads) at::set_num_threads(*o.threads);
  StepTimer timer;
  torch::jit::Module model = load_model(o.input);
  // The input's hash and checksums are needed only before writing; the passes
  // use one core, this the other. (LibTorch does not check the CRC-32s: a
  // damaged weight would otherwise be quantized without a word.)
  std::future<std::string> input_sha = std::async(std::launch::async, [path = o.input] {
    verify_zip_checksums(path, read_zip_index(path));
    return sha256_file(path);
  });
  report.input.bytes = file_size(o.input);
  timer.done("load");

  Plan plan;
  FloatTensors floats;
  torch::jit::Module result;
  try {
    if (is_prepared(model)) {
      // The qconfig was fixed when the observers were inserted.
      if (o.prepare_only)
        throw Error(ErrorKind::Usage, o.input + " is already prepared (it holds observers)",
                    "run `bertq convert` on it");
      if (dict)
        throw Error(ErrorKind::Usage,
                    o.input + " is already prepared; its qconfig was fixed by `bertq prepare`",
                    "drop --qconfig, or convert the float model instead");
      report.mode = o.debug ? "convert prepared (debug)" : "convert prepared";
      plan = plan_from_prepared(model);
      floats = capture_float_tensors(model, plan);
      if (!o.dry_run) result = convert_dynamic_jit(model, /*inplace=*/false, o.debug);
    } else {
      if (!dict) dict = default_qconfig_dict();
      report.qconfig_resolved = to_json_string(*dict);
      plan = make_plan(model, *dict, engine, o.allow_missing);
      report.warnings = plan.warnings;
      floats = capture_float_tensors(model, plan);
      torch::jit::Module prepared = prepare_dynamic_jit_consuming(model, *dict);
      model = torch::jit::Module();  // only stand-ins are left in it
      timer.done("insert observers");
      record_prepared(plan, prepared);
      warn_idle_keys(*dict, plan, report.warnings);
      if (plan.quantized_count() == 0)
        report.warnings.push_back("nothing was quantized: no Linear module is reached by a qconfig; the output "
                                  "computes what the input does");
      if (o.dry_run) {
        report.mode = "dry run";
      } else if (o.prepare_only) {
        report.mode = "prepare";
        result = prepared;
      } else {
        report.mode = o.debug ? "quantize (debug)" : "quantize";
        result = convert_prepared_for_quantize(prepared, o.debug);
        timer.done("quantize and pack");
      }
    }
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::Internal,
                "PyTorch's quantization passes failed: " + std::string(e.what_without_backtrace()));
  }

  if (o.dry_run) {
    // Plan only: nothing is converted or written.
    report.modules = module_reports(plan);
    report.input.sha256 = input_sha.get();
    report.input_sizes = measure_input(o.input, report.modules, floats);
    report.output_sizes = estimate_output(report.input_sizes, report.modules);
    report.output.bytes = report.output_sizes.total;
    report.output_estimated = true;
    check_totals(report);
    check_coverage(report, o);
    return report;
  }

  // Input sizes first: they need every float tensor, which describe_modules
  // then lets go of as it finishes with each packed module.
  report.modules = module_reports(plan);
  report.input_sizes = measure_input(o.input, report.modules, floats);
  describe_modules(report.modules, floats, result);
  if (!o.prepare_only && !o.debug)
    for (const auto& m : report.modules)
      if (m.plan.quantized && m.plan.op == "linear_dynamic" && m.packed_attr.empty())
        report.warnings.push_back("report: could not tell which packed weight replaced " + m.plan.path +
                                  "; its scales and bytes are missing from the report");
  timer.done("describe modules");
  // Guards fail before anything is written.
  check_coverage(report, o);

  if (!o.prepare_only && !o.debug) {
    const auto prepacks = unfolded_prepacks(result);
    if (!prepacks.empty()) {
      const std::string msg = "the converted model cannot run on this LibTorch: " + join(prepacks, ", ") +
                              " is not available for engine " + report.engine +
                              " (fp16 dynamic quantization needs an fbgemm-enabled LibTorch)";
      if (!o.allow_unrunnable)
        throw Error(ErrorKind::Unsupported, msg,
                    "pass --allow-unrunnable to write it anyway for an fbgemm runtime, or use "
                    "per_channel_dynamic");
      report.warnings.push_back(msg + "; written anyway (--allow-unrunnable)");
    }
  }

  const FloatFingerprints prints = fingerprint(floats);
  // Hold no extra reference to the model's tensors while saving (see
  // FloatFingerprints), or the archive would differ from Python's; this also
  // frees the float weights that the packed ones replaced.
  floats = FloatTensors();
  timer.done("fingerprint float tensors");
  report.input.sha256 = input_sha.get();
  timer.done("input sha256");
  std::map<std::string, std::string> extra;
  if (o.manifest) extra[kManifestName] = manifest_json(report);
  save_model_atomic(result, o.output, extra);
  timer.done("save");

  report.output.bytes = file_size(o.output);
  std::future<std::string> output_sha = std::async(std::launch::async, sha256_file, o.output);
  report.output_sizes = measure_output(o.output, report.modules, prints, result);
  report.output.sha256 = output_sha.get();
  check_totals(report);
  timer.done("report");
  return report;
}

}  // namespace bertq
