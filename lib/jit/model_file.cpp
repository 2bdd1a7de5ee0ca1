#include "jit/model_file.h"

#include <caffe2/serialize/read_adapter_interface.h>
#include <caffe2/serialize/versions.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <torch/script.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/text.h"
#include "jit/graph_walk.h"
#include "jit/torch_compat.h"

namespace bertq {
namespace {

namespace fs = std::filesystem;

// LibTorch reads the archive through the descriptor ArchiveFile checked, not
// by opening the path again.
class FdReader : public caffe2::serialize::ReadAdapterInterface {
 public:
  FdReader(int fd, uint64_t size) : fd_(fd), size_(size) {}
  size_t size() const override { return size_; }
  // Fewer bytes than asked for is what LibTorch takes for an error.
  size_t read(uint64_t pos, void* buf, size_t n, const char*) const override {
    const ssize_t got = read_at(fd_, pos, buf, n);
    return got < 0 ? 0 : static_cast<size_t>(got);
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

// LibTorch's writer cannot report a failed write: when one fails (a full
// disk, a file size limit) it throws, and its destructor throws again while
// that exception unwinds, which aborts the process. So LibTorch never writes
// the file itself. It writes into a FIFO named like the output (the archive's
// root folder is named after that file name, as torch.jit.save names it), and
// a thread of ours moves the bytes from the FIFO to the real file. A write to
// the FIFO cannot fail while the thread drains it; a failed write to the file
// is recorded and the rest is drained and dropped, so LibTorch finishes
// normally and the failure becomes an Error here.
//
// No fork: a forked child of a process whose OpenMP or LibTorch thread pools
// have started inherits none of their threads, and the first parallel region
// in the child (packed embedding rows unpack in parallel while saving) waits
// forever for them.
class FifoSink {
 public:
  // `file` is created (it must not exist); the FIFO gets the same file name.
  FifoSink(const std::string& file, const std::string& shown) : shown_(shown) {
    fifo_dir_ = make_fifo(file);
    out_ = open_fd(file, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (!out_) throw Error(ErrorKind::Io, "cannot write " + shown + ": " + errno_message());
    // The read end first (non-blocking, so that opening it does not wait for
    // a writer), then a write end of our own: the reader sees end-of-file
    // only once LibTorch's stream and this one are both closed.
    read_ = open_fd(fifo_dir_->file(), O_RDONLY | O_NONBLOCK);
    if (read_) keep_ = open_fd(fifo_dir_->file(), O_WRONLY);
    if (!read_ || !keep_)
      throw Error(ErrorKind::Io,
                  "cannot write " + shown + ": cannot open a pipe for LibTorch's writer: " + errno_message());
    ::fcntl(read_.get(), F_SETFL, ::fcntl(read_.get(), F_GETFL) & ~O_NONBLOCK);
    mover_ = std::thread([this] { move_bytes(); });
  }

  ~FifoSink() {
    if (mover_.joinable()) {
      keep_.close();
      mover_.join();
    }
  }

  // Where LibTorch writes.
  const std::string& path() const { return fifo_dir_->file(); }

  // Waits for every byte to reach the file and closes it; throws Error(Io)
  // for the first write that failed.
  void finish() {
    keep_.close();
    mover_.join();
    if (const int err = out_.close(); write_errno_ == 0) write_errno_ = err;
    if (write_errno_ != 0)
      throw Error(ErrorKind::Io, "cannot write " + shown_ + ": " + std::strerror(write_errno_),
                  write_errno_ == ENOSPC || write_errno_ == EFBIG || write_errno_ == EDQUOT
                      ? "free some space (or raise the file size limit) and run again; nothing was written"
                      : "");
  }

 private:
  // A private folder for the FIFO: the system's temporary folder, else the
  // folder `file`'s own temporary folder is in (a .bertq-tmp-* folder either
  // way, removed on a signal). Some file systems (vfat, some FUSE) have no
  // FIFOs.
  static std::unique_ptr<TempDir> make_fifo(const std::string& file) {
    const fs::path f(file);
    std::string last_error;
    for (const fs::path& dir : {fs::temp_directory_path(), f.parent_path().parent_path()}) {
      try {
        auto d = std::make_unique<TempDir>((dir / f.filename()).string());
        if (::mkfifo(d->file().c_str(), 0600) == 0) return d;
        last_error = errno_message();
      } catch (const Error& e) {
        last_error = e.what();
      }
    }
    throw Error(ErrorKind::Io, "cannot make a pipe for LibTorch's writer: " + last_error);
  }

  void move_bytes() {
    // A file size limit raises SIGXFSZ in the writing thread; blocked here,
    // the write fails with EFBIG instead of killing the process.
    sigset_t xfsz;
    sigemptyset(&xfsz);
    sigaddset(&xfsz, SIGXFSZ);
    pthread_sigmask(SIG_BLOCK, &xfsz, nullptr);
    std::vector<char> buf(1 << 20);
    while (true) {
      const ssize_t n = ::read(read_.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n < 0 && write_errno_ == 0) write_errno_ = errno;
        return;
      }
      for (size_t done = 0; write_errno_ == 0 && done < static_cast<size_t>(n);) {
        const ssize_t w = ::write(out_.get(), buf.data() + done, static_cast<size_t>(n) - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          write_errno_ = w < 0 ? errno : EIO;
          break;
        }
        done += static_cast<size_t>(w);
      }
    }
  }

  std::string shown_;
  std::unique_ptr<TempDir> fifo_dir_;
  Fd out_, read_, keep_;
  int write_errno_ = 0;  // written by the mover, read after it is joined
  std::thread mover_;
};

// LibTorch 2.x's writer takes a record whose data pointer is null (an empty
// tensor: observers start with empty min_val/max_val) for metadata only and
// seeks past it, which fails on the FIFO and leaves the stream failed for
// every later record. An empty storage given a non-null pointer to no bytes
// is written as the same empty record. Storages shared by several tensors
// stay shared, so the archive's records are the same as Python's.
void give_empty_storages_a_pointer(const torch::jit::Module& model) {
  static char no_bytes;
  std::unordered_map<const c10::StorageImpl*, c10::Storage> replaced;
  auto patch = [&](const c10::IValue& v) {
    if (!v.isTensor()) return;
    const at::Tensor& t = v.toTensor();
    if (!t.defined() || !t.has_storage() || t.device().type() != c10::DeviceType::CPU || t.storage().nbytes() != 0 ||
        t.storage().data() != nullptr)
      return;
    auto [it, fresh] = replaced.try_emplace(t.storage().unsafeGetStorageImpl());
    if (fresh)
      it->second = c10::Storage(c10::Storage::use_byte_size_t(), 0,
                                c10::DataPtr(
                                    &no_bytes, &no_bytes, [](void*) {}, c10::Device(c10::DeviceType::CPU)),
                                nullptr, false);
    t.unsafeGetTensorImpl()->set_storage_keep_dtype(it->second);
  };
  // Attributes (and tensors in their lists, tuples and dicts), then the
  // constants of every method's graph (constants.pkl).
  std::function<void(const c10::IValue&, int)> visit = [&](const c10::IValue& v, int depth) {
    if (depth > 64) return;
    if (v.isTensor()) {
      patch(v);
    } else if (v.isList()) {
      for (const c10::IValue& e : v.toListRef()) visit(e, depth + 1);
    } else if (v.isTuple()) {
      for (const c10::IValue& e : v.toTupleRef().elements()) visit(e, depth + 1);
    } else if (v.isGenericDict()) {
      for (const auto& e : v.toGenericDict()) visit(e.value(), depth + 1);
    }
  };
  for (const auto& child : model.named_modules()) {
    const auto& object = child.value._ivalue();
    for (size_t i = 0; i < object->slots().size(); ++i) visit(object->getSlot(i), 0);
    for (const auto& method : child.value.get_methods()) {
      for_each_node(method.graph()->block(), [&](torch::jit::Node* n) {
        if (n->kind() == c10::prim::Constant)
          if (auto v = torch::jit::toIValue(n->output())) visit(*v, 0);
      });
    }
  }
}

// Writes `model` to the new file `file`; see FifoSink for why not directly.
void save_to_file(const torch::jit::Module& model, const std::string& file, const std::string& shown,
                  const std::map<std::string, std::string>& extra_files) {
  // The pickler memoizes an object only if something else also holds it. In
  // Python every submodule is held by its RecursiveScriptModule wrapper, so
  // torch.jit.save memoizes them all; holding them here too makes the
  // archive's data.pkl byte-identical to Python's for models that keep
  // submodules (debug and prepared models).
  std::vector<torch::jit::Module> held;
  for (const auto& child : model.named_modules()) held.push_back(child.value);
  give_empty_storages_a_pointer(model);
  FifoSink sink(file, shown);
  std::string error;
  try {
    torch::jit::ExtraFilesMap extra(extra_files.begin(), extra_files.end());
    model.save(sink.path(), extra);
  } catch (const c10::Error& e) {
    error = e.what_without_backtrace();
  } catch (const std::exception& e) {
    error = e.what();
  }
  sink.finish();  // a failed write is the real reason, if there was one
  // Otherwise LibTorch refused to serialize the model, as Python's
  // torch.jit.save would (a debug model of fork/wait: "Schema not found").
  if (!error.empty())
    throw Error(ErrorKind::Unsupported, "LibTorch cannot save " + shown + ": " + printable(first_line(error)),
                "PyTorch's torch.jit.save fails on this model the same way; try without --debug, or another qconfig");
}

}  // namespace

void save_model_atomic(const torch::jit::Module& model, const OutputPath& out,
                       const std::map<std::string, std::string>& extra_files) {
  // A private folder beside the output: the archive inside is written under
  // the output's own file name (torch.jit.save names the archive's root
  // folder after it), then renamed into place in one step.
  TempDir tmp(out.target);
  save_to_file(model, tmp.file(), out.path, extra_files);
  tmp.commit(out.target);
}

void save_model_to(const torch::jit::Module& model, const std::string& file, const std::string& shown,
                   const std::map<std::string, std::string>& extra_files) {
  save_to_file(model, file, shown, extra_files);
}

}  // namespace bertq
