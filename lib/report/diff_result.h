// What `bertq diff` found, as data: rendered as text or JSON by the
// functions below, so CI can read it either way.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace bertq {

// One difference in one module (or one module present on one side only).
struct ModuleDiff {
  std::string module;                // module name, or packed-params attribute without manifests
  std::string what;                  // "only in A", "only in B", "op", "qscheme", "shape", "scales", "zero points",
                                     // "integer weights", "bias"
  std::string a, b;                  // the two values, where they are short ("qint8 per_channel_affine")
  int64_t differing = 0, total = 0;  // for element-wise comparisons
  double max_abs_difference = 0;
};

struct DiffResult {
  std::string path_a, path_b;
  // How modules were paired: "module names" (both have bertq manifests or
  // module structure) or "packed-params attributes".
  std::string matched_by;
  size_t compared = 0;  // modules present in both
  std::vector<ModuleDiff> differences;
  bool identical() const { return differences.empty(); }
};

void print_diff(const DiffResult& result, std::ostream& out);
void print_diff_json(const DiffResult& result, std::ostream& out);

}  // namespace bertq
