// Every difference between the LibTorch versions bertq supports (1.13 and
// 2.x), in one place. The rest of the code calls these and never tests
// TORCH_VERSION itself. docs/libtorch.md says what differs and why.
#pragma once

#include <ATen/Context.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

#include <functional>
#include <optional>
#include <string>

namespace bertq::compat {

// QEngine::X86 (fbgemm and onednn behind one name) exists from PyTorch 2.0.
inline std::optional<at::QEngine> x86_qengine() {
#if TORCH_VERSION_MAJOR >= 2
  return at::QEngine::X86;
#else
  return std::nullopt;
#endif
}

// Which bertq to suggest for a model that uses an operator this LibTorch
// lacks: on 1.13, any 2.x build; on 2.x, a later one.
constexpr const char* kNewerLibTorch = TORCH_VERSION_MAJOR >= 2 ? "a newer LibTorch" : "LibTorch 2.x";

// How the passes tell a dynamic activation observer: 1.13 reads its
// `compute_dtype` attribute; 2.x reads a bool `is_dynamic` (observer.py's
// ObserverBase has it on every observer) and ignores compute_dtype.
constexpr bool kObserversHaveIsDynamic = TORCH_VERSION_MAJOR >= 2;

// c10's warning handler: 1.13 passes (location, message, verbatim); 2.x a
// c10::Warning. Forwards each message to `sink`.
class WarningForwarder : public c10::WarningHandler {
 public:
  explicit WarningForwarder(std::function<void(const std::string&)> sink) : sink_(std::move(sink)) {}
#if TORCH_VERSION_MAJOR >= 2
  void process(const c10::Warning& warning) override { sink_(warning.msg()); }
#else
  void process(const c10::SourceLocation&, const std::string& msg, const bool) override { sink_(msg); }
#endif

 private:
  std::function<void(const std::string&)> sink_;
};

inline void set_warning_handler(c10::WarningHandler* handler) {
#if TORCH_VERSION_MAJOR >= 2
  c10::WarningUtils::set_warning_handler(handler);
#else
  c10::Warning::set_warning_handler(handler);
#endif
}

}  // namespace bertq::compat
