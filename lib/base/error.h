// bertq's single error type. The library throws it; only app/ turns it into an exit code.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

#include "base/text.h"

namespace bertq {

// What kind of failure this is decides the exit code in app/ (see docs/cli.md).
enum class ErrorKind {
  Usage,        // bad command line: conflicting flags, out == in, ...
  Config,       // the qconfig is malformed, contradictory or names no module
  Model,        // the input file is not a usable TorchScript model
  Io,           // the output could not be written
  Unsupported,  // the conversion would give a model that cannot run here
  Coverage,     // a --require-quantized / --min-quantized-fraction guard failed
  Tolerance,    // `bertq tune`: no quantized choice meets the tolerance
  Internal,     // bertq or LibTorch failed in a way the user cannot fix
};

// "usage", "config", ...: how batch results and JSON name a kind.
std::string to_string(ErrorKind kind);
std::optional<ErrorKind> error_kind_from_name(const std::string& name);

// Messages and hints hold values from the user's input (paths, keys, file
// contents): the constructor escapes control characters (a newline too: a
// path must not forge another line of output) and invalid UTF-8
// (printable_line), so a message can neither drive the terminal nor be cut
// short by a NUL byte.
class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message, const std::string& hint = {})
      : std::runtime_error(clipped(printable_line(message))), kind_(kind), hint_(clipped(printable_line(hint))) {}
  ErrorKind kind() const { return kind_; }
  // An optional second line telling the user what to do next.
  const std::string& hint() const { return hint_; }

 private:
  // A safety net for values that reached a message unquoted: no message is
  // longer than a screenful. The middle goes: a message ends with its reason
  // ("...: File name too long"), which a long path before it must not push out.
  static std::string clipped(std::string s) {
    constexpr size_t kMax = 4096, kKeep = 1800;
    if (s.size() <= kMax) return s;
    auto boundary = [&](size_t i) {  // back to the start of a UTF-8 character
      while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) --i;
      return i;
    };
    const size_t head = boundary(kKeep), tail = boundary(s.size() - kKeep);
    return s.substr(0, head) + " ... (" + std::to_string(tail - head) + " bytes cut) ... " + s.substr(tail);
  }
  ErrorKind kind_;
  std::string hint_;
};

}  // namespace bertq
