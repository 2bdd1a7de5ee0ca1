#include "batch/batch.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>

#include "archive/archive_file.h"
#include "archive/manifest.h"
#include "archive/sha256.h"
#include "base/cpu.h"
#include "base/enum_names.h"
#include "base/error.h"
#include "base/files.h"
#include "base/json_io.h"
#include "base/text.h"
#include "qconfig/qconfig.h"

extern char** environ;

namespace bertq {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

// A manifest is a list of jobs; the cap is the qconfig's.
constexpr uint64_t kMaxManifestBytes = kMaxQConfigBytes;

[[noreturn]] void bad_manifest(const std::string& path, const std::string& where, const std::string& what,
                               std::string hint = {}) {
  throw Error(ErrorKind::Config, path + ": " + where + ": " + what, std::move(hint));
}

std::string resolve(const fs::path& base, const std::string& p) {
  return (fs::path(p).is_absolute() ? fs::path(p) : base / p).lexically_normal().string();
}

std::string required_string(const json& e, const char* field, const std::string& path, const std::string& where) {
  auto it = e.find(field);
  if (it == e.end() || !it->is_string() || it->get<std::string>().empty())
    bad_manifest(path, where, std::string("needs a non-empty string \"") + field + "\"");
  return it->get<std::string>();
}

// A path as compared for collisions: absolute, normalised, links followed
// where they exist. Never throws (a symbolic link loop stays as written).
std::string canonical_or_self(const std::string& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(fs::absolute(p, ec), ec);
  return ec ? fs::absolute(p).lexically_normal().string() : c.string();
}

// What a path names, for telling files apart: an existing file by its device
// and inode (hard links and symbolic links name it alike), a new one by its
// path with every link followed.
std::string file_identity(const std::string& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) == 0) return "inode " + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  return canonical_or_self(p);
}

volatile sig_atomic_t g_stop_signal = 0;
// The batch's wake-up pipe: a stop signal or a child's exit writes a byte, so
// the loop that sleeps in poll() cannot miss one that arrives just before it
// sleeps (or on another thread), as a blocking waitpid() could.
volatile sig_atomic_t g_wake_fd = -1;
void wake() {
  const int saved = errno;
  if (g_wake_fd >= 0) {
    const ssize_t n = ::write(g_wake_fd, "x", 1);  // a full pipe already wakes
    (void)n;
  }
  errno = saved;
}
void on_stop_signal(int sig) {
  g_stop_signal = sig;
  wake();
}
void on_child_exit(int) { wake(); }

// run_batch's signal handling, undone however run_batch leaves.
// SIGINT, SIGTERM and SIGHUP stop the batch alike (children are sent SIGTERM,
// the summary is written), but a signal ignored when bertq started stays
// ignored (`nohup bertq batch ...`), in the children too. SIGCHLD gets a
// handler, not SIG_IGN (which would reap the children before bertq reads how
// they ended); exec resets it in the children.
class BatchSignals {
 public:
  BatchSignals() {
    if (::pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) != 0)
      throw Error(ErrorKind::Io, std::string("cannot make the batch's wake-up pipe: ") + std::strerror(errno));
    g_stop_signal = 0;
    g_wake_fd = pipe_[1];
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    // The pipe wakes the loop, so no call needs to fail with EINTR: a
    // progress line being written when the signal comes is written whole.
    sa.sa_flags = SA_RESTART;
    for (int k = 0; k < 3; ++k) {
      sigaction(kStop[k], nullptr, &old_[k]);
      if (ignored_at_start(kStop[k])) {
        std::signal(kStop[k], SIG_IGN);  // the children inherit it
        continue;
      }
      sigaction(kStop[k], &sa, nullptr);
      handled_[k] = true;
    }
    struct sigaction on_child {};
    on_child.sa_handler = on_child_exit;
    on_child.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &on_child, &old_child_);
  }
  ~BatchSignals() {
    for (int k = 0; k < 3; ++k)
      if (handled_[k]) sigaction(kStop[k], &old_[k], nullptr);
    sigaction(SIGCHLD, &old_child_, nullptr);
    g_wake_fd = -1;
    ::close(pipe_[0]);
    ::close(pipe_[1]);
  }
  BatchSignals(const BatchSignals&) = delete;
  BatchSignals& operator=(const BatchSignals&) = delete;
  int wake_fd() const { return pipe_[0]; }

 private:
  static constexpr int kStop[3] = {SIGINT, SIGTERM, SIGHUP};
  int pipe_[2] = {-1, -1};
  struct sigaction old_[3]{};
  struct sigaction old_child_ {};
  bool handled_[3] = {false, false, false};
};

