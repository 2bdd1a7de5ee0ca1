// `bertq batch` as CI meets it: per-job failures never stop the batch,
// up-to-date checks that cannot skip a guard, paths that cannot be read as
// flags, and interrupts whose report says what is on disk.
#include "cli/cli.h"

using namespace cli;

namespace {

// A batch folder: three bundled models, a corrupted one, and a job with a bad qconfig.
void make_batch_folder(const Scratch& s) {
  fs::create_directories(s / "in");
  for (const char* m : {"tiny_bert.pt", "submodules.pt", "scripted_if.pt"})
    fs::copy_file(kSource + "/testdata/models/" + m, s / (std::string("in/") + m));
  fs::copy_file(kSource + "/testdata/bad/truncated.pt", s / "in/broken.pt");
  write_file(s / "badq.json", R"({"": "per_channel"})");
  write_file(s / "batch.json", R"({
    "directories": [{"input_dir": "in", "glob": "*.pt", "output_dir": "out"}],
    "jobs": [{"input": "in/submodules.pt", "output": "out/sub_badq.pt", "qconfig": "badq.json"}]
  })");
}

}  // namespace

TEST_CASE("batch converts the good jobs, reports the bad ones, and skips what is up to date", "[cli][batch]") {
  Scratch s;
  make_batch_folder(s);
  // The output folder does not exist yet: batch creates it.
  Result r = run({"batch", s / "batch.json", "-j", "2", "--summary", s / "summary.json"});
  INFO(r.out << r.err);
  CHECK(r.code == 9);
  CHECK(contains(r.out, "] ok  " + s / "in/tiny_bert.pt" + " -> " + s / "out/tiny_bert.pt\n"));
  CHECK(contains(r.out, "] failed  " + s / "in/broken.pt" + " -> " + s / "out/broken.pt: " + s / "in/broken.pt" +
                            ": is a truncated zip archive (its end record is missing)"));
  CHECK(contains(r.out, "] failed  " + s / "in/submodules.pt" + " -> " + s / "out/sub_badq.pt: " + s / "badq.json" +
                            ": [\"\"]: unknown preset \"per_channel\""));
  CHECK(contains(r.out, "batch: 3 converted, 0 up to date, 2 failed, 5 in all\n"));
  CHECK(fs::exists(s / "out/tiny_bert.pt"));
  CHECK_FALSE(fs::exists(s / "out/broken.pt"));
  CHECK_FALSE(fs::exists(s / "out/sub_badq.pt"));
  CHECK(s.leftovers().empty());
  const auto summary = parse_json(slurp(s / "summary.json"));
  CHECK(summary["counts"]["ok"] == 3);
  CHECK(summary["counts"]["failed"] == 2);

  // A second run skips what is up to date; a changed input is redone.
  r = run({"batch", s / "batch.json"});
  CHECK(r.code == 9);
  CHECK(contains(r.out, "batch: 0 converted, 3 up to date, 2 failed, 5 in all\n"));
  fs::copy_file(kSource + "/testdata/models/scripted_if.pt", s / "in/submodules.pt",
                fs::copy_options::overwrite_existing);
  r = run({"batch", s / "batch.json"});
  CHECK(contains(r.out, "] ok  " + s / "in/submodules.pt" + " -> " + s / "out/submodules.pt\n"));
  CHECK(contains(r.out, "batch: 1 converted, 2 up to date, 2 failed, 5 in all\n"));
  r = run({"batch", s / "batch.json", "--force"});
  CHECK(contains(r.out, "batch: 3 converted, 0 up to date, 2 failed, 5 in all\n"));
}

