// `bertq eval MODEL ...` and `bertq compare FLOAT QUANT ...`.
#include <fmt/format.h>
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
#include "run/evaluate.h"
#include "run/model_inputs.h"
#include "validators.h"

namespace bertq::app {
namespace {

struct DataFlags {
  DataOptions data;
  RunOptions run;
  std::string engine;
  std::string format = "text";
  std::optional<int64_t> seq;
};

void add_data_options(CLI::App& cmd, DataFlags& f) {
  cmd.add_option("--inputs", f.data.inputs,
                 "the model's own inputs, for any forward: tensors saved with torch.save (a tuple, or a dict keyed "
                 "by forward's argument names, \"labels\" for eval) or JSON Lines keyed by them (\"label\" for eval)");
  cmd.add_option("--task", f.data.task, "GLUE task of --data: mrpc");
  cmd.add_option("--data", f.data.data_dir, "folder with the task's dev.tsv (the tutorial's glue_data/MRPC)");
  cmd.add_option("--vocab", f.data.vocab, "BERT vocab.txt (uncased WordPiece)");
  cmd.add_option("--tokenized", f.data.tokenized,
                 "pre-tokenized JSON Lines: {\"input_ids\": [...], \"attention_mask\": [...], "
                 "\"token_type_ids\": [...], \"label\": 0}");
  cmd.add_option_function<int64_t>(
      "--seq-length,--max-seq-length", [&f](int64_t v) { f.seq = v; },
      "tokenize and pad to this length (default 128, or the model's own positions if fewer)");
  cmd.add_option("--batch", f.run.batch, "batch size (default 8)");
  cmd.add_option("--threads", f.run.threads, "threads (default 1)");
  cmd.add_option("--engine", f.engine, "quantized engine: onednn or qnnpack (default onednn)");
  cmd.add_option("--format", f.format, "text or json")->check(CLI::IsMember({"text", "json"}));
}

void finish_flags(DataFlags& f, const std::vector<std::string>& models) {
  if (!f.engine.empty()) f.run.engine = parse_engine(f.engine);
  f.run.warn = [](const std::string& w) { spdlog::warn("{}", printable_line(w)); };
  if (f.data.inputs.empty()) {
    std::string note;
    f.data.max_seq_length = choose_seq_length(f.seq, 128, models, &note);
    if (!note.empty()) spdlog::info("{}", printable_line(note));
  } else if (f.seq) {
    throw Error(ErrorKind::Usage, "--inputs gives the inputs; --seq-length pads tokenized text", "drop one of the two");
  }
  if (f.run.batch < 1 || f.run.threads < 1) throw Error(ErrorKind::Usage, "--batch and --threads must be positive");
}

}  // namespace

void setup_eval(CLI::App& parent, Runner& runner) {
  struct Flags : DataFlags {
    std::string model;
    std::optional<double> min_f1, min_accuracy;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd =
      parent.add_subcommand("eval", "accuracy and F1 on GLUE MRPC (or pre-tokenized data), as the tutorial");
  cmd->add_option("model", f->model, "TorchScript BERT classifier")->required();
  add_data_options(*cmd, *f);
  cmd->add_option("--min-f1", f->min_f1, "exit 7 if F1 is below this (or undefined)")
      ->check(finite_number())
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--min-accuracy", f->min_accuracy, "exit 7 if accuracy is below this")
      ->check(finite_number())
      ->check(CLI::Range(0.0, 1.0));
  cmd->callback([f, &runner] {
    runner = [f] {
      finish_flags(*f, {f->model});
      if (f->data.task.empty() && f->data.data_dir.empty() && f->data.tokenized.empty() && f->data.inputs.empty())
        throw Error(ErrorKind::Usage,
                    "eval needs labelled data: --task mrpc --data DIR --vocab FILE, --tokenized FILE, or --inputs "
                    "FILE with labels");
      const Dataset data = load_dataset(f->data);
      ProgressBar bar;
      const EvalResult r =
          evaluate(f->model, data, f->run, [&bar](int64_t done, int64_t total, const std::string& what) {
            bar.update(static_cast<int>(done), static_cast<int>(total), what);
          });
      bar.finish();
      if (f->format == "json")
        print_eval_json(r, std::cout);
      else
        print_eval(r, std::cout);
      // Gates, after the figures: CI logs show what failed and by how much.
      std::vector<std::string> failed;
      if (f->min_accuracy && r.accuracy < *f->min_accuracy)
        failed.push_back(fmt::format("accuracy {:.4f} is below --min-accuracy {:.4f}", r.accuracy, *f->min_accuracy));
      if (f->min_f1 && !r.f1)
        failed.push_back(
            fmt::format("F1 is undefined (no row is class 1, predicted or labelled), so it cannot meet "
                        "--min-f1 {:.4f}",
                        *f->min_f1));
      else if (f->min_f1 && *r.f1 < *f->min_f1)
        failed.push_back(fmt::format("F1 {:.4f} is below --min-f1 {:.4f}", *r.f1, *f->min_f1));
      if (!failed.empty()) throw Error(ErrorKind::Coverage, join(failed, "; "));
      return int(kOk);
    };
  });
}

void setup_compare(CLI::App& parent, Runner& runner) {
  struct Flags : DataFlags {
    std::string float_model, quantized_model;
    std::optional<double> max_disagreement, max_rel_l2;
    int64_t rows = 64;
    bool allow_unrelated = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd =
      parent.add_subcommand("compare", "how closely a quantized model follows its float original, without labels");
  cmd->add_option("float", f->float_model, "the float model")->required();
  cmd->add_option("quantized", f->quantized_model, "the quantized model")->required();
  add_data_options(*cmd, *f);
  cmd->add_option("--rows", f->rows, "dummy rows when no data is given (default 64)")->check(CLI::PositiveNumber);
  cmd->add_option("--max-disagreement", f->max_disagreement,
                  "exit 7 if more than this fraction of rows change their predicted class")
      ->check(finite_number())
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--max-rel-l2", f->max_rel_l2,
                  "exit 7 if the relative L2 error of the logits (||q - f|| / ||f||) is above this")
      ->check(finite_number())
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--allow-unrelated", f->allow_unrelated,
                "compare even when the quantized model's manifest names another source than FLOAT (a warning)");
  cmd->callback([f, &runner] {
    runner = [f] {
      if (const std::string why = unrelated_reason(f->float_model, f->quantized_model); !why.empty()) {
        if (!f->allow_unrelated)
          throw Error(ErrorKind::Usage, why,
                      "compare a quantized model with the float model it came from; --allow-unrelated compares "
                      "them anyway");
        spdlog::warn("{} (compared anyway: --allow-unrelated)", printable_line(why));
      }
      finish_flags(*f, {f->float_model, f->quantized_model});
      f->data.dummy_rows = f->rows;
      const Dataset data = load_dataset(f->data);
      ProgressBar bar;
      const CompareResult r = compare_models(f->float_model, f->quantized_model, data, f->run,
                                             [&bar](int64_t done, int64_t total, const std::string& what) {
                                               bar.update(static_cast<int>(done), static_cast<int>(total), what);
                                             });
      bar.finish();
      if (f->format == "json")
        print_compare_json(r, std::cout);
      else
        print_compare(r, std::cout);
      std::vector<std::string> failed;
      if (f->max_disagreement && 1.0 - r.agreement > *f->max_disagreement)
        failed.push_back(
            fmt::format("{:.4f} of the rows change their predicted class, more than --max-disagreement {:.4f}",
                        1.0 - r.agreement, *f->max_disagreement));
      if (f->max_rel_l2 && !(r.rel_l2 <= *f->max_rel_l2))
        failed.push_back(fmt::format("the relative L2 error of the logits is {:.6g}, more than --max-rel-l2 {:.6g}",
                                     r.rel_l2, *f->max_rel_l2));
      if (!failed.empty()) throw Error(ErrorKind::Coverage, join(failed, "; "));
      return int(kOk);
    };
  });
}

}  // namespace bertq::app
