#include "run/profile.h"

#include <ATen/record_function.h>
#include <fmt/format.h>
#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ostream>
#include <tuple>
#include <unordered_map>

#include "jit/qtensor.h"

namespace bertq {
namespace {

using Clock = std::chrono::steady_clock;

struct Frame {
  Clock::time_point start;
  double child_ms = 0;
  std::string module;
  bool gemm = false;
  bool reduce_range = true;
  std::tuple<int64_t, int64_t, int64_t> shape;  // N is known at the end, from the output
};

struct GemmAcc {
  int64_t calls = 0;
  double ms = 0;
  bool reduce_range = true;
};

// What the hooks gather. RecordFunction callbacks are plain functions, so the
// state is a global, set only while profile_forward runs on this thread (the
// callback is thread-local: intra-op worker threads are not hooked).
struct Gathered {
  std::vector<Frame> stack;
  std::unordered_map<std::string, std::pair<int64_t, double>> ops;  // calls, self ms
  std::unordered_map<std::string, double> modules;
  std::map<std::tuple<int64_t, int64_t, int64_t>, GemmAcc> gemms;
  std::unordered_map<const void*, std::string> packed_names;
  double top_level_ms = 0;
};
Gathered* g_state = nullptr;

constexpr const char* kLinearDynamic = "quantized::linear_dynamic";

// The interpreter names each frame "instance(Type)::method" ("TOP(...)" for
// the model itself, "5(BertLayer)::forward" for a ModuleList entry); the
// instance names joined make the module's path without its ModuleList
// ("bert.encoder.5.attention.self"). A frozen model has one frame: "".
std::string module_name(const std::vector<std::string>& hierarchy) {
  std::string out;
  for (const auto& h : hierarchy) {
    const std::string name = h.substr(0, std::min(h.find('('), h.find("::")));
    if (name.empty() || name == "TOP") continue;
    out += (out.empty() ? "" : ".") + name;
  }
  return out;
}

std::string fold_digits(const std::string& path) {
  std::string out, part;
  auto flush = [&] {
    const bool digits =
        !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    out += (out.empty() ? "" : ".") + (digits ? std::string("*") : part);
    part.clear();
  };
  for (char c : path) {
    if (c == '.')
      flush();
    else
      part += c;
  }
  flush();
  return out;
}

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  if (!g_state) return nullptr;
  Frame f;
  if (!g_state->stack.empty()) {
    f.module = g_state->stack.back().module;  // what an operator calls belongs to its caller's module
  } else {
    const auto inputs = fn.inputs();
    if (std::strcmp(fn.name(), kLinearDynamic) == 0 && inputs.size() >= 3 && inputs[0].isTensor()) {
      const auto it = g_state->packed_names.find(inputs[1].internalToPointer());
      if (it != g_state->packed_names.end()) f.module = it->second;
      const at::Tensor& x = inputs[0].toTensor();
      f.gemm = true;
      const int64_t k = x.dim() > 0 ? x.size(-1) : 1;
      std::get<0>(f.shape) = k > 0 ? x.numel() / k : 0;
      std::get<1>(f.shape) = k;
      if (inputs[2].isBool()) f.reduce_range = inputs[2].toBool();
    }
    if (f.module.empty()) f.module = module_name(torch::jit::currentModuleHierarchy());
    if (f.module.empty()) f.module = "(the model's own graph)";
  }
  f.start = Clock::now();
  g_state->stack.push_back(std::move(f));
  return nullptr;
}

void on_end(const at::RecordFunction& fn, at::ObserverContext*) {
  const auto now = Clock::now();
  if (!g_state || g_state->stack.empty()) return;
  Frame f = std::move(g_state->stack.back());
  g_state->stack.pop_back();
  const double total = std::chrono::duration<double, std::milli>(now - f.start).count();
  const double self = std::max(0.0, total - f.child_ms);
  auto& op = g_state->ops[fn.name()];
  ++op.first;
  op.second += self;
  g_state->modules[f.module] += self;
  if (!g_state->stack.empty()) {
    g_state->stack.back().child_ms += total;
  } else {
    g_state->top_level_ms += total;
    if (f.gemm && !fn.outputs().empty() && fn.outputs()[0].isTensor()) {
      std::get<2>(f.shape) = fn.outputs()[0].toTensor().size(-1);
      auto& acc = g_state->gemms[f.shape];
      acc.reduce_range = f.reduce_range;
      ++acc.calls;
      acc.ms += total;
    }
  }
}

}  // namespace

