// Helpers for testing the CLI as a user meets it: run the built binary with
// arguments, capture its exit code, stdout and stderr, in a scratch folder
// that is checked for leftover temporaries.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "scratch.h"

namespace cli {

namespace fs = std::filesystem;

inline const std::string kSource = BERTQ_SOURCE_DIR;
inline const std::string kBinary = BERTQ_BINARY;
inline const std::string kModel = kSource + "/testdata/models/tiny_bert.pt";
inline const std::string kSubmodules = kSource + "/testdata/models/submodules.pt";

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

using bertq::testing::byte_difference;
using bertq::testing::slurp;
inline void write_file(const std::string& path, const std::string& text) { bertq::testing::put(path, text); }

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A scratch folder per test, removed at the end.
struct Scratch : bertq::testing::ScratchDir {
  Scratch() : ScratchDir("bertq-cli") {}
  // bertq's temporaries left anywhere under the folder.
  std::vector<std::string> leftovers() const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.path().filename().string().rfind(".bertq-tmp-", 0) == 0) out.push_back(e.path());
    return out;
  }
};

// Runs a shell command line; returns its exit status as a shell reports it.
inline int shell(const std::string& cmd) {
  const int status = std::system(("sh -c " + quote(cmd)).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs bertq with `args`; stdin from `stdin_path` (default /dev/null).
inline Result run(const std::vector<std::string>& args, const std::string& stdin_path = "/dev/null") {
  Scratch io;
  std::string cmd = quote(kBinary);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " >" + quote(io / "stdout") + " 2>" + quote(io / "stderr") + " <" + quote(stdin_path);
  Result r;
  r.code = shell(cmd);
  r.out = slurp(io / "stdout");
  r.err = slurp(io / "stderr");
  return r;
}

inline nlohmann::json parse_json(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  INFO(text);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A command line started in the background: `sh -c 'exec CMD'`, so that
// pid() is CMD's own process (signals go to it, not to a shell).
class Background {
 public:
  explicit Background(const std::string& cmd) {
    const std::string line = "exec " + cmd;
    const char* argv[] = {"sh", "-c", line.c_str(), nullptr};
    // With the default dispositions, whatever this test inherited (a run
    // started with `&` or nohup ignores SIGINT or SIGHUP).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&defaults, sig);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    const int rc = ::posix_spawn(&pid_, "/bin/sh", nullptr, &attr, const_cast<char**>(argv), environ);
    posix_spawnattr_destroy(&attr);
    REQUIRE(rc == 0);
  }
  ~Background() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  pid_t pid() const { return pid_; }
  // Its exit status as a shell reports it (128 + N for signal N).
  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
};

// A FIFO this test holds open for reading and writing: a bertq that opens it
// to read does not wait for a writer, and then waits in read() with the FIFO
// open (which opened_elsewhere sees) until send() writes and closes it.
class HeldFifo {
 public:
  explicit HeldFifo(const std::string& path) : path_(path) {
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    REQUIRE(fd_ >= 0);
  }
  ~HeldFifo() { close(); }
  HeldFifo(const HeldFifo&) = delete;
  HeldFifo& operator=(const HeldFifo&) = delete;
  // Writes `text` (smaller than the pipe's buffer) and closes: the reader sees it, then the end.
  void send(const std::string& text) {
    REQUIRE(::write(fd_, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    close();
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // True once a process other than this one has the FIFO open: the bertq
  // under test has reached its read (waits up to two minutes for slow machines).
  bool opened_elsewhere() const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
    const fs::path target = fs::absolute(path_);
    const std::string self = std::to_string(::getpid());
    while (std::chrono::steady_clock::now() < deadline) {
      std::error_code ec;
      for (const auto& proc : fs::directory_iterator("/proc", ec)) {
        const std::string pid = proc.path().filename();
        if (pid == self || pid.find_first_not_of("0123456789") != std::string::npos) continue;
        std::error_code fec;
        for (const auto& fd : fs::directory_iterator(proc.path() / "fd", fec)) {
          std::error_code lec;
          if (fs::read_symlink(fd.path(), lec) == target) return true;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

inline bool running_as_root() { return ::geteuid() == 0; }

}  // namespace cli
