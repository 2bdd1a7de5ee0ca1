#include "jit/qtensor.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/script.h>

#include <cstring>
#include <functional>
#include <map>
#include <set>

#include "base/enum_names.h"
#include "base/error.h"
#include "base/text.h"

namespace bertq {

bool is_packed_linear(const c10::IValue& v) {
  return v.isObject() && v.type()->str().find("LinearPackedParamsBase") != std::string::npos;
}

namespace {

bool is_packed_embedding(const c10::IValue& v) {
  return v.isObject() && v.type()->str().find("EmbeddingPackedParamsBase") != std::string::npos;
}

std::vector<double> to_doubles(const at::Tensor& t) {
  const at::Tensor d = t.to(at::kDouble).contiguous();
  return {d.data_ptr<double>(), d.data_ptr<double>() + d.numel()};
}

// Visits every node of a graph, nested blocks included.
void for_each_node(torch::jit::Block* block, const std::function<void(torch::jit::Node*)>& fn) {
  for (torch::jit::Node* n : block->nodes()) {
    fn(n);
    for (torch::jit::Block* b : n->blocks()) for_each_node(b, fn);
  }
}

// A debug model's stored qparams: attributes NAME_scale_K with NAME_zero_point_K
// and NAME_scalar_type_K, named after the graph value they quantize.
bool has_debug_qparams(const torch::jit::Module& m) {
  const auto& type = m.type();
  for (size_t i = 0; i < type->numAttributes(); ++i) {
    const std::string name = type->getAttributeName(i);
    const auto pos = name.rfind("_scale_");
    if (pos == std::string::npos) continue;
    const std::string prefix = name.substr(0, pos), suffix = name.substr(pos + 7);
    if (m.hasattr(prefix + "_zero_point_" + suffix) && m.hasattr(prefix + "_scalar_type_" + suffix)) return true;
  }
  return false;
}

bool is_weight_source(const torch::jit::Value* v) {
  const auto k = v->node()->kind();
  return k == c10::prim::GetAttr || k == c10::prim::Constant;
}

}  // namespace

std::string to_string(ModelKind kind) {
  static const EnumNames<ModelKind> names{{ModelKind::Float, "float"},
                                          {ModelKind::Prepared, "prepared"},
                                          {ModelKind::Debug, "debug"},
                                          {ModelKind::Final, "quantized"}};
  return names.name(kind);
}

ModelKind model_kind(const torch::jit::Module& m) {
  if (!packed_weight_attrs(m).empty()) return ModelKind::Final;
  for (const auto& child : m.named_modules()) {
    const auto& t = child.value.type()->name();
    if (child.name.find("_observer_") != std::string::npos && t &&
        t->qualifiedName().find("Observer") != std::string::npos)
      return ModelKind::Prepared;
  }
  for (const auto& child : m.named_modules())
    if (has_debug_qparams(child.value)) return ModelKind::Debug;
  // A final model whose weights could not be packed here (fp16) has no
  // packed attributes but quantized ops in its graph.
  if (auto f = m.find_method("forward"); f && count_quantized_weights(m, ModelKind::Final) > 0) return ModelKind::Final;
  return ModelKind::Float;
}

size_t count_quantized_weights(const torch::jit::Module& m, ModelKind kind) {
  size_t n = 0;
  if (kind == ModelKind::Prepared) {
    // Observers are called from the graph of the module holding the weight.
    for (const auto& child : m.named_modules()) {
      auto method = child.value.find_method("forward");
      if (!method) continue;
      for_each_node(method->graph()->block(), [&](torch::jit::Node* node) {
        if (node->kind() == c10::prim::CallMethod && node->inputs().size() >= 2 &&
            node->input(0)->node()->kind() == c10::prim::GetAttr &&
            node->input(0)->node()->s(c10::attr::name).rfind("_observer_", 0) == 0 && is_weight_source(node->input(1)))
          ++n;
      });
    }
    return n;
  }
  if (kind == ModelKind::Float) return 0;
  // Final and debug models: the forward graph with every call inlined, as
  // testdata/generate.py counts Python's ops (a debug model's submodules
  // keep graphs of their own that the inlined one repeats).
  auto method = m.find_method("forward");
  if (!method) return 0;
  auto graph = method->graph()->copy();
  torch::jit::Inline(*graph);
  std::set<std::string> rows;  // packed embedding rows, counted once however often looked up
  for_each_node(graph->block(), [&](torch::jit::Node* node) {
    const std::string k = node->kind().toQualString();
    if (kind == ModelKind::Final) {
      // quantized::linear_dynamic, _fp16, and the embedding ops.
      if (k.rfind("quantized::", 0) != 0 || k.find("prepack") != std::string::npos ||
          k.find("unpack") != std::string::npos)
        return;
      torch::jit::Node* src = node->inputs().empty() ? nullptr : node->input(0)->node();
      if (k.rfind("quantized::embedding", 0) == 0 && src && src->kind() == c10::prim::GetAttr)
        rows.insert(src->s(c10::attr::name));
      else
        ++n;
    } else if ((k == "aten::quantize_per_tensor" || k == "aten::quantize_per_channel" ||
                k == "aten::_saturate_weight_to_fp16") &&
               node->inputs().size() > 0 && is_weight_source(node->input(0))) {
      // fp16 weights are rounded by _saturate_weight_to_fp16 instead.
      ++n;
    }
  });
  return n + rows.size();
}

bool is_per_channel(const at::Tensor& q) {
  const auto qs = q.qscheme();
  return qs == at::kPerChannelAffine || qs == at::kPerChannelSymmetric || qs == at::kPerChannelAffineFloatQParams;
}

// The integer values of a quantized tensor without copying them (int_repr()
// copies; over BERT-base's 74 weights that grows glibc's heap by ~30 MB).
// The view is valid while `q` lives.
at::Tensor int_values(const at::Tensor& q) {
  if (!q.is_contiguous() || (q.scalar_type() != at::kQInt8 && q.scalar_type() != at::kQUInt8)) return q.int_repr();
  const auto type = q.scalar_type() == at::kQInt8 ? at::kChar : at::kByte;
  return at::from_blob(q.data_ptr(), q.sizes(), at::TensorOptions().dtype(type));
}

std::optional<DebugQParams> find_debug_qparams(const torch::jit::Module& m) {
  const auto& type = m.type();
  for (size_t i = 0; i < type->numAttributes(); ++i) {
    const std::string name = type->getAttributeName(i);
    const auto pos = name.rfind("_scale_");
    if (pos == std::string::npos || name.rfind("weight", 0) != 0) continue;
    const std::string prefix = name.substr(0, pos), suffix = name.substr(pos + 7);
    DebugQParams q;
    q.scale = m.attr(name);
    q.zero_point = m.attr(prefix + "_zero_point_" + suffix);
    q.dtype = static_cast<at::ScalarType>(m.attr(prefix + "_scalar_type_" + suffix).toInt());
    if (m.hasattr(prefix + "_axis_" + suffix)) q.axis = m.attr(prefix + "_axis_" + suffix).toInt();
    return q;
  }
  return std::nullopt;
}

at::Tensor quantize_with(const at::Tensor& float_weight, const DebugQParams& q) {
  if (q.scale.isTensor())
    return at::quantize_per_channel(float_weight, q.scale.toTensor(), q.zero_point.toTensor(), q.axis.value_or(0),
                                    q.dtype);
  return at::quantize_per_tensor(float_weight, q.scale.toDouble(), q.zero_point.toInt(), q.dtype);
}

namespace {

constexpr const char* kConstantPrefix = "<constant ";

// Packed params a frozen graph holds as constants, in order of first use in
// forward (nested blocks included): the order survives saving and loading,
// since the saved code keeps the ops' order.
std::vector<c10::IValue> packed_constants(const torch::jit::Module& model) {
  std::vector<c10::IValue> out;
  auto method = model.find_method("forward");
  if (!method) return out;
  std::set<const void*> seen;
  for_each_node(method->graph()->block(), [&](torch::jit::Node* n) {
    for (torch::jit::Value* in : n->inputs()) {
      if (in->node()->kind() != c10::prim::Constant) continue;
      const auto v = torch::jit::toIValue(in);
      if (v && (is_packed_linear(*v) || is_packed_embedding(*v)) && seen.insert(v->internalToPointer()).second)
        out.push_back(*v);
    }
  });
  return out;
}

}  // namespace

std::optional<c10::IValue> packed_value(const torch::jit::Module& model, const std::string& name) {
  if (name.rfind(kConstantPrefix, 0) == 0 && name.size() > std::strlen(kConstantPrefix) + 1 && name.back() == '>') {
    const std::string digits =
        name.substr(std::strlen(kConstantPrefix), name.size() - std::strlen(kConstantPrefix) - 1);
    if (digits.empty() || digits.size() > 6 || digits.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    const auto constants = packed_constants(model);
    const size_t k = std::stoul(digits);
    if (k < constants.size()) return constants[k];
    return std::nullopt;
  }
  if (!model.hasattr(name)) return std::nullopt;
  c10::IValue v = model.attr(name);
  if (!is_packed_linear(v) && !is_packed_embedding(v)) return std::nullopt;
  return v;
}

std::vector<LinearCall> linear_dynamic_calls(const torch::jit::Module& model) {
  std::vector<LinearCall> out;
  auto method = model.find_method("forward");
  if (!method) return out;
  static const c10::Symbol linear_dynamic = c10::Symbol::fromQualString("quantized::linear_dynamic");
  // Constants are named as packed_constants numbers them: by first use, in
  // the same walk.
  std::map<const void*, size_t> constant_index;
  for_each_node(method->graph()->block(), [&](torch::jit::Node* n) {
    std::string name;
    for (torch::jit::Value* in : n->inputs()) {
      torch::jit::Node* src = in->node();
      if (src->kind() == c10::prim::Constant) {
        const auto v = torch::jit::toIValue(in);
        if (!v || (!is_packed_linear(*v) && !is_packed_embedding(*v))) continue;
        const auto [it, fresh] = constant_index.emplace(v->internalToPointer(), constant_index.size());
        if (n->kind() == linear_dynamic && in == n->input(1)) name = kConstantPrefix + std::to_string(it->second) + ">";
      } else if (n->kind() == linear_dynamic && in == n->input(1) && src->kind() == c10::prim::GetAttr &&
                 src->input(0) == method->graph()->inputs()[0]) {
        name = src->s(c10::attr::name);
      }
    }
    if (n->kind() == linear_dynamic && n->inputs().size() == 3 && !name.empty()) out.push_back({n, name});
  });
  return out;
}

std::vector<std::string> full_range_linears(const torch::jit::Module& model) {
  std::map<std::string, bool> full;
  for (const LinearCall& call : linear_dynamic_calls(model)) {
    const auto reduce = torch::jit::toIValue(call.node->input(2));
    const bool eight_bits = reduce && reduce->isBool() && !reduce->toBool();
    auto [it, fresh] = full.emplace(call.packed, eight_bits);
    if (!fresh) it->second = it->second && eight_bits;
  }
  std::vector<std::string> out;
  for (const auto& [name, eight_bits] : full)
    if (eight_bits) out.push_back(name);
  return out;
}

std::pair<at::Tensor, std::optional<at::Tensor>> unpack_packed(const torch::jit::Module& model,
                                                               const std::string& attr) {
  const auto found = packed_value(model, attr);
  if (!found) throw Error(ErrorKind::Internal, "no packed weight " + printable(attr) + " in the model");
  const c10::IValue v = *found;
  if (is_packed_embedding(v)) {
    // Through the registered op, as Python's nnq.Embedding does.
    static const auto unpack = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::embedding_bag_unpack", "");
    torch::jit::Stack stack{v};
    unpack.callBoxed(&stack);
    const at::Tensor rows = stack.at(0).toTensor();
    // The unpacked tensor's scales and zero points point into the packed
    // object (from_blob over its members): a copy that owns them outlives it.
    at::Tensor owned = at::_empty_per_channel_affine_quantized(rows.sizes(), rows.q_per_channel_scales().clone(),
                                                               rows.q_per_channel_zero_points().clone(),
                                                               rows.q_per_channel_axis(), rows.options());
    std::memcpy(owned.data_ptr(), rows.data_ptr(), rows.storage().nbytes());
    return {owned, std::nullopt};
  }
  auto [w, b] = v.toCustomClass<LinearPackedParamsBase>()->unpack();
  return {w, b ? std::optional<at::Tensor>(*b) : std::nullopt};
}

std::pair<at::Tensor, at::Tensor> row_qparams(const at::Tensor& q) {
  if (is_per_channel(q)) return {q.q_per_channel_scales().to(at::kDouble), q.q_per_channel_zero_points().to(at::kLong)};
  return {at::full({q.size(0)}, q.q_scale(), at::kDouble), at::full({q.size(0)}, q.q_zero_point(), at::kLong)};
}

c10::IValue prepack_linear(const at::Tensor& qweight, const std::optional<at::Tensor>& bias) {
  static const auto prepack = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_prepack", "");
  torch::jit::Stack stack{c10::IValue(qweight), bias ? c10::IValue(*bias) : c10::IValue()};
  prepack.callBoxed(&stack);
  return stack.at(0);
}

std::pair<at::Tensor, std::optional<at::Tensor>> member_rows(
    const std::pair<at::Tensor, std::optional<at::Tensor>>& unpacked, int64_t begin, int64_t end) {
  const int64_t n = end - begin;
  const auto [scales, zero_points] = row_qparams(unpacked.first);
  at::Tensor rows = at::_make_per_channel_quantized_tensor(unpacked.first.int_repr().narrow(0, begin, n).contiguous(),
                                                           scales.narrow(0, begin, n).contiguous(),
                                                           zero_points.narrow(0, begin, n).contiguous(), 0);
  std::optional<at::Tensor> bias;
  if (unpacked.second) bias = unpacked.second->narrow(0, begin, n).contiguous();
  return {rows, bias};
}

std::pair<at::Tensor, std::optional<at::Tensor>> unpack_module(
    const torch::jit::Module& model, const std::string& model_path, const std::string& module_path,
    const std::string& attr, const std::optional<std::pair<int64_t, int64_t>>& fused_rows) {
  const auto packed = packed_value(model, attr);
  if (!packed)
    throw Error(ErrorKind::Model, model_path + ": its bertq manifest names packed params " + printable(attr) +
                                      " that the model does not hold");
  if (!fused_rows) return unpack_packed(model, attr);
  const auto [begin, end] = *fused_rows;
  const bool linear = is_packed_linear(*packed);
  const auto unpacked = linear ? unpack_packed(model, attr) : std::pair<at::Tensor, std::optional<at::Tensor>>{};
  if (!linear || end > unpacked.first.size(0))
    throw Error(ErrorKind::Model, model_path + ": its bertq manifest gives " + module_path + " rows " +
                                      std::to_string(begin) + " to " + std::to_string(end) + " of " + attr +
                                      ", which is not a Linear with that many");
  return member_rows(unpacked, begin, end);
}

std::vector<std::string> packed_weight_attrs(const torch::jit::Module& model) {
  std::vector<std::string> attrs;
  const auto& type = model.type();
  // Attribute order is creation order (_jit_pass_packed_weight_0, _1, ...).
  for (size_t i = 0; i < type->numAttributes(); ++i)
    if (is_packed_linear(model._ivalue()->getSlot(i)) || is_packed_embedding(model._ivalue()->getSlot(i)))
      attrs.push_back(type->getAttributeName(i));
  const size_t constants = packed_constants(model).size();
  for (size_t k = 0; k < constants; ++k) attrs.push_back(kConstantPrefix + std::to_string(k) + ">");
  return attrs;
}

QParams qparams_of(const at::Tensor& q) {
  QParams p;
  const auto qs = q.qscheme();
  if (qs == at::kPerChannelAffine || qs == at::kPerChannelSymmetric || qs == at::kPerChannelAffineFloatQParams) {
    p.axis = q.q_per_channel_axis();
    p.scales = to_doubles(q.q_per_channel_scales());
    p.zero_points = to_doubles(q.q_per_channel_zero_points());
  } else {
    p.scales = {q.q_scale()};
    p.zero_points = {static_cast<double>(q.q_zero_point())};
  }
  return p;
}

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kQInt8:
      return "qint8";
    case at::kQUInt8:
      return "quint8";
    case at::kQUInt4x2:
      return "quint4x2";
    case at::kHalf:
      return "float16";
    case at::kFloat:
      return "float32";
    default:
      return c10::toString(t);
  }
}

}  // namespace bertq
