#include "base/fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace bertq {

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.release();
  }
  return *this;
}

Fd::~Fd() { close(); }

int Fd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

int Fd::close() {
  if (fd_ < 0) return 0;
  // Linux frees the descriptor even when close fails (EINTR included): never retry.
  const int rc = ::close(fd_);
  fd_ = -1;
  return rc == 0 ? 0 : errno;
}

Fd open_fd(const std::string& path, int flags, mode_t mode) {
  return Fd(::open(path.c_str(), flags | O_CLOEXEC, mode));
}

ssize_t read_at(int fd, uint64_t offset, void* buf, size_t n) {
  size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return -1;
    if (got == 0) break;  // the end of the file
    done += static_cast<size_t>(got);
  }
  return static_cast<ssize_t>(done);
}

bool read_exact_at(int fd, uint64_t offset, void* buf, size_t n) {
  const ssize_t got = read_at(fd, offset, buf, n);
  if (got < 0) return false;
  if (static_cast<size_t>(got) < n) {
    errno = 0;
    return false;
  }
  return true;
}

}  // namespace bertq
