#include "inspect/diff.h"

#include <torch/script.h>

#include <map>
#include <optional>
#include <set>

#include "archive/manifest.h"
#include "base/error.h"
#include "jit/model_file.h"
#include "jit/qtensor.h"

namespace bertq {
namespace {

// What a quantized module is, as stored.
struct Entry {
  std::string op;     // "linear_dynamic" (final) or "debug"
  at::Tensor weight;  // quantized
  std::optional<at::Tensor> bias;
};

struct Side {
  bool final_model = false;
  bool has_names = false;                      // module names known
  std::map<std::string, Entry> by_attr;        // final: packed-params attribute -> entry
  std::map<std::string, std::string> name_of;  // final with manifest: attribute -> module
  std::map<std::string, Entry> by_module;      // debug: module path -> entry
};

Side read_side(const std::string& path) {
  std::string text;
  torch::jit::Module m = load_model(path, kManifestName, &text);
  const auto manifest = parse_manifest(text, path);
  Side s;
  const auto attrs = packed_weight_attrs(m);
  if (!attrs.empty()) {
    s.final_model = true;
    std::set<std::string> fused;
    if (manifest) {
      s.has_names = true;
      for (const auto& mm : manifest->modules) {
        if (mm.packed_attr.empty()) continue;
        if (!mm.fused_rows) {
          s.name_of[mm.packed_attr] = mm.path;
          continue;
        }
        // --fuse-qkv: each member is its own rows of the fused weight, so
        // that a fused model pairs module for module with an unfused one.
        auto [w, b] = unpack_module(m, path, mm.path, mm.packed_attr, mm.fused_rows);
        const std::string key = mm.packed_attr + "[" + std::to_string(mm.fused_rows->first) + ":" +
                                std::to_string(mm.fused_rows->second) + "]";
        s.by_attr[key] = {"linear_dynamic", w, b};
        s.name_of[key] = mm.path;
        fused.insert(mm.packed_attr);
      }
    }
    for (const auto& attr : attrs) {
      if (fused.count(attr)) continue;
      auto [w, b] = unpack_packed(m, attr);
      s.by_attr[attr] = {"linear_dynamic", w, b};
    }
    return s;
  }
  s.has_names = true;
  for (const auto& child : m.named_modules()) {
    const auto q = find_debug_qparams(child.value);
    if (!q) continue;
    Entry e{"debug", quantize_with(child.value.attr("weight").toTensor(), *q), std::nullopt};
    if (child.value.hasattr("bias") && child.value.attr("bias").isTensor())
      e.bias = child.value.attr("bias").toTensor();
    s.by_module[child.name] = e;
  }
  if (s.by_module.empty())
    throw Error(ErrorKind::Model, path + " holds no quantized weights (it is a float or prepared model)",
                "diff compares models written by `bertq convert` or quantize_dynamic_jit");
  return s;
}

// The side's entries keyed for pairing: by module name when `by_name`, else
// by packed-params attribute.
std::map<std::string, Entry> keyed(const Side& s, bool by_name) {
  if (!s.final_model) return s.by_module;
  if (!by_name) return s.by_attr;
  std::map<std::string, Entry> out;
  for (const auto& [attr, e] : s.by_attr) {
    auto it = s.name_of.find(attr);
    out[it == s.name_of.end() ? attr : it->second] = e;
  }
  return out;
}

std::string describe_qtensor(const at::Tensor& q) {
  std::string s = dtype_name(q.scalar_type()) + " " + c10::toString(q.qscheme());
  if (is_per_channel(q)) s += " axis " + std::to_string(q.q_per_channel_axis());
  return s;
}

// How many of `a` and `b`'s elements differ, and by how much; nullopt if none.
std::optional<ModuleDiff> count_diff(const std::string& module, const at::Tensor& a, const at::Tensor& b,
                                     const char* what) {
  ModuleDiff d{module, what, "", "", 0, 0, 0};
  if (a.sizes() != b.sizes()) {
    d.what = std::string(what) + " shape";
    d.a = c10::str(a.sizes());
    d.b = c10::str(b.sizes());
    return d;
  }
  const int64_t n = a.ne(b).sum().item<int64_t>();
  if (n == 0) return std::nullopt;
  d.differing = n;
  d.total = a.numel();
  d.max_abs_difference = (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
  return d;
}

void compare_entries(const std::string& name, const Entry& ea, const Entry& eb, std::vector<ModuleDiff>& out) {
  auto add = [&](std::optional<ModuleDiff> d) {
    if (d) out.push_back(std::move(*d));
  };
  if (ea.op != eb.op) out.push_back({name, "op", ea.op, eb.op, 0, 0, 0});
  const std::string da = describe_qtensor(ea.weight), db = describe_qtensor(eb.weight);
  if (da != db) {
    out.push_back({name, "qscheme", da, db, 0, 0, 0});
    return;
  }
  if (ea.weight.sizes() != eb.weight.sizes()) {
    out.push_back({name, "weight shape", c10::str(ea.weight.sizes()), c10::str(eb.weight.sizes()), 0, 0, 0});
    return;
  }
  if (is_per_channel(ea.weight)) {
    add(count_diff(name, ea.weight.q_per_channel_scales(), eb.weight.q_per_channel_scales(), "scales"));
    add(count_diff(name, ea.weight.q_per_channel_zero_points(), eb.weight.q_per_channel_zero_points(), "zero points"));
  } else {
    if (ea.weight.q_scale() != eb.weight.q_scale())
      out.push_back({name, "scale", c10::str(ea.weight.q_scale()), c10::str(eb.weight.q_scale()), 0, 0, 0});
    if (ea.weight.q_zero_point() != eb.weight.q_zero_point())
      out.push_back({name, "zero point", std::to_string(ea.weight.q_zero_point()),
                     std::to_string(eb.weight.q_zero_point()), 0, 0, 0});
  }
  add(count_diff(name, ea.weight.int_repr(), eb.weight.int_repr(), "integer weights"));
  if (ea.bias.has_value() != eb.bias.has_value())
    out.push_back({name, "bias", ea.bias ? "present" : "absent", eb.bias ? "present" : "absent", 0, 0, 0});
  else if (ea.bias)
    add(count_diff(name, *ea.bias, *eb.bias, "biases"));
}

}  // namespace

DiffResult diff_models(const std::string& path_a, const std::string& path_b) {
  const Side sa = read_side(path_a);
  const Side sb = read_side(path_b);
  DiffResult r;
  r.path_a = path_a;
  r.path_b = path_b;
  // Names only when both sides have them; a final model without a manifest
  // (Python's output) pairs with bertq's by packed-params attribute, which
  // both create in the same order.
  const bool by_name = sa.has_names && sb.has_names;
  r.matched_by = by_name ? "module names" : "packed-params attributes";
  if (!by_name && sa.final_model != sb.final_model)
    throw Error(ErrorKind::Usage,
                "cannot pair the modules of a final model without a bertq manifest with those of a "
                "debug model",
                "diff two final models or two debug models");
  const auto a = keyed(sa, by_name);
  const auto b = keyed(sb, by_name);
  for (const auto& [name, ea] : a) {
    auto it = b.find(name);
    if (it == b.end()) {
      r.differences.push_back({name, "only in A", "", "", 0, 0, 0});
      continue;
    }
    ++r.compared;
    compare_entries(name, ea, it->second, r.differences);
  }
  for (const auto& [name, eb] : b)
    if (!a.count(name)) r.differences.push_back({name, "only in B", "", "", 0, 0, 0});
  return r;
}

}  // namespace bertq
