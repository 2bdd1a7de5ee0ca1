#include "model_file.h"

#include <caffe2/serialize/inline_container.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <signal.h>
#include <sys/stat.h>
#include <torch/script.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "error.h"
#include "text_util.h"
#include "zip_index.h"

namespace bertq {
namespace {

namespace fs = std::filesystem;

const char* kExpect =
    "bertq expects a TorchScript archive written by torch.jit.save(torch.jit.trace(model, inputs), "
    "path) or torch.jit.script";

[[noreturn]] void not_a_model(const std::string& path, const std::string& what,
                              std::string hint = kExpect) {
  throw Error(ErrorKind::Model, path + ": " + what, std::move(hint));
}

std::string read_head(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string buf(n, '\0');
  in.read(buf.data(), static_cast<std::streamsize>(n));
  buf.resize(static_cast<size_t>(in.gcount()));
  return buf;
}

// A zip ends with an end-of-central-directory record ("PK\5\6") in its last
// 64 KiB + 22 bytes; a truncated file has lost it.
bool has_zip_end_record(const std::string& path, uint64_t size) {
  const uint64_t tail = std::min<uint64_t>(size, 65536 + 22);
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(size - tail));
  std::string buf(tail, '\0');
  in.read(buf.data(), static_cast<std::streamsize>(tail));
  return buf.rfind(std::string("PK\x05\x06", 4)) != std::string::npos;
}

// Classifies a zip that PyTorch can read: TorchScript has code/ and
// constants.pkl; torch.save writes only data.pkl and data/.
void check_zip_records(const std::string& path) {
  std::vector<std::string> records;
  std::string data_pkl;
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    records = reader.getAllRecords();
    if (reader.hasRecord("data.pkl")) {
      auto [ptr, size] = reader.getRecord("data.pkl");
      data_pkl.assign(static_cast<const char*>(ptr.get()), std::min<size_t>(size, 4096));
    }
  } catch (const c10::Error& e) {
    not_a_model(path, "is a corrupted zip archive (" + std::string(e.what_without_backtrace()) + ")");
  }
  bool has_code = false, has_constants = false;
  for (const auto& r : records) {
    if (r.rfind("code/", 0) == 0) has_code = true;
    if (r == "constants.pkl") has_constants = true;
  }
  if (has_code && has_constants) return;
  if (!data_pkl.empty()) {
    // A state_dict pickles an OrderedDict of tensors; a module pickles its class.
    const bool state_dict = data_pkl.find("OrderedDict") != std::string::npos &&
                            data_pkl.find("torch.nn.modules") == std::string::npos &&
                            data_pkl.find("__main__") == std::string::npos;
    if (state_dict)
      not_a_model(path,
                  "is a state_dict saved with torch.save (tensors only, no code), not a TorchScript "
                  "model",
                  std::string(kExpect) + " from the model that owns this state_dict");
    not_a_model(path,
                "is an eager model saved with torch.save (a pickled Python object), not a "
                "TorchScript model");
  }
  not_a_model(path, "is a zip archive but not a TorchScript model (no code/ and constants.pkl)");
}

// The save in progress, for the signal handler: plain buffers, because only
// async-signal-safe calls (unlink, rmdir) may run there.
char g_tmp_file[4096];
char g_tmp_dir[4096];
volatile sig_atomic_t g_saving = 0;

void cleanup_and_reraise(int sig) {
  if (g_saving) {
    ::unlink(g_tmp_file);
    ::rmdir(g_tmp_dir);
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// Marks the temporary paths for the signal handler while a save runs.
class SaveInProgress {
 public:
  SaveInProgress(const std::string& file, const std::string& dir) {
    std::snprintf(g_tmp_file, sizeof g_tmp_file, "%s", file.c_str());
    std::snprintf(g_tmp_dir, sizeof g_tmp_dir, "%s", dir.c_str());
    g_saving = 1;
  }
  ~SaveInProgress() { g_saving = 0; }
};

}  // namespace

void install_cleanup_on_signals() {
  struct sigaction sa {};
  sa.sa_handler = cleanup_and_reraise;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

void check_torchscript_archive(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error(ErrorKind::Model, "cannot open " + path + ": " + errno_message());
  if (S_ISDIR(st.st_mode)) not_a_model(path, "is a directory, not a model file");
  if (!S_ISREG(st.st_mode)) not_a_model(path, "is not a regular file");
  if (::access(path.c_str(), R_OK) != 0)
    throw Error(ErrorKind::Model, "cannot read " + path + ": " + errno_message());
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size == 0) not_a_model(path, "is empty (0 bytes)");
  const std::string head = read_head(path, 16);
  if (head.rfind("PK\x03\x04", 0) == 0) {
    if (!has_zip_end_record(path, size))
      not_a_model(path, "is a truncated zip archive (its end record is missing)",
                  "the file was cut short while being written or copied; save or copy it again");
    // Walk the central directory and every local header ourselves first:
    // LibTorch's reader trusts offsets and sizes, and some corruptions make it
    // abort instead of throwing.
    read_zip_index(path);
    check_zip_records(path);
    return;
  }
  // torch.save before PyTorch 1.6 (or with _use_new_zipfile_serialization=False)
  // writes a bare pickle: protocol 2 opens with 0x80 0x02.
  if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x80 && head[1] <= 5)
    not_a_model(path,
                "is a legacy torch.save pickle (an eager model or a state_dict), not a TorchScript "
                "model");
  not_a_model(path, "is not a TorchScript archive (not a zip file)");
}

