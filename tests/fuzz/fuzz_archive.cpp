// libFuzzer target for the checks bertq runs on a model file before LibTorch
// loads it: read_zip_index (lib/archive/zip_index.cpp) and ArchiveFile
// (lib/archive/archive_file.cpp: CRC-32s, inflating, the pickle scan, the
// code checks). Needs no LibTorch.
//
// Both must either succeed or throw bertq::Error: any other exception
// (c10::Error escaping, std::bad_alloc, std::length_error, ...), a crash, an
// ASan report or a UBSan report is a finding.
//
// The functions take a path, so each input is written to one temporary file
// created once per process under /tmp (or $TMPDIR) and removed at exit.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "archive/archive_file.h"
#include "archive/zip_index.h"
#include "base/error.h"

namespace {

std::string g_path;
int g_fd = -1;

void remove_temp_file() {
  if (g_fd >= 0) ::close(g_fd);
  if (!g_path.empty()) ::unlink(g_path.c_str());
}

void write_input(const uint8_t* data, size_t size) {
  if (::ftruncate(g_fd, 0) != 0 || ::lseek(g_fd, 0, SEEK_SET) != 0) {
    std::perror("fuzz_archive: truncating the temporary file");
    std::abort();
  }
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(g_fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::perror("fuzz_archive: writing the temporary file");
      std::abort();
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/bertq-fuzz-archive-XXXXXX";
  g_fd = ::mkstemp(templ.data());
  if (g_fd < 0) {
    std::perror("fuzz_archive: mkstemp");
    std::abort();
  }
  g_path = templ;
  std::atexit(remove_temp_file);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  write_input(data, size);
  try {
    const bertq::ZipIndex index = bertq::read_zip_index(g_path);
    // Entries the index accepted must lie inside the file (callers read them in place).
    for (const auto& e : index.entries)
      if (e.data_offset > index.file_size || e.stored_size > index.file_size - e.data_offset) __builtin_trap();
  } catch (const bertq::Error&) {
  }
  try {
    const bertq::ArchiveFile file(g_path);
  } catch (const bertq::Error&) {
  }
  return 0;
}
