// Observer modules for PyTorch's quantization passes, built in C++.
//
// Python's quantize_dynamic_jit scripts the observer classes of
// torch/ao/quantization/observer.py and hands them to the passes. bertq has no
// Python, so it defines TorchScript classes with the same names, attributes and
// methods, whose calculate_qparams computes exactly what PyTorch 1.13's does.
#pragma once

#include <memory>

#include "qconfig/qconfig.h"

namespace torch::jit {
struct Module;
struct CompilationUnit;
}  // namespace torch::jit

namespace bertq {

// A fresh observer module for `spec`, compiled into `cu`. Its type is named
// like PyTorch's (`__torch__.torch.ao.quantization.observer.MinMaxObserver`,
// mangled per instance) because the passes recognise a placeholder by name.
torch::jit::Module make_observer(const ObserverSpec& spec, const std::shared_ptr<torch::jit::CompilationUnit>& cu);

// True if `type_name` is one of the observer classes above (or PyTorch's).
bool is_observer_type_name(const std::string& type_name);

}  // namespace bertq