torch::jit::Module load_model(const std::string& path, const std::string& extra_name, std::string* extra) {
  check_torchscript_archive(path);
  try {
    torch::jit::ExtraFilesMap files;
    if (!extra_name.empty()) files[extra_name] = "";
    torch::jit::Module m = torch::jit::load(path, torch::kCPU, files);
    if (extra) *extra = extra_name.empty() ? "" : files[extra_name];
    return m;
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::Model, path + ": LibTorch could not load the model: " +
                                      std::string(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw Error(ErrorKind::Model, path + ": LibTorch could not load the model: " + e.what());
  }
}

torch::jit::Module load_model(const std::string& path) { return load_model(path, "", nullptr); }

void save_model_atomic(const torch::jit::Module& model, const std::string& path,
                       const std::map<std::string, std::string>& extra_files) {
  const fs::path out(path);
  const fs::path dir = out.has_parent_path() ? out.parent_path() : fs::path(".");
  // A private folder beside the output: the archive inside is written under
  // the output's own file name (torch.jit.save names the archive's root
  // folder after it), then renamed into place in one step.
  std::string tmpl = (dir / ".bertq-tmp-XXXXXX").string();
  if (!::mkdtemp(tmpl.data()))
    throw Error(ErrorKind::Io, "cannot write to " + dir.string() + ": " + errno_message());
  const fs::path tmp_dir(tmpl);
  const fs::path tmp_file = tmp_dir / out.filename();
  SaveInProgress marker(tmp_file.string(), tmp_dir.string());
  auto cleanup = [&] {
    std::error_code ec;
    fs::remove(tmp_file, ec);
    fs::remove(tmp_dir, ec);
  };
  // The pickler memoizes an object only if something else also holds it. In
  // Python every submodule is held by its RecursiveScriptModule wrapper, so
  // torch.jit.save memoizes them all; holding them here too makes the
  // archive's data.pkl byte-identical to Python's for models that keep
  // submodules (debug and prepared models).
  std::vector<torch::jit::Module> held;
  for (const auto& child : model.named_modules()) held.push_back(child.value);
  // LibTorch's writer aborts the process when a write fails (a full disk, a
  // file size limit): its destructor throws while the first exception
  // unwinds. So the archive is written by a forked child; the parent sees an
  // exit status, never an abort. The child shares the model's memory
  // copy-on-write and only reads it.
  int pipefd[2];
  if (::pipe(pipefd) != 0) {
    cleanup();
    throw Error(ErrorKind::Io, "cannot write " + path + ": " + errno_message());
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    // When LibTorch aborts, its terminate message is noise: the parent says
    // what failed.
    const int devnull = ::open("/dev/null", O_WRONLY);
    if (devnull >= 0) ::dup2(devnull, STDERR_FILENO);
    std::string error;
    try {
      torch::jit::ExtraFilesMap extra(extra_files.begin(), extra_files.end());
      model.save(tmp_file.string(), extra);
      ::_exit(0);
    } catch (const c10::Error& e) {
      error = e.what_without_backtrace();
    } catch (const std::exception& e) {
      error = e.what();
    }
    ssize_t ignored = ::write(pipefd[1], error.data(), error.size());
    (void)ignored;
    ::_exit(1);
  }
  ::close(pipefd[1]);
  std::string child_error;
  char buf[512];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) child_error.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  const bool waited = pid > 0 && ::waitpid(pid, &status, 0) == pid;
  if (!waited || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    cleanup();
    std::string why = !child_error.empty() ? child_error
                      : pid < 0          ? "cannot start the writer: " + errno_message()
                                         : "LibTorch's writer failed (is the disk full, or a file size limit set?)";
    throw Error(ErrorKind::Io, "cannot write " + path + ": " + printable(why));
  }
  // Flush to disk before the rename, so a crash cannot leave an empty file
  // under the final name.
  int fd = ::open(tmp_file.c_str(), O_RDONLY);
  const bool synced = fd >= 0 && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  if (!synced || ::rename(tmp_file.c_str(), path.c_str()) != 0) {
    const std::string why = errno_message();
    cleanup();
    throw Error(ErrorKind::Io, "cannot write " + path + ": " + why);
  }
  cleanup();
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace bertq
