#include "base/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/text.h"

namespace bertq {
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------
// Temporaries removed by the signal handler: plain buffers, because only
// async-signal-safe calls (unlink, rmdir) may run there.

constexpr int kSlots = 8;
struct Slot {
  char file[PATH_MAX];
  char dir[PATH_MAX];
  volatile sig_atomic_t used;
};
Slot g_slots[kSlots];

int claim_slot(const std::string& file, const std::string& dir) {
  if (file.size() >= PATH_MAX || dir.size() >= PATH_MAX) return -1;
  for (int i = 0; i < kSlots; ++i) {
    if (g_slots[i].used) continue;
    std::memcpy(g_slots[i].file, file.c_str(), file.size() + 1);
    std::memcpy(g_slots[i].dir, dir.c_str(), dir.size() + 1);
    g_slots[i].used = 1;
    return i;
  }
  return -1;
}

void release_slot(int i) {
  if (i >= 0) g_slots[i].used = 0;
}

void cleanup_and_reraise(int sig) {
  for (auto& s : g_slots) {
    if (!s.used) continue;
    ::unlink(s.file);
    if (s.dir[0]) ::rmdir(s.dir);
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

// "PID-START-XXXXXX" -> is that process gone?
bool owner_is_gone(const std::string& rest) {
  const auto dash1 = rest.find('-');
  const auto dash2 = dash1 == std::string::npos ? std::string::npos : rest.find('-', dash1 + 1);
  if (dash2 == std::string::npos) return false;  // not our naming: leave it alone
  const std::string pid_text = rest.substr(0, dash1), start = rest.substr(dash1 + 1, dash2 - dash1 - 1);
  if (pid_text.empty() || pid_text.size() > 9 || pid_text.find_first_not_of("0123456789") != std::string::npos)
    return false;
  const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
  struct stat st {};
  if (::stat(("/proc/" + pid_text).c_str(), &st) != 0) return true;
  return start_time(pid) != start;
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
  int fd = STDIN_FILENO;
  if (!is_stdin) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(kind, "cannot read " + what + " " + name + ": " + errno_message());
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    if (!is_stdin) ::close(fd);
    throw Error(kind, what + " " + name + " is a directory, not a file");
  }
  std::string text;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = errno_message();
      if (!is_stdin) ::close(fd);
      throw Error(kind, "cannot read " + what + " " + name + ": " + why);
    }
    if (n == 0) break;
    if (text.size() + static_cast<uint64_t>(n) > max_bytes) {
      if (!is_stdin) ::close(fd);
      throw Error(
          kind, what + " " + name + " is larger than " + std::to_string(max_bytes) + " bytes, too large for a " + what);
    }
    text.append(buf, static_cast<size_t>(n));
  }
  if (!is_stdin) ::close(fd);
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

OutputPath check_output_path(const std::string& role, const std::string& path) {
  if (path.empty()) throw Error(ErrorKind::Usage, role + ": an empty path is not a file name");
  OutputPath out{role, path, path};
  struct stat lst {};
  if (::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
    // Write through the link, as `cp` would, so the link stays a link.
    out.target = resolved(path);
  }
  struct stat st {};
  if (::stat(out.target.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode))
      throw Error(ErrorKind::Usage,
                  role + " " + path + " is " + file_kind(out.target) + "; bertq writes only regular files",
                  "give the path of a new or existing regular file");
    return out;
  }
  if (errno != ENOENT) throw Error(ErrorKind::Io, "cannot write " + role + " " + path + ": " + errno_message());
  if (::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode) && out.target == path)
    throw Error(ErrorKind::Usage, role + " " + path + " is a symbolic link that cannot be followed");
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
    for (const auto& in : inputs) {
      if (in.path == "-" || in.path.empty()) continue;
      if (same(o.target, in.path))
        throw Error(ErrorKind::Usage,
                    o.role + " " + o.path + " is the " + in.role + " file; bertq never overwrites " +
                        (in.role == "input" ? "its input" : "what it reads"),
                    o.role == "output" ? "choose another output path" : "choose another path for " + o.role);
    }
    for (size_t j = 0; j < i; ++j)
      if (same(o.target, outputs[j].target))
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
  const int fd = ::open(file_.c_str(), O_RDONLY | O_CLOEXEC);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  const std::string why = synced ? "" : errno_message();
  if (fd >= 0) ::close(fd);
  if (!synced) throw Error(ErrorKind::Io, "cannot write " + target + ": " + why);
  // The path was checked before the work started; a device or FIFO put there
  // since must not be replaced either.
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    throw Error(ErrorKind::Usage, target + " became " + file_kind(target) + " while bertq worked; not replaced");
  if (::rename(file_.c_str(), target.c_str()) != 0)
    throw Error(ErrorKind::Io, "cannot write " + target + ": " + errno_message());
}

void write_file_atomic(const OutputPath& out, std::string_view contents) {
  TempDir tmp(out.target);
  const int fd = ::open(tmp.file().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(ErrorKind::Io, "cannot write " + out.role + " " + out.path + ": " + errno_message());
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? errno_message() : "short write";
      ::close(fd);
      throw Error(ErrorKind::Io, "cannot write " + out.role + " " + out.path + ": " + why);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0)
    throw Error(ErrorKind::Io, "cannot write " + out.role + " " + out.path + ": " + errno_message());
  tmp.commit(out.target);
}

int remove_stale_temporaries(const std::string& dir) {
  int removed = 0;
  DIR* d = ::opendir(dir.empty() ? "." : dir.c_str());
  if (!d) return 0;
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind(kTempPrefix, 0) != 0) continue;
    if (owner_is_gone(name.substr(kTempPrefix.size()))) stale.push_back(name);
  }
  ::closedir(d);
  for (const auto& name : stale) {
    const fs::path p = fs::path(dir.empty() ? "." : dir) / name;
    std::error_code ec;
    // Only what bertq puts there: a folder holding one file (or the FIFO
    // LibTorch's writer writes into), or a file.
    if (fs::is_directory(fs::symlink_status(p, ec))) {
      for (const auto& f : fs::directory_iterator(p, ec))
        if (const auto st = fs::symlink_status(f.path(), ec); fs::is_regular_file(st) || fs::is_fifo(st))
          fs::remove(f.path(), ec);
    }
    if (fs::remove(p, ec)) ++removed;
  }
  return removed;
}

void install_cleanup_on_signals() {
  struct sigaction sa {};
  sa.sa_handler = cleanup_and_reraise;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
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
