// `bertq batch MANIFEST.json`: many conversions for CI, each in its own
// process (LibTorch's engine and thread settings are per process), with
// incremental skipping, deterministic sharding, and interrupts that lose
// nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace bertq {

// One conversion, with the `bertq convert` options a manifest may set.
struct BatchJob {
  std::string input;
  std::string output;
  std::optional<std::string> qconfig;
  std::optional<std::string> engine;
  bool debug = false;
  bool allow_missing = false;
  bool allow_unrunnable = false;
  std::vector<std::string> require_quantized;
  std::optional<double> min_quantized_fraction;
};

// Parses the manifest (docs/batch.md) and expands its directory entries.
// Paths are relative to the manifest's folder. Throws Error(Config) for
// unknown fields, globs that match nothing, duplicate outputs, and outputs
// that are some job's input.
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
  std::string self;  // the bertq executable to run for each job
};

struct JobResult {
  BatchJob job;
  std::string status;  // "ok", "skipped", "failed", "interrupted", "not run"
  std::string message;
  int exit_code = 0;
  double seconds = 0;
};

struct BatchResult {
  Shard shard;
  size_t total_in_manifest = 0;
  std::vector<JobResult> jobs;
  bool interrupted = false;
  size_t count(const std::string& status) const;
};

// True if `job.output` exists and its bertq manifest records this input (by
// SHA-256), qconfig, engine, debug mode and bertq version.
bool up_to_date(const BatchJob& job, std::string* why_not = nullptr);

// Runs the jobs; `on_done` is called as each finishes. Stops launching on
// SIGINT/SIGTERM, forwards the signal to running conversions (which delete
// their temporary files) and reports the rest as not run.
BatchResult run_batch(const BatchOptions& options, const std::vector<BatchJob>& jobs,
                      const std::function<void(const JobResult&, size_t done, size_t total)>& on_done);

void print_batch_summary(const BatchResult& result, std::ostream& out);
void print_batch_json(const BatchResult& result, std::ostream& out);

}  // namespace bertq