TEST_CASE("adding a CI guard or changing an option reruns an up-to-date job", "[cli][batch]") {
  Scratch s;
  fs::create_directories(s / "in");
  fs::copy_file(kModel, s / "in/m.pt");
  write_file(s / "batch.json", R"({"jobs": [{"input": "in/m.pt", "output": "out/m.pt"}]})");
  REQUIRE(run({"batch", s / "batch.json"}).code == 0);
  CHECK(contains(run({"batch", s / "batch.json"}).out, "skipped"));
  // A guard that fails: the job is not up to date, it reruns and fails.
  write_file(s / "batch.json",
             R"({"jobs": [{"input": "in/m.pt", "output": "out/m.pt", "min_quantized_fraction": 0.99}]})");
  Result r = run({"batch", s / "batch.json", "--summary", s / "summary.json"});
  CHECK(r.code == 9);
  CHECK(contains(r.out, "] failed  "));
  CHECK(contains(r.out, "less than --min-quantized-fraction 0.990"));
  // The summary names each guard the job checked, and which failed.
  const auto guards = parse_json(slurp(s / "summary.json"))["jobs"][0]["guards"];
  REQUIRE(guards.size() == 2);
  CHECK(guards[0]["name"] == "nothing quantized");
  CHECK(guards[0]["passed"] == true);
  CHECK(guards[1]["name"] == "min_quantized_fraction 0.99");
  CHECK(guards[1]["passed"] == false);
  CHECK(contains(guards[1]["message"].get<std::string>(), "less than --min-quantized-fraction 0.990"));
  write_file(s / "batch.json",
             R"({"jobs": [{"input": "in/m.pt", "output": "out/m.pt", "require_quantized": ["gpt2.*"]}]})");
  r = run({"batch", s / "batch.json"});
  CHECK(r.code == 9);
  CHECK(contains(r.out, "matches no Linear module"));
  // A guard that passes: rerun once, then up to date with it.
  write_file(s / "batch.json",
             R"({"jobs": [{"input": "in/m.pt", "output": "out/m.pt", "require_quantized": ["bert.*"]}]})");
  r = run({"batch", s / "batch.json"});
  CHECK(r.code == 0);
  CHECK(contains(r.out, "] ok  "));
  CHECK(contains(run({"batch", s / "batch.json"}).out, "skipped"));
  // The engine, debug mode and a report request change it too.
  write_file(s / "batch.json", R"({"jobs": [{"input": "in/m.pt", "output": "out/m.pt", "require_quantized": ["bert.*"],
      "engine": "qnnpack"}]})");
  CHECK(contains(run({"batch", s / "batch.json"}).out, "] ok  "));
  write_file(s / "batch.json", R"({"jobs": [{"input": "in/m.pt", "output": "out/m.pt", "require_quantized": ["bert.*"],
      "engine": "qnnpack", "report": "reports/m.json"}]})");
  r = run({"batch", s / "batch.json"});
  CHECK(contains(r.out, "] ok  "));
  CHECK(parse_json(slurp(s / "reports/m.json"))["engine"] == "qnnpack");
  CHECK(contains(run({"batch", s / "batch.json"}).out, "skipped"));
}

TEST_CASE("every per-job problem is that job's failure, and the batch goes on", "[cli][batch]") {
  Scratch s;
  fs::create_directories(s / "in");
  fs::create_directories(s / "out");
  fs::copy_file(kModel, s / "in/a.pt");
  fs::copy_file(kModel, s / "in/b.pt");
  // A missing input whose old output is still there; a symbolic link loop;
  // an output path that is a FIFO (it would block) or a folder.
  write_file(s / "out/gone.pt", "old output");
  fs::create_symlink(s / "in/loop.pt", s / "in/loop.pt");
  REQUIRE(::mkfifo((s / "out/fifo.pt").c_str(), 0600) == 0);
  write_file(s / "batch.json", R"({"jobs": [
    {"input": "in/gone.pt", "output": "out/gone.pt"},
    {"input": "in/loop.pt", "output": "out/loop.pt"},
    {"input": "in/a.pt", "output": "out/fifo.pt"},
    {"input": "in/a.pt", "output": "out"},
    {"input": "in/b.pt", "output": "out/b.pt"}
  ]})");
  const Result r = run({"batch", s / "batch.json", "--summary", s / "summary.json"});
  INFO(r.out << r.err);
  CHECK(r.code == 9);
  CHECK(contains(r.out, "batch: 1 converted, 0 up to date, 4 failed, 5 in all\n"));
  CHECK(contains(r.out, "out/gone.pt: cannot read input " + s / "in/gone.pt" + ": No such file or directory"));
  CHECK(contains(r.out, "out/loop.pt: cannot read input " + s / "in/loop.pt" + ": Too many levels of symbolic links"));
  CHECK(contains(r.out, "output " + s / "out/fifo.pt" + " is a FIFO (named pipe); bertq writes only regular files"));
  CHECK(contains(r.out, "output " + s / "out" + " is a folder; bertq writes only regular files"));
  CHECK(fs::exists(s / "out/b.pt"));
  CHECK(slurp(s / "out/gone.pt") == "old output");
  CHECK(fs::is_fifo(s / "out/fifo.pt"));
  CHECK(parse_json(slurp(s / "summary.json"))["counts"]["failed"] == 4);
  CHECK(s.leftovers().empty());
}

