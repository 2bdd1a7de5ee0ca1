// Every difference between the LibTorch versions bertq supports, in one place.
// The rest of the code calls these and never tests TORCH_VERSION itself.
#pragma once

#include <ATen/Context.h>
#include <torch/version.h>

#include <optional>

namespace bertq::compat {

// LibTorch 2.x's version as numbers, for the few decisions below.
constexpr int kTorchMajor = TORCH_VERSION_MAJOR;
constexpr int kTorchMinor = TORCH_VERSION_MINOR;

// QEngine::X86 (fbgemm and onednn behind one name) exists from PyTorch 2.0.
inline std::optional<at::QEngine> x86_qengine() {
#if TORCH_VERSION_MAJOR >= 2
  return at::QEngine::X86;
#else
  return std::nullopt;
#endif
}

}  // namespace bertq::compat
