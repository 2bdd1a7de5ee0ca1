// An input model file, opened once and checked before LibTorch reads a byte of
// it. Every later read (LibTorch's load, the SHA-256, the size report) goes
// through the same open file, and check_unchanged() tells if the file was
// modified meanwhile, so what was hashed is what was loaded.
//
// The checks (docs/cli.md, "What bertq checks in an input"):
// - it is a regular file, not empty, and a zip (else it says what it is: a
//   legacy torch.save pickle, an eager model or state_dict from torch.save,
//   text, a truncated zip, ...);
// - the zip's structure: every offset and size inside the file;
// - every record's CRC-32, stored or deflated (LibTorch checks none);
// - the `version` record is a number;
// - tensor records are stored, not compressed, as torch.jit.save writes them;
// - memory: deflated records may inflate to at most kMaxInflatedBytes in all;
// - the pickles: every storage fits in its record and every tensor in its
//   storage (LibTorch would read past the end of a short record);
// - the code: nothing that crashes LibTorch's parser (runs of blank lines,
//   deep nesting).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "archive/zip_index.h"
#include "base/fd.h"

namespace bertq {

// What an archive must hold: a TorchScript model (torch.jit.save: code/,
// constants.pkl, data.pkl), or tensors saved with torch.save (data.pkl and
// its records only: `--inputs` files).
enum class ArchiveContents { Model, SavedTensors };

class ArchiveFile {
 public:
  // The most that a model's deflated records (code, debug info) may inflate
  // to: LibTorch holds each in memory whole. Real models need a few MB.
  static constexpr uint64_t kMaxInflatedBytes = 256ull << 20;

  // Opens `path` and runs every check; throws Error(Model) saying what the
  // file is or what is wrong with it (Error(Usage) for SavedTensors, which
  // are the user's data rather than a model).
  explicit ArchiveFile(const std::string& path, ArchiveContents contents = ArchiveContents::Model);
  ~ArchiveFile();
  ArchiveFile(const ArchiveFile&) = delete;
  ArchiveFile& operator=(const ArchiveFile&) = delete;

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }
  uint64_t size() const { return index_.file_size; }
  const ZipIndex& index() const { return index_; }
  // The archive's file format version (its `version` record).
  uint64_t format_version() const { return version_; }

  // The uncompressed bytes of record `name`; throws Error(Model) if absent.
  std::string read_record(const std::string& name) const;

  // SHA-256 (hex) of the file, read through the open descriptor.
  std::string sha256() const;

  // Throws Error(Model) if the file changed on disk since it was opened
  // (size or modification time): a model modified in place while
  // bertq read it would make the report describe a file that was not
  // converted. (A file replaced at the path is harmless: every read went
  // through this descriptor.)
  void check_unchanged() const;

 private:
  void classify_zip();
  void check_version();
  void check_sizes();
  void check_code();
  void check_pickles();

  std::string path_;
  ArchiveContents contents_ = ArchiveContents::Model;
  Fd fd_;
  struct stat opened_ {};
  ZipIndex index_;
  uint64_t version_ = 0;
};

}  // namespace bertq
