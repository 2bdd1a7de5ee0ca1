#include "inspect/inspect.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/script.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <ostream>

#include "archive/manifest.h"
#include "base/error.h"
#include "base/text.h"
#include "convert/measure.h"
#include "convert/observers.h"
#include "convert/planner.h"
#include "convert/quantize.h"
#include "jit/model_file.h"

namespace bertq {
namespace {

using json = nlohmann::ordered_json;

std::string fmt4(double v) { return fmt::format("{:.4f}", v); }

// A summarized preview in the style of Python's print(tensor): three
// leading and trailing items per dimension, "..." between.
std::string preview(const at::Tensor& t) {
  const at::Tensor v = t.to(at::kDouble).contiguous();
  auto items = [](int64_t n) {
    std::vector<int64_t> idx;
    if (n <= 6) {
      for (int64_t i = 0; i < n; ++i) idx.push_back(i);
    } else {
      for (int64_t i : {int64_t(0), int64_t(1), int64_t(2), int64_t(-1), n - 3, n - 2, n - 1}) idx.push_back(i);
    }
    return idx;  // -1 marks "..."
  };
  auto row_text = [&](const at::Tensor& row) {
    std::string s = "[";
    bool first = true;
    for (int64_t i : items(row.size(0))) {
      if (!first) s += ", ";
      first = false;
      if (i < 0) {
        s += "...";
        continue;
      }
      const std::string num = fmt4(row[i].item<double>());
      s += std::string(num[0] == '-' ? "" : " ") + num;
    }
    return s + "]";
  };
  if (v.dim() == 0) return "tensor(" + fmt4(v.item<double>()) + ")";
  if (v.dim() == 1) return "tensor(" + row_text(v) + ")";
  const at::Tensor m = v.reshape({v.size(0), -1});
  std::string s = "tensor([";
  bool first = true;
  for (int64_t i : items(m.size(0))) {
    if (!first) s += ",\n        ";
    first = false;
    s += i < 0 ? "..." : row_text(m[i]);
  }
  return s + "])";
}

TensorSummary summarize(const at::Tensor& t, bool keep_values) {
  TensorSummary s;
  s.shape = t.sizes().vec();
  s.dtype = dtype_name(t.scalar_type());
  const at::Tensor d = (t.is_quantized() ? t.dequantize() : t).to(at::kDouble);
  if (d.numel() > 0) {
    s.min = d.min().item<double>();
    s.max = d.max().item<double>();
    s.mean = d.mean().item<double>();
    s.std = d.numel() > 1 ? d.std().item<double>() : 0.0;
  }
  s.preview = preview(d);
  if (keep_values) {
    const at::Tensor flat = d.contiguous().view({-1});
    s.values.assign(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
  }
  return s;
}

void fill_quantized(ModuleDetail& d, const at::Tensor& q) {
  QParams p = qparams_of(q);
  d.axis = p.axis;
  d.scales = std::move(p.scales);
  d.zero_points = std::move(p.zero_points);
  if (d.qscheme.empty()) d.qscheme = c10::toString(q.qscheme());
  d.weight = summarize(q, false);
  d.weight.dtype = dtype_name(q.scalar_type());
  at::Tensor ints = q.int_repr();
  // 4-bit rows: int_repr gives the packed bytes, two values to a byte.
  if (q.scalar_type() == at::kQUInt4x2) ints = at::cat({at::bitwise_and(ints, 15), at::bitwise_right_shift(ints, 4)});
  d.int_min = ints.numel() ? ints.min().item<int64_t>() : 0;
  d.int_max = ints.numel() ? ints.max().item<int64_t>() : 0;
}

}  // namespace

namespace {

std::string qscheme_name(const at::Tensor& q) { return c10::toString(q.qscheme()); }

}  // namespace

std::string resolve_module_path(const std::string& query, const std::vector<std::string>& paths,
                                const std::string& model_path) {
  std::vector<std::string> matches;
  for (const auto& p : paths) {
    if (p == query) return p;
    if (p.size() > query.size() && p.compare(p.size() - query.size(), query.size(), query) == 0 &&
        p[p.size() - query.size() - 1] == '.')
      matches.push_back(p);
  }
  if (matches.size() == 1) return matches[0];
  if (matches.size() > 1)
    throw Error(ErrorKind::Usage,
                "module \"" + query + "\" is ambiguous in " + model_path + ": it matches " + join(matches, ", "),
                "give more of the name");
  std::vector<std::string> near;
  for (const auto& n : nearest(query, paths, 5)) near.push_back(n.empty() ? "<root>" : n);
  throw Error(ErrorKind::Usage, "no module \"" + query + "\" in " + model_path,
              "closest modules: " + join(near, ", ") + "; run `bertq inspect " + model_path + "` to list them");
}

Inspection inspect_model(const InspectOptions& o) {
  Inspection ins;
  ins.path = o.path;
  std::string manifest_text;
  torch::jit::Module m = load_model(o.path, kManifestName, &manifest_text);
  const auto manifest = parse_manifest(manifest_text, o.path);
  ins.kind = model_kind(m);
  std::map<std::string, const ManifestModule*> from_manifest;
  if (manifest) {
    ins.has_manifest = true;
    ins.bertq_version = manifest->bertq_version;
    ins.libtorch_version = manifest->libtorch_version;
    ins.engine = manifest->engine;
    ins.input_sha256 = manifest->input_sha256;
    ins.mode = manifest->mode;
    for (const auto& mm : manifest->modules) from_manifest[mm.path] = &mm;
  }

  std::map<std::string, torch::jit::Module> by_path;
  if (ins.kind == ModelKind::Final) {
    // Frozen: the module structure is gone; the manifest remembers it.
    if (manifest) {
      for (const auto& mm : manifest->modules)
        ins.modules.push_back({mm.path, mm.type_name,
                               mm.quantized ? mm.op + (mm.fused_rows ? " (fused)" : "") : "float",
                               manifest->schema >= 2 ? mm.rule.describe() : "",
                               manifest->schema >= 2 ? std::optional<Rule>(mm.rule) : std::nullopt, mm.float_reason,
                               mm.packed_attr, mm.fused_rows});
    } else {
      for (const auto& attr : packed_weight_attrs(m)) {
        const bool rows = !is_packed_linear(*packed_value(m, attr));
        ins.modules.push_back({attr, rows ? "EmbeddingPackedParamsBase" : "LinearPackedParamsBase",
                               rows ? "embedding rows" : "linear_dynamic", "", std::nullopt, "", attr, std::nullopt});
      }
    }
  } else {
    for (const auto& child : m.named_modules()) {
      const auto type = child.value.type()->name()->qualifiedName();
      if (is_observer_type_name(type) || !own_weight_shape(child.value)) continue;
      InspectedModule im{child.name, short_type_name(type), "float", "", std::nullopt, "", "", std::nullopt};
      if (auto it = from_manifest.find(child.name); it != from_manifest.end()) {
        if (manifest->schema >= 2) {
          im.rule = it->second->rule.describe();
          im.rule_data = it->second->rule;
        }
        im.float_reason = it->second->float_reason;
      }
      if (ins.kind == ModelKind::Debug) {
        if (auto q = find_debug_qparams(child.value)) im.state = "quantized (debug): " + dtype_name(q->dtype);
      } else if (ins.kind == ModelKind::Prepared) {
        if (auto it = from_manifest.find(child.name); it != from_manifest.end() && it->second->quantized)
          im.state = "observed: " + it->second->op;
      }
      by_path.emplace(child.name, child.value);
      ins.modules.push_back(im);
    }
  }

  if (o.module) {
    std::vector<std::string> paths;
    for (const auto& im : ins.modules) paths.push_back(im.path);
    const std::string path = resolve_module_path(*o.module, paths, o.path);
    ModuleDetail d;
    for (const auto& im : ins.modules)
      if (im.path == path) d.module = im;
    if (ins.kind == ModelKind::Final && !d.module.packed_attr.empty()) {
      d.source = "packed params " + d.module.packed_attr;
      if (const auto& rows = d.module.fused_rows) {
        std::vector<std::string> siblings;
        for (const auto& im : ins.modules)
          if (im.packed_attr == d.module.packed_attr && im.path != path) siblings.push_back(im.path);
        d.source += fmt::format(", rows {} to {} (fused by --fuse-qkv with {})", rows->first, rows->second,
                                join(siblings, ", "));
      }
      auto [q, bias] = unpack_module(m, o.path, path, d.module.packed_attr, d.module.fused_rows);
      fill_quantized(d, q);
      for (const LinearCall& call : linear_dynamic_calls(m))
        if (call.packed == d.module.packed_attr) {
          const auto full = full_range_linears(m);
          d.activation_bits = std::find(full.begin(), full.end(), call.packed) != full.end() ? 8 : 7;
          break;
        }
      if (bias) d.bias = summarize(*bias, true);
    } else if (ins.kind == ModelKind::Final) {
      d.source = "not stored: frozen into the graph as a float constant";
    } else {
      const torch::jit::Module& mod = by_path.at(path);
      const at::Tensor w = mod.attr(own_weight_name(mod).value_or("weight")).toTensor();
      if (mod.hasattr("bias") && mod.attr("bias").isTensor()) d.bias = summarize(mod.attr("bias").toTensor(), true);
      if (auto q = find_debug_qparams(mod)) {
        d.source = "debug attributes (float weight quantized with the stored scales)";
        const at::Tensor qw = quantize_with(w, *q);
        d.qscheme = qscheme_name(qw);
        fill_quantized(d, qw);
      } else {
        d.source = "float weight";
        d.weight = summarize(w, false);
      }
    }
    ins.detail = d;
  }

  if (o.graph) {
    if (o.module && ins.kind != ModelKind::Final)
      ins.graph = by_path.at(ins.detail->module.path).get_method("forward").graph()->toString();
    else
      ins.graph = m.get_method("forward").graph()->toString();
  }
  return ins;
}

void print_inspection(const Inspection& ins, std::ostream& out) {
  if (!ins.graph.empty() && !ins.detail) {
    out << ins.graph;
    return;
  }
  out << printable_line(ins.path) << ": " << to_string(ins.kind) << " model";
  if (ins.has_manifest)
    out << ", written by bertq " << ins.bertq_version << ", LibTorch " << ins.libtorch_version << " (" << ins.mode
        << ", engine " << ins.engine << ", input sha256 " << ins.input_sha256.substr(0, 12) << ")";
  out << "\n";
  if (ins.detail) {
    const ModuleDetail& d = *ins.detail;
    // +0.0 for -0.0: a float zero point computed as -min/scale can be -0.
    auto list = [](std::vector<double> v) {
      for (double& x : v) x = x == 0 ? 0.0 : x;
      return fmt::format("{:.6g}", fmt::join(v, ", "));
    };
    const auto& shape = format_shape;
    out << "module: " << printable_line(d.module.path.empty() ? "<root>" : d.module.path) << " ("
        << printable_line(d.module.type_name) << ")\n";
    out << "state: " << d.module.state << "\n";
    if (!d.module.rule.empty()) out << "rule: " << d.module.rule << "\n";
    if (!d.module.float_reason.empty() && d.module.state == "float")
      out << "why float: " << d.module.float_reason << "\n";
    out << "source: " << d.source << "\n";
    if (d.activation_bits)
      out << "activations: quantized per batch to " << *d.activation_bits << " bits"
          << (*d.activation_bits == 8 ? " (reduce_range False: full_range_activations)"
                                      : " (reduce_range True, as PyTorch writes)")
          << "\n";
    if (d.weight.shape.empty()) return;
    out << "weight: shape " << shape(d.weight.shape) << ", dtype " << d.weight.dtype;
    if (!d.qscheme.empty()) out << ", qscheme " << d.qscheme;
    if (d.axis) out << ", axis " << *d.axis;
    out << "\n";
    out << fmt::format("  values{}: min {:.6g}, max {:.6g}, mean {:.6g}, std {:.6g}\n",
                       d.int_min ? " (dequantized)" : "", d.weight.min, d.weight.max, d.weight.mean, d.weight.std);
    if (d.int_min) out << "  integer values: min " << *d.int_min << ", max " << *d.int_max << "\n";
    out << d.weight.preview << "\n";
    if (!d.scales.empty()) {
      out << "scales (" << d.scales.size() << "): " << list(d.scales) << "\n";
      out << "zero points (" << d.zero_points.size() << "): " << list(d.zero_points) << "\n";
    }
    if (d.bias) out << "bias: shape " << shape(d.bias->shape) << "\n" << d.bias->preview << "\n";
    if (!ins.graph.empty()) out << "graph:\n" << ins.graph;
    return;
  }
  // Columns: path, type, state, then the rule, or for a float module why.
  size_t wp = 6, wt = 4, ws = 5;
  for (const auto& m : ins.modules) {
    wp = std::max(wp, std::max<size_t>(m.path.size(), 6));
    wt = std::max(wt, m.type_name.size());
    ws = std::max(ws, m.state.size());
  }
  auto pad = [](const std::string& s, size_t w) { return s + std::string(w > s.size() ? w - s.size() : 0, ' '); };
  for (const auto& m : ins.modules) {
    std::string line =
        pad(m.path.empty() ? "<root>" : m.path, wp) + "  " + pad(m.type_name, wt) + "  " + pad(m.state, ws);
    if (m.state == "float" && !m.float_reason.empty())
      line += "  " + m.float_reason;
    else if (!m.rule.empty())
      line += "  [" + m.rule + "]";
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << printable_line(line) << "\n";
  }
  if (ins.kind == ModelKind::Final && !ins.has_manifest)
    out << "(no bertq manifest: module names are unknown, packed-params attributes are listed)\n";
}

void print_inspection_json(const Inspection& ins, std::ostream& out) {
  json j;
  j["path"] = ins.path;
  j["kind"] = to_string(ins.kind);
  j["manifest"] = ins.has_manifest ? json{{"bertq_version", ins.bertq_version},
                                          {"libtorch_version", ins.libtorch_version},
                                          {"engine", ins.engine},
                                          {"mode", ins.mode},
                                          {"input_sha256", ins.input_sha256}}
                                   : json();
  auto module_json = [](const InspectedModule& m) {
    return json{{"path", m.path},
                {"type", m.type_name},
                {"state", m.state},
                {"rule", m.rule_data ? json(to_json(*m.rule_data)) : json()},
                {"float_reason", m.float_reason.empty() ? json() : json(m.float_reason)},
                {"packed_attr", m.packed_attr.empty() ? json() : json(m.packed_attr)},
                {"fused_rows", m.fused_rows ? json{m.fused_rows->first, m.fused_rows->second} : json()}};
  };
  auto summary_json = [](const TensorSummary& s) {
    json t{{"shape", s.shape}, {"dtype", s.dtype}, {"min", s.min},        {"max", s.max},
           {"mean", s.mean},   {"std", s.std},     {"preview", s.preview}};
    if (!s.values.empty()) t["values"] = s.values;
    return t;
  };
  if (!ins.detail) {
    json modules = json::array();
    for (const auto& m : ins.modules) modules.push_back(module_json(m));
    j["modules"] = modules;
  } else {
    const ModuleDetail& d = *ins.detail;
    json dj = module_json(d.module);
    dj["source"] = d.source;
    dj["activation_bits"] = d.activation_bits ? json(*d.activation_bits) : json();
    if (!d.weight.shape.empty()) {
      dj["weight"] = summary_json(d.weight);
      dj["qscheme"] = d.qscheme.empty() ? json() : json(d.qscheme);
      dj["axis"] = d.axis ? json(*d.axis) : json();
      dj["scales"] = d.scales;
      dj["zero_points"] = d.zero_points;
      dj["int_min"] = d.int_min ? json(*d.int_min) : json();
      dj["int_max"] = d.int_max ? json(*d.int_max) : json();
    }
    dj["bias"] = d.bias ? summary_json(*d.bias) : json();
    j["module"] = dj;
  }
  if (!ins.graph.empty()) j["graph"] = ins.graph;
  out << j.dump(2) << "\n";
}

}  // namespace bertq
