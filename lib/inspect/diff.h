// `bertq diff A B`: compares the quantized weights of two models module by module.
#pragma once

#include <string>

#include "report/diff_result.h"

namespace bertq {

// Compares the quantized weights of two final or debug models: the set of
// quantized modules, and per module op, dtype, qscheme, axis, scales, zero
// points, integer weights and bias. Modules are paired by name when both
// files name them (bertq's manifest, or a debug model's module structure);
// otherwise final models are paired by packed-params attribute, so that a
// bertq output and Python's quantize_dynamic_jit output of the same model
// compare. Both files get the same archive checks as `convert`'s input.
DiffResult diff_models(const std::string& a, const std::string& b);

}  // namespace bertq
