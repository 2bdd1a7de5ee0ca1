#include "qconfig/engine.h"

namespace bertq {

namespace {
struct Named {
  Engine engine;
  const char* name;
};
// Preference order for the default: onednn is the fastest engine Debian's
// LibTorch has for int8 Linear on x86; x86 and fbgemm come first where present.
constexpr Named kEngines[] = {
    {Engine::X86, "x86"}, {Engine::FBGEMM, "fbgemm"}, {Engine::OneDNN, "onednn"}, {Engine::QNNPACK, "qnnpack"}};
}  // namespace

std::string to_string(Engine engine) {
  for (const auto& e : kEngines)
    if (e.engine == engine) return e.name;
  return "?";
}

std::optional<Engine> engine_from_name(const std::string& name) {
  for (const auto& e : kEngines)
    if (name == e.name) return e.engine;
  return std::nullopt;
}

const std::vector<std::string>& engine_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& e : kEngines) out.push_back(e.name);
    return out;
  }();
  return names;
}

}  // namespace bertq
