#include "batch.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>

#include "error.h"
#include "json_util.h"
#include "manifest.h"
#include "model_file.h"
#include "qconfig.h"
#include "quantize.h"
#include "sha256.h"
#include "text_util.h"
#include "zip_index.h"

extern char** environ;

namespace bertq {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

[[noreturn]] void bad_manifest(const std::string& path, const std::string& where, const std::string& what,
                               std::string hint = {}) {
  throw Error(ErrorKind::Config, path + ": " + where + ": " + what, std::move(hint));
}

std::string resolve(const fs::path& base, const std::string& p) {
  return (fs::path(p).is_absolute() ? fs::path(p) : base / p).lexically_normal().string();
}

// The job options a manifest entry may set, shared by jobs and directories.
void read_options(const json& e, BatchJob& job, const fs::path& base, const std::string& path,
                  const std::string& where, const std::vector<std::string>& own_fields) {
  static const std::vector<std::string> options = {"qconfig", "engine", "debug", "allow_missing", "allow_unrunnable",
                                                   "require_quantized", "min_quantized_fraction"};
  for (auto it = e.begin(); it != e.end(); ++it) {
    const std::string& k = it.key();
    if (std::find(options.begin(), options.end(), k) == options.end() &&
        std::find(own_fields.begin(), own_fields.end(), k) == own_fields.end()) {
      std::vector<std::string> all = own_fields;
      all.insert(all.end(), options.begin(), options.end());
      std::string hint = "allowed: " + join(all, ", ");
      if (auto near = closest(k, all)) hint = "did you mean \"" + *near + "\"? " + hint;
      bad_manifest(path, where + "." + k, "unknown field \"" + k + "\"", hint);
    }
  }
  try {
    if (e.contains("qconfig")) job.qconfig = resolve(base, e["qconfig"].get<std::string>());
    if (e.contains("engine")) job.engine = e["engine"].get<std::string>();
    job.debug = e.value("debug", false);
    job.allow_missing = e.value("allow_missing", false);
    job.allow_unrunnable = e.value("allow_unrunnable", false);
    if (e.contains("require_quantized")) job.require_quantized = e["require_quantized"].get<std::vector<std::string>>();
    if (e.contains("min_quantized_fraction")) job.min_quantized_fraction = e["min_quantized_fraction"].get<double>();
  } catch (const json::exception& ex) {
    bad_manifest(path, where, std::string("wrong type: ") + ex.what());
  }
}

std::string required_string(const json& e, const char* field, const std::string& path, const std::string& where) {
  auto it = e.find(field);
  if (it == e.end() || !it->is_string() || it->get<std::string>().empty())
    bad_manifest(path, where, std::string("needs a non-empty string \"") + field + "\"");
  return it->get<std::string>();
}

// The manifest stored in a bertq output, read from the zip without LibTorch.
std::optional<Manifest> stored_manifest(const std::string& path) {
  const ZipIndex zip = read_zip_index(path);
  for (const auto& e : zip.entries) {
    if (e.name != std::string("extra/") + kManifestName) continue;
    // A manifest is a few kB; anything else is not one of ours.
    if (!e.stored || e.size != e.stored_size || e.size > (16u << 20)) return std::nullopt;
    std::ifstream in(path, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(e.data_offset));
    std::string text(e.size, '\0');
    in.read(text.data(), static_cast<std::streamsize>(e.size));
    return parse_manifest(text);
  }
  return std::nullopt;
}

volatile sig_atomic_t g_stop_signal = 0;
void on_stop_signal(int sig) { g_stop_signal = sig; }

// The message a failed conversion printed: its "bertq: error:" lines.
std::string error_message(const std::string& stderr_text, int code) {
  std::istringstream in(stderr_text);
  std::string line, msg;
  while (std::getline(in, line))
    if (line.rfind("bertq: error: ", 0) == 0 || line.rfind("bertq: internal error: ", 0) == 0)
      msg = line.substr(line.find(": ", 6) + 2);
    else if (line.rfind("hint: ", 0) == 0 && !msg.empty())
      msg += " (" + line + ")";
  if (msg.empty()) msg = "exited with code " + std::to_string(code);
  return msg;
}

std::vector<std::string> convert_args(const BatchOptions& o, const BatchJob& j) {
  std::vector<std::string> a = {o.self, "convert", j.input, j.output, "--format", "json"};
  if (j.qconfig) a.insert(a.end(), {"--qconfig", *j.qconfig});
  if (j.engine) a.insert(a.end(), {"--engine", *j.engine});
  if (j.debug) a.push_back("--debug");
  if (j.allow_missing) a.push_back("--allow-missing");
  if (j.allow_unrunnable) a.push_back("--allow-unrunnable");
  for (const auto& p : j.require_quantized) a.insert(a.end(), {"--require-quantized", p});
  if (j.min_quantized_fraction) a.insert(a.end(), {"--min-quantized-fraction", std::to_string(*j.min_quantized_fraction)});
  return a;
}

struct Running {
  size_t index;
  pid_t pid;
  std::string err_path;
  std::chrono::steady_clock::time_point start;
};

}  // namespace

