#include "archive/archive_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "archive/pickle_scan.h"
#include "archive/sha256.h"
#include "base/error.h"
#include "base/fd.h"
#include "base/text.h"

namespace bertq {
namespace {

const char* kExpect =
    "bertq expects a TorchScript archive written by torch.jit.save(torch.jit.trace(model, inputs), "
    "path) or torch.jit.script";

[[noreturn]] void not_a_model(const std::string& path, const std::string& what, std::string hint = kExpect) {
  throw Error(ErrorKind::Model, path + ": " + what, std::move(hint));
}

std::string read_string_at(int fd, uint64_t offset, uint64_t n) {
  std::string buf(n, '\0');
  const ssize_t got = read_at(fd, offset, buf.data(), n);
  buf.resize(got < 0 ? 0 : static_cast<size_t>(got));
  return buf;
}

// A zip ends with an end-of-central-directory record ("PK\5\6") in its last
// 64 KiB + 22 bytes; a truncated file has lost it.
bool has_zip_end_record(int fd, uint64_t size) {
  const uint64_t tail = std::min<uint64_t>(size, 65536 + 22);
  return read_string_at(fd, size - tail, tail).rfind(std::string("PK\x05\x06", 4)) != std::string::npos;
}

// Same contents as far as the file system can tell: a write changes the size
// or the modification time. (Not the change time: renaming another file over
// the path changes this one's link count, not its bytes.)
bool same_state(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

}  // namespace

ArchiveFile::ArchiveFile(const std::string& path, ArchiveContents contents) : path_(path), contents_(contents) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  fd_ = open_fd(path, O_RDONLY | O_NONBLOCK);
  if (!fd_) throw Error(ErrorKind::Model, "cannot open " + path + ": " + errno_message());
  const int fd = fd_.get();
  try {
    if (::fstat(fd, &opened_) != 0) throw Error(ErrorKind::Model, "cannot read " + path + ": " + errno_message());
    if (S_ISDIR(opened_.st_mode)) not_a_model(path, "is a directory, not a model file");
    if (!S_ISREG(opened_.st_mode))
      not_a_model(path, "is not a regular file (a device, FIFO or socket); bertq reads models from files");
    const uint64_t size = static_cast<uint64_t>(opened_.st_size);
    if (size == 0) not_a_model(path, "is empty (0 bytes)");
    const std::string head = read_string_at(fd, 0, 16);
    if (head.rfind("PK\x03\x04", 0) != 0) {
      // torch.save before PyTorch 1.6 (or with _use_new_zipfile_serialization=False)
      // writes a bare pickle: protocol 2 opens with 0x80 0x02.
      if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x80 && head[1] <= 5)
        not_a_model(path, "is a legacy torch.save pickle (an eager model or a state_dict), not a TorchScript model");
      not_a_model(path, "is not a TorchScript archive (not a zip file)");
    }
    if (!has_zip_end_record(fd, size))
      not_a_model(path, "is a truncated zip archive (its end record is missing)",
                  "the file was cut short while being written or copied; save or copy it again");
    // Walk the central directory and every local header first: LibTorch's
    // reader trusts offsets and sizes, and some corruptions make it abort.
    index_ = read_zip_index(fd, path);
    classify_zip();
    check_sizes();
    verify_zip_checksums(fd, path, index_);
    check_version();
    check_code();
    check_pickles();
  } catch (const Error& e) {
    // Saved inputs are the user's data, not a model.
    if (contents_ == ArchiveContents::SavedTensors && e.kind() == ErrorKind::Model)
      throw Error(ErrorKind::Usage, e.what(), "--inputs takes tensors saved with torch.save, or JSON Lines");
    throw;
  }
}

ArchiveFile::~ArchiveFile() = default;

// TorchScript has code/ and constants.pkl; torch.save writes only data.pkl
// and data/.
void ArchiveFile::classify_zip() {
  bool has_code = false, has_constants = false, has_data = false;
  for (const auto& e : index_.entries) {
    // Compared as LibTorch's lookup compares names: without regard to case.
    if (starts_with_folded(e.name, "code/")) has_code = true;
    if (fold_case(e.name) == "constants.pkl") has_constants = true;
    if (fold_case(e.name) == "data.pkl") has_data = true;
  }
  if (contents_ == ArchiveContents::SavedTensors) {
    if (has_data && !has_code && !has_constants) return;
    not_a_model(path_, has_code ? "is a TorchScript model, not inputs saved with torch.save"
                                : "is a zip archive but not tensors saved with torch.save (no data.pkl)");
  }
  if (has_code && has_constants && has_data) return;
  if (has_data && !has_code) {
    std::string data_pkl;
    const ZipEntry* e = index_.find("data.pkl");
    if (e->size <= (16u << 20)) data_pkl = read_zip_record(fd_.get(), path_, *e);
    data_pkl.resize(std::min<size_t>(data_pkl.size(), 4096));
    // A state_dict pickles an OrderedDict of tensors; a module pickles its class.
    const bool state_dict = data_pkl.find("OrderedDict") != std::string::npos &&
                            data_pkl.find("torch.nn.modules") == std::string::npos &&
                            data_pkl.find("__main__") == std::string::npos;
    if (state_dict)
      not_a_model(path_, "is a state_dict saved with torch.save (tensors only, no code), not a TorchScript model",
                  std::string(kExpect) + " from the model that owns this state_dict");
    not_a_model(path_, "is an eager model saved with torch.save (a pickled Python object), not a TorchScript model");
  }
  not_a_model(path_, "is a zip archive but not a TorchScript model (no code/, constants.pkl and data.pkl)");
}

