// Batch manifests, shards, and what a job's end says about the disk.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "base/cpu.h"
#include "base/error.h"
#include "batch/batch.h"
#include "catch.hpp"
#include "scratch.h"

using namespace bertq;
namespace fs = std::filesystem;

namespace {

struct Dir : testing::ScratchDir {
  Dir() : ScratchDir("bertq-batch") {}
};
using testing::put;

// Unsets an environment variable for the test's life, then restores it.
struct SavedEnv {
  explicit SavedEnv(const char* name) : name(name) {
    if (const char* v = std::getenv(name)) value = v;
    ::unsetenv(name);
  }
  ~SavedEnv() {
    if (value)
      ::setenv(name, value->c_str(), 1);
    else
      ::unsetenv(name);
  }
  const char* name;
  std::optional<std::string> value;
};

// A batch whose "bertq" is a shell script, forced, with one job per output,
// all reading one input. The script finds the job's output in $last.
struct StandInBatch {
  Dir d;
  BatchOptions o;
  std::vector<BatchJob> jobs;
  explicit StandInBatch(const std::vector<std::string>& outputs, int parallel = 1) {
    put(d / "in.pt", "x");
    o.self = d / "fake.sh";
    o.force = true;
    o.jobs = parallel;
    for (const auto& out : outputs) {
      jobs.emplace_back();
      jobs.back().options.input = d / "in.pt";
      jobs.back().options.output = d / out;
    }
  }
  void script(const std::string& body) {
    put(o.self, "#!/bin/sh\nfor a; do last=$a; done\n" + body);
    fs::permissions(o.self, fs::perms::owner_all);
  }
};

}  // namespace

TEST_CASE("a manifest's jobs and directories, relative to its folder", "[batch]") {
  Dir d;
  fs::create_directories(d / "in");
  put(d / "in/a.pt", "");
  put(d / "in/b.pt", "");
  put(d / "in/c.txt", "");
  put(d / "m.json", R"({"jobs": [{"input": "in/a.pt", "output": "out/x.pt", "engine": "qnnpack"}],
    "directories": [{"input_dir": "in", "glob": "*.pt", "output_dir": "out2", "debug": true}]})");
  const auto jobs = load_batch_manifest(d / "m.json");
  REQUIRE(jobs.size() == 3);
  CHECK(jobs[0].options.input == d / "in/a.pt");
  CHECK(jobs[0].options.output == d / "out/x.pt");
  CHECK(jobs[0].options.engine == Engine::QNNPACK);
  CHECK(jobs[1].options.output == d / "out2/a.pt");
  CHECK(jobs[2].options.output == d / "out2/b.pt");
  CHECK(jobs[2].options.debug);
  put(d / "bad.json", R"({"directories": [{"input_dir": "in", "output_dir": "o", "report": "r.json"}]})");
  CHECK_THROWS_AS(load_batch_manifest(d / "bad.json"), Error);
}

TEST_CASE("shards partition the jobs deterministically", "[batch]") {
  std::vector<BatchJob> jobs(7);
  for (int i = 0; i < 7; ++i) jobs[i].options.output = "out/" + std::to_string(6 - i) + ".pt";
  std::vector<std::string> seen;
  for (int k = 1; k <= 3; ++k)
    for (const auto& j : select_shard(jobs, {k, 3})) seen.push_back(j.options.output);
  std::sort(seen.begin(), seen.end());
  CHECK(seen.size() == 7);
  CHECK(std::unique(seen.begin(), seen.end()) == seen.end());
  CHECK(select_shard(jobs, {1, 3}).size() == 3);
  CHECK_THROWS_AS(parse_shard("0/2"), Error);
  CHECK_THROWS_AS(parse_shard("2/1"), Error);
  CHECK_THROWS_AS(parse_shard("1/2x"), Error);
  CHECK(parse_shard("2/4").index == 2);
}

TEST_CASE("preflight: each job's problem is its own, output folders are made", "[batch]") {
  Dir d;
  put(d / "a.pt", "x");
  std::vector<BatchJob> jobs(3);
  jobs[0].options.input = d / "a.pt";
  jobs[0].options.output = d / "deep/new/folder/a.pt";
  jobs[1].options.input = d / "missing.pt";
  jobs[1].options.output = d / "b.pt";
  jobs[2].options.input = d / "a.pt";
  jobs[2].options.output = d.dir.string();
  const auto problems = preflight(jobs);
  CHECK(problems[0].empty());
  CHECK(fs::is_directory(d / "deep/new/folder"));
  CHECK(problems[1] == "cannot read input " + d / "missing.pt" + ": No such file or directory");
  CHECK(problems[2].find("is a folder; bertq writes only regular files") != std::string::npos);
}