struct Running {
  size_t index;
  pid_t pid;
  std::string result_path;
  std::string err_path;
  std::chrono::steady_clock::time_point start;
  struct stat output_before {};
  bool output_existed = false;
};

// What the job's output path held before it ran, to tell afterwards whether
// it was replaced (outputs are renamed into place, so a new inode means a
// complete new file).
bool stat_output(const std::string& path, struct stat* st) { return ::stat(path.c_str(), st) == 0; }

bool output_replaced(const Running& r, const std::string& path) {
  struct stat now {};
  if (!stat_output(path, &now)) return false;
  if (!r.output_existed) return true;
  return now.st_ino != r.output_before.st_ino || now.st_dev != r.output_before.st_dev;
}

std::string last_line_of_file(const std::string& path) {
  try {
    return last_line(read_file_capped(path, 1 << 20, ErrorKind::Internal, "log"));
  } catch (const Error&) {
    return "";
  }
}

}  // namespace

std::string to_string(JobStatus s) {
  static const EnumNames<JobStatus> names{{JobStatus::Ok, "ok"},
                                          {JobStatus::Skipped, "skipped"},
                                          {JobStatus::Failed, "failed"},
                                          {JobStatus::Interrupted, "interrupted"},
                                          {JobStatus::NotRun, "not run"}};
  return names.name(s);
}

namespace {
constexpr const char* kChildResultSchema = "bertq-batch-result/3";
}  // namespace

namespace {

json guards_json(const std::vector<GuardResult>& guards) {
  json out = json::array();
  for (const auto& g : guards) out.push_back({{"name", g.name}, {"passed", g.passed}, {"message", g.message}});
  return out;
}

// Throws nlohmann's exceptions for anything but guards_json's output.
std::vector<GuardResult> guards_from_json(const json& j) {
  std::vector<GuardResult> out;
  for (const auto& g : j.get_ref<const json::array_t&>())
    out.push_back({g.at("name").get<std::string>(), g.at("passed").get<bool>(), g.at("message").get<std::string>()});
  return out;
}

}  // namespace

ChildResult child_result(const Report& report) {
  ChildResult r;
  r.output_written = !report.dry_run;
  r.output_sha256 = report.output.sha256;
  r.quantized = report.quantized_count();
  r.input_bytes = report.input.bytes;
  r.output_bytes = report.output.bytes;
  r.quantized_fraction = report.quantized_weight_fraction();
  r.guards = report.guards;
  return r;
}

ChildResult child_result(const Error& error, int exit_code, const Report* report) {
  ChildResult r;
  if (report) r.guards = report->guards;
  r.exit_code = exit_code;
  r.error_kind = to_string(error.kind());
  r.message = error.what();
  r.hint = error.hint();
  return r;
}

void write_child_result(const std::string& path, const ChildResult& r) {
  json j;
  j["schema"] = kChildResultSchema;
  j["exit_code"] = r.exit_code;
  j["error_kind"] = r.error_kind;
  j["message"] = r.message;
  j["hint"] = r.hint;
  j["output_written"] = r.output_written;
  j["output_sha256"] = r.output_sha256;
  j["quantized"] = r.quantized;
  j["input_bytes"] = r.input_bytes;
  j["output_bytes"] = r.output_bytes;
  j["quantized_fraction"] = r.quantized_fraction;
  j["guards"] = guards_json(r.guards);
  // Written where the parent looks; it was never an argument of the user's.
  write_file_atomic(OutputPath{"batch result", path, path}, j.dump(1));
}

std::optional<ChildResult> read_child_result(const std::string& path) {
  try {
    const json j =
        parse_json_strict(read_file_capped(path, 1 << 20, ErrorKind::Internal, "result"), path, ErrorKind::Internal, 8)
            .doc;
    if (!j.is_object() || j.value("schema", "") != kChildResultSchema) return std::nullopt;
    ChildResult r;
    r.exit_code = j.at("exit_code").get<int>();
    r.error_kind = j.at("error_kind").get<std::string>();
    r.message = j.at("message").get<std::string>();
    r.hint = j.at("hint").get<std::string>();
    r.output_written = j.at("output_written").get<bool>();
    r.output_sha256 = j.at("output_sha256").get<std::string>();
    r.quantized = j.at("quantized").get<size_t>();
    r.input_bytes = j.at("input_bytes").get<uint64_t>();
    r.output_bytes = j.at("output_bytes").get<uint64_t>();
    r.quantized_fraction = j.at("quantized_fraction").get<double>();
    r.guards = guards_from_json(j.at("guards"));
    return r;
  } catch (const std::exception&) {
    // Missing, cut short by a crash, or not a result: the exit status decides.
    return std::nullopt;
  }
}

