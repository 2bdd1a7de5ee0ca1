#include "convert/measure.h"

#include <ATen/native/quantized/PackedParams.h>
#include <fcntl.h>
#include <torch/script.h>

#include <cmath>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "archive/zip_index.h"
#include "base/error.h"
#include "base/fd.h"
#include "base/text.h"
#include "convert/planner.h"
#include "jit/graph_walk.h"

namespace bertq {
namespace {

std::map<std::string, torch::jit::Module> modules_by_path(const torch::jit::Module& m) {
  std::map<std::string, torch::jit::Module> out;
  for (const auto& child : m.named_modules()) out.emplace(child.name, child.value);
  return out;
}

// 10 log10(signal / noise); infinite for an exact copy.
double sqnr_db(double signal, double noise) {
  return noise == 0 ? std::numeric_limits<double>::infinity() : 10 * std::log10(signal / noise);
}

std::pair<double, double> error_stats(const at::Tensor& reference, const at::Tensor& approx) {
  // float32 differences, double sums: one temporary the size of the weight.
  const at::Tensor ref = reference.to(at::kFloat);
  const at::Tensor diff = ref - approx.to(at::kFloat);
  const double max_abs = diff.abs().max().item<double>();
  const double noise = diff.square().sum(at::kDouble).item<double>();
  const double signal = ref.square().sum(at::kDouble).item<double>();
  return {max_abs, sqnr_db(signal, noise)};
}

// Rows [begin, begin + n) of a row-quantized weight: their scales and zero
// points as float columns [n, 1] (one value broadcast for per-tensor), for
// dequantizing a block of rows at a time.
std::pair<at::Tensor, at::Tensor> row_qparams(const at::Tensor& qweight, bool per_channel, int64_t begin, int64_t n) {
  if (per_channel)
    return {qweight.q_per_channel_scales().narrow(0, begin, n).to(at::kFloat).unsqueeze(1),
            qweight.q_per_channel_zero_points().narrow(0, begin, n).to(at::kFloat).unsqueeze(1)};
  return {at::full({1, 1}, qweight.q_scale(), at::kFloat),
          at::full({1, 1}, static_cast<double>(qweight.q_zero_point()), at::kFloat)};
}

// Max abs error and SQNR of a quantized 2-D weight against the float one,
// dequantized a block of rows at a time: whole-weight temporaries (10 MB per
// BERT-base layer) would make glibc grow its heap by hundreds of MB.
std::pair<double, double> quantization_error(const at::Tensor& qweight, const at::Tensor& float_weight) {
  const bool per_channel = is_per_channel(qweight);
  // 4-bit rows are stored two to a byte: dequantized whole instead.
  if (qweight.dim() != 2 || (per_channel && qweight.q_per_channel_axis() != 0) ||
      qweight.scalar_type() == at::kQUInt4x2)
    return error_stats(float_weight, qweight.dequantize());
  const at::Tensor q = int_values(qweight);
  const at::Tensor fw = float_weight.to(at::kFloat);
  const int64_t rows = q.size(0), block = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, q.size(1)));
  double max_abs = 0, noise = 0, signal = 0;
  for (int64_t i = 0; i < rows; i += block) {
    const int64_t n = std::min(block, rows - i);
    const auto [scale, zp] = row_qparams(qweight, per_channel, i, n);
    const at::Tensor ref = fw.narrow(0, i, n);
    const at::Tensor diff = ref - (q.narrow(0, i, n).to(at::kFloat) - zp) * scale;
    max_abs = std::max(max_abs, diff.abs().max().item<double>());
    noise += diff.square().sum(at::kDouble).item<double>();
    signal += ref.square().sum(at::kDouble).item<double>();
  }
  return {max_abs, sqnr_db(signal, noise)};
}

// Fills dtype/qscheme/scales/zero points/error from a quantized weight.
void describe_quantized(ModuleReport& r, const at::Tensor& qweight, const at::Tensor& float_weight) {
  r.dtype = dtype_name(qweight.scalar_type());
  // The stored tensor's qscheme, as inspect shows it (a symmetric observer's
  // weights are stored per_channel_affine with zero points 0); the report's
  // JSON gives the observer's qscheme beside it.
  r.qscheme = c10::toString(qweight.qscheme());
  QParams q = qparams_of(qweight);
  r.axis = q.axis;
  r.scales = std::move(q.scales);
  r.zero_points = std::move(q.zero_points);
  const auto [max_abs, sqnr] = quantization_error(qweight, float_weight);
  r.max_abs_error = max_abs;
  r.sqnr_db = sqnr;
}