TEST_CASE("a job killed after writing its output is reported as it is on disk", "[batch]") {
  // A stand-in for bertq: writes the output (renamed into place, as bertq
  // does), then dies by SIGKILL before leaving its result.
  StandInBatch b({"out.pt"});
  b.script("printf done > \"$last.tmp\" && mv \"$last.tmp\" \"$last\"\nkill -KILL $$\n");
  BatchResult r = run_batch(b.o, b.jobs, {});
  REQUIRE(r.jobs.size() == 1);
  CHECK(r.jobs[0].status == JobStatus::Failed);
  CHECK(r.jobs[0].message.find("bertq crashed: stopped by signal 9 after writing its output, which is complete") == 0);
  CHECK(r.jobs[0].exit_code == 128 + 9);
  // Killed before writing: says so, and the old output is untouched.
  b.script("kill -KILL $$\n");
  r = run_batch(b.o, b.jobs, {});
  CHECK(r.jobs[0].message.find("bertq crashed: stopped by signal 9 before writing its output (the previous file is "
                               "unchanged)") == 0);
  // Stopped by the batch's own SIGTERM after writing: interrupted, output complete.
  b.script("printf done > \"$last.tmp\" && mv \"$last.tmp\" \"$last\"\nkill -TERM $PPID\nexec sleep 30\n");
  r = run_batch(b.o, b.jobs, {});
  CHECK(r.signal == 15);
  CHECK(r.jobs[0].status == JobStatus::Interrupted);
  CHECK(r.jobs[0].message.find("stopped by signal 15 after writing its output, which is complete") == 0);
}

TEST_CASE("a stop signal that comes while the batch is not waiting still stops the running jobs", "[batch]") {
  // The signal is raised from the progress callback, between two waits: a
  // batch that only learns of signals inside a blocking waitpid() would sit
  // out the second job's 30 s and call it failed.
  StandInBatch b({"slow.pt", "quick.pt"}, 2);
  b.script("case \"$last\" in *quick.pt) exit 1;; esac\nexec sleep 30\n");
  const BatchResult r = run_batch(b.o, b.jobs, [](const JobResult& done, size_t, size_t) {
    if (done.job.options.output.find("quick.pt") != std::string::npos) ::raise(SIGTERM);
  });
  CHECK(r.signal == SIGTERM);
  CHECK(r.jobs[1].status == JobStatus::Failed);
  CHECK(r.jobs[0].status == JobStatus::Interrupted);
  CHECK(r.jobs[0].message.find("stopped by signal 15 before writing its output") == 0);
}

TEST_CASE("each conversion of a batch gets its share of the CPUs, unless the job or the environment says", "[batch]") {
  // A stand-in for bertq that records its arguments.
  StandInBatch b({"a.pt", "b.pt"}, 2);
  b.script("printf '%s\\n' \"$@\" > \"$last.args\"\nexit 1\n");
  b.jobs[1].options.threads = 5;
  auto args = [&](const std::string& out) {
    std::ifstream in(b.d / (out + ".args"));
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  };
  auto threads_flags = [&](const std::string& out) {
    std::vector<std::string> flags;
    for (const auto& a : args(out))
      if (a.rfind("--threads", 0) == 0) flags.push_back(a);
    return flags;
  };
  const SavedEnv omp("OMP_NUM_THREADS"), mkl("MKL_NUM_THREADS");
  run_batch(b.o, b.jobs, {});
  const std::string share = "--threads=" + std::to_string(std::max(1, bertq::usable_cpus() / 2));
  CHECK(threads_flags("a.pt") == std::vector<std::string>{share});
  CHECK(threads_flags("b.pt") == std::vector<std::string>{"--threads=5"});
  CHECK(args("a.pt").back() == b.d / "a.pt");  // the stand-in ran with the job's paths
  // OMP_NUM_THREADS set: the children read it, as LibTorch does.
  ::setenv("OMP_NUM_THREADS", "3", 1);
  run_batch(b.o, b.jobs, {});
  CHECK(threads_flags("a.pt").empty());
  CHECK(threads_flags("b.pt") == std::vector<std::string>{"--threads=5"});
}

