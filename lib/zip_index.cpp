#include "zip_index.h"

#include <fcntl.h>
#include <unistd.h>

#include <zlib.h>

#include <cstring>

#include "error.h"
#include "text_util.h"

namespace bertq {
namespace {

uint16_t u16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
uint32_t u32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
uint64_t u64(const uint8_t* p) { return uint64_t(u32(p)) | uint64_t(u32(p + 4)) << 32; }

class File {
 public:
  explicit File(const std::string& path) : path_(path), fd_(::open(path.c_str(), O_RDONLY)) {
    if (fd_ < 0) throw Error(ErrorKind::Model, "cannot open " + path + ": " + errno_message());
  }
  ~File() { ::close(fd_); }
  uint64_t size() const { return static_cast<uint64_t>(::lseek(fd_, 0, SEEK_END)); }
  std::vector<uint8_t> read(uint64_t offset, uint64_t n) const {
    std::vector<uint8_t> buf(n);
    uint64_t done = 0;
    while (done < n) {
      const ssize_t got = ::pread(fd_, buf.data() + done, n - done, static_cast<off_t>(offset + done));
      if (got <= 0) bad("cannot read " + std::to_string(n) + " bytes at offset " + std::to_string(offset));
      done += static_cast<uint64_t>(got);
    }
    return buf;
  }
  [[noreturn]] void bad(const std::string& what) const {
    throw Error(ErrorKind::Model, path_ + ": corrupted zip archive: " + what);
  }

 private:
  std::string path_;
  int fd_;
};

}  // namespace

void verify_zip_checksums(const std::string& path, const ZipIndex& index) {
  File f(path);
  std::vector<uint8_t> buf(4 << 20);
  for (const auto& e : index.entries) {
    if (!e.stored) continue;  // deflated code records: LibTorch inflates and parses them
    uLong crc = ::crc32(0L, Z_NULL, 0);
    for (uint64_t done = 0; done < e.size;) {
      const uint64_t n = std::min<uint64_t>(buf.size(), e.size - done);
      const auto chunk = f.read(e.data_offset + done, n);
      crc = ::crc32(crc, chunk.data(), static_cast<uInt>(n));
      done += n;
    }
    if (static_cast<uint32_t>(crc) != e.crc32)
      throw Error(ErrorKind::Model, path + ": record " + e.name + " is corrupted (its CRC-32 does not match)",
                  "the file was damaged after it was written; get a fresh copy");
  }
}

bool is_tensor_record(const std::string& name) {
  return name.rfind("data/", 0) == 0 || name.rfind("constants/", 0) == 0;
}

ZipIndex read_zip_index(const std::string& path) {
  File f(path);
  ZipIndex index;
  index.file_size = f.size();
  const uint64_t tail_len = std::min<uint64_t>(index.file_size, 65536 + 22);
  const auto tail = f.read(index.file_size - tail_len, tail_len);
  // The end-of-central-directory record, searched from the end (a comment may follow it).
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tail_len) - 22; i >= 0; --i)
    if (u32(&tail[i]) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd < 0) f.bad("no end-of-central-directory record (truncated?)");
  uint64_t count = u16(&tail[eocd + 10]);
  uint64_t cd_size = u32(&tail[eocd + 12]);
  uint64_t cd_offset = u32(&tail[eocd + 16]);
  const uint64_t eocd_pos = index.file_size - tail_len + static_cast<uint64_t>(eocd);
  if (count == 0xFFFF || cd_offset == 0xFFFFFFFF || cd_size == 0xFFFFFFFF) {
    // zip64: a locator just before the end record points to the zip64 end record.
    if (eocd_pos < 20) f.bad("zip64 locator missing");
    const auto loc = f.read(eocd_pos - 20, 20);
    if (u32(loc.data()) != 0x07064b50) f.bad("zip64 locator missing");
    const auto rec = f.read(u64(&loc[8]), 56);
    if (u32(rec.data()) != 0x06064b50) f.bad("zip64 end record missing");
    count = u64(&rec[32]);
    cd_size = u64(&rec[40]);
    cd_offset = u64(&rec[48]);
  }
  // Compared by subtraction: 64-bit values from a zip64 record can wrap a sum.
  if (cd_size > index.file_size || cd_offset > index.file_size - cd_size)
    f.bad("central directory beyond the end of the file");
  const auto cd = f.read(cd_offset, cd_size);
  size_t p = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (p + 46 > cd.size() || u32(&cd[p]) != 0x02014b50) f.bad("bad central directory entry");
    const uint16_t method = u16(&cd[p + 10]);
    const uint32_t crc = u32(&cd[p + 16]);
    uint64_t usize = u32(&cd[p + 24]);
    uint64_t csize = u32(&cd[p + 20]);
    const uint16_t name_len = u16(&cd[p + 28]), extra_len = u16(&cd[p + 30]), comment_len = u16(&cd[p + 32]);
    uint64_t local = u32(&cd[p + 42]);
    if (p + 46 + name_len + extra_len + comment_len > cd.size()) f.bad("bad central directory entry");
    std::string name(reinterpret_cast<const char*>(&cd[p + 46]), name_len);
    // zip64 extra field: the 8-byte values replace those stored as 0xFFFFFFFF, in order.
    for (size_t e = p + 46 + name_len; e + 4 <= p + 46 + name_len + extra_len;) {
      const uint16_t id = u16(&cd[e]), len = u16(&cd[e + 2]);
      if (id == 0x0001) {
        size_t q = e + 4;
        if (usize == 0xFFFFFFFF && q + 8 <= e + 4 + len) { usize = u64(&cd[q]); q += 8; }
        if (csize == 0xFFFFFFFF && q + 8 <= e + 4 + len) { csize = u64(&cd[q]); q += 8; }
        if (local == 0xFFFFFFFF && q + 8 <= e + 4 + len) { local = u64(&cd[q]); q += 8; }
      }
      e += 4 + len;
    }
    p += 46 + name_len + extra_len + comment_len;
    if (local > index.file_size || index.file_size - local < 30)
      f.bad("entry " + name + " starts beyond the end of the file");
    const auto lh = f.read(local, 30);
    if (u32(lh.data()) != 0x04034b50) f.bad("entry " + name + " has no local header");
    ZipEntry entry;
    entry.size = usize;
    entry.crc32 = crc;
    entry.stored_size = csize;
    entry.stored = method == 0;
    entry.data_offset = local + 30 + u16(&lh[26]) + u16(&lh[28]);
    if (entry.data_offset > index.file_size || csize > index.file_size - entry.data_offset ||
        (method == 0 && usize != csize))
      f.bad("entry " + name + " ends beyond the end of the file");
    const auto slash = name.find('/');
    if (index.root.empty() && slash != std::string::npos) index.root = name.substr(0, slash);
    entry.name = slash == std::string::npos ? name : name.substr(slash + 1);
    index.entries.push_back(std::move(entry));
  }
  return index;
}

}  // namespace bertq
