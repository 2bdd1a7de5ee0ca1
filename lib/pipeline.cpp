#include "pipeline.h"

#include <torch/script.h>

#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <cstdio>
#include <functional>
#include <map>
#include <ostream>
#include <set>

#include <spdlog/spdlog.h>

#include <chrono>

#include "error.h"
#include "model_file.h"
#include "quantize.h"
#include "text_util.h"

namespace bertq {
namespace {

void check_paths(const ConvertOptions& o) {
  if (o.output.empty()) throw Error(ErrorKind::Usage, "no output path given");
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
void warn_idle_keys(const QConfigDict& dict, ConversionReport& report) {
  for (const auto& e : dict.entries) {
    if (!e.qconfig) continue;
    bool used = false;
    std::vector<std::string> reasons;
    for (const auto& mp : report.plan.modules) {
      if (mp.rule.key != e.key || mp.rule.kind == RuleKind::OptedOut) continue;
      if (mp.quantized) used = true;
      else if (reasons.size() < 3) reasons.push_back((mp.path.empty() ? "<root>" : mp.path) + ": " + mp.float_reason);
    }
    if (!used)
      report.warnings.push_back("qconfig key \"" + e.key + "\" quantized nothing" +
                                (reasons.empty() ? std::string(" (no weight-bearing module under it)")
                                                 : " (" + join(reasons, "; ") + ")"));
  }
}

// Logs how long each step took (with -v), so users can see where time goes.
class StepTimer {
 public:
  void done(const char* step) {
    const auto now = std::chrono::steady_clock::now();
    spdlog::debug("{}: {:.2f} s", step, std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace

ConversionReport run_convert(const ConvertOptions& o) {
  check_paths(o);
  ConversionReport report;
  report.input_path = o.input;
  report.output_path = o.output;
  const Engine engine = o.engine ? *o.engine : default_engine();
  report.engine = to_string(engine);

  // Load the qconfig first: a typo there should not cost a model load.
  std::optional<QConfigDict> dict;
  if (o.qconfig_path) dict = load_qconfig_file(*o.qconfig_path);

  set_engine(engine);
  StepTimer timer;
  torch::jit::Module model = load_model(o.input);
  timer.done("load");
  report.input_bytes = file_size(o.input);

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
      report.plan = plan_from_prepared(model);
      result = convert_dynamic_jit(model, /*inplace=*/false, o.debug);
    } else {
      if (!dict) dict = default_qconfig_dict();
      report.qconfig_json = to_json_string(*dict);
      report.plan = make_plan(model, *dict, engine, o.allow_missing);
      report.warnings = report.plan.warnings;
      torch::jit::Module prepared = prepare_dynamic_jit_consuming(model, *dict);
      model = torch::jit::Module();  // only stand-ins are left in it
      timer.done("insert observers");
      record_prepared(report.plan, prepared);
      warn_idle_keys(*dict, report);
      if (o.prepare_only) {
        report.mode = "prepare";
        result = prepared;
      } else {
        report.mode = o.debug ? "quantize (debug)" : "quantize";
        result = convert_dynamic_jit(prepared, /*inplace=*/true, o.debug);
        timer.done("quantize and pack");
        // quantize_jit.py cleans the forward graph once more after converting.
        auto graph = result.get_method("forward").graph();
        torch::jit::ConstantPropagation(graph);
        torch::jit::EliminateDeadCode(graph);
      }
    }
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::Internal,
                "PyTorch's quantization passes failed: " + std::string(e.what_without_backtrace()));
  }

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

  save_model_atomic(result, o.output);
  timer.done("save");
  report.output_bytes = file_size(o.output);
  return report;
}

void print_summary(const ConversionReport& r, std::ostream& out) {
  out << "bertq " << r.mode << ": " << r.input_path << " -> " << r.output_path << " (engine "
      << r.engine << ")\n";
  out << "  size: " << format_mb(r.input_bytes) << " -> " << format_mb(r.output_bytes);
  if (r.input_bytes > 0) {
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, " (%.1f%%)", 100.0 * static_cast<double>(r.output_bytes) /
                                                       static_cast<double>(r.input_bytes));
    out << ratio;
  }
  out << "\n";
  out << "  modules: " << r.plan.quantized_count() << " quantized, " << r.plan.skipped_count()
      << " left float (of " << r.plan.modules.size() << " with weights)\n";
  std::map<std::string, size_t> ops, reasons;
  for (const auto& m : r.plan.modules) {
    if (m.quantized) ++ops[m.op];
    else ++reasons[m.float_reason];
  }
  for (const auto& [op, n] : ops) out << "    " << n << " x " << op << "\n";
  for (const auto& [why, n] : reasons) out << "    " << n << " float: " << why << "\n";
}

}  // namespace bertq
