// Measures what a conversion did, module by module: the quantized weight's
// dtype, qscheme, scales and zero points, its error against the float weight,
// the packed-params attribute that replaced it, and the bytes each module
// owns in the input and output files.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "report.h"

namespace torch::jit {
struct Module;
}

namespace bertq {

// The float weight and bias of each weight-bearing module, captured before
// conversion (which may consume the model). Holding them costs no copy.
struct FloatTensors {
  struct Entry {
    at::Tensor weight;
    std::optional<at::Tensor> bias;
  };
  std::map<std::string, Entry> by_path;
};

FloatTensors capture_float_tensors(const torch::jit::Module& model, const Plan& plan);

// What measure_output needs to recognise a module's float tensors in the
// written archive: their size and a content hash. The tensors themselves must
// not be held while saving: TorchScript's pickler memoizes tensors that
// something else also holds, which would change the archive's bytes.
struct FloatFingerprints {
  struct Print {
    uint64_t nbytes = 0;
    uint64_t hash = 0;
  };
  std::map<std::string, std::vector<Print>> by_path;
};

FloatFingerprints fingerprint(const FloatTensors& floats);

// A debug model's quantization parameters for a module's weight, stored by
// InsertQuantDeQuant as attributes named after the graph value
// (`weight.2_scale_0`, `weight.2_zero_point_0`, `weight.2_axis_0`, ...).
struct DebugQParams {
  c10::IValue scale;       // a tensor (per-channel) or a double
  c10::IValue zero_point;  // a tensor (per-channel) or an int
  std::optional<int64_t> axis;
  at::ScalarType dtype = at::kQInt8;
};
std::optional<DebugQParams> find_debug_qparams(const torch::jit::Module& module);

// The weight quantized with a debug model's parameters, as the final model would hold it.
at::Tensor quantize_with(const at::Tensor& float_weight, const DebugQParams& q);

// The int8 weight and bias inside a packed-params attribute of a final model.
std::pair<at::Tensor, std::optional<at::Tensor>> unpack_linear(const torch::jit::Module& model,
                                                              const std::string& attr);

// A quantized tensor's quantization parameters, per channel or per tensor
// (one scale and zero point).
struct QParams {
  std::optional<int64_t> axis;
  std::vector<double> scales;
  std::vector<double> zero_points;
};
QParams qparams_of(const at::Tensor& quantized);

// dtype names as Python prints them: "qint8", "quint8", "float32", "float16".
std::string dtype_name(at::ScalarType type);

// Names of the root attributes holding packed Linear params, in creation order.
std::vector<std::string> packed_linear_attrs(const torch::jit::Module& model);

// Fills each module's report from the converted model in memory (final,
// debug or prepared); sets packed_attr for final models. Drops from `floats`
// the weights of packed modules once described: nothing needs them after.
void describe_modules(std::vector<ModuleReport>& modules, FloatTensors& floats,
                      const torch::jit::Module& converted);

// The input file's breakdown and each module's bytes_before. An input loaded
// by torch::jit::load has one storage per tensor record, so distinct storages
// are distinct records.
SizeBreakdown measure_input(const std::string& path, std::vector<ModuleReport>& modules,
                            const FloatTensors& floats);

// The output file's breakdown and each module's bytes_after: every tensor
// record of the written archive is matched by content to the tensors a module
// owns in `converted`; records no module owns count as other tensors.
SizeBreakdown measure_output(const std::string& path, std::vector<ModuleReport>& modules,
                             const FloatFingerprints& floats, const torch::jit::Module& converted);

// Estimated output breakdown for a dry run: input size minus the float weights
// that will be quantized plus their int8 weights, scales and zero points.
SizeBreakdown estimate_output(const SizeBreakdown& input, std::vector<ModuleReport>& modules);

}  // namespace bertq
