#include "archive/zip_index.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <functional>
#include <future>
#include <unordered_map>

#include "base/error.h"
#include "base/fd.h"
#include "base/text.h"

namespace bertq {
namespace {

uint16_t u16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
uint32_t u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint64_t u64(const uint8_t* p) { return uint64_t(u32(p)) | uint64_t(u32(p + 4)) << 32; }

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw Error(ErrorKind::Model, path + ": corrupted zip archive: " + what);
}

// Reads exactly n bytes at offset, or fails naming the file.
void read_at(int fd, const std::string& path, uint64_t offset, void* out, uint64_t n) {
  if (!read_exact_at(fd, offset, out, n))
    bad(path, "cannot read " + std::to_string(n) + " bytes at offset " + std::to_string(offset));
}

std::vector<uint8_t> read_vec(int fd, const std::string& path, uint64_t offset, uint64_t n) {
  std::vector<uint8_t> buf(n);
  read_at(fd, path, offset, buf.data(), n);
  return buf;
}

uint64_t fd_size(int fd) {
  const off_t end = ::lseek(fd, 0, SEEK_END);
  return end < 0 ? 0 : static_cast<uint64_t>(end);
}

[[noreturn]] void damaged(const std::string& path, const ZipEntry& e, const std::string& what) {
  throw Error(ErrorKind::Model, path + ": record " + printable(e.name) + " is corrupted (" + what + ")",
              "the file was damaged after it was written; get a fresh copy");
}

// Streams a record's uncompressed bytes to `sink` in chunks, checking the
// declared size and the CRC-32. Memory stays at two chunk buffers whatever
// the record claims to inflate to.
void stream_record(int fd, const std::string& path, const ZipEntry& e,
                   const std::function<void(const uint8_t*, size_t)>& sink) {
  constexpr size_t kChunk = 1 << 20;
  std::vector<uint8_t> in(std::min<uint64_t>(kChunk, std::max<uint64_t>(e.stored_size, 1)));
  uLong crc = ::crc32(0L, Z_NULL, 0);
  uint64_t produced = 0;
  if (e.stored) {
    for (uint64_t done = 0; done < e.size;) {
      const uint64_t n = std::min<uint64_t>(in.size(), e.size - done);
      read_at(fd, path, e.data_offset + done, in.data(), n);
      crc = ::crc32(crc, in.data(), static_cast<uInt>(n));
      sink(in.data(), n);
      done += n;
    }
    produced = e.size;
  } else {
    z_stream z{};
    if (::inflateInit2(&z, -MAX_WBITS) != Z_OK) throw Error(ErrorKind::Internal, "zlib inflateInit failed");
    std::vector<uint8_t> out(kChunk);
    uint64_t consumed = 0;
    int rc = Z_OK;
    try {
      while (rc != Z_STREAM_END) {
        if (z.avail_in == 0 && consumed < e.stored_size) {
          const uint64_t n = std::min<uint64_t>(in.size(), e.stored_size - consumed);
          read_at(fd, path, e.data_offset + consumed, in.data(), n);
          consumed += n;
          z.next_in = in.data();
          z.avail_in = static_cast<uInt>(n);
        }
        z.next_out = out.data();
        z.avail_out = static_cast<uInt>(out.size());
        rc = ::inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
          if (rc == Z_BUF_ERROR && z.avail_in == 0 && consumed >= e.stored_size)
            damaged(path, e, "its data ends early");
          if (rc != Z_BUF_ERROR) damaged(path, e, "its deflated data is invalid");
        }
        const size_t n = out.size() - z.avail_out;
        produced += n;
        // Stop as soon as it inflates past what the index declares: a zip
        // bomb costs nothing but this chunk.
        if (produced > e.size)
          damaged(path, e, "it inflates to more than the " + std::to_string(e.size) + " bytes it declares");
        crc = ::crc32(crc, out.data(), static_cast<uInt>(n));
        if (n) sink(out.data(), n);
      }
    } catch (...) {
      ::inflateEnd(&z);
      throw;
    }
    ::inflateEnd(&z);
  }
  if (produced != e.size)
    damaged(path, e,
            "it holds " + std::to_string(produced) + " bytes, not the " + std::to_string(e.size) + " it declares");
  if (static_cast<uint32_t>(crc) != e.crc32) damaged(path, e, "its CRC-32 does not match");
}

}  // namespace

