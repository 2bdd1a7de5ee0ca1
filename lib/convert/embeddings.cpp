#include "convert/embeddings.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/script.h>

#include <functional>
#include <set>

#include "base/error.h"
#include "base/text.h"
#include "convert/observers.h"
#include "convert/planner.h"
#include "jit/graph_walk.h"

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

// The quantized lookups check less than the float ones (offsets that do
// not start at 0 or decrease, per-sample weights shorter than the ids), and
// crash on empty ids or no bags where float returns an empty tensor. So each
// rewritten lookup first runs the float op itself on a table with the same
// rows and no columns (no memory, no arithmetic): every check float makes on
// its inputs raises there, with float's message, and its output's shape is
// the result's. Then the quantized op runs on inputs padded with one more
// id (in one more bag), so it never sees an empty input, and the extra row
// is cut off. Row for row the results are the quantized op's own.
torch::jit::Node* insert_float_guard(torch::jit::Graph& g, torch::jit::Node* n, const at::Tensor& weight) {
  torch::jit::Value* no_columns = g.insertConstant(at::empty({weight.size(0), 0}, weight.options()));
  torch::jit::Node* guard = g.insertNode(g.createClone(n, [](torch::jit::Value* v) { return v; }));
  guard->replaceInput(0, no_columns);
  return guard;
}

// One zero of `like`'s dtype, [1]. (A list built by ListConstruct, not a
// list constant: constant lists' IValues make UBSan's vptr check reference
// a typeinfo LibTorch does not export.)
torch::jit::Value* one_zero(torch::jit::Graph& g, torch::jit::Value* like) {
  torch::jit::Value* shape = g.insertNode(g.createList(c10::IntType::get(), {g.insertConstant(int64_t{1})}))->output();
  return g.insert(c10::Symbol::fromQualString("aten::new_zeros"), {like, shape});
}

torch::jit::Value* cat2(torch::jit::Graph& g, torch::jit::Value* a, torch::jit::Value* b) {
  torch::jit::Value* list = g.insertNode(g.createList(c10::TensorType::get(), {a, b}))->output();
  return g.insert(c10::aten::cat, {list, int64_t{0}});
}

// out = op(packed, [ids.flatten(), 0])[:numel(ids)].reshape(guard's shape
// without its last dimension + rows' width): the quantized lookup takes 1-D
// or 2-D ids only, float embedding any shape.
torch::jit::Value* insert_lookup(torch::jit::Graph& g, torch::jit::Node* n, torch::jit::Value* packed,
                                 const std::string& op, const at::Tensor& weight) {
  torch::jit::Node* guard = insert_float_guard(g, n, weight);
  torch::jit::Value* ids = n->input(1);
  torch::jit::Value* flat = g.insert(c10::aten::flatten, {ids});
  torch::jit::Value* rows = g.insert(quantized_op(op), {packed, cat2(g, flat, one_zero(g, flat)), false});
  rows = g.insert(c10::aten::narrow,
                  {rows, int64_t{0}, int64_t{0}, g.insert(c10::Symbol::fromQualString("aten::numel"), {ids})});
  torch::jit::Value* row_shape = g.insert(c10::aten::slice, {g.insert(c10::aten::size, {rows}), int64_t{1}});
  torch::jit::Value* ids_shape =
      g.insert(c10::aten::slice, {g.insert(c10::aten::size, {guard->output(0)}), int64_t{0}, int64_t{-1}});
  return g.insert(c10::aten::reshape, {rows, g.insert(c10::aten::add, {ids_shape, row_shape})});
}