// A debug model keeps the float weight and stores the weight's qparams as
// attributes (see find_debug_qparams).
bool describe_debug(ModuleReport& r, const torch::jit::Module& m, const at::Tensor& float_weight) {
  const auto q = find_debug_qparams(m);
  if (!q) return false;
  describe_quantized(r, quantize_with(float_weight, *q), float_weight);
  return true;
}

// True if `qweight` is `float_weight` quantized: every dequantized value
// within half a quantization step of the float one (0.51: float32 rounding
// can push an exact half step a hair over). Rows are checked a block at a
// time, so memory stays flat.
bool requantizes_to(const at::Tensor& qweight, const at::Tensor& float_weight) {
  const bool per_channel = is_per_channel(qweight);
  if (per_channel && qweight.q_per_channel_axis() != 0) return true;  // nothing finer to tell them apart by
  const at::Tensor q = int_values(qweight);
  const at::Tensor fw = float_weight.to(at::kFloat);
  const int64_t rows = q.size(0), block = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, q.size(1)));
  for (int64_t i = 0; i < rows; i += block) {
    const int64_t n = std::min(block, rows - i);
    const auto [scale, zp] = row_qparams(qweight, per_channel, i, n);
    const at::Tensor err = (fw.narrow(0, i, n) - (q.narrow(0, i, n).to(at::kFloat) - zp) * scale).abs();
    if ((err > scale * 0.51).any().item<bool>()) return false;
  }
  return true;
}

// Where a module's quantized weight is in a final model: a packed-params
// attribute of its own, or, after --fuse-qkv, its rows of a fused one.
struct PackedSource {
  std::string attr;
  std::optional<std::pair<int64_t, int64_t>> rows;
  const LinearFusion* fusion = nullptr;  // with rows: the fusion, and which member
  size_t member = 0;
};

// The source's weight and bias; a fused member's rows as the module's own
// weight was before the fusion, per tensor if it was (the fused weight
// repeats its one scale on each of its rows).
std::pair<at::Tensor, std::optional<at::Tensor>> weight_of(const torch::jit::Module& converted,
                                                           const PackedSource& source) {
  if (!source.rows) return unpack_packed(converted, source.attr);
  auto member = member_rows(unpack_packed(converted, source.attr), source.rows->first, source.rows->second);
  if (source.fusion->per_tensor[source.member]) {
    const at::Tensor& q = member.first;
    member.first = at::_make_per_tensor_quantized_tensor(q.int_repr(), q.q_per_channel_scales()[0].item<double>(),
                                                         q.q_per_channel_zero_points()[0].item<int64_t>());
  }
  return member;
}

// Every quantized Linear weight in a final model: whole attributes, and each
// fused member's rows where the attribute it was packed in before is gone.
std::vector<PackedSource> packed_sources(const torch::jit::Module& converted, const std::set<std::string>& claimed,
                                         const std::vector<LinearFusion>& fusions) {
  std::map<std::string, const LinearFusion*> fused;
  for (const auto& f : fusions) fused.emplace(f.attr, &f);
  std::vector<PackedSource> out;
  for (const auto& attr : packed_weight_attrs(converted)) {
    if (claimed.count(attr)) continue;
    auto f = fused.find(attr);
    if (f == fused.end()) {
      out.push_back({attr, std::nullopt, nullptr, 0});
      continue;
    }
    int64_t begin = 0;
    for (size_t i = 0; i < f->second->rows.size(); ++i) {
      out.push_back({attr, std::make_pair(begin, begin + f->second->rows[i]), f->second, i});
      begin += f->second->rows[i];
    }
  }
  return out;
}

// Which modules each packed weight of a final model holds: same shape and
// bias, and the float weight requantizes to its int8 values. Not one to one:
// a module called k times is packed k times, and modules with equal weights
// and bias reading one input end up as one op (constant pooling and CSE), so
// one packed weight can stand for several modules.
struct PackedOwners {
  std::map<std::string, std::vector<PackedSource>> sources_of;  // module path -> its weights, in graph order
  std::vector<std::string> unattributed;                        // attributes matching no module
};

