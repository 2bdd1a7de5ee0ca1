#include "quantize.h"

#include <ATen/Context.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/fold_conv_bn.h>
#include <torch/csrc/jit/passes/quantization/finalize.h>
#include <torch/csrc/jit/passes/quantization/insert_observers.h>
#include <torch/csrc/jit/passes/quantization/insert_quant_dequant.h>
#include <torch/script.h>

#include "error.h"
#include "observers.h"
#include "text_util.h"

namespace bertq {
namespace {

at::QEngine to_qengine(Engine e) {
  return e == Engine::OneDNN ? at::QEngine::ONEDNN : at::QEngine::QNNPACK;
}

// PyTorch's script_qconfig_dict: every entry gets its own observer instances,
// which the passes deep-copy for each value they observe.
torch::jit::QConfigDict script_qconfig_dict(const QConfigDict& dict) {
  // Observers live in their own compilation unit, as Python's do, so that
  // compiling them does not advance the model's type-name mangling counter.
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::QConfigDict out;
  for (const auto& e : dict.entries) {
    if (!e.qconfig) {
      out.emplace(e.key, c10::nullopt);
      continue;
    }
    out.emplace(e.key, torch::jit::QConfig(make_observer(e.qconfig->activation, cu),
                                           make_observer(e.qconfig->weight, cu)));
  }
  return out;
}

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

}  // namespace

std::string to_string(Engine engine) { return engine == Engine::OneDNN ? "onednn" : "qnnpack"; }

std::vector<Engine> available_engines() {
  std::vector<Engine> out;
  const auto& supported = at::globalContext().supportedQEngines();
  for (Engine e : {Engine::OneDNN, Engine::QNNPACK})
    if (std::find(supported.begin(), supported.end(), to_qengine(e)) != supported.end())
      out.push_back(e);
  return out;
}

Engine parse_engine(const std::string& name) {
  std::vector<std::string> names;
  for (Engine e : available_engines()) {
    names.push_back(to_string(e));
    if (name == to_string(e)) return e;
  }
  throw Error(ErrorKind::Usage, "unknown or unavailable engine \"" + name + "\"",
              "this LibTorch has: " + join(names, ", "));
}

Engine default_engine() {
  const auto engines = available_engines();
  if (engines.empty())
    throw Error(ErrorKind::Unsupported, "this LibTorch has no quantized engine (onednn or qnnpack)");
  return engines.front();
}

void set_engine(Engine engine) { at::globalContext().setQEngine(to_qengine(engine)); }

torch::jit::Module prepare_dynamic_jit(const torch::jit::Module& model, const QConfigDict& qconfig_dict) {
  check_forward(model);
  auto scripted = script_qconfig_dict(qconfig_dict);
  // fuse_conv_bn_jit: a clone, with any Conv-BatchNorm pairs folded.
  torch::jit::Module fused = torch::jit::FoldConvBatchNorm(model);
  return torch::jit::InsertObservers(fused, "forward", scripted, /*inplace=*/false,
                                     torch::jit::QuantType::DYNAMIC);
}

torch::jit::Module convert_dynamic_jit(torch::jit::Module& prepared, bool inplace, bool debug) {
  check_forward(prepared);
  prepared.eval();
  torch::jit::Module m = torch::jit::InsertQuantDeQuant(prepared, "forward", inplace, debug,
                                                        torch::jit::QuantType::DYNAMIC);
  if (!debug) {
    // Packs the weights for the current engine and freezes the module.
    m = torch::jit::Finalize(m, torch::jit::QuantType::DYNAMIC, {});
  }
  propagate_constants_and_dce(m);
  return m;
}

torch::jit::Module quantize_dynamic_jit(const torch::jit::Module& model, const QConfigDict& qconfig_dict,
                                        bool debug) {
  torch::jit::Module prepared = prepare_dynamic_jit(model, qconfig_dict);
  torch::jit::Module m = convert_dynamic_jit(prepared, /*inplace=*/true, debug);
  propagate_constants_and_dce(m);
  return m;
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