size_t BatchResult::count(const std::string& status) const {
  return static_cast<size_t>(std::count_if(jobs.begin(), jobs.end(), [&](const JobResult& r) { return r.status == status; }));
}

std::vector<BatchJob> load_batch_manifest(const std::string& path) {
  if (fs::is_directory(path)) throw Error(ErrorKind::Config, path + " is a directory, not a batch manifest");
  std::ifstream probe(path, std::ios::binary);
  if (!probe) throw Error(ErrorKind::Config, "cannot read batch manifest " + path + ": " + errno_message());
  const std::string text = read_text_file(path, ErrorKind::Config);
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    throw_json_error(e, text, path, ErrorKind::Config);
  }
  if (!doc.is_object()) bad_manifest(path, "top level", "expected an object with \"jobs\" and/or \"directories\"");
  for (auto it = doc.begin(); it != doc.end(); ++it)
    if (it.key() != "jobs" && it.key() != "directories")
      bad_manifest(path, it.key(), "unknown field \"" + it.key() + "\"", "allowed: jobs, directories");
  const fs::path base = fs::path(path).parent_path();
  std::vector<BatchJob> jobs;
  if (doc.contains("jobs")) {
    if (!doc["jobs"].is_array()) bad_manifest(path, "jobs", "expected an array");
    size_t i = 0;
    for (const auto& e : doc["jobs"]) {
      const std::string where = "jobs[" + std::to_string(i++) + "]";
      if (!e.is_object()) bad_manifest(path, where, "expected an object {\"input\": ..., \"output\": ...}");
      BatchJob job;
      job.input = resolve(base, required_string(e, "input", path, where));
      job.output = resolve(base, required_string(e, "output", path, where));
      read_options(e, job, base, path, where, {"input", "output"});
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
      read_options(e, proto, base, path, where, {"input_dir", "output_dir", "glob"});
      std::error_code ec;
      std::vector<std::string> names;
      for (const auto& entry : fs::directory_iterator(in_dir, ec))
        if (entry.is_regular_file() && fnmatch(glob.c_str(), entry.path().filename().c_str(), 0) == 0)
          names.push_back(entry.path().filename().string());
      if (ec) bad_manifest(path, where + ".input_dir", "cannot list " + in_dir + ": " + ec.message());
      if (names.empty()) bad_manifest(path, where, "\"" + glob + "\" matches no file in " + in_dir);
      std::sort(names.begin(), names.end());
      for (const auto& n : names) {
        BatchJob job = proto;
        job.input = (fs::path(in_dir) / n).lexically_normal().string();
        job.output = (fs::path(out_dir) / n).lexically_normal().string();
        jobs.push_back(job);
      }
    }
  }
  if (jobs.empty()) bad_manifest(path, "top level", "no jobs");
  // Two jobs writing one file, or a job writing another's input, would lose work.
  std::map<std::string, size_t> outputs;
  std::set<std::string> inputs;
  for (const auto& j : jobs) inputs.insert(fs::weakly_canonical(j.input).string());
  for (size_t i = 0; i < jobs.size(); ++i) {
    const std::string out = fs::weakly_canonical(jobs[i].output).string();
    if (auto [it, fresh] = outputs.emplace(out, i); !fresh)
      bad_manifest(path, "jobs", "two jobs write " + jobs[i].output + " (inputs " + jobs[it->second].input + " and " +
                                     jobs[i].input + ")");
    if (inputs.count(out)) bad_manifest(path, "jobs", "the output " + jobs[i].output + " is the input of a job");
  }
  return jobs;
}

