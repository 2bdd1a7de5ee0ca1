// `bertq batch MANIFEST.json`: many conversions for CI, each in its own
// process (LibTorch's engine and thread settings are per process), with
// incremental skipping, deterministic sharding, and interrupts that lose
// nothing. Needs no LibTorch itself: the children do the converting.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "plan/options.h"
#include "report/report.h"

namespace bertq {

// One conversion: every field is a `bertq convert` option (plan/options.h).
struct BatchJob {
  ConvertOptions options;
};

// Parses the manifest (docs/batch.md): read once as a stream ("-" is stdin,
// a FIFO works), with the qconfig size cap. Paths are relative to the
// manifest's folder. Throws Error(Config) for unknown fields, wrong types,
// globs that match nothing, and jobs that would lose work: two jobs writing
// one file, a job writing another's input, qconfig or report.
std::vector<BatchJob> load_batch_manifest(const std::string& path);

struct Shard {
  int index = 1;  // 1-based
  int count = 1;
};
// Parses "K/N"; throws Error(Usage).
Shard parse_shard(const std::string& text);
// The jobs of shard K/N: sorted by output path, every N-th from K-1, so
// every machine computes the same partition.
std::vector<BatchJob> select_shard(std::vector<BatchJob> jobs, const Shard& shard);

// `--shard auto`: the worker's number as the scheduler that started it gives
// it: a Slurm job array (SLURM_ARRAY_TASK_ID, _COUNT, _MIN, _STEP), GitLab's
// `parallel:` (CI_NODE_INDEX, CI_NODE_TOTAL), or a Kubernetes Indexed Job
// (JOB_COMPLETION_INDEX; Kubernetes does not pass the count, so the Job sets
// BERTQ_SHARD_COUNT to its `completions`). `env` looks a variable up (getenv
// in bertq, a table in tests). Throws Error(Usage) when none is set, when
// two schedulers' are, or when a value is not a worker number.
struct ShardFromEnvironment {
  Shard shard;
  std::string source;  // "GitLab parallel jobs (CI_NODE_INDEX=2, CI_NODE_TOTAL=4)"
};
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
ShardFromEnvironment shard_from_environment(const EnvLookup& env);

struct BatchOptions {
  std::string manifest;
  int jobs = 1;  // concurrent conversions
  bool force = false;
  Shard shard;
  std::string self;                    // the bertq executable to run for each job
  std::optional<std::string> summary;  // --summary FILE
  std::string libtorch_version;        // the children's, for the up-to-date check
};

enum class JobStatus { Ok, Skipped, Failed, Interrupted, NotRun };
// "ok", "skipped", "failed", "interrupted", "not run"
std::string to_string(JobStatus status);

// What a conversion run by batch (`bertq convert --batch-result FILE`) leaves
// for its parent, written last (after the model and the report files): the
// outcome as data, so that batch never parses messages.
struct ChildResult {
  int exit_code = 0;
  std::string error_kind;  // to_string(ErrorKind); "" on success
  std::string message;
  std::string hint;
  bool output_written = false;
  std::string output_sha256;
  size_t quantized = 0;  // quantized modules
  // The sizes and the fraction of weight elements quantized, for CI logs.
  uint64_t input_bytes = 0;
  uint64_t output_bytes = 0;
  double quantized_fraction = 0;
  std::vector<GuardResult> guards;  // the CI guards checked, passed or not
};

// A finished conversion's result.
ChildResult child_result(const Report& report);
// A failed one's; `report` when the conversion got far enough to have one
// (a CI guard failed).
ChildResult child_result(const Error& error, int exit_code, const Report* report = nullptr);
// Writes `result` to `path` atomically (the parent reads it once the child exits).
void write_child_result(const std::string& path, const ChildResult& result);
// The result at `path`; nullopt if there is none or it is not a result (a
// child that crashed or was killed before writing it).
std::optional<ChildResult> read_child_result(const std::string& path);

struct JobResult {
  BatchJob job;
  JobStatus status = JobStatus::NotRun;
  std::string message;
  std::string hint;
  int exit_code = 0;
  double seconds = 0;
  std::optional<ChildResult> child;  // for jobs that ran and left one
};

struct BatchResult {
  Shard shard;
  size_t total_in_manifest = 0;
  std::vector<JobResult> jobs;
  int signal = 0;  // the SIGINT/SIGTERM that stopped the batch, 0 if none
  size_t count(JobStatus status) const;
};

// `bertq batch --merge-summaries`: the shards' summaries (`--summary` of
// each shard; `sources` name them in errors) folded into the result one batch
// over the whole manifest would have had: jobs in output-path order, shard
// 1/1. Throws Error(Config) for a file that is not a batch summary, and
// Error(Usage) unless the files are every shard of one split exactly once.
BatchResult merge_batch_summaries(const std::vector<std::string>& texts, const std::vector<std::string>& sources);

// Why `job`'s output is not up to date ("" if it is): its bertq manifest must
// record this input (by SHA-256 of its bytes now), this bertq and LibTorch,
// and the same result key (plan/options.h: qconfig as resolved, engine,
// mode, guards and every other option that decides the result or its
// verdict); the report files it asks for must exist.
std::string why_not_up_to_date(const BatchJob& job, const std::string& libtorch_version);

// Checks each job's paths before anything runs, creating output folders;
// returns, per job, the reason it cannot run ("" if it can). A problem is
// that job's, never the batch's.
std::vector<std::string> preflight(const std::vector<BatchJob>& jobs);

// Runs the jobs; `on_done` is called as each finishes. Stops launching on
// SIGINT/SIGTERM, forwards the signal to running conversions (which delete
// their temporary files) and reports the rest as not run.
BatchResult run_batch(const BatchOptions& options, const std::vector<BatchJob>& jobs,
                      const std::function<void(const JobResult&, size_t done, size_t total)>& on_done);

void print_batch_summary(const BatchResult& result, std::ostream& out);
void print_batch_json(const BatchResult& result, std::ostream& out);

}  // namespace bertq
