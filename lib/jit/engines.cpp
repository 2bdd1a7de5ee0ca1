#include "jit/engines.h"

#include <ATen/Context.h>
#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>

#include "base/error.h"
#include "base/text.h"
#include "jit/torch_compat.h"

namespace bertq {
namespace {

// LibTorch's engine for `e`, if this LibTorch version defines it.
std::optional<at::QEngine> to_qengine(Engine e) {
  switch (e) {
    case Engine::OneDNN:
      return at::QEngine::ONEDNN;
    case Engine::QNNPACK:
      return at::QEngine::QNNPACK;
    case Engine::FBGEMM:
      return at::QEngine::FBGEMM;
    case Engine::X86:
      return compat::x86_qengine();
  }
  return std::nullopt;
}

}  // namespace

std::vector<Engine> available_engines() {
  std::vector<Engine> out;
  const auto& supported = at::globalContext().supportedQEngines();
  for (const auto& name : engine_names()) {
    const Engine e = *engine_from_name(name);
    const auto q = to_qengine(e);
    if (q && std::find(supported.begin(), supported.end(), *q) != supported.end()) out.push_back(e);
  }
  return out;
}

Engine parse_engine(const std::string& name) {
  std::vector<std::string> have;
  for (Engine e : available_engines()) have.push_back(to_string(e));
  const auto engine = engine_from_name(name);
  if (!engine) {
    throw Error(ErrorKind::Usage, "unknown engine " + quoted_value(name),
                did_you_mean(name, engine_names(), "this LibTorch has: " + join(have, ", ")));
  }
  for (Engine e : available_engines())
    if (e == *engine) return e;
  throw Error(ErrorKind::Unsupported, "engine " + name + " is not in this LibTorch (" + BERTQ_LIBTORCH_VERSION + ")",
              "this LibTorch has: " + join(have, ", ") + "; pack for the engine the model will run on");
}

Engine default_engine() {
  const auto engines = available_engines();
  if (engines.empty())
    throw Error(ErrorKind::Unsupported, "this LibTorch has no quantized engine (onednn, qnnpack, x86 or fbgemm)");
  return engines.front();
}

void set_engine(Engine engine) {
  const auto q = to_qengine(engine);
  if (!q) throw Error(ErrorKind::Unsupported, "engine " + to_string(engine) + " is not in this LibTorch");
  at::globalContext().setQEngine(*q);
}

std::string full_range_refusal(Engine engine) {
  switch (engine) {
    case Engine::QNNPACK:
      return "";
    case Engine::FBGEMM:
    case Engine::X86:
      return "fbgemm's int8 kernels sum u8 x s8 pairs in 16 bits, with saturation, on CPUs without VNNI, and bertq "
             "does not ask fbgemm which it runs";
    case Engine::OneDNN:
      break;
  }
  // oneDNN's dnnl_cpu_isa_t bits (v2 and v3 alike): AVX-512 core with VNNI is
  // 0x67, and every ISA above it (bf16, AMX, AVX10) has all of its bits; the
  // AVX2 VNNI variants do not, and are refused with the rest.
  using EffectiveIsa = int (*)();
  const auto isa = reinterpret_cast<EffectiveIsa>(dlsym(RTLD_DEFAULT, "dnnl_get_effective_cpu_isa"));
  if (!isa) return "bertq cannot ask this LibTorch's oneDNN which instructions it runs";
  const int bits = isa();
  constexpr int kAvx512Vnni = 0x67;
  if ((bits & kAvx512Vnni) == kAvx512Vnni) return "";
  return fmt::format(
      "oneDNN runs int8 products here without VNNI (its ISA 0x{:x}): it sums pairs of u8 x s8 products in 16 bits "
      "with saturation, which full 8-bit activations overflow; VNNI (AVX-512 VNNI or AMX) accumulates in 32 bits",
      bits);
}

void require_full_range(Engine engine, const std::string& hint) {
  if (const std::string why = full_range_refusal(engine); !why.empty())
    throw Error(ErrorKind::Unsupported,
                "full 8-bit activations would not be exact with engine " + to_string(engine) + " here: " + why, hint);
}

}  // namespace bertq
