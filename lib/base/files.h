// Files bertq reads and writes, handled so that nothing is lost: inputs are
// read once as streams with a size cap (pipes, FIFOs and `-` for stdin work),
// outputs go only to regular files (never a device or a FIFO), appear
// complete or not at all, and never land on another argument of the same run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/fd.h"

namespace bertq {

// The whole of `path` ("-" is standard input), read as a stream: pipes,
// FIFOs, /dev/stdin and `<(...)` work. `what` names the file in messages
// ("qconfig"). Throws Error(kind) when it cannot be read or once more than
// `max_bytes` have arrived (nothing beyond the cap is kept), and for a
// directory.
std::string read_file_capped(const std::string& path, uint64_t max_bytes, ErrorKind kind, const std::string& what);

// One file bertq will write, and what the path named when it was checked.
struct OutputPath {
  std::string role;        // "output", "--report", "--html", "--summary", ...
  std::string path;        // as given
  std::string target;      // where the bytes go: `path` with symbolic links followed
  bool to_stdout = false;  // `-`: standard output (text and JSON outputs only)
};

// Checks a path bertq is about to write: it may not exist yet (its folder
// must), or be a regular file, also through symbolic links (the link is kept
// and its target replaced). A device, FIFO, socket or folder is refused with
// Error(Usage): replacing /dev/null or blocking on a FIFO loses something.
// `-` is refused: this is for binary outputs (models), whose bytes a terminal
// or a text pipe would mangle.
OutputPath check_output_path(const std::string& role, const std::string& path);

// The same for an output that is text (JSON, HTML): `-` means standard
// output, written once the run has succeeded, as a file would be renamed
// into place.
OutputPath check_text_output_path(const std::string& role, const std::string& path);

// A path the run reads (input, --qconfig, a manifest, a vocabulary).
struct InputPath {
  std::string role;
  std::string path;
};

// Refuses (Error(Usage)) any output that names an input or another output of
// the same run, also through links and before the file exists: an input is
// never modified and no output overwrites another.
void check_distinct(const std::vector<InputPath>& inputs, const std::vector<OutputPath>& outputs);

// Writes `contents` to `out.target` atomically: a temporary file in the same
// folder, flushed to disk and renamed into place. A failure (a full disk)
// leaves the old file, or nothing, never a partial or empty one. Throws
// Error(Io).
void write_file_atomic(const OutputPath& out, std::string_view contents);

// A private temporary folder beside `target` for writing it. Its name,
// `.bertq-tmp-PID-START-XXXXXX`, names the owner process for a reader; the
// owner holds a lock on it for its lifetime, which remove_stale_temporaries
// respects. The folder is removed on SIGINT/SIGTERM/SIGHUP.
class TempDir {
 public:
  explicit TempDir(const std::string& target);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Where the file is written inside the folder (the target's own file name).
  const std::string& file() const { return file_; }
  // Renames file() onto `target` after re-checking that the target is still
  // absent or a regular file; throws Error(Io).
  void commit(const std::string& target);

 private:
  std::string path_;
  std::string file_;
  int slot_ = -1;
  Fd lock_;  // closed after the folder is removed (members go after the destructor body)
};

// The outputs of one command, committed together: each is written into a
// temporary folder of its own beside its target, made when the output is
// added (so an output that cannot be written fails the command before any
// work), and commit() renames them into place at the end. A command that
// fails before commit() leaves every target as it was.
class StagedOutputs {
 public:
  StagedOutputs();
  ~StagedOutputs();
  StagedOutputs(const StagedOutputs&) = delete;
  StagedOutputs& operator=(const StagedOutputs&) = delete;
  // Makes `out`'s temporary folder now; throws Error(Io) if it cannot.
  void add(const OutputPath& out);
  // Where `out` is to be written: its target's file name, in its folder.
  const std::string& file(const OutputPath& out) const;
  // Writes `contents` as `out`, flushed to disk; throws Error(Io). Standard
  // output's contents are kept until commit.
  void write(const OutputPath& out, std::string_view contents);
  // Renames every output written so far into place, in the order added (an
  // output never written is left alone), then writes standard output's. If
  // a rename fails, throws Error(Io) saying which outputs were replaced and
  // which were not.
  void commit();

 private:
  struct Staged;
  std::vector<std::unique_ptr<Staged>> staged_;
  Staged& find(const OutputPath& out) const;
};

// Removes `.bertq-tmp-*` folders in `dir` whose owner no longer runs (a
// conversion killed by SIGKILL or a power cut leaves them behind): a live
// owner holds a lock (flock) on its folder, which also works across PID
// namespaces and NFS; folders younger than a minute are left too. Returns
// how many were removed. Names that are not bertq's are left alone.
int remove_stale_temporaries(const std::string& dir);

// The stop signals bertq handles: SIGINT, SIGTERM, SIGHUP.
inline constexpr int kStopSignals[] = {2, 15, 1};

// Records which stop signals the process was started with ignored (`nohup`,
// a shell's background job). Called by the executable before any library's
// initialisers run (app/main.cpp's .preinit_array): LibTorch 2.x installs a
// SIGHUP handler of its own as it loads, over an ignored SIGHUP.
void record_signals_at_start();
// True if `sig` was ignored when the process started; where nothing was
// recorded (a test program), whether it is ignored now.
bool ignored_at_start(int sig);

// Installs SIGINT/SIGTERM/SIGHUP handlers that delete the temporary files of
// writes in progress, then let the signal end the process as usual (exit
// status 128 + signal number). A signal ignored at start is ignored again
// (whatever a library set since), so that `nohup bertq ...` holds, in the
// processes bertq starts too.
void install_cleanup_on_signals();

// True if both paths name the same existing file (also through links).
bool same_file(const std::string& a, const std::string& b);

// The size of a file, 0 if it cannot be stat'ed.
uint64_t file_size(const std::string& path);

// The file's kind for messages: "a character device", "a FIFO", ...
std::string file_kind(const std::string& path);

}  // namespace bertq
