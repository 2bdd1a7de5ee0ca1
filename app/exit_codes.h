// Process exit codes, documented in docs/cli.md. Only app/ chooses them.
#pragma once

#include "base/error.h"

namespace bertq::app {

enum ExitCode : int {
  kOk = 0,
  kInternal = 1,     // a bug in bertq or LibTorch
  kUsage = 2,        // bad command line
  kConfig = 3,       // bad qconfig
  kModel = 4,        // the input is not a usable TorchScript model
  kIo = 5,           // the output could not be written
  kUnsupported = 6,  // the result could not run here (missing kernels)
  kCoverage = 7,     // a CI guard failed (coverage, --max-disagreement)
  kDiffer = 8,       // `bertq diff`: the models differ
  kBatchFailed = 9,  // `bertq batch`: at least one job failed
  kTolerance = 10,   // `bertq tune`: only the float model meets the tolerance
  // 130: interrupted (SIGINT/SIGTERM), as shells report it
};

inline int exit_code_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Usage:
      return kUsage;
    case ErrorKind::Config:
      return kConfig;
    case ErrorKind::Model:
      return kModel;
    case ErrorKind::Io:
      return kIo;
    case ErrorKind::Unsupported:
      return kUnsupported;
    case ErrorKind::Coverage:
      return kCoverage;
    case ErrorKind::Tolerance:
      return kTolerance;
    case ErrorKind::Internal:
      return kInternal;
  }
  return kInternal;
}

}  // namespace bertq::app