PackedOwners map_packed_params(const torch::jit::Module& converted, const std::vector<ModuleReport>& modules,
                               const FloatTensors& floats, const std::vector<LinearFusion>& fusions) {
  PackedOwners out;
  std::set<std::string> claimed;  // embedding rows: the embedding pass recorded their owner
  for (const auto& m : modules)
    if (!m.plan.packed_attr.empty()) claimed.insert(m.plan.packed_attr);
  for (const PackedSource& source : packed_sources(converted, claimed, fusions)) {
    auto [qweight, bias] = weight_of(converted, source);
    if (!qweight.is_quantized() || qweight.dim() != 2) continue;
    // The first row, dequantized by hand: enough to rule out most candidates.
    const bool per_channel = is_per_channel(qweight);
    const double scale0 = per_channel ? qweight.q_per_channel_scales()[0].item<double>() : qweight.q_scale();
    const int64_t zp0 = per_channel ? qweight.q_per_channel_zero_points()[0].item<int64_t>() : qweight.q_zero_point();
    const at::Tensor row0 = (int_values(qweight)[0].to(at::kFloat) - static_cast<double>(zp0)) * scale0;
    std::vector<std::string> owners;
    for (const auto& m : modules) {
      if (!m.plan.quantized) continue;
      auto it = floats.by_path.find(m.plan.path);
      if (it == floats.by_path.end()) continue;
      const at::Tensor& fw = it->second.weight;
      if (fw.sizes() != qweight.sizes()) continue;
      const auto& fb = it->second.bias;
      if (bias.has_value() != fb.has_value() || (bias && !at::equal(*bias, *fb))) continue;
      if ((row0 - fw[0]).abs().max().item<double>() > scale0 * 0.51) continue;
      owners.push_back(m.plan.path);
    }
    // Only when the first row leaves a choice: the whole weight decides.
    if (owners.size() > 1) {
      std::vector<std::string> exact;
      for (const auto& path : owners)
        if (requantizes_to(qweight, floats.by_path.at(path).weight)) exact.push_back(path);
      if (!exact.empty()) owners = std::move(exact);
    }
    if (owners.empty() && (out.unattributed.empty() || out.unattributed.back() != source.attr))
      out.unattributed.push_back(source.attr);
    for (const auto& path : owners) out.sources_of[path].push_back(source);
  }
  return out;
}

uint64_t fast_hash(const uint8_t* p, size_t n) {
  // 64-bit multiply-xor over 8-byte words: identifies records by content.
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ (w * 0xff51afd7ed558ccdULL)) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

std::pair<const uint8_t*, size_t> tensor_bytes(const at::Tensor& t, at::Tensor& keep) {
  keep = t.is_quantized() ? int_values(t).contiguous() : t.contiguous();
  return {static_cast<const uint8_t*>(keep.data_ptr()), static_cast<size_t>(keep.numel()) * keep.element_size()};
}

}  // namespace

void capture_functional_weights(const torch::jit::Module& prepared, const Plan& plan, FloatTensors& floats) {
  for (const auto& w : observed_weights(prepared)) {
    const std::string path = w.constant_index >= 0 ? (w.module_path.empty() ? "" : w.module_path + ".") + "<constant " +
                                                         std::to_string(w.constant_index) + ">"
                                                   : (w.module_path.empty() ? w.attr : w.module_path + "." + w.attr);
    const bool stored = floats.input_storages.count(w.value.storage().unsafeGetStorageImpl()) > 0;
    for (const auto& mp : plan.modules)
      if (mp.functional && mp.path == path)
        floats.by_path.emplace(path, FloatTensors::Entry{w.value, w.bias, {}, stored});
  }
}

