#include "archive/sha256.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/text.h"

namespace bertq {

struct Sha256::State {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~State() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  if (!state_->ctx || EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) != 1)
    throw Error(ErrorKind::Internal, "OpenSSL could not start a SHA-256 digest");
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, size_t n) {
  if (n && EVP_DigestUpdate(state_->ctx, data, n) != 1)
    throw Error(ErrorKind::Internal, "OpenSSL SHA-256 update failed");
}

std::string Sha256::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(state_->ctx, md, &len) != 1) throw Error(ErrorKind::Internal, "OpenSSL SHA-256 final failed");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string sha256_fd(int fd, const std::string& path) {
  Sha256 h;
  std::vector<unsigned char> buf(1 << 20);
  for (uint64_t offset = 0;;) {
    const ssize_t n = read_at(fd, offset, buf.data(), buf.size());
    if (n < 0) throw Error(ErrorKind::Io, "cannot read " + path + ": " + errno_message());
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return h.hex_digest();
}

std::string sha256_file(const std::string& path) {
  const Fd fd = open_fd(path, O_RDONLY);
  if (!fd) throw Error(ErrorKind::Io, "cannot read " + path + ": " + errno_message());
  return sha256_fd(fd.get(), path);
}

}  // namespace bertq
