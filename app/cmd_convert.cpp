// `bertq convert IN OUT` and `bertq prepare IN OUT`.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>

#include "commands.h"
#include "exit_codes.h"
#include "pipeline.h"
#include "quantize.h"

namespace bertq::app {
namespace {

struct ConvertFlags {
  ConvertOptions options;
  std::string engine;
  bool verbose = false;
};

void add_common(CLI::App& cmd, ConvertFlags& f) {
  cmd.add_option("input", f.options.input, "TorchScript model (traced or scripted)")
      ->required();
  cmd.add_option("output", f.options.output, "where to write the result (never the input)")
      ->required();
  cmd.add_option("--qconfig", f.options.qconfig_path,
                 "qconfig JSON (docs/qconfig.md); default: per_channel_dynamic for the whole model");
  cmd.add_option("--engine", f.engine, "quantized engine: onednn or qnnpack (default: onednn)");
  cmd.add_flag("-v,--verbose", f.verbose, "log each step and its time to stderr");
  cmd.add_flag("--allow-missing", f.options.allow_missing,
               "warn instead of failing when a qconfig key names no module");
}

int run(ConvertFlags& f) {
  if (f.verbose) spdlog::set_level(spdlog::level::debug);
  if (!f.engine.empty()) f.options.engine = parse_engine(f.engine);
  ConversionReport report = run_convert(f.options);
  for (const auto& w : report.warnings) spdlog::warn("{}", w);
  print_summary(report, std::cout);
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