void ArchiveFile::check_sizes() {
  uint64_t inflated = 0;
  for (const auto& e : index_.entries) {
    if (is_tensor_record(e.name) && !e.stored)
      not_a_model(path_,
                  "is not as torch.jit.save writes archives: tensor record " + printable(e.name) +
                      " is compressed (was the archive repacked with a zip tool?)",
                  "save the model again with torch.jit.save");
    if (!e.stored) {
      // Summed by subtraction so that declared sizes near 2^64 cannot wrap.
      if (e.size > kMaxInflatedBytes - inflated)
        not_a_model(path_,
                    "its compressed records would inflate to more than " + std::to_string(kMaxInflatedBytes >> 20) +
                        " MiB (record " + printable(e.name) + " declares " + std::to_string(e.size) +
                        " bytes); a TorchScript model's code takes a few MB",
                    "the file is damaged or hostile; get a fresh copy");
      inflated += e.size;
    }
  }
  for (const char* name : {"data.pkl", "constants.pkl"})
    if (const ZipEntry* e = index_.find(name); e && !e->stored && e->size > (64u << 20))
      not_a_model(path_, std::string(name) + " is implausibly large");
}

void ArchiveFile::check_version() {
  const ZipEntry* e = index_.find(".data/version");
  if (!e) e = index_.find("version");
  if (!e) not_a_model(path_, "is not a TorchScript model: it has no version record");
  const std::string text = e->size <= 64 ? read_zip_record(fd_.get(), path_, *e) : std::string(65, 'x');
  // LibTorch parses it with stoull and does not catch overflow.
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string rest = text.substr(digits);
  const bool trailing_space = rest.find_first_not_of(" \t\r\n") == std::string::npos;
  if (digits == 0 || digits > 18 || !trailing_space)
    not_a_model(path_,
                "has a corrupted version record (\"" + printable(text.substr(0, 32)) + (text.size() > 32 ? "..." : "") +
                    "\"; a small number is expected)",
                "the file was damaged or was not written by torch.jit.save; get a fresh copy");
  version_ = std::stoull(text.substr(0, digits));
}

void ArchiveFile::check_code() {
  // LibTorch's TorchScript parser recurses on long runs of blank lines and on
  // nesting, and overflows its stack (a crash, not an error) on inputs that
  // torch.jit.save never writes: 32768 blank lines crash 1.13.1. Generated
  // code has a few blank lines in a row and nests a few levels deep.
  constexpr size_t kMaxBlankRun = 4096;
  constexpr int kMaxNesting = 256;
  for (const auto& e : index_.entries) {
    // Every record LibTorch may parse as code: its lookup ignores case.
    const std::string folded = fold_case(e.name);
    if (!starts_with_folded(folded, "code/") || folded.size() < 3 || folded.compare(folded.size() - 3, 3, ".py") != 0)
      continue;
    const std::string text = read_zip_record(fd_.get(), path_, e);
    size_t run = 0;
    int depth = 0, deepest = 0;
    for (char c : text) {
      if (c == '\n') {
        if (++run > kMaxBlankRun)
          not_a_model(path_,
                      "its code record " + printable(e.name) + " holds more than " + std::to_string(kMaxBlankRun) +
                          " blank lines in a row, which crash LibTorch's parser; torch.jit.save writes none",
                      "the file was damaged or is hostile; get a fresh copy");
      } else if (c != ' ' && c != '\r' && c != '\t') {
        run = 0;
      }
      if (c == '(' || c == '[' || c == '{')
        deepest = std::max(deepest, ++depth);
      else if ((c == ')' || c == ']' || c == '}') && depth > 0)
        --depth;
    }
    if (deepest > kMaxNesting)
      not_a_model(path_,
                  "its code record " + printable(e.name) + " nests brackets " + std::to_string(deepest) +
                      " deep, which would crash LibTorch's parser",
                  "the file was damaged or is hostile; get a fresh copy");
  }
}

