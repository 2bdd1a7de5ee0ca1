// `bertq convert IN OUT` and `bertq prepare IN OUT`. The flags come from the
// option schema (lib/plan/options.cpp); this file adds only what is about
// printing.
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <variant>

#include "base/error.h"
#include "base/files.h"
#include "base/text.h"
#include "batch/batch.h"
#include "commands.h"
#include "convert/pipeline.h"
#include "exit_codes.h"
#include "jit/engines.h"
#include "validators.h"

namespace bertq::app {
namespace {

struct ConvertFlags {
  ConvertOptions options;
  std::string engine;
  std::string format = "text";
  TableRows table = TableRows::All;
  std::string batch_result;  // batch's children: where to leave the JSON result
  bool verbose = false;
};

template <typename... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <typename... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// Registers every option of the schema that this subcommand takes.
void add_schema_options(CLI::App& cmd, ConvertFlags& f, bool prepare) {
  using O = ConvertOptions;
  for (const OptionSpec& s : convert_option_specs()) {
    if (prepare && !s.in_prepare) continue;
    ConvertOptions& o = f.options;
    std::visit(Overloaded{[&](bool O::*field) { cmd.add_flag(s.flag, o.*field, s.help); },
                          [&](std::optional<std::string> O::*field) {
                            cmd.add_option_function<std::string>(
                                s.flag, [&o, field](const std::string& v) { o.*field = v; }, s.help);
                          },
                          [&](std::optional<double> O::*field) {
                            cmd.add_option_function<double>(
                                   s.flag, [&o, field](double v) { o.*field = v; }, s.help)
                                ->check(finite_number())
                                ->check(CLI::Range(0.0, 1.0));
                          },
                          [&](std::optional<int> O::*field) {
                            cmd.add_option_function<int>(
                                   s.flag, [&o, field](int v) { o.*field = v; }, s.help)
                                ->check(CLI::Range(1, 256));
                          },
                          [&](std::optional<Engine> O::*) { cmd.add_option(s.flag, f.engine, s.help); },
                          [&](std::vector<std::string> O::*field) {
                            // One value per occurrence, so that a repeatable
                            // flag never takes the positionals after it.
                            cmd.add_option(s.flag, o.*field, s.help)
                                ->expected(1)
                                ->allow_extra_args(false)
                                ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
                          }},
               s.field);
  }
}

void add_common(CLI::App& cmd, ConvertFlags& f, bool prepare) {
  cmd.add_option("input", f.options.input, "TorchScript model (traced or scripted)")->required();
  cmd.add_option("output", f.options.output, "where to write the result (never the input)");
  add_schema_options(cmd, f, prepare);
  cmd.add_option("--format", f.format, "stdout: text (summary and module table) or json (the report)")
      ->check(CLI::IsMember({"text", "json"}));
  const std::map<std::string, TableRows> tables{
      {"all", TableRows::All}, {"quantized", TableRows::Quantized}, {"none", TableRows::None}};
  cmd.add_option("--table", f.table, "module rows in the text table: all (default), quantized or none")
      ->transform(CLI::CheckedTransformer(tables));
  cmd.add_flag("-v,--verbose", f.verbose, "log each step, its time and the peak memory to stderr");
  cmd.add_option("--batch-result", f.batch_result)->group("");  // for `bertq batch`, hidden
}

// The text table's width: the terminal's, or $COLUMNS, or unlimited for a
// file or a pipe.
size_t output_width() {
  if (::isatty(STDOUT_FILENO)) {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  }
  if (const char* cols = std::getenv("COLUMNS")) {
    const long n = std::strtol(cols, nullptr, 10);
    if (n > 20 && n < 10000) return static_cast<size_t>(n);
  }
  return 0;
}

// The summary and table (or the JSON report) on stdout, or on stderr when
// `--report -` or `--html -` has stdout, so the two never interleave.
void print_outcome(const ConvertFlags& f, const Report& report) {
  const bool stdout_taken = f.options.report_path == "-" || f.options.html_path == "-";
  std::ostream& out = stdout_taken ? std::cerr : std::cout;
  if (f.format == "json") {
    print_json(report, out);
    return;
  }
  print_summary(report, out);
  if (f.table != TableRows::None) {
    out << "\n";
    print_table(report, out, f.table, stdout_taken ? 0 : output_width());
  }
}

int run(ConvertFlags& f, const std::string& command_line) {
  if (f.verbose) spdlog::set_level(spdlog::level::debug);
  try {
    if (!f.engine.empty()) f.options.engine = parse_engine(f.engine);
    const Report report = run_convert(f.options, command_line);
    for (const auto& w : report.warnings) spdlog::warn("{}", printable_line(w));
    for (const auto& n : report.notes) spdlog::info("{}", printable_line(n));
    print_outcome(f, report);
    if (!f.batch_result.empty()) write_child_result(f.batch_result, child_result(report));
    return kOk;
  } catch (const GuardFailure& e) {
    // A CI log shows what the guard saw: sizes, the guards, the modules.
    print_outcome(f, e.report());
    if (!f.batch_result.empty())
      write_child_result(f.batch_result, child_result(e, exit_code_for(e.kind()), &e.report()));
    throw;
  } catch (const Error& e) {
    if (!f.batch_result.empty()) write_child_result(f.batch_result, child_result(e, exit_code_for(e.kind())));
    throw;
  }
}

}  // namespace

void setup_convert(CLI::App& parent, Runner& runner) {
  auto flags = std::make_shared<ConvertFlags>();
  CLI::App* cmd =
      parent.add_subcommand("convert", "quantize a float model (or convert a prepared one), like quantize_dynamic_jit");
  add_common(*cmd, *flags, false);
  cmd->add_flag("--dry-run", flags->options.dry_run,
                "plan, convert in memory and measure; write nothing but --report/--html");
  cmd->callback([flags, &runner] { runner = [flags] { return run(*flags, command_line()); }; });
}

void setup_prepare(CLI::App& parent, Runner& runner) {
  auto flags = std::make_shared<ConvertFlags>();
  flags->options.prepare_only = true;
  CLI::App* cmd =
      parent.add_subcommand("prepare", "insert observers only, like prepare_dynamic_jit; finish with `bertq convert`");
  add_common(*cmd, *flags, true);
  cmd->callback([flags, &runner] { runner = [flags] { return run(*flags, command_line()); }; });
}

}  // namespace bertq::app
