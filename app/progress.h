// A one-line progress bar on stderr, drawn only when stderr is a terminal
// (CI logs get no carriage-return noise).
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

#include "base/text.h"

namespace bertq::app {

class ProgressBar {
 public:
  ProgressBar() : enabled_(::isatty(STDERR_FILENO) == 1) {}
  ~ProgressBar() { finish(); }
  void update(int done, int total, const std::string& label) {
    if (!enabled_ || total <= 0) return;
    const int width = 30, filled = done * width / total;
    // The label is a path or a module name: escaped like every other text.
    std::fprintf(stderr, "\r[%s%s] %d/%d %s\x1b[K", std::string(filled, '#').c_str(),
                 std::string(width - filled, ' ').c_str(), done, total, printable(label).c_str());
    std::fflush(stderr);
    drawn_ = true;
  }
  void finish() {
    if (drawn_) std::fprintf(stderr, "\r\x1b[K");
    drawn_ = false;
  }

 private:
  bool enabled_;
  bool drawn_ = false;
};

}  // namespace bertq::app
