#include "archive/model_file.h"

#include <caffe2/serialize/read_adapter_interface.h>
#include <caffe2/serialize/versions.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <torch/script.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <optional>
#include <vector>

#include "base/error.h"
#include "base/text.h"
#include "convert/torch_compat.h"

namespace bertq {
namespace {

namespace fs = std::filesystem;

// LibTorch reads the archive through the descriptor ArchiveFile checked, not
// by opening the path again.
class FdReader : public caffe2::serialize::ReadAdapterInterface {
 public:
  FdReader(int fd, uint64_t size) : fd_(fd), size_(size) {}
  size_t size() const override { return size_; }
  size_t read(uint64_t pos, void* buf, size_t n, const char*) const override {
    size_t done = 0;
    while (done < n) {
      const ssize_t got = ::pread(fd_, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(pos + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

 private:
  int fd_;
  uint64_t size_;
};

// What a LibTorch load error means, in bertq's words: an operator this
// LibTorch lacks means a model traced by a newer PyTorch.
std::optional<Error> explain_load_error(const std::string& path, const std::string& raw) {
  const std::string marker = "Unknown builtin op: ";
  const auto at = raw.find(marker);
  if (at == std::string::npos) return std::nullopt;
  std::string op = raw.substr(at + marker.size());
  op = op.substr(0, op.find_first_of(". \n"));
  return Error(ErrorKind::Model,
               path + ": it was traced with a newer PyTorch: it uses " + op + ", which LibTorch " +
                   BERTQ_LIBTORCH_VERSION + " does not have",
               std::string("convert it with a bertq built against ") + compat::kNewerLibTorch + " (docs/libtorch.md)");
}

}  // namespace

torch::jit::Module load_model(const ArchiveFile& file, const std::string& extra_name, std::string* extra) {
  const uint64_t v = file.format_version();
  if (v < caffe2::serialize::kMinSupportedFileFormatVersion || v > caffe2::serialize::kMaxSupportedFileFormatVersion)
    throw Error(ErrorKind::Model,
                file.path() + ": its file format version " + std::to_string(v) + " is not one this LibTorch (" +
                    BERTQ_LIBTORCH_VERSION + ") reads (" +
                    std::to_string(caffe2::serialize::kMinSupportedFileFormatVersion) + " to " +
                    std::to_string(caffe2::serialize::kMaxSupportedFileFormatVersion) + ")",
                v > caffe2::serialize::kMaxSupportedFileFormatVersion
                    ? "it was saved by a newer PyTorch; use a bertq built with that LibTorch"
                    : "save the model again with a current PyTorch");
  try {
    torch::jit::ExtraFilesMap files;
    if (!extra_name.empty()) files[extra_name] = "";
    torch::jit::Module m =
        torch::jit::load(std::make_shared<FdReader>(file.fd(), file.size()), torch::Device(torch::kCPU), files);
    if (extra) *extra = extra_name.empty() ? "" : files[extra_name];
    return m;
  } catch (const std::exception& e) {
    const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
    const std::string raw = c10_error ? c10_error->what_without_backtrace() : e.what();
    if (auto known = explain_load_error(file.path(), raw)) throw *known;
    throw Error(ErrorKind::Model, file.path() + ": LibTorch could not load the model: " + first_line(raw),
                "bertq checked the archive's structure and checksums; LibTorch refused its contents");
  }
}

torch::jit::Module load_model(const std::string& path, const std::string& extra_name, std::string* extra) {
  const ArchiveFile file(path);
  return load_model(file, extra_name, extra);
}

namespace {

// Writes the archive to `file` in a forked child. LibTorch's writer aborts
// the process when a write fails (a full disk, a file size limit): its
// destructor throws while the first exception unwinds. In a child, the parent
// sees an exit status, never an abort. The child shares the model's memory
// copy-on-write and only reads it.
void save_in_child(const torch::jit::Module& model, const std::string& file, const std::string& shown,
                   const std::map<std::string, std::string>& extra_files) {
  // The pickler memoizes an object only if something else also holds it. In
  // Python every submodule is held by its RecursiveScriptModule wrapper, so
  // torch.jit.save memoizes them all; holding them here too makes the
  // archive's data.pkl byte-identical to Python's for models that keep
  // submodules (debug and prepared models).
  std::vector<torch::jit::Module> held;
  for (const auto& child : model.named_modules()) held.push_back(child.value);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) throw Error(ErrorKind::Io, "cannot write " + shown + ": " + errno_message());
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
      model.save(file, extra);
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
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    child_error.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  pid_t waited = -1;
  while (pid > 0 && (waited = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  if (waited != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string why = !child_error.empty() ? child_error
                            : pid < 0            ? "cannot start the writer: " + errno_message()
                                      : "LibTorch's writer failed (is the disk full, or a file size limit set?)";
    throw Error(ErrorKind::Io, "cannot write " + shown + ": " + printable(why));
  }
}

}  // namespace

void save_model_atomic(const torch::jit::Module& model, const OutputPath& out,
                       const std::map<std::string, std::string>& extra_files) {
  // A private folder beside the output: the archive inside is written under
  // the output's own file name (torch.jit.save names the archive's root
  // folder after it), then renamed into place in one step.
  TempDir tmp(out.target);
  save_in_child(model, tmp.file(), out.path, extra_files);
  tmp.commit(out.target);
}

void save_model_to(const torch::jit::Module& model, const std::string& file, const std::string& shown,
                   const std::map<std::string, std::string>& extra_files) {
  save_in_child(model, file, shown, extra_files);
}

}  // namespace bertq
