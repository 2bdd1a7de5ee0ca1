#include "report/report.h"

#include <algorithm>
#include <string>

#include "base/error.h"

namespace bertq {

std::string to_string(ConvertMode mode, bool debug) {
  std::string s;
  switch (mode) {
    case ConvertMode::Quantize:
      s = "quantize";
      break;
    case ConvertMode::Prepare:
      s = "prepare";
      break;
    case ConvertMode::ConvertPrepared:
      s = "convert prepared";
      break;
  }
  return debug ? s + " (debug)" : s;
}

std::string Report::mode_text() const { return dry_run ? "dry run" : to_string(mode, debug); }

std::vector<ModuleReport> module_reports(const Plan& plan) {
  std::vector<ModuleReport> out;
  for (const auto& mp : plan.modules) {
    ModuleReport r;
    r.plan = mp;
    out.push_back(std::move(r));
  }
  return out;
}

size_t Report::quantized_count() const {
  return static_cast<size_t>(
      std::count_if(modules.begin(), modules.end(), [](const ModuleReport& m) { return m.plan.quantized; }));
}

size_t Report::skipped_count() const { return modules.size() - quantized_count(); }

double Report::quantized_weight_fraction() const {
  double all = 0, quantized = 0;
  for (const auto& m : modules) {
    int64_t numel = 1;
    for (auto d : m.plan.weight_shape) numel *= d;
    all += static_cast<double>(numel);
    if (m.plan.quantized) quantized += static_cast<double>(numel);
  }
  return all == 0 ? 0.0 : quantized / all;
}

void check_totals(const Report& r) {
  auto check = [&](const SizeBreakdown& b, const char* which, bool has_modules) {
    if (b.total == 0) return;  // not measured (nothing written)
    const uint64_t sum = b.modules + b.other_tensors + b.code_and_metadata + b.zip_overhead;
    if (b.zip_overhead > b.total)
      throw Error(ErrorKind::Internal,
                  std::string("size accounting: the ") + which + " records are larger than the file");
    if (sum != b.total)
      throw Error(ErrorKind::Internal, std::string("size accounting: the ") + which + " parts add up to " +
                                           std::to_string(sum) + " bytes, not the file's " + std::to_string(b.total));
    if (!has_modules) return;
    uint64_t per_module = 0;
    for (const auto& m : r.modules) per_module += std::string(which) == "input" ? m.bytes_before : m.bytes_after;
    if (per_module != b.modules)
      throw Error(ErrorKind::Internal, std::string("size accounting: the ") + which + " modules add up to " +
                                           std::to_string(per_module) + " bytes, not " + std::to_string(b.modules));
  };
  check(r.input_sizes, "input", true);
  check(r.output_sizes, "output", true);
}

}  // namespace bertq