TEST_CASE("an automatic shard reads each scheduler's worker number, and refuses what is not one", "[batch]") {
  using Env = std::map<std::string, std::string>;
  auto from = [](const Env& env) {
    return bertq::shard_from_environment([env](const std::string& name) -> std::optional<std::string> {
      const auto it = env.find(name);
      return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
    });
  };
  struct Good {
    Env env;
    int index, count;
    std::string source;
  };
  const std::vector<Good> good = {
      {{{"SLURM_ARRAY_TASK_ID", "0"}, {"SLURM_ARRAY_TASK_COUNT", "4"}, {"SLURM_ARRAY_TASK_MIN", "0"}},
       1,
       4,
       "a Slurm job array (SLURM_ARRAY_TASK_ID=0, SLURM_ARRAY_TASK_COUNT=4, SLURM_ARRAY_TASK_MIN=0)"},
      // --array=1-4, and --array=0-6:2 (tasks 0, 2, 4, 6).
      {{{"SLURM_ARRAY_TASK_ID", "4"}, {"SLURM_ARRAY_TASK_COUNT", "4"}, {"SLURM_ARRAY_TASK_MIN", "1"}}, 4, 4, ""},
      {{{"SLURM_ARRAY_TASK_ID", "4"},
        {"SLURM_ARRAY_TASK_COUNT", "4"},
        {"SLURM_ARRAY_TASK_MIN", "0"},
        {"SLURM_ARRAY_TASK_STEP", "2"}},
       3,
       4,
       ""},
      {{{"CI_NODE_INDEX", "2"}, {"CI_NODE_TOTAL", "5"}},
       2,
       5,
       "GitLab parallel jobs (CI_NODE_INDEX=2, CI_NODE_TOTAL=5)"},
      {{{"JOB_COMPLETION_INDEX", "0"}, {"BERTQ_SHARD_COUNT", "3"}},
       1,
       3,
       "a Kubernetes Indexed Job (JOB_COMPLETION_INDEX=0, BERTQ_SHARD_COUNT=3)"},
  };
  for (const auto& g : good) {
    INFO(g.index << "/" << g.count);
    const auto found = from(g.env);
    CHECK(found.shard.index == g.index);
    CHECK(found.shard.count == g.count);
    if (!g.source.empty()) CHECK(found.source == g.source);
  }
  struct Bad {
    Env env;
    std::string message;
  };
  const std::vector<Bad> bad = {
      {{}, "--shard auto: no scheduler gave this worker a number"},
      {{{"CI_NODE_INDEX", "1"}, {"CI_NODE_TOTAL", "2"}, {"JOB_COMPLETION_INDEX", "0"}, {"BERTQ_SHARD_COUNT", "2"}},
       "--shard auto: two schedulers number this worker: GitLab parallel jobs"},
      {{{"JOB_COMPLETION_INDEX", "0"}},
       "--shard auto: a Kubernetes Indexed Job is set up but BERTQ_SHARD_COUNT is not"},
      {{{"CI_NODE_INDEX", "x"}, {"CI_NODE_TOTAL", "2"}}, "--shard auto: CI_NODE_INDEX=\"x\" is not a worker number"},
      {{{"CI_NODE_INDEX", "-1"}, {"CI_NODE_TOTAL", "2"}}, "--shard auto: CI_NODE_INDEX=\"-1\" is not a worker number"},
      {{{"CI_NODE_INDEX", "3"}, {"CI_NODE_TOTAL", "2"}}, "gives shard 3 of 2"},
      {{{"CI_NODE_INDEX", "0"}, {"CI_NODE_TOTAL", "2"}}, "gives shard 0 of 2"},
      {{{"SLURM_ARRAY_TASK_ID", "5"}, {"SLURM_ARRAY_TASK_COUNT", "4"}, {"SLURM_ARRAY_TASK_STEP", "2"}},
       "--shard auto: Slurm task 5 is not on the range from 0 in steps of 2"},
  };
  for (const auto& b : bad) {
    INFO(b.message);
    try {
      from(b.env);
      FAIL("accepted");
    } catch (const bertq::Error& e) {
      CHECK(e.kind() == bertq::ErrorKind::Usage);
      CHECK(std::string(e.what()).find(b.message) != std::string::npos);
    }
  }
}