size_t BatchResult::count(JobStatus status) const {
  return static_cast<size_t>(
      std::count_if(jobs.begin(), jobs.end(), [&](const JobResult& r) { return r.status == status; }));
}

std::vector<BatchJob> load_batch_manifest(const std::string& path) {
  const std::string text = read_file_capped(path, kMaxManifestBytes, ErrorKind::Config, "batch manifest");
  // Parsed strictly (duplicate keys, NUL bytes refused), then kept in file order.
  const json doc = json(parse_json_strict(text, path, ErrorKind::Config, 16).doc);
  if (!doc.is_object()) bad_manifest(path, "top level", "expected an object with \"jobs\" and/or \"directories\"");
  for (auto it = doc.begin(); it != doc.end(); ++it)
    if (it.key() != "jobs" && it.key() != "directories")
      bad_manifest(path, printable(it.key()), "unknown field " + quoted_value(it.key()), "allowed: jobs, directories");
  const fs::path base = path == "-" ? fs::path(".") : fs::path(path).parent_path();
  std::vector<BatchJob> jobs;
  if (doc.contains("jobs")) {
    if (!doc["jobs"].is_array()) bad_manifest(path, "jobs", "expected an array");
    size_t i = 0;
    for (const auto& e : doc["jobs"]) {
      const std::string where = "jobs[" + std::to_string(i++) + "]";
      if (!e.is_object()) bad_manifest(path, where, "expected an object {\"input\": ..., \"output\": ...}");
      BatchJob job;
      job.options.input = resolve(base, required_string(e, "input", path, where));
      job.options.output = resolve(base, required_string(e, "output", path, where));
      options_from_json(e, base.string(), path, where, {"input", "output"}, job.options);
      jobs.push_back(job);
    }
  }
  if (doc.contains("directories")) {
    if (!doc["directories"].is_array()) bad_manifest(path, "directories", "expected an array");
    size_t i = 0;
    for (const auto& e : doc["directories"]) {
      const std::string where = "directories[" + std::to_string(i++) + "]";
      if (!e.is_object()) bad_manifest(path, where, "expected an object {\"input_dir\", \"glob\", \"output_dir\"}");
      const std::string in_dir = resolve(base, required_string(e, "input_dir", path, where));
      const std::string out_dir = resolve(base, required_string(e, "output_dir", path, where));
      const std::string glob = e.contains("glob") ? required_string(e, "glob", path, where) : "*.pt";
      BatchJob proto;
      options_from_json(e, base.string(), path, where, {"input_dir", "output_dir", "glob"}, proto.options);
      if (proto.options.report_path || proto.options.html_path)
        bad_manifest(path, where, "report and html name one file; give them per job in \"jobs\"");
      std::error_code ec;
      std::vector<std::string> names;
      for (const auto& entry : fs::directory_iterator(in_dir, ec))
        if (entry.is_regular_file(ec) && fnmatch(glob.c_str(), entry.path().filename().c_str(), 0) == 0)
          names.push_back(entry.path().filename().string());
      if (ec) bad_manifest(path, where + ".input_dir", "cannot list " + in_dir + ": " + ec.message());
      if (names.empty()) bad_manifest(path, where, quoted_value(glob) + " matches no file in " + in_dir);
      std::sort(names.begin(), names.end());
      for (const auto& n : names) {
        BatchJob job = proto;
        job.options.input = (fs::path(in_dir) / n).lexically_normal().string();
        job.options.output = (fs::path(out_dir) / n).lexically_normal().string();
        jobs.push_back(job);
      }
    }
  }
  if (jobs.empty()) bad_manifest(path, "top level", "no jobs");
  // Two jobs writing one file, or a job writing what another reads, would
  // lose work: refused before anything runs.
  std::map<std::string, size_t> written;    // canonical path -> job
  std::map<std::string, std::string> read;  // canonical path -> what reads it
  for (const auto& j : jobs) {
    read.emplace(file_identity(j.options.input), "the input of a job");
    if (j.options.qconfig_path) read.emplace(file_identity(*j.options.qconfig_path), "a job's qconfig");
  }
  if (path != "-") read.emplace(file_identity(path), "the batch manifest");
  for (size_t i = 0; i < jobs.size(); ++i) {
    const auto& o = jobs[i].options;
    std::vector<std::string> outs{o.output};
    if (o.report_path) outs.push_back(*o.report_path);
    if (o.html_path) outs.push_back(*o.html_path);
    for (const auto& out : outs) {
      const std::string c = file_identity(out);
      if (auto [it, fresh] = written.emplace(c, i); !fresh)
        bad_manifest(path, "jobs",
                     "two jobs write " + out + " (inputs " + jobs[it->second].options.input + " and " + o.input + ")");
      if (auto r = read.find(c); r != read.end()) bad_manifest(path, "jobs", "the output " + out + " is " + r->second);
    }
  }
  return jobs;
}

