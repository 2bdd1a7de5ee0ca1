#include "convert/embeddings.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/script.h>

#include <functional>
#include <set>

#include "base/error.h"
#include "base/text.h"
#include "convert/graph_walk.h"
#include "convert/observers.h"
#include "convert/planner.h"

namespace bertq {
namespace {

std::string shown(const std::string& path) { return path.empty() ? "<root>" : path; }

std::optional<at::Tensor> constant_tensor(torch::jit::Value* v) {
  if (v->node()->kind() != c10::prim::Constant) return std::nullopt;
  const auto iv = torch::jit::toIValue(v);
  if (!iv || !iv->isTensor()) return std::nullopt;
  return iv->toTensor();
}

c10::Symbol quantized_op(const std::string& op) { return c10::Symbol::fromQualString("quantized::" + op); }

// out = op(packed, ids.flatten()).reshape(ids.size() + rows.size()[1:]): the
// quantized lookup takes 1-D or 2-D ids only, float embedding any shape; row
// for row the result is the same. (No list constants: their IValues make
// UBSan's vptr check reference a typeinfo LibTorch does not export.)
torch::jit::Value* insert_lookup(torch::jit::Graph& g, torch::jit::Node* n, torch::jit::Value* packed,
                                 const std::string& op) {
  torch::jit::Value* ids = n->input(1);
  torch::jit::Value* flat = g.insert(c10::aten::flatten, {ids});
  torch::jit::Value* rows = g.insert(quantized_op(op), {packed, flat, false});
  torch::jit::Value* row_shape = g.insert(c10::aten::slice, {g.insert(c10::aten::size, {rows}), int64_t{1}});
  torch::jit::Value* out_shape = g.insert(c10::aten::add, {g.insert(c10::aten::size, {ids}), row_shape});
  return g.insert(c10::aten::reshape, {rows, out_shape});
}

// quantized::embedding_bag_*(packed, indices, offsets, False, 0, False,
// per_sample_weights, None, include_last_offset): nnq.EmbeddingBag's call.
torch::jit::Value* insert_bag(torch::jit::Graph& g, torch::jit::Node* n, torch::jit::Value* packed,
                              const std::string& op) {
  return g.insert(quantized_op(op), {packed, n->input(1), n->input(2), false, int64_t{0}, false, n->input(6),
                                     c10::IValue(), n->input(7)});
}

}  // namespace

at::Tensor quantize_rows(const at::Tensor& float_weight, const QConfig& qconfig) {
  // nnq.Embedding.from_float: observe the weight, then _quantize_weight's
  // float-qparams branch: quantize_per_channel(w, scale.float(), zp.float()).
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module observer = make_observer(qconfig.weight, cu);
  const at::Tensor w = float_weight.to(at::kFloat);
  observer.forward({w});
  const auto qparams = observer.run_method("calculate_qparams").toTuple();
  const at::Tensor scale = qparams->elements()[0].toTensor().to(at::kFloat);
  const at::Tensor zero_point = qparams->elements()[1].toTensor().to(at::kFloat);
  const auto dtype = qconfig.weight.dtype == DType::QUInt4x2 ? at::kQUInt4x2 : at::kQUInt8;
  return at::quantize_per_channel(w, scale, zero_point, qconfig.weight.ch_axis, dtype);
}

c10::IValue pack_embedding_rows(const at::Tensor& float_weight, const QConfig& qconfig) {
  static const auto prepack = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::embedding_bag_prepack", "");
  torch::jit::Stack stack{quantize_rows(float_weight, qconfig)};
  prepack.callBoxed(&stack);
  return stack.at(0);
}

std::vector<std::string> quantize_embeddings(torch::jit::Module& m, Plan& plan,
                                             const std::map<std::string, at::Tensor>& float_weights) {
  std::vector<ModulePlan*> rows;  // every embedding row: planned for the pass or not
  bool any = false;
  for (auto& mp : plan.modules) {
    if (mp.functional || (mp.use != WeightUse::Embedding && mp.use != WeightUse::EmbeddingBag)) continue;
    if (!float_weights.count(mp.path)) continue;
    rows.push_back(&mp);
    any = any || is_embedding_op(mp.expected_op);
  }
  if (!any) return {};
  // NaN would trip the observer's assertion, infinity give infinite scales
  // (and NaN, equal to nothing, would hide the lookup from the matching below).
  for (const ModulePlan* mp : rows) {
    if (!is_embedding_op(mp->expected_op)) continue;
    const at::Tensor& w = float_weights.at(mp->path);
    if (!w.is_floating_point()) continue;
    const int64_t bad = w.numel() - w.isfinite().sum().item<int64_t>();
    if (bad > 0)
      throw Error(ErrorKind::Model,
                  "the weight " + shown(mp->path) + ".weight has " + std::to_string(bad) +
                      " non-finite values (NaN or infinity) of " + std::to_string(w.numel()) +
                      "; quantization needs finite weights",
                  "the model's training diverged or the file was damaged; fix the weights, or opt the module out "
                  "with null in the qconfig");
  }

  auto graph = m.get_method("forward").graph();
  torch::jit::Value* self = graph->inputs()[0];
  std::map<const torch::jit::Node*, std::string> rewritten_constants;  // constant -> row path
  std::map<std::string, torch::jit::Value*> unused;
  size_t next_attr = 0;

  for_each_node(graph->block(), [&](torch::jit::Node* n) {
    const bool is_bag = n->kind() == c10::aten::embedding_bag;
    if (!is_bag && n->kind() != c10::aten::embedding) return;
    const auto weight = constant_tensor(n->input(0));
    if (!weight) return;
    // The rows this constant came from: same use, same values.
    std::vector<ModulePlan*> owners;
    for (ModulePlan* mp : rows) {
      if ((mp->use == WeightUse::EmbeddingBag) != is_bag) continue;
      const at::Tensor& fw = float_weights.at(mp->path);
      if (fw.sizes() == weight->sizes() && fw.scalar_type() == weight->scalar_type() && at::equal(fw, *weight))
        owners.push_back(mp);
    }
    if (owners.empty()) return;
    std::set<std::string> ops;
    for (const ModulePlan* mp : owners) ops.insert(mp->expected_op);
    if (ops.size() > 1) {
      std::vector<std::string> names;
      for (const ModulePlan* mp : owners)
        names.push_back(shown(mp->path) + " (" + (mp->expected_op.empty() ? "float" : mp->expected_op) + ")");
      throw Error(ErrorKind::Config,
                  "embedding modules " + join(names, ", ") +
                      " hold identical weights (tied, or copies) but their qconfigs differ; after freezing bertq "
                      "cannot tell their lookups apart",
                  "give them the same qconfig");
    }
    const std::string op = *ops.begin();
    if (op.empty() || !embedding_blocker(n).empty()) return;
    ModulePlan* first = owners.front();
    if (weight->dim() != 2 || weight->numel() == 0) return;  // planned float (planner.cpp)
    if (first->packed_attr.empty()) {
      const std::string attr = "_bertq_packed_embedding_" + std::to_string(next_attr++);
      const c10::IValue packed = pack_embedding_rows(*weight, *first->qconfig);
      m.register_attribute(attr, packed.type(), packed);
      for (ModulePlan* mp : owners) mp->packed_attr = attr;
    }
    torch::jit::WithInsertPoint guard(n);
    torch::jit::Value* packed = graph->insertGetAttr(self, first->packed_attr);
    torch::jit::Value* out = is_bag ? insert_bag(*graph, n, packed, op) : insert_lookup(*graph, n, packed, op);
    n->output(0)->replaceAllUsesWith(out);
    rewritten_constants.emplace(n->input(0)->node(), first->path);
    n->destroy();
    for (ModulePlan* mp : owners) {
      mp->quantized = true;
      mp->op = op;
      mp->float_reason.clear();
    }
  });

  torch::jit::EliminateDeadCode(graph);
  // A constant still alive after its lookups were rewritten has another use
  // (a tied output projection that stays float): its float copy stays.
  std::vector<std::string> warnings;
  std::set<const torch::jit::Node*> alive;
  for_each_node(graph->block(), [&](torch::jit::Node* n) { alive.insert(n); });
  for (const auto& [node, path] : rewritten_constants)
    if (alive.count(node))
      warnings.push_back("the float weight of " + shown(path) +
                         " stays in the model beside its quantized rows: another op uses it (a tied weight)");
  return warnings;
}

}  // namespace bertq