// quantized::embedding_bag_*(packed, indices, offsets, False, 0, False,
// per_sample_weights, None, include_last_offset): nnq.EmbeddingBag's call,
// with one more bag (holding id 0, weight 0) after the others, cut off after.
torch::jit::Value* insert_bag(torch::jit::Graph& g, torch::jit::Node* n, torch::jit::Value* packed,
                              const std::string& op, const at::Tensor& weight) {
  torch::jit::Node* guard = insert_float_guard(g, n, weight);
  torch::jit::Value* indices = n->input(1);
  torch::jit::Value* offsets = n->input(2);
  torch::jit::Value* weights = n->input(6);
  torch::jit::Value* last_offset = n->input(7);
  // The extra bag starts after the last id: offsets gain numel(indices) (and
  // numel + 1, its end, where the last offset ends the last bag).
  torch::jit::Value* start = g.insert(c10::Symbol::fromQualString("aten::numel"), {indices});
  torch::jit::Value* extra =
      g.insert(c10::aten::add, {start, g.insert(c10::Symbol::fromQualString("aten::Int"), {last_offset})});
  torch::jit::Value* padded_offsets = cat2(g, offsets, g.insert(c10::aten::add, {one_zero(g, offsets), extra}));
  torch::jit::Value* padded_indices = cat2(g, indices, one_zero(g, indices));
  torch::jit::Value* padded_weights = weights;
  if (!weights->type()->cast<c10::NoneType>() && weights->node()->kind() != c10::prim::Constant)
    padded_weights = cat2(g, weights, one_zero(g, weights));
  torch::jit::Value* rows = g.insert(quantized_op(op), {packed, padded_indices, padded_offsets, false, int64_t{0},
                                                        false, padded_weights, c10::IValue(), last_offset});
  torch::jit::Value* bags = g.insert(c10::aten::size, {guard->output(0), int64_t{0}});
  return g.insert(c10::aten::narrow, {rows, int64_t{0}, int64_t{0}, bags});
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

namespace {

c10::IValue prepack_rows(const at::Tensor& rows) {
  static const auto prepack = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::embedding_bag_prepack", "");
  torch::jit::Stack stack{rows};
  prepack.callBoxed(&stack);
  return stack.at(0);
}

// Why 4-bit rows cannot hold `rows` (quantized to 4 bits), or "": they pack
// two values to a byte (an odd width leaves the lookups' shapes wrong), and
// store each row's scale and offset as float16.
std::string why_not_4bit(const at::Tensor& rows) {
  if (rows.size(1) % 2 != 0)
    return "its rows have an odd width (" + std::to_string(rows.size(1)) +
           "), and 4-bit rows pack two values to a byte";
  const at::Tensor scales = rows.q_per_channel_scales(), offsets = rows.q_per_channel_zero_points();
  if (!scales.to(at::kHalf).isfinite().all().item<bool>() || !offsets.to(at::kHalf).isfinite().all().item<bool>())
    return "its values reach beyond float16's range (65504), in which 4-bit rows store each row's scale and offset";
  return "";
}

}  // namespace

c10::IValue pack_embedding_rows(const at::Tensor& float_weight, const QConfig& qconfig) {
  return prepack_rows(quantize_rows(float_weight, qconfig));
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
  std::vector<std::string> fallbacks;

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
    std::string op_here = op;
    if (first->packed_attr.empty()) {
      const std::string attr = "_bertq_packed_embedding_" + std::to_string(next_attr++);
      at::Tensor q = quantize_rows(*weight, *first->qconfig);
      if (q.scalar_type() == at::kQUInt4x2) {
        if (const std::string why = why_not_4bit(q); !why.empty()) {
          // 8-bit rows instead, said as a warning: their scales and offsets
          // are float32 and a byte holds one value.
          QConfig byte = *first->qconfig;
          byte.weight.dtype = DType::QUInt8;
          q = quantize_rows(*weight, byte);
          op_here = is_bag ? "embedding_bag_byte" : "embedding_byte";
          std::vector<std::string> names;
          for (ModulePlan* mp : owners) {
            mp->qconfig = byte;
            mp->expected_op = op_here;
            names.push_back(shown(mp->path));
          }
          fallbacks.push_back(join(names, ", ") + " get 8-bit rows instead of 4-bit: " + why);
        }
      }
      const c10::IValue packed = prepack_rows(q);
      m.register_attribute(attr, packed.type(), packed);
      for (ModulePlan* mp : owners) mp->packed_attr = attr;
    } else {
      op_here = first->op.empty() ? op : first->op;
    }
    torch::jit::WithInsertPoint guard(n);
    torch::jit::Value* packed = graph->insertGetAttr(self, first->packed_attr);
    torch::jit::Value* out =
        is_bag ? insert_bag(*graph, n, packed, op_here, *weight) : insert_lookup(*graph, n, packed, op_here, *weight);
    n->output(0)->replaceAllUsesWith(out);
    rewritten_constants.emplace(n->input(0)->node(), first->path);
    n->destroy();
    for (ModulePlan* mp : owners) {
      mp->quantized = true;
      mp->op = op_here;
      mp->float_reason.clear();
    }
  });

  torch::jit::EliminateDeadCode(graph);
  // A constant still alive after its lookups were rewritten has another use
  // (a tied output projection that stays float): its float copy stays.
  std::vector<std::string> warnings = fallbacks;
  std::set<const torch::jit::Node*> alive;
  for_each_node(graph->block(), [&](torch::jit::Node* n) { alive.insert(n); });
  for (const auto& [node, path] : rewritten_constants)
    if (alive.count(node))
      warnings.push_back("the float weight of " + shown(path) +
                         " stays in the model beside its quantized rows: another op uses it (a tied weight)");
  return warnings;
}

}  // namespace bertq