FloatTensors capture_float_tensors(const torch::jit::Module& model, const Plan& plan) {
  FloatTensors out;
  auto note = [&](const c10::IValue& v) {
    if (v.isTensor() && v.toTensor().defined())
      out.input_storages.insert(v.toTensor().storage().unsafeGetStorageImpl());
  };
  for (const auto& child : model.named_modules()) {
    const auto& type = child.value.type();
    for (size_t i = 0; i < type->numAttributes(); ++i) note(child.value._ivalue()->getSlot(i));
    for (const auto& method : child.value.get_methods())
      for_each_node(method.graph()->block(), [&](torch::jit::Node* n) {
        if (n->kind() == c10::prim::Constant)
          if (auto v = torch::jit::toIValue(n->output())) note(*v);
      });
  }
  const auto by_path = modules_by_path(model);
  for (const auto& mp : plan.modules) {
    auto it = by_path.find(mp.path);
    if (it == by_path.end() || !it->second.hasattr(mp.weight_attr) || !it->second.attr(mp.weight_attr).isTensor())
      continue;
    FloatTensors::Entry e;
    e.weight = it->second.attr(mp.weight_attr).toTensor();
    if (it->second.hasattr("bias") && it->second.attr("bias").isTensor()) e.bias = it->second.attr("bias").toTensor();
    for (const auto& p : it->second.named_parameters(/*recurse=*/false))
      if (p.name != mp.weight_attr && p.name != "bias") e.extra.push_back(p.value);
    out.by_path.emplace(mp.path, e);
  }
  return out;
}

std::map<std::string, std::vector<std::string>> packed_weight_owners(const torch::jit::Module& converted,
                                                                     const Plan& plan, const FloatTensors& floats) {
  const std::vector<ModuleReport> modules = module_reports(plan);
  std::map<std::string, std::vector<std::string>> owners;
  for (const auto& [path, sources] : map_packed_params(converted, modules, floats, {}).sources_of)
    for (const auto& source : sources) owners[source.attr].push_back(path);
  return owners;
}

namespace {

// Fills each module's report from the converted model; returns the packed
// weights that match no module.
std::vector<std::string> fill_details(std::vector<ModuleReport>& modules, FloatTensors& floats,
                                      const torch::jit::Module& converted, const std::vector<LinearFusion>& fusions) {
  const auto by_path = modules_by_path(converted);
  PackedOwners packed = map_packed_params(converted, modules, floats, fusions);
  const std::vector<std::string> full = full_range_linears(converted);
  const auto eight_bits = [&](const std::string& attr) {
    return std::find(full.begin(), full.end(), attr) != full.end();
  };
  for (auto& r : modules) {
    auto f = floats.by_path.find(r.plan.path);
    if (f == floats.by_path.end()) continue;
    const at::Tensor& fw = f->second.weight;
    r.dtype = dtype_name(fw.scalar_type());
    if (f->second.bias) r.bias_shape = f->second.bias->sizes().vec();
    auto p = packed.sources_of.find(r.plan.path);
    if (!r.plan.packed_attr.empty() || p != packed.sources_of.end()) {
      at::Tensor qweight;
      if (r.plan.packed_attr.empty()) {
        const PackedSource& first = p->second.front();
        r.packed_attr = first.attr;
        r.fused_rows = first.rows;
        for (auto it = p->second.begin() + 1; it != p->second.end(); ++it) r.extra_packed_attrs.push_back(it->attr);
        qweight = weight_of(converted, first).first;
      } else {
        r.packed_attr = r.plan.packed_attr;
        qweight = unpack_packed(converted, r.packed_attr).first;
      }
      describe_quantized(r, qweight, fw);
      if (r.plan.op == "linear_dynamic") {
        bool all = eight_bits(r.packed_attr);
        for (const auto& attr : r.extra_packed_attrs) all = all && eight_bits(attr);
        r.activation_bits = all ? 8 : 7;
      }
      // The float weight is not in the output: free it now, which leaves
      // room for the next module's temporaries.
      floats.by_path.erase(f);
      continue;
    }
    auto m = by_path.find(r.plan.path);
    if (!r.plan.quantized || m == by_path.end()) continue;
    if (!describe_debug(r, m->second, fw) && r.plan.op == "linear_dynamic_fp16") {
      r.dtype = "float16";
      const auto [max_abs, sqnr] = error_stats(fw, fw.to(at::kHalf));
      r.max_abs_error = max_abs;
      r.sqnr_db = sqnr;
    }
  }
  return std::move(packed.unattributed);
}

using Print = FloatFingerprints::Print;

Print print_of(const at::Tensor& t) {
  at::Tensor keep;
  const auto [p, n] = tensor_bytes(t, keep);
  return {n, fast_hash(p, n)};
}

// The (size, hash) of every tensor record a module owns in the written
// model: its packed int8 weight, scales, zero points and bias in a final
// model; else its float tensors and, in a debug model, its qparams.
std::map<std::string, std::vector<Print>> owned_prints(const std::vector<ModuleReport>& modules,
                                                       const FloatFingerprints& floats,
                                                       const torch::jit::Module& converted) {
  std::map<std::string, std::vector<Print>> owned;
  const auto by_path = modules_by_path(converted);
  for (const auto& r : modules) {
    auto& prints = owned[r.plan.path];
    if (r.fused_rows) continue;  // the group's records are shared out in measure_output
    if (!r.packed_attr.empty()) {
      // Every copy (one per call of a module called several times).
      std::vector<std::string> attrs{r.packed_attr};
      attrs.insert(attrs.end(), r.extra_packed_attrs.begin(), r.extra_packed_attrs.end());
      for (const auto& attr : attrs) {
        auto [q, bias] = unpack_packed(converted, attr);
        prints.push_back(print_of(q));
        if (is_per_channel(q)) {
          prints.push_back(print_of(q.q_per_channel_scales()));
          prints.push_back(print_of(q.q_per_channel_zero_points()));
        }
        if (bias) prints.push_back(print_of(*bias));
      }
      continue;
    }
    if (auto f = floats.by_path.find(r.plan.path); f != floats.by_path.end())
      prints.insert(prints.end(), f->second.begin(), f->second.end());
    auto m = by_path.find(r.plan.path);
    if (m == by_path.end()) continue;
    const auto& type = m->second.type();
    for (size_t i = 0; i < type->numAttributes(); ++i) {
      const std::string name = type->getAttributeName(i);
      const bool qparam = name.find("_scale_") != std::string::npos || name.find("_zero_point_") != std::string::npos;
      if (qparam && m->second._ivalue()->getSlot(i).isTensor())
        prints.push_back(print_of(m->second._ivalue()->getSlot(i).toTensor()));
    }
  }
  return owned;
}

}  // namespace

