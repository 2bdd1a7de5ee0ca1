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

}  // namespace bertq