Shard parse_shard(const std::string& text) {
  Shard s;
  char slash = 0;
  std::istringstream in(text);
  if (!(in >> s.index >> slash >> s.count) || slash != '/' || !in.eof() || s.count < 1 || s.index < 1 ||
      s.index > s.count)
    throw Error(ErrorKind::Usage, "bad --shard " + quoted_value(text), "use K/N with 1 <= K <= N, e.g. 2/4");
  return s;
}

std::vector<BatchJob> select_shard(std::vector<BatchJob> jobs, const Shard& shard) {
  std::sort(jobs.begin(), jobs.end(),
            [](const BatchJob& a, const BatchJob& b) { return a.options.output < b.options.output; });
  std::vector<BatchJob> mine;
  for (size_t i = 0; i < jobs.size(); ++i)
    if (static_cast<int>(i % static_cast<size_t>(shard.count)) == shard.index - 1) mine.push_back(jobs[i]);
  return mine;
}

namespace {

// A worker number from the environment: digits only, within int.
long env_number(const EnvLookup& env, const std::string& name, const std::string& scheduler) {
  const auto v = env(name);
  if (!v)
    throw Error(ErrorKind::Usage, "--shard auto: " + scheduler + " is set up but " + name + " is not",
                name == "BERTQ_SHARD_COUNT"
                    ? "Kubernetes passes the index, not the count: set BERTQ_SHARD_COUNT to the Job's completions"
                    : "give --shard K/N");
  long n = -1;
  if (!v->empty() && v->size() < 10 && v->find_first_not_of("0123456789") == std::string::npos) n = std::stol(*v);
  if (n < 0)
    throw Error(ErrorKind::Usage, "--shard auto: " + name + "=" + quoted_value(*v) + " is not a worker number",
                "give --shard K/N");
  return n;
}

}  // namespace

ShardFromEnvironment shard_from_environment(const EnvLookup& env) {
  std::vector<ShardFromEnvironment> found;
  auto vars = [&](std::initializer_list<const char*> names) {
    std::string out;
    for (const char* n : names)
      if (auto v = env(n)) out += (out.empty() ? "" : ", ") + std::string(n) + "=" + printable(*v);
    return out;
  };
  if (env("SLURM_ARRAY_TASK_ID")) {
    const std::string who = "a Slurm job array";
    const long id = env_number(env, "SLURM_ARRAY_TASK_ID", who);
    const long count = env_number(env, "SLURM_ARRAY_TASK_COUNT", who);
    const long min = env("SLURM_ARRAY_TASK_MIN") ? env_number(env, "SLURM_ARRAY_TASK_MIN", who) : 0;
    const long step = env("SLURM_ARRAY_TASK_STEP") ? env_number(env, "SLURM_ARRAY_TASK_STEP", who) : 1;
    // --array=0-11, 1-12 or 0-22:2: task ids a range apart; a list such as
    // --array=1,5,9 gives no position to take.
    if (step < 1 || id < min || (id - min) % step != 0)
      throw Error(ErrorKind::Usage,
                  "--shard auto: Slurm task " + std::to_string(id) + " is not on the range from " +
                      std::to_string(min) + " in steps of " + std::to_string(step),
                  "use --array=0-(N-1) (or give --shard K/N)");
    found.push_back(
        {{static_cast<int>((id - min) / step + 1), static_cast<int>(count)},
         "a Slurm job array (" +
             vars({"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP"}) +
             ")"});
  }
  if (env("CI_NODE_INDEX")) {
    const std::string who = "GitLab's parallel jobs";
    found.push_back({{static_cast<int>(env_number(env, "CI_NODE_INDEX", who)),
                      static_cast<int>(env_number(env, "CI_NODE_TOTAL", who))},
                     "GitLab parallel jobs (" + vars({"CI_NODE_INDEX", "CI_NODE_TOTAL"}) + ")"});
  }
  if (env("JOB_COMPLETION_INDEX")) {
    const std::string who = "a Kubernetes Indexed Job";
    found.push_back({{static_cast<int>(env_number(env, "JOB_COMPLETION_INDEX", who) + 1),
                      static_cast<int>(env_number(env, "BERTQ_SHARD_COUNT", who))},
                     "a Kubernetes Indexed Job (" + vars({"JOB_COMPLETION_INDEX", "BERTQ_SHARD_COUNT"}) + ")"});
  }
  if (found.empty())
    throw Error(ErrorKind::Usage, "--shard auto: no scheduler gave this worker a number",
                "it reads SLURM_ARRAY_TASK_ID/_COUNT (Slurm arrays), CI_NODE_INDEX/CI_NODE_TOTAL (GitLab parallel), "
                "JOB_COMPLETION_INDEX with BERTQ_SHARD_COUNT (Kubernetes Indexed Jobs); or give --shard K/N");
  if (found.size() > 1)
    throw Error(ErrorKind::Usage,
                "--shard auto: two schedulers number this worker: " + found[0].source + " and " + found[1].source,
                "give --shard K/N");
  const Shard& s = found[0].shard;
  if (s.count < 1 || s.index < 1 || s.index > s.count)
    throw Error(ErrorKind::Usage,
                "--shard auto: " + found[0].source + " gives shard " + std::to_string(s.index) + " of " +
                    std::to_string(s.count),
                "the worker number must be 1..N (0..N-1 for Kubernetes and Slurm arrays from 0)");
  return found[0];
}