FloatFingerprints fingerprint(const FloatTensors& floats) {
  FloatFingerprints out;
  for (const auto& [path, e] : floats.by_path) {
    auto& v = out.by_path[path];
    v.push_back(print_of(e.weight));
    if (e.bias) v.push_back(print_of(*e.bias));
    for (const auto& t : e.extra) v.push_back(print_of(t));
  }
  return out;
}

std::vector<std::string> describe_modules(std::vector<ModuleReport>& modules, FloatTensors& floats,
                                          const torch::jit::Module& converted,
                                          const std::vector<LinearFusion>& fusions) {
  return fill_details(modules, floats, converted, fusions);
}

SizeBreakdown measure_input(const ZipIndex& zip, std::vector<ModuleReport>& modules, const FloatTensors& floats) {
  SizeBreakdown b;
  b.total = zip.file_size;
  uint64_t tensor_records = 0, all_records = 0;
  for (const auto& e : zip.entries) {
    all_records += e.stored_size;
    if (is_tensor_record(e.name))
      tensor_records += e.stored_size;
    else
      b.code_and_metadata += e.stored_size;
  }
  std::unordered_set<const void*> counted;
  for (auto& r : modules) {
    auto f = floats.by_path.find(r.plan.path);
    if (f == floats.by_path.end()) continue;
    r.bytes_before = 0;
    if (!f->second.in_input) continue;
    // A storage shared by several modules (tied weights) counts once.
    auto count = [&](const at::Tensor& t) {
      if (counted.insert(t.storage().unsafeGetStorageImpl()).second) r.bytes_before += t.storage().nbytes();
    };
    count(f->second.weight);
    if (f->second.bias) count(*f->second.bias);
    for (const auto& t : f->second.extra) count(t);
    b.modules += r.bytes_before;
  }
  if (b.modules > tensor_records || all_records > b.total)
    throw Error(ErrorKind::Internal, "size accounting: module tensors exceed the input's tensor records");
  b.other_tensors = tensor_records - b.modules;
  b.zip_overhead = b.total - all_records;
  return b;
}

