#include "convert/quantize.h"

#include <ATen/Context.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/fold_conv_bn.h>
#include <torch/csrc/jit/passes/quantization/finalize.h>
#include <torch/csrc/jit/passes/quantization/insert_observers.h>
#include <torch/csrc/jit/passes/quantization/insert_quant_dequant.h>
#include <torch/script.h>

#include <map>
#include <optional>
#include <unordered_map>

#include "base/error.h"
#include "base/text.h"
#include "convert/observers.h"
#include "jit/torch_compat.h"

namespace bertq {
namespace {

// PyTorch's script_qconfig_dict: every entry gets its own observer instances,
// which the passes deep-copy for each value they observe.
torch::jit::QConfigDict script_qconfig_dict(const QConfigDict& dict) {
  // Observers live in their own compilation unit, as Python's do, so that
  // compiling them does not advance the model's type-name mangling counter.
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::QConfigDict out;
  std::vector<std::pair<const QConfig*, torch::jit::QConfig>> made;
  for (const auto& e : dict.entries) {
    if (!e.qconfig) {
      out.emplace(e.key, c10::nullopt);
      continue;
    }
    // full_range_activations is bertq's, applied after the passes: to them,
    // an entry that differs from another only there is the same qconfig, and
    // gets the same observers. (Siblings reading one value, BERT's query, key
    // and value, must have one activation observer, or InsertObservers
    // fails, in Python too.)
    const QConfig& q = *e.qconfig;
    std::optional<torch::jit::QConfig> same;
    for (const auto& [other, observers] : made)
      if ((q.full_range_activations || other->full_range_activations) && q.activation == other->activation &&
          q.weight == other->weight)
        same = observers;
    if (!same) same = torch::jit::QConfig(make_observer(q.activation, cu), make_observer(q.weight, cu));
    made.emplace_back(&q, *same);
    out.emplace(e.key, *same);
  }
  return out;
}

// PyTorch's prepare clones the model twice (fuse_conv_bn_jit, then
// InsertObservers), deep-copying every weight: for BERT-base that is 876 MB
// of copies that are thrown away. The clones must still happen, because they
// give the model's classes their mangled names (`___torch_mangle_N`) and the
// output has to match Python's byte for byte. So a caller that is done with
// the float model lets its tensors be set aside while PyTorch clones, and
// handed to the clone afterwards. (The model must not keep them: the pickler
// memoizes tensors held twice, which would change the saved bytes.)
//
// Sharing a tensor is equivalent to copying it only if the copy would be laid
// out the same: offset 0, a storage exactly its size, dense strides, and no
// other attribute on the same storage (Module::clone unties tied weights, so
// the output holds them twice). Conv-BatchNorm folding reads weights, so
// models with BatchNorm are cloned the ordinary way.
class TensorsAside {
 public:
  // Returns nullopt if any tensor of `m` is not safe to share (see above).
  static std::optional<TensorsAside> take(torch::jit::Module& m) {
    TensorsAside aside;
    std::unordered_map<const c10::StorageImpl*, const c10::TensorImpl*> owner;
    for (const auto& child : m.named_modules()) {
      const auto type_name = child.value.type()->name()->qualifiedName();
      if (type_name.find("BatchNorm") != std::string::npos) return std::nullopt;
      const auto& type = child.value.type();
      for (size_t i = 0; i < type->numAttributes(); ++i) {
        const c10::IValue slot = child.value._ivalue()->getSlot(i);
        if (!slot.isTensor() || !slot.toTensor().defined()) continue;
        const at::Tensor& t = slot.toTensor();
        if (t.is_quantized() || t.is_sparse() || t.is_mkldnn() || t.storage_offset() != 0 ||
            !t.is_non_overlapping_and_dense() ||
            t.storage().nbytes() != static_cast<size_t>(t.numel()) * t.element_size())
          return std::nullopt;
        // A storage held twice (a tied weight, even through one tensor): the
        // clone would copy it twice, and the output must hold it twice too.
        if (!owner.emplace(t.storage().unsafeGetStorageImpl(), t.unsafeGetTensorImpl()).second) return std::nullopt;
        aside.slots_.push_back({child.name, type->getAttributeName(i), t});
      }
    }
    // Only now that every tensor qualified: leave empty stand-ins behind.
    std::map<std::string, torch::jit::Module> by_path;
    for (const auto& child : m.named_modules()) by_path.emplace(child.name, child.value);
    for (const auto& s : aside.slots_) {
      at::Tensor stand_in = at::empty({0}, s.tensor.options());
      stand_in.set_requires_grad(s.tensor.requires_grad());
      by_path.at(s.path).setattr(s.attr, stand_in);
    }
    return aside;
  }

