// `bertq batch MANIFEST.json [-j N] [--force] [--shard K/N] [--summary FILE]`.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <iostream>
#include <memory>

#include "batch.h"
#include "commands.h"
#include "error.h"
#include "exit_codes.h"

namespace bertq::app {
namespace {

std::string self_executable() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw Error(ErrorKind::Internal, "cannot find the bertq executable (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

void setup_batch(CLI::App& parent, Runner& runner) {
  struct Flags {
    BatchOptions options;
    std::string shard;
    std::string summary;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = parent.add_subcommand("batch", "convert many models, in parallel processes, for CI (docs/batch.md)");
  cmd->add_option("manifest", f->options.manifest, "batch manifest (JSON): jobs and/or directories")->required();
  cmd->add_option("-j,--jobs", f->options.jobs, "conversions at once (default 1)")->check(CLI::Range(1, 256));
  cmd->add_flag("--force", f->options.force, "redo jobs whose output is up to date");
  cmd->add_option("--shard", f->shard, "take shard K of N (e.g. 2/4): a deterministic share of the jobs");
  cmd->add_option("--summary", f->summary, "write the per-job summary as JSON to this file");
  cmd->callback([f, &runner] {
    runner = [f] {
      if (!f->shard.empty()) f->options.shard = parse_shard(f->shard);
      f->options.self = self_executable();
      const auto all = load_batch_manifest(f->options.manifest);
      const auto jobs = select_shard(all, f->options.shard);
      if (f->options.shard.count > 1)
        std::cerr << "bertq: shard " << f->options.shard.index << "/" << f->options.shard.count << ": " << jobs.size()
                  << " of " << all.size() << " jobs\n";
      BatchResult r = run_batch(f->options, jobs, [](const JobResult& j, size_t done, size_t total) {
        std::cout << "[" << done << "/" << total << "] " << j.status << "  " << j.job.input << " -> " << j.job.output;
        if (!j.message.empty()) std::cout << ": " << j.message;
        std::cout << std::endl;  // as it happens, also into a pipe
      });
      r.total_in_manifest = all.size();
      print_batch_summary(r, std::cout);
      if (!f->summary.empty()) {
        std::ofstream out(f->summary, std::ios::trunc);
        print_batch_json(r, out);
        if (!out) throw Error(ErrorKind::Io, "cannot write " + f->summary);
      }
      if (r.interrupted) return 130;
      return r.count("failed") ? int(kBatchFailed) : int(kOk);
    };
  });
}

}  // namespace bertq::app