BatchResult merge_batch_summaries(const std::vector<std::string>& texts, const std::vector<std::string>& sources) {
  BatchResult merged;
  std::map<int, std::string> shards;  // K -> file
  int count = 0;
  std::map<std::string, std::string> output_of;  // job output -> file it came from
  for (size_t f = 0; f < texts.size(); ++f) {
    const std::string& src = sources[f];
    const json doc = parse_json_strict(texts[f], src, ErrorKind::Config, 16).doc;
    auto bad = [&](const std::string& what) -> Error {
      return Error(ErrorKind::Config, src + ": " + what,
                   "give the files that `bertq batch --summary FILE` wrote, one per shard");
    };
    // Every field is looked up and type-checked before use: a summary is a
    // file from another machine, and a wrong type must be bad input, not an
    // exception from the JSON library.
    auto field = [&](const json& obj, const char* key) -> const json* {
      const auto it = obj.find(key);
      return it == obj.end() ? nullptr : &*it;
    };
    const json* schema = doc.is_object() ? field(doc, "schema") : nullptr;
    if (!schema || !schema->is_string() || schema->get<std::string>() != "bertq-batch-summary/4")
      throw bad("not a bertq batch summary (schema \"bertq-batch-summary/4\")");
    if (!doc.contains("shard") || !doc["shard"].is_string()) throw bad("no \"shard\"");
    Shard shard;
    try {
      shard = parse_shard(doc["shard"].get<std::string>());
    } catch (const Error&) {
      throw bad("\"shard\" " + quoted_value(doc["shard"].get<std::string>()) + " is not K/N");
    }
    if (count == 0) count = shard.count;
    if (shard.count != count)
      throw Error(ErrorKind::Usage,
                  src + " is shard " + doc["shard"].get<std::string>() + " of another split (the first file's has " +
                      std::to_string(count) + " shards)",
                  "merge the summaries of one run");
    if (const auto [it, fresh] = shards.emplace(shard.index, src); !fresh)
      throw Error(
          ErrorKind::Usage,
          src + " and " + it->second + " are both shard " + std::to_string(shard.index) + "/" + std::to_string(count),
          "give each shard's summary once");
    const json* interrupted = field(doc, "interrupted");
    const json* signal = field(doc, "signal");
    if (interrupted && interrupted->is_boolean() && interrupted->get<bool>() && merged.signal == 0 && signal &&
        signal->is_number_integer() && signal->get<int64_t>() > 0 && signal->get<int64_t>() < 128)
      merged.signal = signal->get<int>();
    if (!doc.contains("jobs") || !doc["jobs"].is_array()) throw bad("no \"jobs\" list");
    for (size_t i = 0; i < doc["jobs"].size(); ++i) {
      const json& j = doc["jobs"][i];
      const std::string at = "jobs[" + std::to_string(i) + "]";
      auto text = [&](const char* key) {
        if (!j.is_object() || !j.contains(key) || !j[key].is_string()) throw bad(at + "." + key + " is not a string");
        return j[key].get<std::string>();
      };
      JobResult r;
      r.job.options.input = text("input");
      r.job.options.output = text("output");
      const std::string status = text("status");
      bool known = false;
      for (JobStatus st :
           {JobStatus::Ok, JobStatus::Skipped, JobStatus::Failed, JobStatus::Interrupted, JobStatus::NotRun})
        if (to_string(st) == status) {
          r.status = st;
          known = true;
        }
      if (!known) throw bad(at + ".status " + quoted_value(status) + " is not a job status");
      r.message = text("message");
      r.hint = text("hint");
      if (!j.contains("exit_code") || !j["exit_code"].is_number_integer()) throw bad(at + ".exit_code is not a number");
      r.exit_code = j["exit_code"].get<int>();
      if (const json* sec = field(j, "seconds"); sec && sec->is_number()) r.seconds = sec->get<double>();
      // What the child left: an error kind for a failed conversion, the
      // measurements for a finished one; null for jobs that did not run.
      auto job_field = [&](const char* key) -> const json* {
        const json* f = field(j, key);
        return f && !f->is_null() ? f : nullptr;
      };
      const json* kind = job_field("error_kind");
      const json* quantized = job_field("quantized");
      if (kind || quantized) {
        ChildResult c;
        c.exit_code = r.exit_code;
        if (kind && kind->is_string()) c.error_kind = kind->get<std::string>();
        if (quantized && quantized->is_number_unsigned()) c.quantized = quantized->get<size_t>();
        if (const json* f = job_field("quantized_fraction"); f && f->is_number())
          c.quantized_fraction = f->get<double>();
        if (const json* b = job_field("input_bytes"); b && b->is_number_unsigned()) c.input_bytes = b->get<uint64_t>();
        if (const json* b = job_field("output_bytes"); b && b->is_number_unsigned()) {
          c.output_written = true;
          c.output_bytes = b->get<uint64_t>();
        }
        if (const json* g = job_field("guards")) {
          try {
            c.guards = guards_from_json(*g);
          } catch (const json::exception&) {
            throw bad(at + ".guards is not a list of {name, passed, message}");
          }
        }
        r.child = c;
      }
      if (const auto [it, fresh] = output_of.emplace(r.job.options.output, src); !fresh)
        throw Error(ErrorKind::Usage, "job output " + r.job.options.output + " is in " + it->second + " and in " + src,
                    "merge the summaries of one run's shards");
      merged.jobs.push_back(std::move(r));
    }
  }
  if (texts.empty()) throw Error(ErrorKind::Usage, "--merge-summaries needs the shards' summary files");
  std::vector<std::string> missing;
  for (int k = 1; k <= count; ++k)
    if (!shards.count(k)) missing.push_back(std::to_string(k) + "/" + std::to_string(count));
  if (!missing.empty())
    throw Error(ErrorKind::Usage,
                "shard" + std::string(missing.size() == 1 ? " " : "s ") + join(missing, ", ") +
                    (missing.size() == 1 ? " is" : " are") + " missing from the summaries given",
                "merge every shard's summary: the merged one must cover every job");
  std::sort(merged.jobs.begin(), merged.jobs.end(),
            [](const JobResult& a, const JobResult& b) { return a.job.options.output < b.job.options.output; });
  merged.total_in_manifest = merged.jobs.size();
  return merged;
}

