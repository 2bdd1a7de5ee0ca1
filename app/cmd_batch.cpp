// `bertq batch MANIFEST.json [-j N] [--force] [--shard K/N] [--summary FILE]`.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <climits>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "base/error.h"
#include "base/files.h"
#include "base/text.h"
#include "batch/batch.h"
#include "commands.h"
#include "exit_codes.h"

namespace bertq::app {
namespace {

std::string self_executable() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw Error(ErrorKind::Internal, "cannot find the bertq executable (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

// The end of a batch, run or merged: the summary line on `out`, the JSON
// summary to its file or stdout, and the exit status.
int finish_batch(const BatchResult& r, const std::optional<OutputPath>& summary, std::ostream& out) {
  print_batch_summary(r, out);
  if (summary) {
    std::ostringstream s;
    print_batch_json(r, s);
    if (summary->to_stdout) {
      std::cout << s.str() << std::flush;
      if (!std::cout) throw Error(ErrorKind::Io, "cannot write --summary to standard output");
    } else {
      write_file_atomic(*summary, s.str());
    }
  }
  if (r.signal) return 128 + r.signal;
  return r.count(JobStatus::Failed) ? int(kBatchFailed) : int(kOk);
}

// `bertq batch --merge-summaries S1 S2 ...`: one summary for a sharded run,
// and the exit status one batch over every job would have given.
int merge_summaries(const std::vector<std::string>& files, const std::string& summary_path) {
  std::optional<OutputPath> summary;
  std::vector<InputPath> inputs;
  for (const auto& file : files) inputs.push_back({"summary to merge", file});
  if (!summary_path.empty()) {
    summary = check_text_output_path("--summary", summary_path);
    check_distinct(inputs, {*summary});
  }
  std::vector<std::string> texts;
  // A summary holds a few hundred bytes per job.
  for (const auto& file : files)
    texts.push_back(read_file_capped(file, uint64_t{1} << 30, ErrorKind::Config, "batch summary"));
  const BatchResult r = merge_batch_summaries(texts, files);
  std::ostream& out = summary && summary->to_stdout ? std::cerr : std::cout;
  return finish_batch(r, summary, out);
}

}  // namespace

void setup_batch(CLI::App& parent, Runner& runner) {
  struct Flags {
    BatchOptions options;
    std::vector<std::string> files;
    std::string shard;
    std::string summary;
    bool merge = false;
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = parent.add_subcommand("batch", "convert many models, in parallel processes, for CI (docs/batch.md)");
  cmd->add_option("manifest", f->files,
                  "batch manifest (JSON): jobs and/or directories; - for stdin (with --merge-summaries: the "
                  "shards' summary files)")
      ->required();
  cmd->add_option("-j,--jobs", f->options.jobs, "conversions at once (default 1)")->check(CLI::Range(1, 256));
  cmd->add_flag("--force", f->options.force, "redo jobs whose output is up to date");
  CLI::Option* shard = cmd->add_option("--shard", f->shard,
                                       "take shard K of N (e.g. 2/4): a deterministic share of the jobs; auto: K and N "
                                       "from Slurm arrays, GitLab parallel jobs or Kubernetes Indexed Jobs");
  cmd->add_option("--summary", f->summary, "write the per-job summary as JSON to this file (- for stdout)");
  cmd->add_flag("--merge-summaries", f->merge,
                "fold the --summary files of every shard into one; exit as one batch over all jobs would");
  cmd->callback([f, &runner, shard] {
    runner = [f, shard] {
      if (f->merge) {
        if (shard->count() > 0 || f->options.force)
          throw Error(ErrorKind::Usage, "--merge-summaries reads summaries; it runs no job",
                      "drop --shard and --force");
        return merge_summaries(f->files, f->summary);
      }
      if (f->files.size() != 1)
        throw Error(ErrorKind::Usage, "batch takes one manifest, given " + std::to_string(f->files.size()),
                    "to merge the summaries of shards, add --merge-summaries");
      f->options.manifest = f->files.front();
      // Given, even empty: `--shard ""` must not mean "every job on every runner".
      std::string shard_source;
      if (shard->count() > 0 && f->shard == "auto") {
        const ShardFromEnvironment found = shard_from_environment([](const std::string& name) {
          const char* v = std::getenv(name.c_str());
          return v ? std::optional<std::string>(v) : std::nullopt;
        });
        f->options.shard = found.shard;
        shard_source = " from " + found.source;
      } else if (shard->count() > 0) {
        f->options.shard = parse_shard(f->shard);
      }
      f->options.self = self_executable();
      f->options.libtorch_version = BERTQ_LIBTORCH_VERSION;
      // The summary may not be the manifest, nor any job's input or output.
      const auto all = load_batch_manifest(f->options.manifest);
      std::optional<OutputPath> summary;
      if (!f->summary.empty()) {
        std::vector<InputPath> inputs{{"batch manifest", f->options.manifest}};
        std::vector<OutputPath> outputs;
        for (const auto& j : all) {
          inputs.push_back({"job input", j.options.input});
          if (j.options.qconfig_path) inputs.push_back({"job qconfig", *j.options.qconfig_path});
          outputs.push_back({"job output", j.options.output, j.options.output});
          if (j.options.report_path) outputs.push_back({"job report", *j.options.report_path, *j.options.report_path});
          if (j.options.html_path) outputs.push_back({"job html", *j.options.html_path, *j.options.html_path});
        }
        outputs.push_back({"--summary", f->summary, f->summary, f->summary == "-"});
        check_distinct(inputs, outputs);
        summary = check_text_output_path("--summary", f->summary);
      }
      const auto jobs = select_shard(all, f->options.shard);
      if (f->options.shard.count > 1 || !shard_source.empty())
        std::cerr << "bertq: shard " << f->options.shard.index << "/" << f->options.shard.count
                  << printable_line(shard_source) << ": " << jobs.size() << " of " << all.size() << " jobs\n";
      // `--summary -` has standard output: the progress goes to standard error.
      std::ostream& out = summary && summary->to_stdout ? std::cerr : std::cout;
      BatchResult r = run_batch(f->options, jobs, [&out](const JobResult& j, size_t done, size_t total) {
        out << "[" << done << "/" << total << "] " << to_string(j.status) << "  " << printable_line(j.job.options.input)
            << " -> " << printable_line(j.job.options.output);
        if (!j.message.empty()) out << ": " << printable_line(j.message);
        if (!j.hint.empty()) out << " (hint: " << printable_line(j.hint) << ")";
        out << std::endl;  // as it happens, also into a pipe
      });
      r.total_in_manifest = all.size();
      return finish_batch(r, summary, out);
    };
  });
}

}  // namespace bertq::app