std::string fold_case(std::string_view name) {
  // miniz's MZ_TOLOWER: ASCII only.
  std::string out(name);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool starts_with_folded(std::string_view name, std::string_view prefix) {
  return name.size() >= prefix.size() && fold_case(name.substr(0, prefix.size())) == prefix;
}

const ZipEntry* ZipIndex::find(const std::string& name) const {
  // As LibTorch looks records up: without regard to case (read_zip_index
  // made sure one name reaches at most one record).
  auto it = by_folded_name.find(fold_case(name));
  return it == by_folded_name.end() ? nullptr : &entries[it->second];
}

bool is_tensor_record(const std::string& name) {
  return starts_with_folded(name, "data/") || starts_with_folded(name, "constants/");
}

std::string read_zip_record(int fd, const std::string& path, const ZipEntry& e) {
  std::string out;
  out.reserve(e.size);
  stream_record(fd, path, e, [&](const uint8_t* p, size_t n) { out.append(reinterpret_cast<const char*>(p), n); });
  return out;
}

void verify_zip_checksums(int fd, const std::string& path, const ZipIndex& index) {
  const auto& entries = index.entries;
  // The first damaged record of [begin, end), if any, and what it threw.
  const auto check = [&](size_t begin, size_t end) -> std::pair<size_t, std::exception_ptr> {
    for (size_t i = begin; i < end; ++i) {
      try {
        stream_record(fd, path, entries[i], [](const uint8_t*, size_t) {});
      } catch (...) {
        return {i, std::current_exception()};
      }
    }
    return {end, nullptr};
  };
  // Nothing else runs yet (LibTorch reads the file only after this): the
  // CRC-32s of a large model's second half run on another core. pread keeps
  // the two off each other's file offset, and the first damaged record in
  // archive order is the one reported, whichever half found it.
  uint64_t total = 0;
  for (const auto& e : entries) total += e.stored_size;
  size_t split = 0;
  for (uint64_t half = 0; split < entries.size() && 2 * half < total; ++split) half += entries[split].stored_size;
  constexpr uint64_t kWorthAThread = 64 << 20;
  if (total < kWorthAThread || split >= entries.size()) {
    if (auto [i, error] = check(0, entries.size()); error) std::rethrow_exception(error);
    return;
  }
  auto second = std::async(std::launch::async, check, split, entries.size());
  const auto first = check(0, split);
  const auto later = second.get();
  if (first.second) std::rethrow_exception(first.second);
  if (later.second) std::rethrow_exception(later.second);
}

ZipIndex read_zip_index(const std::string& path) {
  const Fd fd = open_fd(path, O_RDONLY);
  if (!fd) throw Error(ErrorKind::Model, "cannot open " + path + ": " + errno_message());
  return read_zip_index(fd.get(), path);
}

ZipIndex read_zip_index(int fd, const std::string& path) {
  ZipIndex index;
  index.file_size = fd_size(fd);
  if (index.file_size < 22) bad(path, "too short for a zip archive");
  const uint64_t tail_len = std::min<uint64_t>(index.file_size, 65536 + 22);
  const auto tail = read_vec(fd, path, index.file_size - tail_len, tail_len);
  // The end-of-central-directory record, searched from the end (a comment may follow it).
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tail_len) - 22; i >= 0; --i)
    if (u32(&tail[i]) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd < 0) bad(path, "no end-of-central-directory record (truncated?)");
  const uint8_t* end = &tail[eocd];
  uint64_t count = u16(end + 10);
  uint64_t on_this_disk = u16(end + 8);
  uint64_t cd_size = u32(end + 12);
  uint64_t cd_offset = u32(end + 16);
  const bool disks = u16(end + 4) != 0 || u16(end + 6) != 0;
  const uint64_t eocd_pos = index.file_size - tail_len + static_cast<uint64_t>(eocd);
  // LibTorch's reader (miniz) takes the zip64 end record whenever a zip64
  // locator sits just before the end record, whatever the classic record
  // says; bertq reads the same one, and refuses a file whose two records
  // describe different central directories (one for bertq's checks, another
  // for LibTorch) or a locator that leads nowhere.
  bool zip64_needed = count == 0xFFFF || on_this_disk == 0xFFFF || cd_offset == 0xFFFFFFFF || cd_size == 0xFFFFFFFF;
  if (eocd_pos >= 20 + 56) {
    const auto loc = read_vec(fd, path, eocd_pos - 20, 20);
    if (u32(loc.data()) == 0x07064b50) {
      const uint64_t rec_pos = u64(&loc[8]);
      if (rec_pos > index.file_size - 56) bad(path, "zip64 end record beyond the end of the file");
      const auto rec = read_vec(fd, path, rec_pos, 56);
      if (u32(rec.data()) != 0x06064b50) bad(path, "its zip64 locator points to no zip64 end record");
      if (u32(&loc[16]) != 1) bad(path, "it spans several disks");
      if (u64(&rec[4]) < 44) bad(path, "its zip64 end record is too short");
      const uint64_t count64 = u64(&rec[32]), disk64 = u64(&rec[24]), size64 = u64(&rec[40]), offset64 = u64(&rec[48]);
      auto agrees = [](uint64_t classic, uint64_t marker, uint64_t wide) {
        return classic == marker || classic == wide;
      };
      if (!agrees(count, 0xFFFF, count64) || !agrees(on_this_disk, 0xFFFF, disk64) ||
          !agrees(cd_size, 0xFFFFFFFF, size64) || !agrees(cd_offset, 0xFFFFFFFF, offset64))
        bad(path, "its zip64 end record and its end record describe different central directories");
      if (u32(&rec[16]) != 0 || u32(&rec[20]) != 0) bad(path, "it spans several disks");
      count = count64;
      on_this_disk = disk64;
      cd_size = size64;
      cd_offset = offset64;
      zip64_needed = false;
    }
  }
  if (zip64_needed) bad(path, "zip64 locator missing");
  if (disks || on_this_disk != count) bad(path, "it spans several disks");
  // Compared by subtraction: 64-bit values from a zip64 record can wrap a sum.
  if (cd_size > index.file_size || cd_offset > index.file_size - cd_size)
    bad(path, "central directory beyond the end of the file");
  // Each entry takes at least 46 bytes: a count beyond that is a lie, and
  // reserving for it would cost memory.
  if (count > cd_size / 46) bad(path, "the central directory cannot hold " + std::to_string(count) + " entries");
  const auto cd = read_vec(fd, path, cd_offset, cd_size);
  index.entries.reserve(count);
  size_t p = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (p + 46 > cd.size() || u32(&cd[p]) != 0x02014b50) bad(path, "bad central directory entry");
    const uint16_t flags = u16(&cd[p + 8]);
    const uint16_t method = u16(&cd[p + 10]);
    const uint32_t crc = u32(&cd[p + 16]);
    uint64_t usize = u32(&cd[p + 24]);
    uint64_t csize = u32(&cd[p + 20]);
    const uint16_t name_len = u16(&cd[p + 28]), extra_len = u16(&cd[p + 30]), comment_len = u16(&cd[p + 32]);
    uint64_t local = u32(&cd[p + 42]);
    if (p + 46 + name_len + extra_len + comment_len > cd.size()) bad(path, "bad central directory entry");
    std::string name(reinterpret_cast<const char*>(&cd[p + 46]), name_len);
    // zip64 extra field: the 8-byte values replace those stored as 0xFFFFFFFF, in order.
    for (size_t e = p + 46 + name_len; e + 4 <= p + 46 + name_len + extra_len;) {
      const uint16_t id = u16(&cd[e]), len = u16(&cd[e + 2]);
      if (id == 0x0001) {
        size_t q = e + 4;
        const size_t end = std::min<size_t>(e + 4 + len, p + 46 + name_len + extra_len);
        if (usize == 0xFFFFFFFF && q + 8 <= end) {
          usize = u64(&cd[q]);
          q += 8;
        }
        if (csize == 0xFFFFFFFF && q + 8 <= end) {
          csize = u64(&cd[q]);
          q += 8;
        }
        if (local == 0xFFFFFFFF && q + 8 <= end) {
          local = u64(&cd[q]);
          q += 8;
        }
      }
      e += 4 + len;
    }
    p += 46 + name_len + extra_len + comment_len;
    const std::string shown = printable(name);
    if (flags & 1) bad(path, "entry " + shown + " is encrypted");
    if (method != 0 && method != 8)
      bad(path, "entry " + shown + " uses compression method " + std::to_string(method) +
                    " (only stored and deflate exist in TorchScript archives)");
    if (local > index.file_size || index.file_size - local < 30)
      bad(path, "entry " + shown + " starts beyond the end of the file");
    const auto lh = read_vec(fd, path, local, 30);
    if (u32(lh.data()) != 0x04034b50) bad(path, "entry " + shown + " has no local header");
    ZipEntry entry;
    entry.size = usize;
    entry.crc32 = crc;
    entry.stored_size = csize;
    entry.stored = method == 0;
    entry.data_offset = local + 30 + u16(&lh[26]) + u16(&lh[28]);
    if (entry.data_offset > index.file_size || csize > index.file_size - entry.data_offset ||
        (method == 0 && usize != csize))
      bad(path, "entry " + shown + " ends beyond the end of the file");
    // LibTorch names the archive's root folder after the first entry and
    // looks every record up as ROOT/NAME: an entry outside that folder is
    // one bertq would check and LibTorch would not read (or the reverse).
    const auto slash = name.find('/');
    if (i == 0) {
      if (slash == std::string::npos || slash == 0)
        bad(path, "its first entry " + shown + " is not in a folder (torch.jit.save puts every record in one)");
      index.root = name.substr(0, slash);
    }
    if (name.compare(0, index.root.size() + 1, index.root + "/") != 0)
      bad(path, "entry " + shown + " is outside the archive's folder " + printable(index.root) +
                    " (torch.jit.save writes every record in one folder)");
    entry.name = name.substr(index.root.size() + 1);
    index.entries.push_back(std::move(entry));
  }
  // LibTorch finds records by name without regard to case and, among equal
  // names, takes whichever its sorted lookup meets: two records that one name
  // can reach are two candidates for what LibTorch reads.
  for (size_t k = 0; k < index.entries.size(); ++k) {
    const ZipEntry& e = index.entries[k];
    auto [it, fresh] = index.by_folded_name.emplace(fold_case(e.name), k);
    if (!fresh) {
      const std::string& other = index.entries[it->second].name;
      bad(path, e.name == other ? "it holds two records named " + printable(e.name)
                                : "it holds records " + printable(other) + " and " + printable(e.name) +
                                      ", which LibTorch's lookup (without regard to case) cannot tell apart");
    }
  }
  return index;
}

}  // namespace bertq