std::string why_not_up_to_date(const BatchJob& job, const std::string& libtorch_version) {
  const ConvertOptions& o = job.options;
  struct stat st {};
  if (::stat(o.output.c_str(), &st) != 0) return "no output yet";
  std::optional<Manifest> m;
  try {
    // Every record, not only the manifest: an output damaged since it was
    // written (a flipped byte, zeroed tensors) fails its CRC-32s and is
    // converted again.
    const ArchiveFile file(o.output);
    const std::string record = std::string("extra/") + kManifestName;
    if (file.index().find(record)) m = parse_manifest(file.read_record(record), o.output);
  } catch (const Error& e) {
    return std::string("the output is damaged or not a model: ") + e.what();
  }
  if (!m) return "the output has no bertq manifest";
  if (m->bertq_version != BERTQ_VERSION) return "written by bertq " + m->bertq_version;
  if (m->libtorch_version != libtorch_version) return "written with LibTorch " + m->libtorch_version;
  try {
    const QConfigDict dict = o.qconfig_path ? load_qconfig_file(*o.qconfig_path) : default_qconfig_dict();
    if (m->options != result_key(o, to_json(dict))) return "its options or qconfig changed";
  } catch (const Error&) {
    return "the qconfig does not load";  // the conversion will say why
  }
  for (const auto& extra : {o.report_path, o.html_path})
    if (extra && ::stat(extra->c_str(), &st) != 0) return "its report " + *extra + " is missing";
  try {
    if (m->input_sha256 != sha256_file(o.input)) return "the input changed";
  } catch (const Error&) {
    return "the input cannot be read";
  }
  return "";
}

