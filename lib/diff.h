// `bertq diff A B`: compares two quantized models module by module.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace bertq {

struct DiffResult {
  size_t compared = 0;  // modules present in both
  std::vector<std::string> differences;  // one line each, empty when identical
  bool identical() const { return differences.empty(); }
};

// Compares the quantized weights of two final or debug models: the set of
// quantized modules, and per module op, dtype, qscheme, axis, scales, zero
// points, integer weights and bias. Module names come from bertq's manifest;
// without one, final models are compared by packed-params attribute.
DiffResult diff_models(const std::string& a, const std::string& b);

void print_diff(const DiffResult& result, const std::string& a, const std::string& b, std::ostream& out);

}  // namespace bertq
