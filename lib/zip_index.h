// The entries of a zip archive, read from its central directory without
// extracting anything: names, sizes and where each entry's data starts.
// TorchScript archives store entries uncompressed, so an entry's data can be
// read in place.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bertq {

struct ZipEntry {
  std::string name;        // without the archive's root folder ("data/0", "code/...")
  uint64_t size = 0;       // uncompressed size
  uint64_t stored_size = 0;  // bytes in the file (code records are deflated)
  uint64_t data_offset = 0;
  bool stored = true;      // method 0 (no compression)
  uint32_t crc32 = 0;      // of the uncompressed data
};

struct ZipIndex {
  std::vector<ZipEntry> entries;
  std::string root;  // the archive's root folder name
  uint64_t file_size = 0;
};

// Throws Error(Model) naming what is wrong (no end record, bad offsets, ...).
ZipIndex read_zip_index(const std::string& path);

// Checks the CRC-32 of every stored (uncompressed) entry: LibTorch's reader
// does not, so a flipped bit in a weight would load silently. Throws
// Error(Model) naming the damaged record.
void verify_zip_checksums(const std::string& path, const ZipIndex& index);

// True for records holding tensor storage bytes ("data/N", "constants/N").
bool is_tensor_record(const std::string& name);

}  // namespace bertq
