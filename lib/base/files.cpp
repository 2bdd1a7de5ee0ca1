#include "base/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "base/text.h"

namespace bertq {
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------
// Temporaries removed by the signal handler: plain buffers, because only
// async-signal-safe calls (unlink, rmdir) may run there.

constexpr int kSlots = 32;
struct Slot {
  char file[PATH_MAX];
  char dir[PATH_MAX];
  volatile sig_atomic_t used;
  volatile sig_atomic_t order;  // when it was claimed: newer folders are removed first
};
Slot g_slots[kSlots];
volatile sig_atomic_t g_next_order = 0;

int claim_slot(const std::string& file, const std::string& dir) {
  if (file.size() >= PATH_MAX || dir.size() >= PATH_MAX) return -1;
  for (int i = 0; i < kSlots; ++i) {
    if (g_slots[i].used) continue;
    std::memcpy(g_slots[i].file, file.c_str(), file.size() + 1);
    std::memcpy(g_slots[i].dir, dir.c_str(), dir.size() + 1);
    g_slots[i].order = g_next_order;
    g_next_order = g_next_order + 1;
    g_slots[i].used = 1;
    return i;
  }
  return -1;
}

void release_slot(int i) {
  if (i >= 0) g_slots[i].used = 0;
}

// Where StagedOutputs::commit is, for the line a signal leaves: before it
// nothing is written, during it some outputs may be in place, after it all
// are (a signal can still come while the summary is printed).
enum CommitState : int { kNotCommitted = 0, kCommitting = 1, kCommitted = 2 };
volatile sig_atomic_t g_commit_state = kNotCommitted;

// Appends `s` to buf[0, *n) within `cap`; async-signal-safe.
void append_raw(char* buf, size_t* n, size_t cap, const char* s) {
  while (*s && *n + 1 < cap) buf[(*n)++] = *s++;
}

void cleanup_and_reraise(int sig) {
  // One line saying what is on disk, since the process then dies by the
  // signal and prints nothing else: write(2) only, no allocation.
  char line[256];
  size_t n = 0;
  append_raw(line, &n, sizeof line, "bertq: stopped by ");
  append_raw(line, &n, sizeof line,
             sig == SIGINT    ? "SIGINT"
             : sig == SIGTERM ? "SIGTERM"
             : sig == SIGHUP  ? "SIGHUP"
                              : "a signal");
  bool unfinished = false;  // temporaries that are about to be removed
  for (int i = 0; i < kSlots; ++i) unfinished = unfinished || g_slots[i].used;
  append_raw(line, &n, sizeof line,
             g_commit_state == kCommitting
                 ? " while moving its outputs into place: some may be replaced, the others are as they were"
             : unfinished                   ? ": nothing was written; its unfinished files are removed"
             : g_commit_state == kCommitted ? ": what it had finished is in place; nothing unfinished is left"
                                            : ": nothing was written");
  append_raw(line, &n, sizeof line, "\n");
  [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, line, n);
  // Newest first: a temporary folder made inside another (a conversion
  // writing into tune's candidate folder) must go before its parent.
  bool done[kSlots] = {};
  for (int round = 0; round < kSlots; ++round) {
    int pick = -1;
    for (int i = 0; i < kSlots; ++i)
      if (g_slots[i].used && !done[i] && (pick < 0 || g_slots[i].order > g_slots[pick].order)) pick = i;
    if (pick < 0) break;
    done[pick] = true;
    ::unlink(g_slots[pick].file);
    if (g_slots[pick].dir[0]) ::rmdir(g_slots[pick].dir);
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// This process's start time in clock ticks since boot (field 22 of
// /proc/PID/stat), which tells a live owner from a later process that was
// given the same id.
std::string start_time(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may hold spaces.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  for (int i = 3; i <= 22 && fields >> f; ++i)
    if (i == 22) return f;
  return "";
}

const std::string kTempPrefix = ".bertq-tmp-";

std::string temp_prefix() {
  static const std::string prefix = kTempPrefix + std::to_string(::getpid()) + "-" + start_time(::getpid()) + "-";
  return prefix;
}

// "PID-START-XXXXXX": a name bertq gives its temporary folders.
bool is_our_name(const std::string& rest) {
  const auto dash1 = rest.find('-');
  const auto dash2 = dash1 == std::string::npos ? std::string::npos : rest.find('-', dash1 + 1);
  if (dash2 == std::string::npos) return false;
  const std::string pid_text = rest.substr(0, dash1);
  return !pid_text.empty() && pid_text.size() <= 9 && pid_text.find_first_not_of("0123456789") == std::string::npos;
}

// Locks a temporary folder for as long as `fd` stays open. The lock, not the
// process id in its name, tells a live owner from a dead one: it holds across
// PID namespaces (containers sharing a volume) and, on Linux, NFS.
Fd lock_folder(const std::string& dir, bool wait) {
  Fd fd = open_fd(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (fd && ::flock(fd.get(), LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) return Fd();
  return fd;
}

std::string parent_of(const std::string& path) {
  const fs::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : std::string(".");
}

// An absolute, normalised path with every existing link followed, for
// comparing paths that may not exist yet.
std::string resolved(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  if (ec) return fs::absolute(path).lexically_normal().string();
  return p.string();
}

}  // namespace

std::string read_file_capped(const std::string& path, uint64_t max_bytes, ErrorKind kind, const std::string& what) {
  const bool is_stdin = path == "-";
  const std::string name = is_stdin ? std::string("standard input") : path;
  Fd file;  // stays empty for standard input, which is not closed
  if (!is_stdin) {
    file = open_fd(path, O_RDONLY);
    if (!file) throw Error(kind, "cannot read " + what + " " + name + ": " + errno_message());
  }
  const int fd = is_stdin ? STDIN_FILENO : file.get();
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
    throw Error(kind, what + " " + name + " is a directory, not a file");
  std::string text;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(kind, "cannot read " + what + " " + name + ": " + errno_message());
    if (n == 0) break;
    if (text.size() + static_cast<uint64_t>(n) > max_bytes) {
      throw Error(
          kind, what + " " + name + " is larger than " + std::to_string(max_bytes) + " bytes, too large for a " + what);
    }
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

std::string file_kind(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  if (S_ISREG(st.st_mode)) return "a regular file";
  if (S_ISDIR(st.st_mode)) return "a folder";
  if (S_ISCHR(st.st_mode)) return "a character device";
  if (S_ISBLK(st.st_mode)) return "a block device";
  if (S_ISFIFO(st.st_mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(st.st_mode)) return "a socket";
  return "not a regular file";
}

OutputPath check_text_output_path(const std::string& role, const std::string& path) {
  if (path == "-") return OutputPath{role, path, path, true};
  return check_output_path(role, path);
}

OutputPath check_output_path(const std::string& role, const std::string& path) {
  if (path.empty()) throw Error(ErrorKind::Usage, role + ": an empty path is not a file name");
  if (path == "-")
    throw Error(ErrorKind::Usage,
                role + " - would be standard output: " +
                    (role == "output" ? std::string("a model is a binary zip archive")
                                      : "only a command's own text and JSON outputs go there"),
                "give a file path (./- for a file named -)");
  OutputPath out{role, path, path};
  // The file is written as FOLDER/.bertq-tmp-PID-START-XXXXXX/NAME first:
  // that path must fit the system's limit too.
  const auto too_long = [&](const std::string& p) { return p.size() + temp_prefix().size() + 8 >= PATH_MAX; };
  struct stat lst {};
  if (::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
    // Write through the link, as `cp` would, so the link stays a link.
    out.target = resolved(path);
  }
  if (too_long(out.target))
    throw Error(ErrorKind::Usage,
                role + " " + path + " is " + std::to_string(out.target.size()) +
                    " bytes long; bertq writes it under a temporary name beside it first, which would pass the "
                    "system's limit of " +
                    std::to_string(PATH_MAX - 1) + " bytes for a path",
                "give a shorter path (a relative one from inside the folder works)");
  struct stat st {};
  if (::stat(out.target.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode))
      throw Error(ErrorKind::Usage,
                  role + " " + path + " is " + file_kind(out.target) + "; bertq writes only regular files",
                  "give the path of a new or existing regular file");
    return out;
  }
  if (errno != ENOENT) throw Error(ErrorKind::Io, "cannot write " + role + " " + path + ": " + errno_message());
  // A dangling link (relative or absolute): the rename would replace the link
  // itself with a file, which is not writing through it.
  struct stat tst {};
  if (::lstat(out.target.c_str(), &tst) == 0 && S_ISLNK(tst.st_mode))
    throw Error(ErrorKind::Usage, role + " " + path + " is a symbolic link to nothing (its target does not exist)",
                "point it at a file, or give another path");
  const std::string dir = parent_of(out.target);
  struct stat dst {};
  if (::stat(dir.c_str(), &dst) != 0 || !S_ISDIR(dst.st_mode))
    throw Error(ErrorKind::Io, "cannot write " + role + " " + path + ": folder " + dir + " does not exist",
                "create the folder first");
  return out;
}

void check_distinct(const std::vector<InputPath>& inputs, const std::vector<OutputPath>& outputs) {
  auto same = [](const std::string& a, const std::string& b) {
    return a == b || resolved(a) == resolved(b) || same_file(a, b);
  };
  for (size_t i = 0; i < outputs.size(); ++i) {
    const OutputPath& o = outputs[i];
    if (o.to_stdout) {
      for (size_t j = 0; j < i; ++j)
        if (outputs[j].to_stdout)
          throw Error(ErrorKind::Usage, o.role + " and " + outputs[j].role + " are both - (standard output)",
                      "give one of them a file path");
      continue;
    }
    for (const auto& in : inputs) {
      if (in.path == "-" || in.path.empty()) continue;
      if (same(o.target, in.path))
        throw Error(ErrorKind::Usage,
                    o.role + " " + o.path + " is the " + in.role + " file; bertq never overwrites " +
                        (in.role == "input" ? "its input" : "what it reads"),
                    o.role == "output" ? "choose another output path" : "choose another path for " + o.role);
    }
    for (size_t j = 0; j < i; ++j)
      if (!outputs[j].to_stdout && same(o.target, outputs[j].target))
        throw Error(ErrorKind::Usage, o.role + " " + o.path + " is also the " + outputs[j].role + " file",
                    "give each output its own path");
  }
}

TempDir::TempDir(const std::string& target) {
  const fs::path t(target);
  const std::string dir = parent_of(target);
  std::string tmpl = (fs::path(dir) / (temp_prefix() + "XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) throw Error(ErrorKind::Io, "cannot write to " + dir + ": " + errno_message());
  path_ = tmpl;
  file_ = (fs::path(path_) / t.filename()).string();
  // Held until the folder is gone: remove_stale_temporaries leaves it alone.
  lock_ = lock_folder(path_, /*wait=*/false);
  slot_ = claim_slot(file_, path_);
}

TempDir::~TempDir() {
  release_slot(slot_);
  ::unlink(file_.c_str());
  ::rmdir(path_.c_str());
}

void TempDir::commit(const std::string& target) {
  // Flush to disk before the rename, so a crash cannot leave an empty file
  // under the final name.
  const Fd fd = open_fd(file_, O_RDONLY);
  const bool synced = fd && ::fsync(fd.get()) == 0;
  const std::string why = synced ? "" : errno_message();
  if (!synced) throw Error(ErrorKind::Io, "cannot write " + target + ": " + why);
  // The path was checked before the work started; a device or FIFO put there
  // since must not be replaced either.
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw Error(ErrorKind::Usage, target + " became " + file_kind(target) + " while bertq worked; not replaced");
  if (::rename(file_.c_str(), target.c_str()) != 0)
    throw Error(ErrorKind::Io, "cannot write " + target + ": " + errno_message());
}

namespace {

// Creates `file` (it must not exist) holding `contents`; throws Error(Io)
// naming `out`.
void write_new_file(const std::string& file, const OutputPath& out, std::string_view contents) {
  Fd fd = open_fd(file, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (!fd) throw Error(ErrorKind::Io, "cannot write " + out.role + " " + out.path + ": " + errno_message());
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd.get(), contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw Error(ErrorKind::Io,
                  "cannot write " + out.role + " " + out.path + ": " + (n < 0 ? errno_message() : "short write"));
    done += static_cast<size_t>(n);
  }
  if (const int err = fd.close())
    throw Error(ErrorKind::Io, "cannot write " + out.role + " " + out.path + ": " + std::strerror(err));
}

}  // namespace

void write_file_atomic(const OutputPath& out, std::string_view contents) {
  TempDir tmp(out.target);
  write_new_file(tmp.file(), out, contents);
  tmp.commit(out.target);
}

struct StagedOutputs::Staged {
  OutputPath out;
  std::optional<TempDir> dir;          // none for standard output
  std::optional<std::string> pending;  // standard output's contents, until commit
  explicit Staged(const OutputPath& o) : out(o) {
    if (!o.to_stdout) dir.emplace(o.target);
  }
  bool written() const {
    struct stat st {};
    return dir ? ::lstat(dir->file().c_str(), &st) == 0 : pending.has_value();
  }
};

StagedOutputs::StagedOutputs() = default;
StagedOutputs::~StagedOutputs() = default;

void StagedOutputs::add(const OutputPath& out) { staged_.push_back(std::make_unique<Staged>(out)); }

StagedOutputs::Staged& StagedOutputs::find(const OutputPath& out) const {
  for (const auto& s : staged_)
    if (s->out.target == out.target && s->out.role == out.role) return *s;
  throw Error(ErrorKind::Internal, "no staged output for " + out.role + " " + out.path);
}

const std::string& StagedOutputs::file(const OutputPath& out) const {
  const Staged& s = find(out);
  if (!s.dir) throw Error(ErrorKind::Internal, out.role + " is standard output, not a file");
  return s.dir->file();
}

void StagedOutputs::write(const OutputPath& out, std::string_view contents) {
  if (out.to_stdout) {
    find(out).pending = std::string(contents);
    return;
  }
  write_new_file(file(out), out, contents);
}

void StagedOutputs::commit() {
  // Back to "not committed" if a rename throws; "committed" at the end.
  struct Committing {
    Committing() { g_commit_state = kCommitting; }
    ~Committing() {
      if (g_commit_state == kCommitting) g_commit_state = kNotCommitted;
    }
  } committing;
  std::vector<std::string> replaced;
  for (size_t i = 0; i < staged_.size(); ++i) {
    Staged& s = *staged_[i];
    if (!s.dir || !s.written()) continue;
    try {
      s.dir->commit(s.out.target);
    } catch (const Error& e) {
      std::vector<std::string> left;
      for (size_t j = i; j < staged_.size(); ++j)
        if (staged_[j]->written()) left.push_back(staged_[j]->out.path);
      throw Error(e.kind(), std::string(e.what()) + "; " +
                                (replaced.empty() ? std::string("nothing was replaced")
                                                  : "already replaced: " + join(replaced, ", ")) +
                                "; not written: " + join(left, ", "));
    }
    replaced.push_back(s.out.path);
  }
  g_commit_state = kCommitted;
  // Last: once standard output has the bytes, nothing can take them back.
  for (auto& s : staged_) {
    if (!s->pending) continue;
    std::cout << *s->pending << std::flush;
    if (!std::cout) throw Error(ErrorKind::Io, "cannot write " + s->out.role + " to standard output");
    s->pending.reset();
  }
}

int remove_stale_temporaries(const std::string& dir) {
  int removed = 0;
  DIR* d = ::opendir(dir.empty() ? "." : dir.c_str());
  if (!d) return 0;
  std::vector<std::string> candidates;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind(kTempPrefix, 0) == 0 && is_our_name(name.substr(kTempPrefix.size()))) candidates.push_back(name);
  }
  ::closedir(d);
  const auto now = fs::file_time_type::clock::now();
  for (const auto& name : candidates) {
    const fs::path p = fs::path(dir.empty() ? "." : dir) / name;
    std::error_code ec;
    const auto st = fs::symlink_status(p, ec);
    if (ec || !fs::is_directory(st)) continue;
    // A folder made in the last minute may not be locked yet by its maker.
    const auto mtime = fs::last_write_time(p, ec);
    if (ec || now - mtime < std::chrono::minutes(1)) continue;
    // Its owner holds its lock while it lives, whatever its process id says
    // here (another PID namespace, another NFS client).
    const Fd lock = lock_folder(p.string(), /*wait=*/false);
    if (!lock) continue;
    // Only what bertq puts there: files, or the FIFO LibTorch's writer
    // writes into.
    for (const auto& f : fs::directory_iterator(p, ec))
      if (const auto fst = fs::symlink_status(f.path(), ec); fs::is_regular_file(fst) || fs::is_fifo(fst))
        fs::remove(f.path(), ec);
    if (fs::remove(p, ec)) ++removed;
  }
  return removed;
}

namespace {
// Plain flags, set before any constructor runs: no initialisation order to get wrong.
bool g_recorded_at_start = false;
bool g_ignored_at_start[65] = {};
}  // namespace

void record_signals_at_start() {
  static_assert(SIGINT == kStopSignals[0] && SIGTERM == kStopSignals[1] && SIGHUP == kStopSignals[2]);
  for (int sig : kStopSignals) {
    struct sigaction now {};
    g_ignored_at_start[sig] = sigaction(sig, nullptr, &now) == 0 && now.sa_handler == SIG_IGN;
  }
  g_recorded_at_start = true;
}

bool ignored_at_start(int sig) {
  if (g_recorded_at_start) return sig > 0 && sig < 65 && g_ignored_at_start[sig];
  struct sigaction now {};
  return sigaction(sig, nullptr, &now) == 0 && now.sa_handler == SIG_IGN;
}

void install_cleanup_on_signals() {
  struct sigaction sa {};
  sa.sa_handler = cleanup_and_reraise;
  for (int sig : kStopSignals) {
    if (ignored_at_start(sig)) {
      std::signal(sig, SIG_IGN);
      continue;
    }
    sigaction(sig, &sa, nullptr);
  }
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {
  }, sb{};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace bertq
