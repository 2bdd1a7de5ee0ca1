#include "report/diff_result.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <ostream>

#include "base/text.h"

namespace bertq {

namespace {

std::string line_of(const ModuleDiff& d, const DiffResult& r) {
  if (d.what == "only in A") return d.module + ": quantized only in " + r.path_a;
  if (d.what == "only in B") return d.module + ": quantized only in " + r.path_b;
  if (d.total > 0)
    return fmt::format("{}: {} differ in {} of {} values (max abs difference {:.6g})", d.module, d.what, d.differing,
                       d.total, d.max_abs_difference);
  if (!d.a.empty() || !d.b.empty()) return d.module + ": " + d.what + " " + d.a + " vs " + d.b;
  return d.module + ": " + d.what + " differ";
}

}  // namespace

void print_diff(const DiffResult& r, std::ostream& out) {
  if (r.identical()) {
    out << "identical: " << r.compared << " quantized modules compared by " << r.matched_by << " ("
        << printable_line(r.path_a) << ", " << printable_line(r.path_b) << ")\n";
    return;
  }
  for (const auto& d : r.differences) out << line_of(d, r) << "\n";
  out << "differ: " << r.differences.size() << " difference" << (r.differences.size() == 1 ? "" : "s") << " in "
      << r.compared << " modules compared by " << r.matched_by << "\n";
}

void print_diff_json(const DiffResult& r, std::ostream& out) {
  nlohmann::ordered_json j;
  j["schema"] = "bertq-diff/1";
  j["a"] = r.path_a;
  j["b"] = r.path_b;
  j["identical"] = r.identical();
  j["matched_by"] = r.matched_by;
  j["compared"] = r.compared;
  auto diffs = nlohmann::ordered_json::array();
  for (const auto& d : r.differences) {
    nlohmann::ordered_json e;
    e["module"] = d.module;
    e["what"] = d.what;
    if (!d.a.empty() || !d.b.empty()) {
      e["a"] = d.a;
      e["b"] = d.b;
    }
    if (d.total > 0) {
      e["differing"] = d.differing;
      e["total"] = d.total;
      e["max_abs_difference"] = d.max_abs_difference;
    }
    e["text"] = line_of(d, r);
    diffs.push_back(e);
  }
  j["differences"] = diffs;
  out << j.dump(2) << "\n";
}

}  // namespace bertq