ModelProfile profile_forward(torch::jit::Module& model, const std::vector<c10::IValue>& inputs, int iterations,
                             const std::map<std::string, std::string>& names) {
  Gathered state;
  for (const auto& [attr, module] : names)
    if (auto v = packed_value(model, attr)) state.packed_names[v->internalToPointer()] = module;
  ModelProfile p;
  p.iterations = iterations;
  g_state = &state;
  const auto handle = at::addThreadLocalCallback(at::RecordFunctionCallback(on_start, on_end)
                                                     .needsInputs(true)
                                                     .needsOutputs(true)
                                                     .scopes({at::RecordScope::FUNCTION}));
  const auto start = Clock::now();
  try {
    for (int i = 0; i < iterations; ++i) model.forward(inputs);
  } catch (...) {
    at::removeCallback(handle);
    g_state = nullptr;
    throw;
  }
  const double total = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  at::removeCallback(handle);
  g_state = nullptr;

  const double n = iterations;
  p.forward_ms = total / n;
  for (const auto& [op, v] : state.ops) p.ops.push_back({op, double(v.first) / n, v.second / n});
  // Time between operators: the interpreter, list and shape bookkeeping.
  p.ops.push_back({"(between operators)", 0, std::max(0.0, total - state.top_level_ms) / n});
  std::sort(p.ops.begin(), p.ops.end(), [](const OpTime& a, const OpTime& b) { return a.self_ms > b.self_ms; });
  std::map<std::string, double> folded;
  for (const auto& [m, ms] : state.modules) folded[fold_digits(m)] += ms / n;
  for (const auto& [m, ms] : folded) p.modules.push_back({m, ms});
  std::sort(p.modules.begin(), p.modules.end(),
            [](const ModuleTime& a, const ModuleTime& b) { return a.self_ms > b.self_ms; });
  for (const auto& [shape, acc] : state.gemms) {
    if (acc.calls == 0) continue;
    GemmShape g;
    std::tie(g.m, g.k, g.n) = shape;
    g.calls = double(acc.calls) / n;
    g.ms_in_model = acc.ms / n;
    g.reduce_range = acc.reduce_range;
    p.gemms.push_back(g);
  }
  std::sort(p.gemms.begin(), p.gemms.end(),
            [](const GemmShape& a, const GemmShape& b) { return a.ms_in_model > b.ms_in_model; });
  return p;
}

void measure_int8_bound(ModelProfile& p, int trials) {
  // Looked up once: only the call itself is timed.
  static const auto linear_dynamic = c10::Dispatcher::singleton().findSchemaOrThrow(kLinearDynamic, "");
  p.int8_bound_ms = 0;
  torch::NoGradGuard no_grad;
  for (auto& g : p.gemms) {
    // A per-channel int8 weight of the shape, as the conversion makes them.
    const at::Tensor w = at::randn({g.n, g.k}) * 0.05;
    const at::Tensor scales = (w.abs().amax(1) / 127).to(at::kDouble);
    const at::Tensor q = at::quantize_per_channel(w, scales, at::zeros({g.n}, at::kLong), 0, at::kQInt8);
    const c10::IValue packed = prepack_linear(q, std::nullopt);
    const at::Tensor x = at::randn({g.m, g.k});
    double best = 1e300;
    for (int i = 0; i < trials + 2; ++i) {
      const auto start = Clock::now();
      torch::jit::Stack stack{x, packed, g.reduce_range};
      linear_dynamic.callBoxed(&stack);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      if (i >= 2) best = std::min(best, ms);
    }
    g.best_ms = best;
    p.int8_bound_ms += g.calls * best;
  }
}

void print_profile(const ModelProfile& p, std::ostream& out, size_t top) {
  out << fmt::format("\nprofile of {}: {:.1f} ms per forward while profiled ({} forwards)\n", p.model, p.forward_ms,
                     p.iterations);
  out << fmt::format("  {:<34} {:>9} {:>10} {:>7}\n", "OPERATOR (self time)", "calls", "ms", "share");
  double shown = 0;
  for (size_t i = 0; i < p.ops.size() && i < top; ++i) {
    const auto& o = p.ops[i];
    out << fmt::format("  {:<34} {:>9.0f} {:>10.1f} {:>6.1f}%\n", o.op, o.calls, o.self_ms,
                       100 * o.self_ms / p.forward_ms);
    shown += o.self_ms;
  }
  if (p.ops.size() > top)
    out << fmt::format("  {:<34} {:>9} {:>10.1f} {:>6.1f}%\n", fmt::format("({} more)", p.ops.size() - top), "",
                       p.forward_ms - shown, 100 * (p.forward_ms - shown) / p.forward_ms);
  out << fmt::format("  {:<58} {:>10} {:>7}\n", "MODULE (self time of its operators; * = every layer)", "ms", "share");
  for (size_t i = 0; i < p.modules.size() && i < top; ++i)
    out << fmt::format("  {:<58} {:>10.1f} {:>6.1f}%\n", p.modules[i].module, p.modules[i].self_ms,
                       100 * p.modules[i].self_ms / p.forward_ms);
  if (p.gemms.empty()) return;
  out << "  int8 linears (quantized::linear_dynamic, input quantization included) against each shape run alone:\n";
  out << fmt::format("  {:>6} {:>6} {:>6} {:>7} {:>12} {:>12} {:>9} {:>8}\n", "M", "K", "N", "calls", "ms in model",
                     "ms alone", "GOP/s", "ratio");
  double in_model = 0;
  for (const auto& g : p.gemms) {
    in_model += g.ms_in_model;
    out << fmt::format("  {:>6} {:>6} {:>6} {:>7.0f} {:>12.1f} {:>12.1f} {:>9.0f} {:>8.2f}\n", g.m, g.k, g.n, g.calls,
                       g.ms_in_model, g.calls * g.best_ms, g.gops() / (g.best_ms * 1e-3),
                       g.ms_in_model / (g.calls * g.best_ms));
  }
  out << fmt::format(
      "  int8 bound {:.1f} ms (every linear at its best alone); the linears take {:.1f} ms in the model; "
      "forward / bound {:.2f}\n",
      p.int8_bound_ms, in_model, p.forward_ms / p.int8_bound_ms);
}

}  // namespace bertq
