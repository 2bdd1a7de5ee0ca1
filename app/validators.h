// Checks of numeric flags that CLI11's own validators let through: CLI11
// reads "" as 0 and its Range passes NaN, so `--tolerance ""` would mean 0
// and `--max-disagreement nan` a gate that never fails.
#pragma once

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

#include "base/text.h"

namespace bertq::app {

// A number given in full ("0.5", "1e-3"), and finite.
inline CLI::Validator finite_number() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE)
          return "expected a number, got " + quoted_value(s, 40);
        if (!std::isfinite(v)) return "expected a finite number, got " + quoted_value(s, 40);
        return "";
      },
      "NUMBER");
}

}  // namespace bertq::app
