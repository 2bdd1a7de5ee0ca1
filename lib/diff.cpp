#include "diff.h"

#include <torch/script.h>

#include <cstdio>
#include <map>
#include <optional>
#include <ostream>

#include "analyze.h"
#include "error.h"
#include "manifest.h"
#include "model_file.h"

namespace bertq {
namespace {

// What a quantized module is, as stored.
struct Entry {
  std::string op;  // "linear_dynamic" (final) or "debug"
  at::Tensor weight;  // quantized
  std::optional<at::Tensor> bias;
};

std::map<std::string, Entry> entries_of(const std::string& path) {
  std::string text;
  torch::jit::Module m = load_model(path, kManifestName, &text);
  const auto manifest = parse_manifest(text);
  std::map<std::string, Entry> out;
  const auto attrs = packed_linear_attrs(m);
  if (!attrs.empty()) {
    std::map<std::string, std::string> name_of;  // attr -> module path
    if (manifest)
      for (const auto& mm : manifest->modules)
        if (!mm.packed_attr.empty()) name_of[mm.packed_attr] = mm.path;
    for (const auto& attr : attrs) {
      auto [w, b] = unpack_linear(m, attr);
      const std::string key = name_of.count(attr) ? name_of[attr] : attr;
      out[key] = {"linear_dynamic", w, b};
    }
    return out;
  }
  for (const auto& child : m.named_modules()) {
    const auto q = find_debug_qparams(child.value);
    if (!q) continue;
    Entry e{"debug", quantize_with(child.value.attr("weight").toTensor(), *q), std::nullopt};
    if (child.value.hasattr("bias") && child.value.attr("bias").isTensor()) e.bias = child.value.attr("bias").toTensor();
    out[child.name] = e;
  }
  if (out.empty())
    throw Error(ErrorKind::Model, path + " holds no quantized weights (it is a float or prepared model)",
                "diff compares models written by `bertq convert` or quantize_dynamic_jit");
  return out;
}

std::string describe_qtensor(const at::Tensor& q) {
  std::string s = dtype_name(q.scalar_type()) + " " + c10::toString(q.qscheme());
  if (q.qscheme() == at::kPerChannelAffine || q.qscheme() == at::kPerChannelAffineFloatQParams)
    s += " axis " + std::to_string(q.q_per_channel_axis());
  return s;
}

// Differences in how many of `a` and `b`'s elements differ, and by how much.
std::string count_diff(const at::Tensor& a, const at::Tensor& b, const char* what) {
  if (a.sizes() != b.sizes()) return std::string(what) + " shapes differ";
  const at::Tensor ne = a.ne(b);
  const int64_t n = ne.sum().item<int64_t>();
  if (n == 0) return "";
  const double max_abs = (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s differ in %lld of %lld values (max abs difference %.6g)", what,
                static_cast<long long>(n), static_cast<long long>(a.numel()), max_abs);
  return buf;
}

}  // namespace

DiffResult diff_models(const std::string& path_a, const std::string& path_b) {
  const auto a = entries_of(path_a);
  const auto b = entries_of(path_b);
  DiffResult r;
  for (const auto& [name, ea] : a) {
    auto it = b.find(name);
    if (it == b.end()) {
      r.differences.push_back(name + ": quantized only in " + path_a);
      continue;
    }
    const Entry& eb = it->second;
    ++r.compared;
    auto add = [&, &name = name](const std::string& d) {
      if (!d.empty()) r.differences.push_back(name + ": " + d);
    };
    if (ea.op != eb.op) add("op " + ea.op + " vs " + eb.op);
    const std::string da = describe_qtensor(ea.weight), db = describe_qtensor(eb.weight);
    if (da != db) {
      add(da + " vs " + db);
      continue;
    }
    if (ea.weight.sizes() != eb.weight.sizes()) {
      add("weight shapes differ");
      continue;
    }
    if (ea.weight.qscheme() == at::kPerChannelAffine || ea.weight.qscheme() == at::kPerChannelAffineFloatQParams) {
      add(count_diff(ea.weight.q_per_channel_scales(), eb.weight.q_per_channel_scales(), "scales"));
      add(count_diff(ea.weight.q_per_channel_zero_points(), eb.weight.q_per_channel_zero_points(), "zero points"));
    } else {
      if (ea.weight.q_scale() != eb.weight.q_scale()) add("scale " + std::to_string(ea.weight.q_scale()) + " vs " + std::to_string(eb.weight.q_scale()));
      if (ea.weight.q_zero_point() != eb.weight.q_zero_point())
        add("zero point " + std::to_string(ea.weight.q_zero_point()) + " vs " + std::to_string(eb.weight.q_zero_point()));
    }
    add(count_diff(ea.weight.int_repr(), eb.weight.int_repr(), "integer weights"));
    if (ea.bias.has_value() != eb.bias.has_value()) add("bias present in only one model");
    else if (ea.bias) add(count_diff(*ea.bias, *eb.bias, "biases"));
  }
  for (const auto& [name, eb] : b)
    if (!a.count(name)) r.differences.push_back(name + ": quantized only in " + path_b);
  return r;
}

void print_diff(const DiffResult& r, const std::string& a, const std::string& b, std::ostream& out) {
  if (r.identical()) {
    out << "identical: " << r.compared << " quantized modules compared (" << a << ", " << b << ")\n";
    return;
  }
  for (const auto& d : r.differences) out << d << "\n";
  out << "differ: " << r.differences.size() << " difference" << (r.differences.size() == 1 ? "" : "s") << " in "
      << r.compared << " modules compared\n";
}

}  // namespace bertq