TEST_CASE("paths in a manifest are never read as flags", "[cli][batch]") {
  Scratch s;
  fs::create_directories(s / "in");
  fs::copy_file(kModel, s / "in/m.pt");
  write_file(s / "batch.json", R"({"jobs": [{"input": "in/m.pt", "output": "--dry-run"}]})");
  const Result r = run({"batch", s / "batch.json"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(fs::file_size(s / "--dry-run") > 1000);
}

TEST_CASE("batch manifests that would lose work are refused before anything runs", "[cli][batch][errors]") {
  Scratch s;
  write_file(s / "dup.json", R"({"jobs": [{"input": "a.pt", "output": "o.pt"}, {"input": "b.pt", "output": "o.pt"}]})");
  Result r = run({"batch", s / "dup.json"});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: " + s / "dup.json" + ": jobs: two jobs write " + s / "o.pt" + " (inputs " + s / "a.pt" +
                     " and " + s / "b.pt" + ")\n");
  write_file(s / "chain.json",
             R"({"jobs": [{"input": "a.pt", "output": "b.pt"}, {"input": "b.pt", "output": "c.pt"}]})");
  r = run({"batch", s / "chain.json"});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: " + s / "chain.json" + ": jobs: the output " + s / "b.pt" + " is the input of a job\n");
  write_file(s / "rep.json", R"({"jobs": [{"input": "a.pt", "output": "b.pt", "report": "a.pt"}]})");
  r = run({"batch", s / "rep.json"});
  CHECK(r.code == 3);
  CHECK(contains(r.err, ": jobs: the output " + s / "a.pt" + " is the input of a job"));
  write_file(s / "typo.json", R"({"jobs": [{"input": "a.pt", "output": "b.pt", "qconfg": "q.json"}]})");
  r = run({"batch", s / "typo.json"});
  CHECK(r.code == 3);
  CHECK(r.err.find("bertq: error: " + s / "typo.json" +
                   ": jobs[0].qconfg: unknown field \"qconfg\"\nhint: did you mean \"qconfig\"?") == 0);
  write_file(s / "empty.json", R"({"directories": [{"input_dir": ".", "glob": "*.onnx", "output_dir": "out"}]})");
  r = run({"batch", s / "empty.json"});
  CHECK(r.code == 3);
  CHECK(contains(r.err, "\"*.onnx\" matches no file in "));
  r = run({"batch", s.dir.string()});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: batch manifest " + s.dir.string() + " is a directory, not a file\n");
}

TEST_CASE("the summary never lands on the manifest or a job's files", "[cli][batch][errors]") {
  Scratch s;
  fs::create_directories(s / "in");
  fs::copy_file(kModel, s / "in/m.pt");
  write_file(s / "batch.json", R"({"jobs": [{"input": "in/m.pt", "output": "out/m.pt"}]})");
  const std::string manifest = slurp(s / "batch.json");
  Result r = run({"batch", s / "batch.json", "--summary", s / "batch.json"});
  CHECK(r.code == 2);
  CHECK(r.err == "bertq: error: --summary " + s / "batch.json" +
                     " is the batch manifest file; bertq never overwrites what it reads\nhint: choose another path "
                     "for --summary\n");
  r = run({"batch", s / "batch.json", "--summary", s / "in/m.pt"});
  CHECK(r.code == 2);
  r = run({"batch", s / "batch.json", "--summary", s / "out/m.pt"});
  CHECK(r.code == 2);
  CHECK(slurp(s / "batch.json") == manifest);
  CHECK(byte_difference(slurp(s / "in/m.pt"), slurp(kModel)) == "");
  CHECK_FALSE(fs::exists(s / "out"));
}

TEST_CASE("a manifest from a FIFO or stdin is read once, and the size cap holds", "[cli][batch]") {
  Scratch s;
  fs::create_directories(s / "in");
  fs::copy_file(kModel, s / "in/m.pt");
  const std::string manifest =
      R"({"jobs": [{"input": ")" + s / "in/m.pt" + R"(", "output": ")" + s / "out/m.pt" + "\"}]}";
  write_file(s / "batch.json", manifest);
  REQUIRE(::mkfifo((s / "fifo").c_str(), 0600) == 0);
  CHECK(shell("(cat " + quote(s / "batch.json") + " > " + quote(s / "fifo") + " &); " + quote(kBinary) + " batch " +
              quote(s / "fifo") + " > /dev/null 2>&1") == 0);
  CHECK(fs::exists(s / "out/m.pt"));
  Result r = run({"batch", "-", "--force"}, s / "batch.json");
  CHECK(r.code == 0);
  r = run({"batch", "-"}, "/dev/zero");
  CHECK(r.code == 3);
  CHECK(contains(r.err, "is larger than 16777216 bytes"));
}

TEST_CASE("the shards 1/2 and 2/2 convert every job exactly once", "[cli][batch]") {
  Scratch s;
  fs::create_directories(s / "in");
  for (int i = 0; i < 5; ++i)
    fs::copy_file(kSource + "/testdata/models/scripted_if.pt", s / ("in/m" + std::to_string(i) + ".pt"));
  write_file(s / "batch.json", R"({"directories": [{"input_dir": "in", "glob": "m*.pt", "output_dir": "out"}]})");
  const Result a = run({"batch", s / "batch.json", "--shard", "1/2"});
  const Result b = run({"batch", s / "batch.json", "--shard", "2/2"});
  CHECK(a.code == 0);
  CHECK(b.code == 0);
  CHECK(a.err == "bertq: shard 1/2: 3 of 5 jobs\n");
  CHECK(b.err == "bertq: shard 2/2: 2 of 5 jobs\n");
  for (int i = 0; i < 5; ++i) {
    const std::string out = s / ("out/m" + std::to_string(i) + ".pt");
    INFO(out);
    CHECK(fs::exists(out));
    const bool in_a = contains(a.out, "] ok  " + s / ("in/m" + std::to_string(i) + ".pt"));
    const bool in_b = contains(b.out, "] ok  " + s / ("in/m" + std::to_string(i) + ".pt"));
    CHECK(in_a != in_b);  // exactly one shard did it
  }
  CHECK(run({"batch", s / "batch.json", "--shard", "3/2"}).code == 2);
}

TEST_CASE("an interrupted batch says what finished and what is on disk", "[cli][batch]") {
  // The second job waits reading a FIFO qconfig that the test holds: the
  // batch is stopped once that job has surely started, whatever the
  // machine's speed.
  Scratch s;
  fs::create_directories(s / "in");
  for (int i = 0; i < 3; ++i) fs::copy_file(kModel, s / ("in/m" + std::to_string(i) + ".pt"));
  HeldFifo fifo(s / "fifo.json");
  write_file(s / "out-m1-old.txt", "");
  write_file(s / "batch.json", R"({"jobs": [
    {"input": "in/m0.pt", "output": "out/m0.pt"},
    {"input": "in/m1.pt", "output": "out/m1.pt", "qconfig": "fifo.json"},
    {"input": "in/m2.pt", "output": "out/m2.pt"}
  ]})");
  Background batch(quote(kBinary) + " batch " + quote(s / "batch.json") + " --summary " + quote(s / "summary.json") +
                   " > " + quote(s / "log") + " 2>&1");
  REQUIRE(fifo.opened_elsewhere());
  REQUIRE(::kill(batch.pid(), SIGTERM) == 0);
  CHECK(batch.wait() == 143);
  const auto summary = parse_json(slurp(s / "summary.json"));
  INFO(summary.dump(1));
  CHECK(summary["interrupted"] == true);
  CHECK(summary["signal"] == 15);
  CHECK(summary["counts"]["ok"] == 1);
  CHECK(summary["counts"]["interrupted"] == 1);
  CHECK(summary["counts"]["not_run"] == 1);
  CHECK(summary["jobs"][1]["status"] == "interrupted");
  CHECK(summary["jobs"][1]["message"] == "stopped by signal 15 before writing its output");
  CHECK(fs::exists(s / "out/m0.pt"));
  CHECK_FALSE(fs::exists(s / "out/m1.pt"));
  CHECK_FALSE(fs::exists(s / "out/m2.pt"));
  CHECK(run({"inspect", s / "out/m0.pt"}).code == 0);
  CHECK(s.leftovers().empty());
  CHECK(contains(slurp(s / "log"),
                 "batch: 1 converted, 0 up to date, 0 failed, 1 interrupted, 1 not run (stopped by "
                 "signal 15), 3 in all\n"));
}