Shard parse_shard(const std::string& text) {
  Shard s;
  char slash = 0;
  std::istringstream in(text);
  if (!(in >> s.index >> slash >> s.count) || slash != '/' || !in.eof() || s.count < 1 || s.index < 1 ||
      s.index > s.count)
    throw Error(ErrorKind::Usage, "bad --shard \"" + text + "\"", "use K/N with 1 <= K <= N, e.g. 2/4");
  return s;
}

std::vector<BatchJob> select_shard(std::vector<BatchJob> jobs, const Shard& shard) {
  std::sort(jobs.begin(), jobs.end(), [](const BatchJob& a, const BatchJob& b) { return a.output < b.output; });
  std::vector<BatchJob> mine;
  for (size_t i = 0; i < jobs.size(); ++i)
    if (static_cast<int>(i % static_cast<size_t>(shard.count)) == shard.index - 1) mine.push_back(jobs[i]);
  return mine;
}

bool up_to_date(const BatchJob& job, std::string* why_not) {
  auto no = [&](const std::string& why) {
    if (why_not) *why_not = why;
    return false;
  };
  if (!fs::exists(job.output)) return no("no output yet");
  std::optional<Manifest> m;
  try {
    m = stored_manifest(job.output);
  } catch (const Error&) {
    return no("the output is not a readable archive");
  }
  if (!m) return no("the output has no bertq manifest");
  if (m->bertq_version != BERTQ_VERSION) return no("written by bertq " + m->bertq_version);
  const std::string engine = job.engine ? *job.engine : to_string(default_engine());
  if (m->engine != engine) return no("written for engine " + m->engine);
  if ((m->mode == "quantize (debug)") != job.debug || (m->mode != "quantize" && m->mode != "quantize (debug)"))
    return no("written in mode " + m->mode);
  try {
    const QConfigDict dict = job.qconfig ? load_qconfig_file(*job.qconfig) : default_qconfig_dict();
    if (json::parse(to_json_string(dict)) != json::parse(m->qconfig_resolved.empty() ? "null" : m->qconfig_resolved))
      return no("the qconfig changed");
  } catch (const Error&) {
    return no("the qconfig does not load");  // the conversion will say why
  }
  if (m->input_sha256 != sha256_file(job.input)) return no("the input changed");
  return true;
}

