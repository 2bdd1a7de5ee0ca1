// Quantized engines: the kernel libraries that pack and run quantized
// weights. Which ones a LibTorch has is asked of LibTorch (convert/quantize.h);
// the names are known here so that option parsing needs no LibTorch.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace bertq {

// PyTorch's names: onednn and qnnpack in every Debian build; x86 (fbgemm
// with onednn) and fbgemm exist in pytorch.org's builds.
enum class Engine { OneDNN, QNNPACK, X86, FBGEMM };

std::string to_string(Engine engine);
// The engine called `name`, if bertq knows the name.
std::optional<Engine> engine_from_name(const std::string& name);
// Every name bertq knows, in preference order.
const std::vector<std::string>& engine_names();

}  // namespace bertq