TEST_CASE("batch converts again an output damaged since it was written", "[cli][batch]") {
  // Up to date means every record of the output checks out, not only its
  // manifest: one byte flipped in a tensor record, and the job runs again.
  Scratch s;
  fs::copy_file(kModel, s / "in.pt");
  write_file(s / "batch.json", R"({"jobs": [{"input": "in.pt", "output": "out.pt"}]})");
  REQUIRE(run({"batch", s / "batch.json"}).code == 0);
  REQUIRE(contains(run({"batch", s / "batch.json"}).out, "0 converted, 1 up to date"));
  std::string bytes = slurp(s / "out.pt");
  // The first tensor record's data: after the first "data/0" name in a local header.
  const size_t name = bytes.find("/data/0");
  REQUIRE(name != std::string::npos);
  bytes[name + 200] ^= 0x40;
  write_file(s / "out.pt", bytes);
  const Result r = run({"batch", s / "batch.json"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(contains(r.out, "1 converted, 0 up to date"));
  CHECK(run({"inspect", s / "out.pt"}).code == 0);
}

TEST_CASE("batch manifests whose outputs are their inputs by another name are refused", "[cli][batch][errors]") {
  Scratch s;
  fs::copy_file(kModel, s / "in.pt");
  fs::create_hard_link(s / "in.pt", s / "out.pt");
  write_file(s / "batch.json", R"({"jobs": [{"input": "in.pt", "output": "out.pt"}]})");
  const Result r = run({"batch", s / "batch.json"});
  CHECK(r.code == 3);
  CHECK(contains(r.err, "out.pt is the input of a job"));
  CHECK(byte_difference(slurp(s / "out.pt"), slurp(kModel)) == "");
  // An empty --shard is not "no sharding".
  CHECK(run({"batch", s / "batch.json", "--shard", ""}).code == 2);
}

TEST_CASE("batch stops on SIGHUP as on SIGTERM, unless SIGHUP was ignored at start", "[cli][batch]") {
  // As in the interrupt test above: the second job blocks on a FIFO qconfig.
  for (const bool ignored : {false, true}) {
    INFO((ignored ? "nohup" : "plain"));
    Scratch s;
    fs::create_directories(s / "in");
    for (int i = 0; i < 2; ++i) fs::copy_file(kModel, s / ("in/m" + std::to_string(i) + ".pt"));
    HeldFifo fifo(s / "fifo.json");
    write_file(s / "batch.json", R"({"jobs": [
      {"input": "in/m0.pt", "output": "out/m0.pt"},
      {"input": "in/m1.pt", "output": "out/m1.pt", "qconfig": "fifo.json"}
    ]})");
    // Ignored: the HUP changes nothing, and the qconfig, sent after it, lets
    // the batch finish.
    Background batch(std::string(ignored ? "nohup " : "") + quote(kBinary) + " batch " + quote(s / "batch.json") +
                     " --summary " + quote(s / "summary.json") + " > " + quote(s / "log") + " 2>&1");
    REQUIRE(fifo.opened_elsewhere());
    REQUIRE(::kill(batch.pid(), SIGHUP) == 0);
    if (ignored) fifo.send(R"({"": "per_channel_dynamic"})");
    const int code = batch.wait();
    INFO(slurp(s / "log"));
    const auto summary = parse_json(slurp(s / "summary.json"));
    if (ignored) {
      CHECK(code == 0);
      CHECK(summary["counts"]["ok"] == 2);
    } else {
      CHECK(code == 129);
      CHECK(summary["signal"] == 1);
      CHECK(summary["counts"]["interrupted"] == 1);
    }
    CHECK(s.leftovers().empty());
  }
}

