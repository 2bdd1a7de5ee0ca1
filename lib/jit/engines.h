// The quantized engines this LibTorch has, and choosing one. The names alone
// (no LibTorch) are in qconfig/engine.h, so that option parsing needs none.
#pragma once

#include <string>
#include <vector>

#include "qconfig/engine.h"

namespace bertq {

// The engine called `name`. Throws Error(Usage) for a name bertq does not
// know (with a did-you-mean) and Error(Unsupported) for one this LibTorch was
// built without, listing those it has.
Engine parse_engine(const std::string& name);
// Engines this LibTorch was built with, best first.
std::vector<Engine> available_engines();
// The engine bertq uses without --engine: the best one available.
Engine default_engine();
// Sets at::globalContext().setQEngine; packed weights are created for it.
void set_engine(Engine engine);

// Why quantized::linear_dynamic with full 8-bit activations (reduce_range
// False) may be wrong on `engine` here, or "" when it is exact. An int8
// kernel that sums pairs of u8 x s8 products in 16 bits with saturation
// (vpmaddubsw: oneDNN and fbgemm on x86 without VNNI) overflows on 8-bit
// inputs (2 x 255 x 128 > 32767); PyTorch's 7-bit activations cannot. VNNI
// (and AMX) accumulate in 32 bits, and qnnpack widens to 16 bits before it
// multiplies (it ignores reduce_range and always uses 8 bits). For onednn
// this asks oneDNN which instructions it runs, so ONEDNN_MAX_CPU_ISA counts.
std::string full_range_refusal(Engine engine);
// Throws Error(Unsupported) with that reason, and `hint`, unless it is "".
void require_full_range(Engine engine, const std::string& hint);

}  // namespace bertq
