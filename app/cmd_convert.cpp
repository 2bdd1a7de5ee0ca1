// `bertq convert IN OUT` and `bertq prepare IN OUT`.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>
#include <memory>

#include "commands.h"
#include "error.h"
#include "exit_codes.h"
#include "pipeline.h"
#include "quantize.h"

namespace bertq::app {
namespace {

struct ConvertFlags {
  ConvertOptions options;
  std::string engine;
  std::string format = "text";
  std::string report_path;
  std::string html_path;
  bool verbose = false;
};

void add_common(CLI::App& cmd, ConvertFlags& f) {
  cmd.add_option("input", f.options.input, "TorchScript model (traced or scripted)")->required();
  cmd.add_option("output", f.options.output, "where to write the result (never the input)");
  cmd.add_option("--qconfig", f.options.qconfig_path,
                 "qconfig JSON (docs/qconfig.md); default: per_channel_dynamic for the whole model");
  cmd.add_option("--engine", f.engine, "quantized engine: onednn or qnnpack (default: onednn)");
  cmd.add_flag("--allow-missing", f.options.allow_missing,
               "warn instead of failing when a qconfig key names no module");
  cmd.add_option("--format", f.format, "stdout: text (summary and module table) or json (the report)")
      ->check(CLI::IsMember({"text", "json"}));
  cmd.add_option("--report", f.report_path, "also write the report as JSON to this file");
  cmd.add_option("--html", f.html_path, "also write the report as a self-contained HTML page");
  cmd.add_option("--require-quantized", f.options.require_quantized,
                 "fail unless every Linear whose name matches this glob is quantized (repeatable)");
  cmd.add_option("--min-quantized-fraction", f.options.min_quantized_fraction,
                 "fail unless at least this fraction of the weight elements is quantized")
      ->check(CLI::Range(0.0, 1.0));
  cmd.add_flag("--no-manifest", [&f](int64_t) { f.options.manifest = false; },
               "do not store extra/bertq_manifest.json (the archive then equals Python's byte for byte)");
  cmd.add_option("--threads", f.options.threads, "LibTorch threads (the output is the same for any count)")
      ->check(CLI::Range(1, 256));
  cmd.add_flag("-v,--verbose", f.verbose, "log each step and its time to stderr");
}

// Writes a rendering to a file; the report is secondary output, so it is
// written only after the model is safely in place.
void write_file(const std::string& path, void (*render)(const Report&, std::ostream&), const Report& r) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (out) render(r, out);
  if (!out) throw Error(ErrorKind::Io, "cannot write " + path);
}

int run(ConvertFlags& f) {
  if (f.verbose) spdlog::set_level(spdlog::level::debug);
  if (!f.engine.empty()) f.options.engine = parse_engine(f.engine);
  if (f.options.output.empty() && !f.options.dry_run) throw Error(ErrorKind::Usage, "output is required");
  const Report report = run_convert(f.options);
  for (const auto& w : report.warnings) spdlog::warn("{}", w);
  if (!f.report_path.empty()) write_file(f.report_path, print_json, report);
  if (!f.html_path.empty()) write_file(f.html_path, print_html, report);
  if (f.format == "json") {
    print_json(report, std::cout);
  } else {
    print_summary(report, std::cout);
    std::cout << "\n";
    print_table(report, std::cout);
  }
  return kOk;
}

}  // namespace

void setup_convert(CLI::App& parent, Runner& runner) {
  auto flags = std::make_shared<ConvertFlags>();
  CLI::App* cmd = parent.add_subcommand(
      "convert", "quantize a float model (or convert a prepared one), like quantize_dynamic_jit");
  add_common(*cmd, *flags);
  cmd->add_flag("--debug", flags->options.debug,
                "write the debug model (float simulation, scales kept as attributes), like debug=True");
  cmd->add_flag("--allow-unrunnable", flags->options.allow_unrunnable,
                "write the model even if this LibTorch cannot run it (fp16 needs fbgemm)");
  cmd->add_flag("--dry-run", flags->options.dry_run,
                "print the plan and the estimated output size; write nothing");
  cmd->callback([flags, &runner] { runner = [flags] { return run(*flags); }; });
}

void setup_prepare(CLI::App& parent, Runner& runner) {
  auto flags = std::make_shared<ConvertFlags>();
  flags->options.prepare_only = true;
  CLI::App* cmd = parent.add_subcommand(
      "prepare", "insert observers only, like prepare_dynamic_jit; finish with `bertq convert`");
  add_common(*cmd, *flags);
  cmd->callback([flags, &runner] { runner = [flags] { return run(*flags); }; });
}

}  // namespace bertq::app
