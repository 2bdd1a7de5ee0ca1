// The entries of a zip archive, read from its central directory without
// extracting anything: names, sizes and where each entry's data starts.
// torch.jit.save stores tensor records uncompressed (so they can be read in
// place) and deflates code and debug records.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace bertq {

struct ZipEntry {
  std::string name;          // without the archive's root folder ("data/0", "code/...")
  uint64_t size = 0;         // uncompressed size
  uint64_t stored_size = 0;  // bytes in the file
  uint64_t data_offset = 0;
  bool stored = true;  // method 0 (no compression); else deflated (method 8)
  uint32_t crc32 = 0;  // of the uncompressed data
};

struct ZipIndex {
  std::vector<ZipEntry> entries;
  std::string root;  // the archive's root folder name
  uint64_t file_size = 0;
  // The entry LibTorch reads for `name` (without the root folder): names
  // match without regard to case, as in LibTorch's lookup; nullptr if none.
  const ZipEntry* find(const std::string& name) const;
  std::unordered_map<std::string, size_t> by_folded_name;  // fold_case(name) -> index in entries
};

// Reads the index of the archive open as `fd`. `path` names it in messages.
// Throws Error(Model) naming what is wrong (no end record, offsets beyond the
// file, a compression method other than stored or deflate, ...). The index
// is what LibTorch's reader (miniz) will see, and only archives where that is
// unambiguous are accepted: one central directory (the zip64 end record, if
// a locator leads to one, must agree with the classic one), every entry in
// the first entry's folder, and no two names equal without regard to case.
ZipIndex read_zip_index(int fd, const std::string& path);
// The same, opening `path` itself.
ZipIndex read_zip_index(const std::string& path);

// The uncompressed bytes of one record, inflating deflated ones with the
// size the index declares as the limit. Throws Error(Model) if the data
// inflates to another size or fails its CRC-32.
std::string read_zip_record(int fd, const std::string& path, const ZipEntry& entry);

// Checks the CRC-32 of every record, stored or deflated (LibTorch checks
// none, so a flipped bit in a weight or in the model's code would load
// silently), streaming through each so memory stays small. Throws
// Error(Model) naming the damaged record.
void verify_zip_checksums(int fd, const std::string& path, const ZipIndex& index);

// True for records holding tensor storage bytes ("data/N", "constants/N").
bool is_tensor_record(const std::string& name);

// `name` with ASCII letters lower-cased, as LibTorch's zip reader compares
// names; and whether `name` starts with `prefix` (lower case) that way.
std::string fold_case(std::string_view name);
bool starts_with_folded(std::string_view name, std::string_view prefix);

}  // namespace bertq