TEST_CASE("batch reads an output's manifest within limits, whatever it holds", "[cli][batch][errors]") {
  // An output whose manifest nests 200,000 arrays (nlohmann's recursive copy
  // overflowed the stack): the job is converted again, the summary written.
  Scratch s;
  fs::copy_file(kSubmodules, s / "in.pt");
  fs::copy_file(kSource + "/testdata/bad/hostile/manifest_nested.pt", s / "out.pt");
  write_file(s / "batch.json", R"({"jobs": [{"input": "in.pt", "output": "out.pt"}]})");
  const Result r = run({"batch", s / "batch.json", "--summary", s / "summary.json"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(contains(r.out, "1 converted"));
  CHECK(parse_json(slurp(s / "summary.json"))["counts"]["ok"] == 1);
}

TEST_CASE("batch --summary - writes the summary to standard output and the progress to standard error",
          "[cli][batch]") {
  Scratch s;
  make_batch_folder(s);
  const Result r = run({"batch", s / "batch.json", "--summary", "-"});
  CHECK(r.code == 9);
  const auto summary = parse_json(r.out);
  CHECK(summary["counts"]["ok"] == 3);
  CHECK(summary["counts"]["failed"] == 2);
  CHECK(contains(r.err, "batch: 3 converted, 0 up to date, 2 failed, 5 in all\n"));
  CHECK_FALSE(fs::exists(s / "-"));
}

namespace {

// The `bertq batch ... --shard auto` line of each scheduler example in
// docs/batch.md, in the order the document gives them (Slurm, GitLab,
// Kubernetes): the tests run what the user copies.
std::vector<std::string> scheduler_example_commands() {
  std::istringstream doc(slurp(kSource + "/docs/batch.md"));
  std::vector<std::string> out;
  for (std::string line; std::getline(doc, line);) {
    const size_t at = line.find("bertq batch jobs.json");
    if (at != std::string::npos && contains(line, "--shard auto")) out.push_back(line.substr(at));
  }
  return out;
}

// A summary without its timings, which differ from run to run.
nlohmann::json without_seconds(nlohmann::json summary) {
  for (auto& j : summary["jobs"]) j.erase("seconds");
  return summary;
}

}  // namespace

TEST_CASE("the Slurm, GitLab and Kubernetes examples convert every job once, and merge into one batch's summary",
          "[cli][batch]") {
  Scratch s;
  fs::create_directories(s / "in");
  for (int i = 0; i < 12; ++i)
    fs::copy_file(kSource + "/testdata/models/outlier_net.pt", s / ("in/m" + std::to_string(100 + i) + ".pt"));
  write_file(s / "jobs.json", R"({"directories": [{"input_dir": "in", "glob": "*.pt", "output_dir": "quantized"}]})");
  // Only the scheduler's own variables: a CI runner's CI_NODE_INDEX must not leak in.
  const std::string bin_dir = fs::path(kBinary).parent_path().string();
  auto in_folder = [&](const std::string& vars, const std::string& command) {
    return shell("cd " + quote(s.dir.string()) + " && env -i PATH=" + quote(bin_dir + ":/usr/bin:/bin") + " " + vars +
                 " sh -c " + quote(command) + " > log 2>&1");
  };
  REQUIRE(in_folder("", "bertq batch jobs.json -j 2 --summary single.json") == 0);
  const auto single = without_seconds(parse_json(slurp(s / "single.json")));
  REQUIRE(single["counts"]["ok"] == 12);

  const std::vector<std::string> commands = scheduler_example_commands();
  REQUIRE(commands.size() == 3);
  const std::vector<std::string> names = {"a Slurm job array", "GitLab parallel jobs", "a Kubernetes Indexed Job"};
  for (size_t k = 0; k < 3; ++k) {
    INFO(commands[k]);
    fs::remove_all(s / "quantized");
    for (const auto& e : fs::directory_iterator(s.dir))
      if (e.path().filename().string().rfind("summary-", 0) == 0) fs::remove(e.path());
    std::map<std::string, int> converted;  // output -> times
    for (int w = 0; w < 4; ++w) {
      const std::string i0 = std::to_string(w), i1 = std::to_string(w + 1);
      const std::string vars =
          k == 0 ? "SLURM_ARRAY_JOB_ID=77 SLURM_ARRAY_TASK_ID=" + i0 +
                       " SLURM_ARRAY_TASK_COUNT=4 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=3 SLURM_ARRAY_TASK_STEP=1"
          : k == 1 ? "CI_NODE_INDEX=" + i1 + " CI_NODE_TOTAL=4"
                   : "JOB_COMPLETION_INDEX=" + i0 + " BERTQ_SHARD_COUNT=4";
      REQUIRE(in_folder(vars, commands[k]) == 0);
      CHECK(contains(slurp(s / "log"), "bertq: shard " + i1 + "/4 from " + names[k] + " ("));
      const std::string file = s / ("summary-" + (k == 1 ? i1 : i0) + ".json");
      const auto summary = parse_json(slurp(file));
      for (const auto& j : summary["jobs"])
        if (j["status"] == "ok") ++converted[j["output"].get<std::string>()];
    }
    CHECK(converted.size() == 12);
    for (const auto& [output, times] : converted) CHECK(times == 1);
    REQUIRE(in_folder("", "bertq batch --merge-summaries summary-*.json --summary merged.json") == 0);
    CHECK(contains(slurp(s / "log"), "batch: 12 converted, 0 up to date, 0 failed, 12 in all\n"));
    CHECK(without_seconds(parse_json(slurp(s / "merged.json"))) == single);
  }
}

TEST_CASE("merging refuses summaries that are not every shard of one run once", "[cli][batch][errors]") {
  Scratch s;
  auto summary = [&](const std::string& name, const std::string& shard, const std::string& output) {
    write_file(s / name, R"({"schema": "bertq-batch-summary/4", "shard": ")" + shard +
                             R"(", "interrupted": false, "signal": null, "counts": {}, "jobs": [{"input": "a.pt", )"
                             R"("output": ")" +
                             output +
                             R"(", "status": "failed", "message": "m", "hint": "", "exit_code": 4, "seconds": 1, )"
                             R"("error_kind": "model", "quantized": null, "quantized_fraction": null, )"
                             R"("input_bytes": null, "output_bytes": null}]})");
  };
  summary("a.json", "1/3", "x.pt");
  summary("b.json", "2/3", "y.pt");
  summary("c.json", "3/3", "z.pt");
  summary("again.json", "2/3", "w.pt");
  summary("dup.json", "3/3", "x.pt");
  summary("other.json", "2/4", "v.pt");
  write_file(s / "not.json", R"({"schema": "bertq-report/5"})");
  struct Case {
    std::vector<std::string> files;
    int code;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"a.json", "b.json"}, 2, "shard 3/3 is missing from the summaries given"},
      {{"a.json", "b.json", "again.json", "c.json"}, 2, " are both shard 2/3"},
      {{"a.json", "b.json", "dup.json"}, 2, "job output x.pt is in "},
      {{"a.json", "other.json"}, 2, " of another split"},
      {{"not.json"}, 3, "not a bertq batch summary"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args{"batch", "--merge-summaries"};
    for (const auto& f : c.files) args.push_back(s / f);
    INFO(c.error);
    const Result r = run(args);
    CHECK(r.code == c.code);
    CHECK(contains(r.err, c.error));
  }
  // Fields of the wrong type are bad input, never an exception from the JSON library.
  write_file(s / "odd.json", R"({"schema": "bertq-batch-summary/4", "shard": "1/1", "interrupted": "yes",
      "signal": "x", "jobs": [{"input": "a.pt", "output": "b.pt", "status": "ok", "message": "", "hint": "",
      "exit_code": 0, "seconds": "slow", "quantized": "many", "guards": 5}]})");
  Result odd = run({"batch", "--merge-summaries", s / "odd.json"});
  CHECK(odd.code == 3);
  CHECK(contains(odd.err, "jobs[0].guards is not a list of {name, passed, message}"));
  CHECK_FALSE(contains(odd.err, "internal error"));
  // Every shard once: one job failed, so the merged batch failed.
  const Result r = run({"batch", "--merge-summaries", s / "a.json", s / "b.json", s / "c.json", "--summary", "-"});
  CHECK(r.code == 9);
  const auto merged = parse_json(r.out);
  CHECK(merged["shard"] == "1/1");
  CHECK(merged["counts"]["failed"] == 3);
  CHECK(merged["jobs"][0]["output"] == "x.pt");
  CHECK(merged["jobs"][0]["error_kind"] == "model");
}