std::vector<std::string> preflight(const std::vector<BatchJob>& jobs) {
  std::vector<std::string> problems(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    const ConvertOptions& o = jobs[i].options;
    try {
      struct stat st {};
      if (::stat(o.input.c_str(), &st) != 0)
        throw Error(ErrorKind::Model, "cannot read input " + o.input + ": " + errno_message());
      if (!S_ISREG(st.st_mode)) throw Error(ErrorKind::Model, "input " + o.input + " is " + file_kind(o.input));
      std::vector<std::pair<std::string, std::string>> outs{{"output", o.output}};
      if (o.report_path) outs.push_back({"report", *o.report_path});
      if (o.html_path) outs.push_back({"html", *o.html_path});
      for (const auto& [role, p] : outs) {
        // Output folders are created, as a CI job expects of a tool that
        // writes a tree of outputs.
        const fs::path dir = fs::path(p).parent_path();
        std::error_code ec;
        if (!dir.empty()) fs::create_directories(dir, ec);
        if (ec)
          throw Error(ErrorKind::Io, "cannot create folder " + dir.string() + " for " + role + ": " + ec.message());
        check_output_path(role, p);
      }
    } catch (const Error& e) {
      problems[i] = std::string(e.what()) + (e.hint().empty() ? "" : " (hint: " + e.hint() + ")");
    } catch (const std::exception& e) {
      problems[i] = printable(e.what());
    }
  }
  return problems;
}

BatchResult run_batch(const BatchOptions& o, const std::vector<BatchJob>& jobs,
                      const std::function<void(const JobResult&, size_t, size_t)>& on_done) {
  BatchResult result;
  result.shard = o.shard;
  result.jobs.resize(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) result.jobs[i].job = jobs[i];
  const BatchSignals signals;
  bool children_stopped = false;

  // Results and logs of the children, in a private folder that a later run
  // removes if this one is killed.
  const std::string tmp_root = fs::temp_directory_path().string();
  remove_stale_temporaries(tmp_root);
  TempDir logs((fs::path(tmp_root) / "batch").string());
  const std::vector<std::string> problems = preflight(jobs);
  std::vector<Running> running;
  size_t next = 0, done = 0;
  const int cpus = usable_cpus();
  const bool env_threads = threads_set_in_environment();
  auto finish = [&](size_t i, JobStatus status, const std::string& message, const std::string& hint, int code,
                    double seconds) {
    JobResult& r = result.jobs[i];
    r.status = status;
    r.message = message;
    r.hint = hint;
    r.exit_code = code;
    r.seconds = seconds;
    if (on_done) on_done(r, ++done, jobs.size());
  };
  while (next < jobs.size() || !running.empty()) {
    // Launch while there is room and no stop was asked for.
    while (!g_stop_signal && next < jobs.size() && static_cast<int>(running.size()) < std::max(1, o.jobs)) {
      const size_t i = next++;
      if (!problems[i].empty()) {
        finish(i, JobStatus::Failed, problems[i], "", 2, 0);
        continue;
      }
      if (!o.force && why_not_up_to_date(jobs[i], o.libtorch_version).empty()) {
        finish(i, JobStatus::Skipped, "up to date", "", 0, 0);
        continue;
      }
      Running run;
      run.index = i;
      run.result_path = (fs::path(logs.path()) / (std::to_string(i) + ".json")).string();
      run.err_path = (fs::path(logs.path()) / (std::to_string(i) + ".err")).string();
      run.output_existed = stat_output(jobs[i].options.output, &run.output_before);
      // Each conversion gets its share of the CPUs: --jobs conversions each
      // with every CPU would only make LibTorch's threads wait on each other.
      ConvertOptions child = jobs[i].options;
      child.threads = conversion_threads(child.threads, env_threads, cpus, o.jobs).threads;
      std::vector<std::string> args = options_to_args(child);
      // Flags first, then "--" and the paths: a path is never read as a flag.
      args.insert(std::find(args.begin(), args.end(), "--"), "--batch-result=" + run.result_path);
      args.insert(args.begin(), o.self);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
      posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
      posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, run.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      pid_t pid = 0;
      const int rc = posix_spawn(&pid, o.self.c_str(), &fa, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&fa);
      if (rc != 0) {
        finish(i, JobStatus::Failed, std::string("cannot start bertq: ") + std::strerror(rc), "", 1, 0);
        continue;
      }
      run.pid = pid;
      run.start = std::chrono::steady_clock::now();
      running.push_back(run);
    }
    if (running.empty()) break;
    if (g_stop_signal && !children_stopped) {
      // Conversions delete their temporary files when terminated.
      for (const auto& r : running) ::kill(r.pid, SIGTERM);
      children_stopped = true;
      result.signal = g_stop_signal;
    }
    int status = 0;
    auto it = running.begin();
    for (; it != running.end(); ++it) {
      const pid_t w = ::waitpid(it->pid, &status, WNOHANG);
      if (w == it->pid) break;
      // Reaped by someone else (it cannot tell how it ended): the job's
      // result file, or its absence, says what happened; never wait forever.
      if (w < 0 && errno == ECHILD) {
        status = 0;
        break;
      }
    }
    if (it == running.end()) {
      // Nothing has ended: sleep until a child ends or a stop signal comes
      // (either writes to the pipe), then empty the pipe and look again.
      struct pollfd pfd {
        signals.wake_fd(), POLLIN, 0
      };
      ::poll(&pfd, 1, -1);
      char drain[64];
      while (::read(signals.wake_fd(), drain, sizeof drain) > 0) {
      }
      continue;
    }
    const Running run = *it;
    running.erase(it);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run.start).count();
    const std::string& output = jobs[run.index].options.output;
    // A job is finished when it has left its result: the child writes it
    // last, after the model and the report files.
    const std::optional<ChildResult> res = read_child_result(run.result_path);
    result.jobs[run.index].child = res;
    if (res && res->exit_code == 0) {
      finish(run.index, JobStatus::Ok, "", "", 0, seconds);
    } else if (res) {
      finish(run.index, JobStatus::Failed, res->message, res->hint, res->exit_code, seconds);
    } else if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) >= 128)) {
      const int sig = WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status) - 128;
      // Say what is on disk: outputs are renamed into place whole, so a
      // replaced output is complete; its report files may not be written.
      const std::string what = output_replaced(run, output)
                                   ? "stopped by signal " + std::to_string(sig) +
                                         " after writing its output, which is complete; " +
                                         "its report files may be missing"
                                   : "stopped by signal " + std::to_string(sig) + " before writing its output" +
                                         (run.output_existed ? " (the previous file is unchanged)" : "");
      if (g_stop_signal)
        finish(run.index, JobStatus::Interrupted, what, "", 128 + sig, seconds);
      else
        finish(run.index, JobStatus::Failed, "bertq crashed: " + what + "; " + last_line_of_file(run.err_path), "",
               128 + sig, seconds);
    } else {
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
      const std::string err = last_line_of_file(run.err_path);
      finish(run.index, JobStatus::Failed, err.empty() ? "exited with code " + std::to_string(code) : err, "", code,
             seconds);
    }
    ::unlink(run.result_path.c_str());
    ::unlink(run.err_path.c_str());
  }
  if (g_stop_signal) result.signal = g_stop_signal;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(logs.path(), ec)) fs::remove_all(e.path(), ec);
  return result;
}

