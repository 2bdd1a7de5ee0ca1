// `bertq tune INPUT OUTPUT --tolerance T --qconfig-out Q.json [data]`.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "base/error.h"
#include "base/text.h"
#include "commands.h"
#include "exit_codes.h"
#include "jit/engines.h"
#include "progress.h"
#include "run/model_inputs.h"
#include "tune/tune.h"
#include "validators.h"

namespace bertq::app {

void setup_tune(CLI::App& parent, Runner& runner) {
  struct Flags {
    TuneOptions o;
    std::string metric = "rel_l2", engine, format = "text";
    std::optional<int64_t> seq;
    std::optional<int64_t> rows;
    std::string tolerance;
    std::optional<int64_t> max_trials;
    std::optional<double> time_limit;
    bool float_embeddings = false;
    bool verbose = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = parent.add_subcommand(
      "tune", "quantize as much as possible while the model's error stays within a tolerance (docs/tune.md)");
  cmd->add_option("input", f->o.input, "float TorchScript model")->required();
  cmd->add_option("output", f->o.output, "the tuned quantized model")->required();
  cmd->add_option("--tolerance", f->tolerance,
                  "the largest error allowed, in the metric's unit; a percentage (3%) for rel_l2, disagreement, "
                  "f1_drop and accuracy_drop")
      ->required();
  cmd->add_option("--max-trials", f->max_trials,
                  "stop the search after this many trial conversions; the smallest choice found that meets the "
                  "tolerance is written")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--time-limit", f->time_limit,
                  "start no trial after this many seconds; the smallest choice found that meets the tolerance is "
                  "written")
      ->check(finite_number())
      ->check(CLI::PositiveNumber);
  cmd->add_option("--metric", f->metric,
                  "rel_l2 (default: relative L2 of the logits against float), max_abs, disagreement (argmax "
                  "changes), f1_drop or accuracy_drop (against the data's labels)");
  cmd->add_option("--qconfig-out", f->o.qconfig_out,
                  "write the chosen qconfig here; `bertq convert INPUT OUT --qconfig` it reproduces the model")
      ->required();
  cmd->add_option("--tune-report", f->o.tune_report_path,
                  "also write each module's sensitivity, choice and the search's trials as JSON");
  cmd->add_option("--tune-html", f->o.tune_html_path,
                  "also write a page with each module's sensitivity as a chart, worst first, and the choices");
  cmd->add_option("--report", f->o.report_path, "the final conversion's JSON report");
  cmd->add_option("--html", f->o.html_path, "the final conversion's HTML report");
  cmd->add_flag("--float-embeddings", f->float_embeddings, "leave embeddings float (tune Linear modules only)");
  cmd->add_flag("--full-range-activations", f->o.full_range_activations,
                "also try each Linear's int8 level with full 8-bit activations, and take them where they err less "
                "(exact only with VNNI or qnnpack; refused elsewhere)");
  cmd->add_flag("-v,--verbose", f->verbose, "log each trial's conversion and evaluation time to stderr");
  cmd->add_option("--task", f->o.data.task, "GLUE task of --data: mrpc");
  cmd->add_option("--data", f->o.data.data_dir, "folder with the task's dev.tsv");
  cmd->add_option("--vocab", f->o.data.vocab, "BERT vocab.txt (uncased WordPiece)");
  cmd->add_option("--tokenized", f->o.data.tokenized, "pre-tokenized JSON Lines, as for eval");
  cmd->add_option("--inputs", f->o.data.inputs,
                  "the model's own inputs, for any forward: tensors saved with torch.save or JSON Lines, as for eval");
  cmd->add_option("--rows", f->rows, "tune on this many dummy rows (ids 0 and 1) when no data is given");
  cmd->add_option_function<int64_t>(
      "--seq-length", [f](int64_t v) { f->seq = v; },
      "tokenize and pad to this length (default 128, or the model's own positions if fewer)");
  cmd->add_option("--batch", f->o.run.batch, "batch size (default 8)");
  cmd->add_option("--threads", f->o.run.threads, "threads (default 1)");
  cmd->add_option("--engine", f->engine, "quantized engine: onednn or qnnpack (default: the best one)");
  cmd->add_option("--format", f->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  cmd->callback([f, &runner] {
    runner = [f] {
      const auto metric = tune_metric_from_name(f->metric);
      if (!metric)
        throw Error(ErrorKind::Usage, "unknown --metric " + quoted_value(f->metric),
                    did_you_mean(f->metric, tune_metric_names(), "metrics: " + join(tune_metric_names(), ", ")));
      f->o.metric = *metric;
      if (!f->engine.empty()) f->o.engine = parse_engine(f->engine);
      if (f->o.run.batch < 1 || f->o.run.threads < 1 || (f->rows && *f->rows < 1))
        throw Error(ErrorKind::Usage, "--batch, --threads and --rows must be positive");
      f->o.tolerance = parse_tolerance(f->tolerance, f->o.metric);
      const bool fraction = f->o.metric != TuneMetric::MaxAbs;
      if (fraction && f->o.tolerance >= 1 && f->tolerance.back() != '%')
        spdlog::warn("--tolerance {} allows {} of {:.0f} %: {} is a fraction (did you mean --tolerance {}%?)",
                     printable_line(f->tolerance), to_string(f->o.metric), 100 * f->o.tolerance, to_string(f->o.metric),
                     printable_line(f->tolerance));
      if (f->max_trials) f->o.max_trials = static_cast<size_t>(*f->max_trials);
      f->o.time_limit = f->time_limit;
      // Tuning on dummy ids measures nothing about real inputs: only when asked.
      const auto& d = f->o.data;
      if (d.inputs.empty() && d.tokenized.empty() && d.data_dir.empty() && d.task.empty() && !f->rows)
        throw Error(ErrorKind::Usage, "tune needs data to measure the error on",
                    "--tokenized FILE.jsonl, --data DIR --vocab FILE (MRPC), or --inputs FILE; --rows N tunes on N "
                    "dummy rows");
      f->o.embeddings = !f->float_embeddings;
      if (f->o.data.inputs.empty()) {
        std::string note;
        f->o.data.max_seq_length = choose_seq_length(f->seq, 128, {f->o.input}, &note);
        if (!note.empty()) spdlog::info("{}", printable_line(note));
      } else if (f->seq) {
        throw Error(ErrorKind::Usage, "--inputs gives the inputs; --seq-length pads tokenized text",
                    "drop one of the two");
      }
      f->o.data.dummy_rows = f->rows.value_or(64);
      if (f->verbose) spdlog::set_level(spdlog::level::debug);
      ProgressBar bar;
      const TuneResult r = run_tune(f->o, command_line(), [&bar](int64_t done, int64_t total, const std::string& w) {
        if (total > 0) bar.update(static_cast<int>(done), static_cast<int>(total), w);
      });
      bar.finish();
      // An output sent to standard output (`-`) has it: the summary goes to
      // standard error.
      const auto& o = f->o;
      const bool stdout_taken = o.qconfig_out == "-" || o.tune_report_path == "-" || o.tune_html_path == "-" ||
                                o.report_path == "-" || o.html_path == "-";
      std::ostream& out = stdout_taken ? std::cerr : std::cout;
      if (f->format == "json")
        out << tune_json(r);
      else
        print_tune(r, out);
      return int(kOk);
    };
  });
}

}  // namespace bertq::app