void ArchiveFile::check_pickles() {
  // LibTorch reads these pickles; each storage's bytes come from the record
  // ARCHIVE/KEY (constants.pkl -> constants/0, data.pkl -> data/0).
  // traced_inputs.pkl (PyTorch 2.x) is left alone: torch.jit.save writes its
  // storage records empty, and LibTorch reads it only when asked to restore
  // input shapes, which bertq never does.
  for (const char* archive : {"constants", "data"}) {
    const ZipEntry* e = index_.find(std::string(archive) + ".pkl");
    if (!e) continue;
    const std::string bytes = read_zip_record(fd_.get(), path_, *e);
    const std::string source = path_ + ": " + archive + ".pkl";
    const PickleScan scan = scan_pickle(bytes, source);
    if (scan.has_sparse)
      not_a_model(path_, "holds sparse tensors, which bertq does not read",
                  "make the model's tensors dense before tracing it");
    std::vector<uint64_t> record_size(scan.storages.size());
    for (size_t i = 0; i < scan.storages.size(); ++i) {
      const PickledStorage& s = scan.storages[i];
      const std::string record = std::string(archive) + "/" + s.key;
      const ZipEntry* r = index_.find(record);
      // LibTorch reads no record for an empty storage.
      if (s.numel == 0) continue;
      if (!r)
        not_a_model(path_, "is corrupted: " + source + " refers to tensor record " + printable(record) +
                               ", which the archive does not hold");
      const unsigned __int128 need = static_cast<unsigned __int128>(s.numel) * static_cast<uint64_t>(s.itemsize);
      if (need > r->size)
        not_a_model(path_,
                    "is corrupted: tensor record " + printable(record) + " holds " + std::to_string(r->size) +
                        " bytes, but its storage needs " +
                        std::to_string(static_cast<uint64_t>(std::min<unsigned __int128>(need, UINT64_MAX))) + " (" +
                        std::to_string(s.numel) + " x " + s.dtype + ")",
                    "the file was damaged or was not written by torch.jit.save; get a fresh copy");
    }
    // A tensor quantized per channel carries a scale and a zero point for
    // every channel along its axis; a packed weight's prepack (and
    // dequantize) read that many, whatever the pickle holds.
    auto numel = [](const PickledTensor& t) {
      unsigned __int128 n = 1;
      for (int64_t d : t.sizes) n = std::min<unsigned __int128>(n * static_cast<uint64_t>(d), UINT64_MAX);
      return static_cast<uint64_t>(n);
    };
    for (const auto& q : scan.per_channel) {
      const PickledTensor& t = scan.tensors[q.tensor];
      if (q.axis < 0 || static_cast<size_t>(q.axis) >= t.sizes.size())
        not_a_model(path_, "is corrupted: a tensor in " + source + " is quantized per channel along axis " +
                               std::to_string(q.axis) + ", which it does not have");
      const uint64_t channels = static_cast<uint64_t>(t.sizes[static_cast<size_t>(q.axis)]);
      const uint64_t scales = numel(scan.tensors[q.scales]), zero_points = numel(scan.tensors[q.zero_points]);
      if (scales != channels || zero_points != channels)
        not_a_model(path_,
                    "is corrupted: a tensor in " + source + " is quantized per channel with " +
                        std::to_string(channels) + " channels, but holds " + std::to_string(scales) + " scales and " +
                        std::to_string(zero_points) + " zero points",
                    "the file was damaged or was not written by torch.jit.save; get a fresh copy");
    }
    for (const auto& t : scan.tensors) {
      const PickledStorage& s = scan.storages[t.storage];
      int64_t extent = storage_extent(t);
      // Sub-byte quantized tensors (4-bit embedding rows) pack 2 or 4
      // elements per storage byte.
      const int64_t per_byte = s.dtype == "QUInt4x2" ? 2 : s.dtype == "QUInt2x4" ? 4 : 1;
      if (extent > 0) extent = (extent - 1) / per_byte + 1;
      if (extent < 0 || extent > s.numel)
        not_a_model(path_,
                    "is corrupted: a tensor in " + source + " reaches element " + std::to_string(extent) +
                        " of storage " + printable(s.key) + ", which has " + std::to_string(s.numel),
                    "the file was damaged or was not written by torch.jit.save; get a fresh copy");
    }
  }
}

std::string ArchiveFile::read_record(const std::string& name) const {
  const ZipEntry* e = index_.find(name);
  if (!e) throw Error(ErrorKind::Model, path_ + ": no record " + name);
  return read_zip_record(fd_.get(), path_, *e);
}

std::string ArchiveFile::sha256() const { return sha256_fd(fd_.get(), path_); }

void ArchiveFile::check_unchanged() const {
  // The path may have been replaced by another file meanwhile: every read
  // went through this descriptor, so the hash still describes what was loaded.
  struct stat now {};
  if (::fstat(fd_.get(), &now) != 0 || !same_state(now, opened_))
    throw Error(ErrorKind::Model, path_ + " changed on disk while bertq was reading it",
                "run again once nothing else writes the file");
}

}  // namespace bertq
