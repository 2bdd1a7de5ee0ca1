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

#include "convert/options.h"

namespace bertq {

// One conversion: every field is a `bertq convert` option (convert/options.h).
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

struct JobResult {
  BatchJob job;
  JobStatus status = JobStatus::NotRun;
  std::string message;
  std::string hint;
  int exit_code = 0;
  double seconds = 0;
};

struct BatchResult {
  Shard shard;
  size_t total_in_manifest = 0;
  std::vector<JobResult> jobs;
  int signal = 0;  // the SIGINT/SIGTERM that stopped the batch, 0 if none
  size_t count(JobStatus status) const;
};

// Why `job`'s output is not up to date ("" if it is): its bertq manifest must
// record this input (by SHA-256 of its bytes now), this bertq and LibTorch,
// and the same result key (convert/options.h: qconfig as resolved, engine,
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