BatchResult run_batch(const BatchOptions& o, const std::vector<BatchJob>& jobs,
                      const std::function<void(const JobResult&, size_t, size_t)>& on_done) {
  BatchResult result;
  result.shard = o.shard;
  result.jobs.resize(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    result.jobs[i].job = jobs[i];
    result.jobs[i].status = "not run";
  }
  struct sigaction sa {}, old_int {}, old_term {};
  sa.sa_handler = on_stop_signal;  // no SA_RESTART: waitpid returns EINTR
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  g_stop_signal = 0;

  const fs::path logs = fs::temp_directory_path() / ("bertq-batch-" + std::to_string(::getpid()));
  fs::create_directories(logs);
  std::vector<Running> running;
  size_t next = 0, done = 0;
  auto finish = [&](size_t i, const std::string& status, const std::string& message, int code, double seconds) {
    JobResult& r = result.jobs[i];
    r.status = status;
    r.message = message;
    r.exit_code = code;
    r.seconds = seconds;
    if (on_done) on_done(r, ++done, jobs.size());
  };
  while ((next < jobs.size() || !running.empty())) {
    // Launch while there is room and no stop was asked for.
    while (!g_stop_signal && next < jobs.size() && static_cast<int>(running.size()) < std::max(1, o.jobs)) {
      const size_t i = next++;
      std::string why;
      if (!o.force && up_to_date(jobs[i], &why)) {
        finish(i, "skipped", "up to date", 0, 0);
        continue;
      }
      const std::string err_path = (logs / (std::to_string(i) + ".err")).string();
      const auto args = convert_args(o, jobs[i]);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
      posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
      posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      pid_t pid = 0;
      const int rc = posix_spawn(&pid, o.self.c_str(), &fa, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&fa);
      if (rc != 0) {
        finish(i, "failed", std::string("cannot start bertq: ") + std::strerror(rc), 1, 0);
        continue;
      }
      running.push_back({i, pid, err_path, std::chrono::steady_clock::now()});
    }
    if (running.empty()) break;
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR && g_stop_signal) {
        // Conversions delete their temporary files when terminated.
        for (const auto& r : running) ::kill(r.pid, SIGTERM);
        result.interrupted = true;
      }
      continue;
    }
    auto it = std::find_if(running.begin(), running.end(), [&](const Running& r) { return r.pid == pid; });
    if (it == running.end()) continue;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - it->start).count();
    const std::string err = read_text_file(it->err_path, ErrorKind::Internal);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      finish(it->index, "ok", "", 0, seconds);
    } else if (WIFSIGNALED(status) || (g_stop_signal && WIFEXITED(status) && WEXITSTATUS(status) >= 128)) {
      finish(it->index, "interrupted", "stopped by a signal before it finished", 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0),
             seconds);
    } else {
      finish(it->index, "failed", error_message(err, WEXITSTATUS(status)), WEXITSTATUS(status), seconds);
    }
    running.erase(it);
  }
  if (g_stop_signal) result.interrupted = true;
  std::error_code ec;
  fs::remove_all(logs, ec);
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return result;
}

void print_batch_summary(const BatchResult& r, std::ostream& out) {
  out << "batch";
  if (r.shard.count > 1) out << " shard " << r.shard.index << "/" << r.shard.count;
  out << ": " << r.count("ok") << " converted, " << r.count("skipped") << " up to date, " << r.count("failed")
      << " failed";
  if (r.interrupted) out << ", " << r.count("interrupted") << " interrupted, " << r.count("not run") << " not run (stopped by a signal)";
  out << ", " << r.jobs.size() << " in all\n";
}

void print_batch_json(const BatchResult& r, std::ostream& out) {
  json j;
  j["shard"] = std::to_string(r.shard.index) + "/" + std::to_string(r.shard.count);
  j["interrupted"] = r.interrupted;
  j["counts"] = {{"ok", r.count("ok")},
                 {"skipped", r.count("skipped")},
                 {"failed", r.count("failed")},
                 {"interrupted", r.count("interrupted")},
                 {"not_run", r.count("not run")},
                 {"total", r.jobs.size()}};
  json jobs = json::array();
  for (const auto& x : r.jobs)
    jobs.push_back({{"input", x.job.input},
                    {"output", x.job.output},
                    {"status", x.status},
                    {"message", x.message},
                    {"exit_code", x.exit_code},
                    {"seconds", x.seconds}});
  j["jobs"] = jobs;
  out << j.dump(2) << "\n";
}

}  // namespace bertq
