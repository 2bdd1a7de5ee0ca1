#include "report/report.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>

#include "base/enum_names.h"
#include "base/error.h"

namespace bertq {

using json = nlohmann::ordered_json;

std::string to_string(ConvertMode mode, bool debug) {
  static const EnumNames<ConvertMode> names{{ConvertMode::Quantize, "quantize"},
                                            {ConvertMode::Prepare, "prepare"},
                                            {ConvertMode::ConvertPrepared, "convert prepared"}};
  return debug ? names.name(mode) + " (debug)" : names.name(mode);
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

std::string manifest_json(const Report& r) {
  json j;
  j["schema"] = "bertq-manifest/2";
  j["bertq_version"] = r.bertq_version;
  j["libtorch_version"] = r.libtorch_version;
  j["libtorch_package"] = r.libtorch_package;
  j["engine"] = r.engine;
  j["mode"] = to_string(r.mode, r.debug);  // a dry run's copy records what convert would write
  j["input_sha256"] = r.input.sha256;
  j["options"] = result_key(r.options, r.mode == ConvertMode::ConvertPrepared ? json() : to_json(r.qconfig));
  j["max_positions"] = r.max_positions ? json(*r.max_positions) : json();
  json modules = json::array();
  for (const auto& m : r.modules) {
    modules.push_back({{"path", m.plan.path},
                       {"type", m.plan.type_name},
                       {"functional", m.plan.functional},
                       {"quantized", m.plan.quantized},
                       {"op", m.plan.op},
                       {"rule", to_json(m.plan.rule)},
                       {"float_reason", m.plan.float_reason},
                       {"packed_attr", m.packed_attr},
                       {"weight_shape", m.plan.weight_shape}});
    if (m.fused_rows) modules.back()["fused_rows"] = {m.fused_rows->first, m.fused_rows->second};
  }
  j["modules"] = modules;
  return j.dump(1);
}

std::string guard_check_text(const std::string& name) {
  if (name == "nothing quantized") return "at least one weight is quantized";
  const std::string require = "require_quantized ", fraction = "min_quantized_fraction ";
  if (name.rfind(require, 0) == 0) return "every Linear matching " + name.substr(require.size()) + " is quantized";
  if (name.rfind(fraction, 0) == 0)
    return "at least " + name.substr(fraction.size()) + " of the weight elements are quantized";
  return name;
}

}  // namespace bertq