void print_batch_summary(const BatchResult& r, std::ostream& out) {
  out << "batch";
  if (r.shard.count > 1) out << " shard " << r.shard.index << "/" << r.shard.count;
  out << ": " << r.count(JobStatus::Ok) << " converted, " << r.count(JobStatus::Skipped) << " up to date, "
      << r.count(JobStatus::Failed) << " failed";
  if (r.signal)
    out << ", " << r.count(JobStatus::Interrupted) << " interrupted, " << r.count(JobStatus::NotRun)
        << " not run (stopped by signal " << r.signal << ")";
  out << ", " << r.jobs.size() << " in all\n";
}

void print_batch_json(const BatchResult& r, std::ostream& out) {
  json j;
  j["schema"] = "bertq-batch-summary/4";
  j["shard"] = std::to_string(r.shard.index) + "/" + std::to_string(r.shard.count);
  j["interrupted"] = r.signal != 0;
  j["signal"] = r.signal ? json(r.signal) : json();
  j["counts"] = {{"ok", r.count(JobStatus::Ok)},          {"skipped", r.count(JobStatus::Skipped)},
                 {"failed", r.count(JobStatus::Failed)},  {"interrupted", r.count(JobStatus::Interrupted)},
                 {"not_run", r.count(JobStatus::NotRun)}, {"total", r.jobs.size()}};
  json jobs = json::array();
  for (const auto& x : r.jobs) {
    jobs.push_back({{"input", x.job.options.input},
                    {"output", x.job.options.output},
                    {"status", to_string(x.status)},
                    {"message", x.message},
                    {"hint", x.hint},
                    {"exit_code", x.exit_code},
                    {"seconds", x.seconds}});
    // What a finished conversion measured; null for jobs that did not run
    // to the end (skipped, failed before converting, not run).
    const bool measured = x.child && x.child->exit_code == 0;
    jobs.back()["error_kind"] = x.child && !x.child->error_kind.empty() ? json(x.child->error_kind) : json();
    jobs.back()["quantized"] = measured ? json(x.child->quantized) : json();
    jobs.back()["quantized_fraction"] = measured ? json(x.child->quantized_fraction) : json();
    jobs.back()["input_bytes"] = measured ? json(x.child->input_bytes) : json();
    jobs.back()["output_bytes"] = measured && x.child->output_written ? json(x.child->output_bytes) : json();
    // The guards the conversion checked (a failed guard fails the job).
    jobs.back()["guards"] = x.child && !x.child->guards.empty() ? guards_json(x.child->guards) : json();
  }
  j["jobs"] = jobs;
  out << j.dump(2) << "\n";
}

}  // namespace bertq
