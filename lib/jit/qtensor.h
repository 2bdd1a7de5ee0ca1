// Quantized tensors as bertq reads them back from a converted model: the
// packed weights of a final model, the stored qparams of a debug model, and
// the scales and zero points of either. Shared by the report, inspect and
// diff, so that all three show one truth.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace torch::jit {
struct Module;
struct Node;
}  // namespace torch::jit

namespace bertq {

// What a loaded model is: float, prepared (observers), debug (float weights
// with stored qparams) or final (packed weights, quantized ops).
enum class ModelKind { Float, Prepared, Debug, Final };
std::string to_string(ModelKind kind);
ModelKind model_kind(const torch::jit::Module& model);

// Quantized weights counted in a converted model itself: quantized ops in a
// final model's graph, weight quantize nodes with stored qparams in a debug
// model, weight observers in a prepared one. What `convert` reports as
// quantized must equal this.
size_t count_quantized_weights(const torch::jit::Module& model, ModelKind kind);

// True for the per-channel qschemes (affine, symmetric, float qparams).
bool is_per_channel(const at::Tensor& quantized);

// The integer values of a quantized tensor without copying them where
// possible (int_repr() copies). The view is valid while `q` lives.
at::Tensor int_values(const at::Tensor& q);

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

// The quantized weight and bias inside a packed-params attribute of a final
// model: a Linear's int8 weight and bias, or an embedding's rows (no bias).
std::pair<at::Tensor, std::optional<at::Tensor>> unpack_packed(const torch::jit::Module& model,
                                                               const std::string& attr);

// Rows [begin, end) of an unpacked Linear weight and its bias: one module's
// part of a packed weight that --fuse-qkv made for several (its own scales,
// zero points and bias, as before the fusion; the qscheme is per channel).
std::pair<at::Tensor, std::optional<at::Tensor>> member_rows(
    const std::pair<at::Tensor, std::optional<at::Tensor>>& unpacked, int64_t begin, int64_t end);

// A manifest module's quantized weight and bias in the final model `model`
// (read from `model_path`): its packed params `attr`, or, for a module that
// --fuse-qkv fused, its own `fused_rows` of them. Throws Error(Model) if the
// manifest names params the model does not hold, or rows beyond a Linear's.
std::pair<at::Tensor, std::optional<at::Tensor>> unpack_module(
    const torch::jit::Module& model, const std::string& model_path, const std::string& module_path,
    const std::string& attr, const std::optional<std::pair<int64_t, int64_t>>& fused_rows);

// The scale (float64) and zero point (int64) of each row of a weight
// quantized per row or per tensor (repeated for every row).
std::pair<at::Tensor, at::Tensor> row_qparams(const at::Tensor& quantized);

// quantized::linear_prepack(qweight, bias) for the current engine: a Linear's
// packed params, as PyTorch's passes make them.
c10::IValue prepack_linear(const at::Tensor& qweight, const std::optional<at::Tensor>& bias);

// True if `v` holds a packed Linear weight (LinearPackedParamsBase).
bool is_packed_linear(const c10::IValue& v);

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

// Names of a final model's packed Linear params and packed embedding rows:
// the root attributes holding them, in creation order, then those a frozen
// graph holds as constants (freezing a scripted model with loops leaves them
// there), named "<constant K>" by first use in forward.
std::vector<std::string> packed_weight_attrs(const torch::jit::Module& model);

// The quantized::linear_dynamic calls of a final model's forward, each with
// the name packed_weight_attrs gives the packed weight it reads.
struct LinearCall {
  torch::jit::Node* node = nullptr;
  std::string packed;
};
std::vector<LinearCall> linear_dynamic_calls(const torch::jit::Module& model);

// The packed weights whose every linear_dynamic call quantizes its input to
// the full 8 bits (reduce_range a constant False), as LibTorch will run them:
// read from the graph, so it holds for models bertq did not write too.
std::vector<std::string> full_range_linears(const torch::jit::Module& model);

// The packed params a name from packed_weight_attrs stands for; nullopt if
// the model holds none under that name.
std::optional<c10::IValue> packed_value(const torch::jit::Module& model, const std::string& name);

}  // namespace bertq
