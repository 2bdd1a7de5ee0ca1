// The JSON renderer (docs/report.md's schema).
#include <cmath>
#include <nlohmann/json.hpp>
#include <ostream>

#include "base/json_io.h"
#include "report/report.h"

namespace bertq {
namespace {

using json = nlohmann::ordered_json;

json breakdown_json(const SizeBreakdown& b) {
  return json{{"modules", b.modules},
              {"other_tensors", b.other_tensors},
              {"code_and_metadata", b.code_and_metadata},
              {"zip_overhead", b.zip_overhead},
              {"total", b.total}};
}

json number_or_null(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return nullptr;
  return *v;
}

// Zero points are integers, except per-row float offsets (float qparams).
json zero_points_json(const ModuleReport& m) {
  if (m.qscheme == "per_channel_affine_float_qparams") return m.zero_points;
  json out = json::array();
  for (double z : m.zero_points) out.push_back(static_cast<int64_t>(std::llround(z)));
  return out;
}

}  // namespace

void print_json(const Report& r, std::ostream& out) {
  json j;
  j["schema"] = "bertq-report/2";
  j["bertq_version"] = r.bertq_version;
  j["libtorch_version"] = r.libtorch_version;
  j["libtorch_package"] = r.libtorch_package.empty() ? json() : json(r.libtorch_package);
  j["engine"] = r.engine;
  j["mode"] = r.mode_text();
  j["dry_run"] = r.dry_run;
  j["created"] = r.created;
  j["command_line"] = r.command_line;
  j["input"] = {{"path", r.input.path},
                {"sha256", r.input.sha256},
                {"bytes", r.input.bytes},
                {"mb", static_cast<double>(r.input.bytes) / 1e6}};
  j["output"] = {{"path", r.output.path},
                 {"sha256", r.output.sha256.empty() ? json() : json(r.output.sha256)},
                 {"bytes", r.output.bytes},
                 {"mb", static_cast<double>(r.output.bytes) / 1e6},
                 {"written", !r.dry_run}};
  j["compression_ratio"] =
      r.input.bytes ? static_cast<double>(r.output.bytes) / static_cast<double>(r.input.bytes) : 0.0;
  // The qconfig as given, keys in the file's order (parsed in linear time).
  json given = nullptr;
  if (!r.qconfig_text.empty()) {
    try {
      given = parse_json_ordered(r.qconfig_text, "qconfig", ErrorKind::Config, 64);
    } catch (const Error&) {
    }
  }
  j["qconfig"] = {{"given", given}, {"resolved", r.mode == ConvertMode::ConvertPrepared ? json() : to_json(r.qconfig)}};
  j["options"] = result_key(r.options, j["qconfig"]["resolved"]);
  j["summary"] = {{"modules", r.modules.size()},
                  {"quantized", r.quantized_count()},
                  {"float", r.skipped_count()},
                  {"quantized_in_output", r.quantized_in_output},
                  {"quantized_weight_fraction", r.quantized_weight_fraction()}};
  json guards = json::array();
  for (const auto& g : r.guards) guards.push_back({{"name", g.name}, {"passed", g.passed}, {"message", g.message}});
  j["guards"] = guards;
  j["sizes"] = {{"input", breakdown_json(r.input_sizes)}, {"output", breakdown_json(r.output_sizes)}};
  json modules = json::array();
  for (const auto& m : r.modules) {
    json mj;
    mj["path"] = m.plan.path;
    mj["type"] = m.plan.type_name;
    mj["functional"] = m.plan.functional;
    mj["state"] = m.plan.quantized ? "quantized" : "float";
    mj["op"] = m.plan.quantized ? json(m.plan.op) : json();
    mj["float_reason"] = m.plan.quantized ? json() : json(m.plan.float_reason);
    mj["rule"] = to_json(m.plan.rule);
    mj["calls"] = m.plan.calls;
    mj["calls_in_loops"] = m.plan.calls_in_loops;
    mj["weight_shape"] = m.plan.weight_shape;
    mj["bias_shape"] = m.bias_shape.empty() ? json() : json(m.bias_shape);
    mj["dtype"] = m.dtype;
    mj["qscheme"] = m.qscheme.empty() ? json() : json(m.qscheme);
    mj["observer_qscheme"] =
        m.plan.qconfig && m.plan.quantized ? json(to_string(m.plan.qconfig->weight.qscheme)) : json();
    mj["axis"] = m.axis ? json(*m.axis) : json();
    mj["scales"] = m.scales;
    mj["zero_points"] = zero_points_json(m);
    mj["bytes_before"] = m.bytes_before;
    mj["bytes_after"] = m.bytes_after;
    mj["bytes_shared"] = m.bytes_shared;
    mj["max_abs_error"] = number_or_null(m.max_abs_error);
    mj["sqnr_db"] = number_or_null(m.sqnr_db);
    mj["packed_attr"] = m.packed_attr.empty() ? json() : json(m.packed_attr);
    mj["extra_packed_attrs"] = m.extra_packed_attrs;
    mj["activation_bits"] = m.activation_bits ? json(*m.activation_bits) : json();
    mj["fused_rows"] = m.fused_rows ? json{m.fused_rows->first, m.fused_rows->second} : json();
    modules.push_back(mj);
  }
  j["modules"] = modules;
  j["warnings"] = r.warnings;
  j["notes"] = r.notes;
  json fusions = json::array();
  for (const auto& g : r.fusions)
    fusions.push_back({{"packed_attr", g.packed_attr}, {"modules", g.modules}, {"rows", g.rows}});
  j["fusions"] = fusions;
  out << j.dump(2) << "\n";
}

}  // namespace bertq
