// Reading inputs as streams with a cap, and writing outputs so that nothing
// is lost: only regular files, never an input, whole or not at all.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "base/error.h"
#include "base/files.h"
#include "catch.hpp"
#include "scratch.h"

using namespace bertq;
namespace fs = std::filesystem;

namespace {

struct Dir : testing::ScratchDir {
  Dir() : ScratchDir("bertq-files") {}
};
using testing::put;
std::string get(const std::string& path) { return testing::slurp(path); }

ErrorKind kind_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.kind();
  }
  FAIL("no error");
  return ErrorKind::Internal;
}

}  // namespace

TEST_CASE("read_file_capped reads files, FIFOs and stops at the cap", "[files]") {
  Dir d;
  put(d / "a.txt", "hello");
  CHECK(read_file_capped(d / "a.txt", 100, ErrorKind::Config, "qconfig") == "hello");
  CHECK(kind_of([&] { read_file_capped(d / "a.txt", 4, ErrorKind::Config, "qconfig"); }) == ErrorKind::Config);
  CHECK(kind_of([&] { read_file_capped(d / "missing", 4, ErrorKind::Usage, "x"); }) == ErrorKind::Usage);
  CHECK(kind_of([&] { read_file_capped(d.dir.string(), 4, ErrorKind::Config, "x"); }) == ErrorKind::Config);
  // A FIFO is read as a stream, once.
  REQUIRE(::mkfifo((d / "fifo").c_str(), 0600) == 0);
  std::thread writer([&] { put(d / "fifo", "from a pipe"); });
  CHECK(read_file_capped(d / "fifo", 100, ErrorKind::Config, "qconfig") == "from a pipe");
  writer.join();
  // A stream that never ends stops at the cap.
  try {
    read_file_capped("/dev/zero", 1 << 20, ErrorKind::Config, "manifest");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "manifest /dev/zero is larger than 1048576 bytes, too large for a manifest");
  }
}

TEST_CASE("check_output_path takes new and regular files only", "[files]") {
  Dir d;
  CHECK(check_output_path("output", d / "new.pt").target == d / "new.pt");
  put(d / "old.pt", "x");
  CHECK(check_output_path("output", d / "old.pt").target == d / "old.pt");
  // Through a link: the target is written, the link kept.
  fs::create_symlink(d / "old.pt", d / "link.pt");
  CHECK(check_output_path("output", d / "link.pt").target == fs::canonical(d / "old.pt").string());
  REQUIRE(::mkfifo((d / "fifo").c_str(), 0600) == 0);
  try {
    check_output_path("--report", d / "fifo");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Usage);
    CHECK(std::string(e.what()) ==
          "--report " + d / "fifo" + " is a FIFO (named pipe); bertq writes only regular files");
  }
  CHECK(kind_of([&] { check_output_path("output", d.dir.string()); }) == ErrorKind::Usage);
  CHECK(kind_of([&] { check_output_path("output", d / "no/such/folder/x.pt"); }) == ErrorKind::Io);
  CHECK(kind_of([&] { check_output_path("output", ""); }) == ErrorKind::Usage);
}

TEST_CASE("check_distinct sees through links, relative paths and files not written yet", "[files]") {
  Dir d;
  put(d / "in.pt", "x");
  fs::create_hard_link(d / "in.pt", d / "hard.pt");
  const OutputPath hard{"output", d / "hard.pt", d / "hard.pt"};
  CHECK(kind_of([&] { check_distinct({{"input", d / "in.pt"}}, {hard}); }) == ErrorKind::Usage);
  const OutputPath a{"--report", d / "r.json", d / "r.json"};
  const OutputPath b{"--html", d / "./sub/../r.json", d / "./sub/../r.json"};
  fs::create_directories(d / "sub");
  CHECK(kind_of([&] { check_distinct({}, {a, b}); }) == ErrorKind::Usage);
  const OutputPath c{"--html", d / "r.html", d / "r.html"};
  CHECK_NOTHROW(check_distinct({{"input", d / "in.pt"}}, {a, c}));
}

TEST_CASE("write_file_atomic replaces the file whole and leaves no temporary", "[files]") {
  Dir d;
  put(d / "r.json", "old");
  const OutputPath out = check_output_path("--report", d / "r.json");
  write_file_atomic(out, "new contents");
  CHECK(get(d / "r.json") == "new contents");
  for (const auto& e : fs::directory_iterator(d.dir)) CHECK(e.path().filename() == "r.json");
}

TEST_CASE("stale temporaries of dead owners are removed, live ones kept", "[files]") {
  Dir d;
  const auto an_hour_ago = fs::file_time_type::clock::now() - std::chrono::hours(1);
  // An owner gone (its folder unlocked), an hour ago.
  fs::create_directories(d / ".bertq-tmp-999999-1-abcdef");
  put(d / ".bertq-tmp-999999-1-abcdef/out.pt", "partial");
  fs::last_write_time(d / ".bertq-tmp-999999-1-abcdef", an_hour_ago);
  // A live owner holds its folder's lock, whatever process id its name
  // gives (another PID namespace, another NFS client): TempDir's own.
  TempDir live(d / "out.pt");
  fs::last_write_time(live.path(), an_hour_ago);
  // A folder made this minute may not be locked yet by its maker.
  fs::create_directories(d / ".bertq-tmp-999998-1-abcdef");
  // Not bertq's naming.
  fs::create_directories(d / ".bertq-tmp-xyz");
  fs::last_write_time(d / ".bertq-tmp-xyz", an_hour_ago);
  CHECK(remove_stale_temporaries(d.dir.string()) == 1);
  CHECK_FALSE(fs::exists(d / ".bertq-tmp-999999-1-abcdef"));
  CHECK(fs::exists(live.path()));
  CHECK(fs::exists(d / ".bertq-tmp-999998-1-abcdef"));
  CHECK(fs::exists(d / ".bertq-tmp-xyz"));
  // The lock is the folder's, not the process's: from another process (a
  // child here), the live folder is still kept.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(remove_stale_temporaries(d.dir.string()) == 0 && fs::exists(live.path()) ? 0 : 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
