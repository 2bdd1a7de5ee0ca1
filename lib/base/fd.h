// A file descriptor that closes itself, and reads that survive interrupted
// and short reads. Every open file in bertq is held by an Fd.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace bertq {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  // The descriptor, which the caller now closes.
  int release();
  // Closes now: 0, or close()'s errno, which a file just written must check
  // (NFS and full disks report lost writes there).
  int close();

 private:
  int fd_ = -1;
};

// open(2) with O_CLOEXEC added; an empty Fd with errno set on failure.
Fd open_fd(const std::string& path, int flags, mode_t mode = 0);

// Up to `n` bytes at `offset`, fewer only at the end of the file: retries
// interrupted and short reads. Returns the count, or -1 with errno set.
ssize_t read_at(int fd, uint64_t offset, void* buf, size_t n);

// Exactly `n` bytes at `offset`: false at the end of the file or on an error
// (errno says which: 0 for the end).
bool read_exact_at(int fd, uint64_t offset, void* buf, size_t n);

}  // namespace bertq
