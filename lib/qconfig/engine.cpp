#include "qconfig/engine.h"

#include "base/enum_names.h"

namespace bertq {

namespace {
// Preference order for the default: onednn is the fastest engine Debian's
// LibTorch has for int8 Linear on x86; x86 and fbgemm come first where present.
const EnumNames<Engine>& engine_table() {
  static const EnumNames<Engine> names{
      {Engine::X86, "x86"}, {Engine::FBGEMM, "fbgemm"}, {Engine::OneDNN, "onednn"}, {Engine::QNNPACK, "qnnpack"}};
  return names;
}
}  // namespace

std::string to_string(Engine engine) { return engine_table().name(engine); }

std::optional<Engine> engine_from_name(const std::string& name) { return engine_table().find(name); }

const std::vector<std::string>& engine_names() { return engine_table().names(); }

}  // namespace bertq