SizeBreakdown measure_output(const std::string& path, std::vector<ModuleReport>& modules,
                             const FloatFingerprints& floats, const torch::jit::Module& converted) {
  const ZipIndex zip = read_zip_index(path);
  SizeBreakdown b;
  b.total = zip.file_size;
  // Index tensor records by (size, content hash).
  std::unordered_map<uint64_t, std::vector<size_t>> unclaimed;  // key -> entry indices
  std::unordered_set<uint64_t> seen_keys;
  auto key_of = [](size_t n, uint64_t h) { return h ^ (n * 0x9E3779B97F4A7C15ULL); };
  std::vector<bool> claimed(zip.entries.size(), false);
  {
    const Fd fd = open_fd(path, O_RDONLY);
    if (!fd) throw Error(ErrorKind::Io, "cannot read " + path + ": " + errno_message());
    std::vector<uint8_t> buf;
    for (size_t i = 0; i < zip.entries.size(); ++i) {
      const auto& e = zip.entries[i];
      if (!is_tensor_record(e.name)) continue;
      if (!e.stored || e.stored_size != e.size)
        throw Error(ErrorKind::Internal, "record " + e.name + " of " + path + " is compressed");
      buf.resize(e.size);
      if (!read_exact_at(fd.get(), e.data_offset, buf.data(), e.size))
        throw Error(ErrorKind::Io, "cannot read record " + e.name + " of " + path);
      unclaimed[key_of(e.size, fast_hash(buf.data(), e.size))].push_back(i);
    }
  }
  // Claims the record equal to `print`; returns its size, or 0 with the size
  // added to `shared` when an earlier claim took it (a frozen model stores
  // equal constants once).
  auto claim = [&](const Print& print, uint64_t& shared) -> uint64_t {
    auto it = unclaimed.find(key_of(print.nbytes, print.hash));
    if (it == unclaimed.end()) return 0;  // not stored as a record of its own
    if (it->second.empty()) {
      shared += print.nbytes;
      return 0;
    }
    const size_t idx = it->second.front();
    it->second.erase(it->second.begin());
    claimed[idx] = true;
    return zip.entries[idx].size;
  };
  const auto owned = owned_prints(modules, floats, converted);
  std::map<std::string, std::vector<ModuleReport*>> fused;  // packed attr -> members
  for (auto& r : modules) {
    r.bytes_after = 0;
    r.bytes_shared = 0;
    if (r.fused_rows) fused[r.packed_attr].push_back(&r);
    for (const auto& print : owned.at(r.plan.path)) r.bytes_after += claim(print, r.bytes_shared);
    b.modules += r.bytes_after;
  }
  // A fused weight's records (int8 rows, per-row scales and zero points,
  // bias) are each rows x a fixed width: every member's share by rows is
  // exactly the bytes its own packed weight took before the fusion.
  for (auto& [attr, members] : fused) {
    auto [q, bias] = unpack_packed(converted, attr);
    std::vector<Print> prints{print_of(q), print_of(q.q_per_channel_scales()), print_of(q.q_per_channel_zero_points())};
    if (bias) prints.push_back(print_of(*bias));
    uint64_t bytes = 0, shared = 0;
    for (const auto& print : prints) bytes += claim(print, shared);
    const auto rows = static_cast<uint64_t>(q.size(0));
    uint64_t given = 0;
    std::set<std::pair<int64_t, int64_t>> counted;  // equal modules share their rows: counted at the first
    for (ModuleReport* r : members) {
      const uint64_t share = bytes * static_cast<uint64_t>(r->fused_rows->second - r->fused_rows->first) / rows;
      if (counted.insert(*r->fused_rows).second) {
        r->bytes_after = share;
        given += share;
      } else {
        r->bytes_shared += share;
      }
    }
    members.front()->bytes_after += bytes - given;
    members.front()->bytes_shared += shared;
    b.modules += bytes;
  }
  uint64_t all_records = 0;
  for (size_t i = 0; i < zip.entries.size(); ++i) {
    const auto& e = zip.entries[i];
    all_records += e.stored_size;
    if (!is_tensor_record(e.name))
      b.code_and_metadata += e.stored_size;
    else if (!claimed[i])
      b.other_tensors += e.stored_size;
  }
  b.zip_overhead = b.total - all_records;
  return b;
}

}  // namespace bertq
