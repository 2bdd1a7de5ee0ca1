// `bertq bench MODEL [MODEL ...]`.
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
#include "run/bench.h"
#include "run/evaluate.h"
#include "run/model_inputs.h"

namespace bertq::app {

void setup_bench(CLI::App& parent, Runner& runner) {
  struct Flags {
    BenchOptions options;
    std::string engine;
    std::string format = "text";
    std::optional<int64_t> seq;
    bool allow_unrelated = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd =
      parent.add_subcommand("bench", "time models on the same dummy inputs (the tutorial's batch 8 x 128, one thread)");
  cmd->add_option("models", f->options.models, "TorchScript models; ratios are to the first")->required();
  cmd->add_option("--inputs", f->options.inputs_file,
                  "the model's own inputs, its first --batch rows: tensors saved with torch.save (a tuple, or a dict "
                  "keyed by forward's argument names) or JSON Lines keyed by them (docs/evaluate.md)");
  cmd->add_option("--batch", f->options.batch, "batch size (default 8)");
  cmd->add_option_function<int64_t>(
      "--seq-length,--seq", [f](int64_t v) { f->seq = v; },
      "sequence length (default 128, or the model's own positions if fewer)");
  cmd->add_option("--vocab", f->options.vocab, "input ids are drawn from [0, vocab) (default 2, as the tutorial)");
  cmd->add_option("--threads", f->options.threads, "intra-op and OpenBLAS threads (default 1)");
  cmd->add_option("--iters", f->options.iters, "timed iterations per model (default 10)");
  cmd->add_option("--warmup", f->options.warmup, "untimed iterations first (default 2)");
  cmd->add_option("--engine", f->engine, "quantized engine: onednn or qnnpack (default onednn)");
  cmd->add_flag(
      "--no-tuning", [f](int64_t) { f->options.tune_runtime = false; },
      "keep glibc's allocator settings and OpenBLAS's own thread count (to measure their effect)");
  cmd->add_flag("--profile", f->options.profile,
                "then profile each model: time per operator and per module (LibTorch's RecordFunction hooks), and "
                "the int8 bound from the model's own linear shapes run alone (docs/performance.md)");
  cmd->add_option("--format", f->format, "text or json")->check(CLI::IsMember({"text", "json"}));
  cmd->add_flag("--allow-unrelated", f->allow_unrelated,
                "time models whose manifests name another source than the first model (a warning)");
  cmd->callback([f, &runner] {
    runner = [f] {
      // Ratios are to the first model: a quantized model of another network
      // would make them meaningless.
      for (size_t i = 1; i < f->options.models.size(); ++i) {
        const std::string why = unrelated_reason(f->options.models.front(), f->options.models[i]);
        if (why.empty()) continue;
        if (!f->allow_unrelated)
          throw Error(ErrorKind::Usage, why,
                      "bench a model with the float model it came from (ratios are to the first); --allow-unrelated "
                      "times them anyway");
        spdlog::warn("{} (timed anyway: --allow-unrelated)", printable_line(why));
      }
      if (!f->engine.empty()) f->options.engine = parse_engine(f->engine);
      if (!f->options.inputs_file.empty() && (f->seq || f->options.vocab != 2))
        throw Error(ErrorKind::Usage, "--inputs gives the inputs; --seq-length and --vocab shape dummy ones",
                    "drop one of the two");
      if (f->options.inputs_file.empty()) {
        std::string note;
        f->options.seq = choose_seq_length(f->seq, 128, f->options.models, &note);
        if (!note.empty()) spdlog::info("{}", printable_line(note));
      }
      ProgressBar bar;
      const BenchResult r = run_bench(
          f->options, [&bar](int done, int total, const std::string& model) { bar.update(done, total, model); });
      bar.finish();
      for (const auto& w : r.runtime.warnings) spdlog::warn("{}", w);
      if (f->format == "json")
        print_bench_json(r, std::cout);
      else
        print_bench(r, std::cout);
      return int(kOk);
    };
  });
}

}  // namespace bertq::app
