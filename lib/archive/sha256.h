// SHA-256 for reports and provenance, from OpenSSL's libcrypto (EVP picks
// the CPU's SHA instructions where it has them).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace bertq {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  std::string hex_digest();  // finishes; call once

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Hex SHA-256 of what an open file descriptor holds, read with pread (the
// file offset is not moved). Throws Error(Io) if it cannot be read.
std::string sha256_fd(int fd, const std::string& path_for_messages);

// Hex SHA-256 of a file's contents; throws Error(Io) if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace bertq
