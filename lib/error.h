// bertq's single error type. The library throws it; only app/ turns it into an exit code.
#pragma once

#include <stdexcept>
#include <string>

namespace bertq {

// What kind of failure this is decides the exit code in app/ (see docs/cli.md).
enum class ErrorKind {
  Usage,     // bad command line: conflicting flags, out == in, ...
  Config,    // the qconfig is malformed, contradictory or names no module
  Model,     // the input file is not a usable TorchScript model
  Io,        // the output could not be written
  Unsupported,  // the conversion would give a model that cannot run here
  Coverage,  // a --require-quantized / --min-quantized-fraction guard failed
  Internal,  // bertq or LibTorch failed in a way the user cannot fix
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string message, std::string hint = {})
      : std::runtime_error(std::move(message)), kind_(kind), hint_(std::move(hint)) {}
  ErrorKind kind() const { return kind_; }
  // An optional second line telling the user what to do next.
  const std::string& hint() const { return hint_; }

 private:
  ErrorKind kind_;
  std::string hint_;
};

}  // namespace bertq
