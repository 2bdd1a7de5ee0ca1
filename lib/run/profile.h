// `bertq bench --profile`: where a model's forward spends its time, and how
// far the quantized model is from what its int8 matrix products alone cost.
//
// Times come from LibTorch's RecordFunction hooks (what torch.profiler is
// built on): every operator the interpreter runs, with self time (its own,
// without the operators it called). The int8 bound is measured in the same
// process right after: each quantized::linear_dynamic shape the model ran
// (M x K -> N) is run alone on random data, best of several, and the bound
// is the sum over the model's calls. quantized / bound then says how much of
// the forward is something other than int8 GEMM.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

namespace torch::jit {
struct Module;
}
namespace c10 {
struct IValue;
}

namespace bertq {

struct OpTime {
  std::string op;      // "quantized::linear_dynamic", "aten::softmax", ...
  double calls = 0;    // per forward
  double self_ms = 0;  // per forward
};

struct ModuleTime {
  std::string module;  // "bert.encoder.layer.*.attention.self" (layer numbers folded), or "(graph)"
  double self_ms = 0;  // per forward: the self time of the operators it ran
};

struct GemmShape {
  int64_t m = 0, k = 0, n = 0;  // input rows, input width, output features
  double calls = 0;             // per forward
  double ms_in_model = 0;       // per forward, inside the model
  double best_ms = 0;           // one call alone, best of the trials
  bool reduce_range = true;     // as the model called it
  double gops() const { return 2.0 * double(m) * double(k) * double(n) * 1e-9; }
};

struct ModelProfile {
  std::string model;
  int iterations = 0;
  double forward_ms = 0;            // per forward while profiled (the hooks cost a little)
  std::vector<OpTime> ops;          // by self time, largest first
  std::vector<ModuleTime> modules;  // by self time, largest first
  std::vector<GemmShape> gemms;     // int8 linears, by time in the model
  double int8_bound_ms = 0;         // sum of calls x best_ms
};

// Profiles `iterations` forwards of `model` on `inputs` (after the caller's
// warm-up). `names` maps packed-params attributes to module names (from the
// bertq manifest) so that a frozen model's linears are named; other
// operators are named by the module the interpreter is in, if it knows.
ModelProfile profile_forward(torch::jit::Module& model, const std::vector<c10::IValue>& inputs, int iterations,
                             const std::map<std::string, std::string>& names);

// Measures each int8 shape of `profile` alone (quantized::linear_dynamic with
// the current engine) and fills best_ms and int8_bound_ms.
void measure_int8_bound(ModelProfile& profile, int trials = 10);

void print_profile(const ModelProfile& profile, std::ostream& out, size_t top = 12);

}  // namespace bertq