  // Puts the tensors into `clone`, a clone of the module they were taken
  // from, or back into that module.
  void give_to(torch::jit::Module& clone) const {
    std::map<std::string, torch::jit::Module> by_path;
    for (const auto& child : clone.named_modules()) by_path.emplace(child.name, child.value);
    for (const auto& s : slots_) by_path.at(s.path).setattr(s.attr, s.tensor);
  }

 private:
  struct Slot {
    std::string path;
    std::string attr;
    at::Tensor tensor;
  };
  TensorsAside() = default;
  std::vector<Slot> slots_;
};

void check_forward(const torch::jit::Module& m) {
  if (!m.find_method("forward"))
    throw Error(ErrorKind::Model, "the model has no forward method",
                "bertq quantizes what forward computes; trace or script a module with forward");
}

// The cleanup quantize_jit.py runs on the forward graph after converting.
void propagate_constants_and_dce(torch::jit::Module& m) {
  auto graph = m.get_method("forward").graph();
  torch::jit::ConstantPropagation(graph);
  torch::jit::EliminateDeadCode(graph);
}

// prepare_dynamic_jit's passes. With `aside`, the tensors of `model` were
// set aside and go to the prepared model instead of being copied.
torch::jit::Module run_prepare(torch::jit::Module& model, const QConfigDict& qconfig_dict,
                               std::optional<TensorsAside> aside) {
  check_forward(model);
  auto scripted = script_qconfig_dict(qconfig_dict);
  // fuse_conv_bn_jit: a clone, with any Conv-BatchNorm pairs folded.
  torch::jit::Module fused = torch::jit::FoldConvBatchNorm(model);
  torch::jit::Module prepared =
      torch::jit::InsertObservers(fused, "forward", scripted, /*inplace=*/false, torch::jit::QuantType::DYNAMIC);
  if (aside) aside->give_to(prepared);
  return prepared;
}

}  // namespace

torch::jit::Module prepare_dynamic_jit(const torch::jit::Module& model, const QConfigDict& qconfig_dict) {
  torch::jit::Module m = model;  // a handle; the passes clone before changing anything
  return run_prepare(m, qconfig_dict, std::nullopt);
}

torch::jit::Module prepare_dynamic_jit_consuming(torch::jit::Module& model, const QConfigDict& qconfig_dict) {
  check_forward(model);
  // Any extra clone here would shift the mangled class names, so the
  // tensors are taken from the model itself, which keeps only stand-ins.
  return run_prepare(model, qconfig_dict, TensorsAside::take(model));
}

torch::jit::Module prepare_dynamic_jit_sharing(torch::jit::Module& model, const QConfigDict& qconfig_dict) {
  check_forward(model);
  std::optional<TensorsAside> aside = TensorsAside::take(model);
  if (!aside) return run_prepare(model, qconfig_dict, std::nullopt);
  try {
    torch::jit::Module prepared = run_prepare(model, qconfig_dict, aside);
    aside->give_to(model);
    return prepared;
  } catch (...) {
    aside->give_to(model);
    throw;
  }
}

torch::jit::Module convert_dynamic_jit(torch::jit::Module& prepared, bool inplace, bool debug) {
  check_forward(prepared);
  prepared.eval();
  torch::jit::Module m =
      torch::jit::InsertQuantDeQuant(prepared, "forward", inplace, debug, torch::jit::QuantType::DYNAMIC);
  if (!debug) {
    // Packs the weights for the current engine and freezes the module.
    m = torch::jit::Finalize(m, torch::jit::QuantType::DYNAMIC, {});
  }
  propagate_constants_and_dce(m);
  return m;
}

torch::jit::Module convert_prepared_for_quantize(torch::jit::Module& prepared, bool debug) {
  torch::jit::Module m = convert_dynamic_jit(prepared, /*inplace=*/true, debug);
  // _quantize_jit cleans the forward graph once more after converting.
  propagate_constants_and_dce(m);
  return m;
}

torch::jit::Module quantize_dynamic_jit(const torch::jit::Module& model, const QConfigDict& qconfig_dict, bool debug) {
  torch::jit::Module prepared = prepare_dynamic_jit(model, qconfig_dict);
  return convert_prepared_for_quantize(prepared, debug);
}

bool is_prepared(const torch::jit::Module& model) {
  for (const auto& child : model.named_modules()) {
    const auto& type_name = child.value.type()->name();
    if (child.name.find("_observer_") != std::string::npos && type_name &&
        is_observer_type_name(type_name->qualifiedName()))
      return true;
  }
  return false;
}

}  // namespace bertq
