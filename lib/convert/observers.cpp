#include "convert/observers.h"

#include <torch/script.h>

#include <limits>

#include "jit/torch_compat.h"

namespace bertq {
namespace {

constexpr const char* kNamespace = "__torch__.torch.ao.quantization.observer.";

// check_min_max_valid and UniformQuantizationObserverBase._calculate_qparams of
// PyTorch 1.13 (torch/ao/quantization/utils.py, observer.py), op for op: every
// tensor operation and its order matter for bit-identical scales. Integer codes
// stand for torch.qscheme / torch.dtype values, which the C++ resolver lacks:
// qscheme 2 per_tensor_symmetric, 3 per_channel_symmetric,
// 4 per_channel_affine_float_qparams; dtype 13 quint8, 3 int32, 4 int64.
constexpr const char* kCalculateQParams = R"JIT(
def _calculate_qparams(self, min_val: Tensor, max_val: Tensor) -> Tuple[Tensor, Tensor]:
    if min_val.numel() == 0 or max_val.numel() == 0:
        return torch.tensor([1.0]), torch.tensor([0])
    if min_val.dim() == 0 or max_val.dim() == 0:
        if bool(min_val == float("inf")) and bool(max_val == float("-inf")):
            return torch.tensor([1.0]), torch.tensor([0])
        assert bool(min_val <= max_val), "observed minimum is greater than maximum (does the weight contain NaN?)"
    else:
        assert bool(torch.all(min_val <= max_val)), "observed minimum is greater than maximum (does the weight contain NaN?)"
    quant_min = self.quant_min
    quant_max = self.quant_max
    min_val_neg = torch.min(min_val, torch.zeros_like(min_val))
    max_val_pos = torch.max(max_val, torch.zeros_like(max_val))
    zero_point = torch.zeros(min_val_neg.size(), dtype=4)
    if self.qscheme == 2 or self.qscheme == 3:
        max_val_pos = torch.max(-min_val_neg, max_val_pos)
        scale = max_val_pos / (float(quant_max - quant_min) / 2)
        scale = torch.max(scale, self.eps)
        if self.dtype == 13:
            if self.has_customized_qrange:
                zero_point = zero_point.new_full(zero_point.size(), (quant_min + quant_max) // 2)
            else:
                zero_point = zero_point.new_full(zero_point.size(), 128)
    elif self.qscheme == 4:
        scale = (max_val - min_val) / float(quant_max - quant_min)
        scale = torch.where(scale > self.eps, scale, torch.ones_like(scale))
        zero_point = -1 * min_val / scale
    else:
        scale = (max_val_pos - min_val_neg) / float(quant_max - quant_min)
        scale = torch.max(scale, self.eps)
        zero_point = quant_min - torch.round(min_val_neg / scale).to(3)
        zero_point = torch.clamp(zero_point, quant_min, quant_max)
    if len(scale.shape) == 0:
        scale = torch.tensor([float(scale)], dtype=scale.dtype)
    if len(zero_point.shape) == 0:
        zero_point = torch.tensor([int(zero_point)], dtype=zero_point.dtype)
        if self.qscheme == 4:
            zero_point = torch.tensor([float(zero_point)], dtype=zero_point.dtype)
    return scale, zero_point

def calculate_qparams(self) -> Tuple[Tensor, Tensor]:
    return self._calculate_qparams(self.min_val, self.max_val)
)JIT";

// MinMaxObserver.forward / reset_min_max_vals.
constexpr const char* kMinMaxForward = R"JIT(
def forward(self, x_orig: Tensor) -> Tensor:
    if x_orig.numel() == 0:
        return x_orig
    x = x_orig.detach()
    x = x.to(self.min_val.dtype)
    min_val_cur, max_val_cur = torch.aminmax(x)
    min_val = torch.min(min_val_cur, self.min_val)
    max_val = torch.max(max_val_cur, self.max_val)
    self.min_val.copy_(min_val)
    self.max_val.copy_(max_val)
    return x_orig

def reset_min_max_vals(self):
    self.min_val.copy_(torch.tensor(float("inf")))
    self.max_val.copy_(torch.tensor(float("-inf")))
)JIT";

// PerChannelMinMaxObserver._forward / reset_min_max_vals.
constexpr const char* kPerChannelForward = R"JIT(
def forward(self, x_orig: Tensor) -> Tensor:
    if x_orig.numel() == 0:
        return x_orig
    x = x_orig.detach()
    min_val = self.min_val
    max_val = self.max_val
    x_dim = x.size()
    new_axis_list: List[int] = []
    for i in range(len(x_dim)):
        new_axis_list.append(i)
    new_axis_list[self.ch_axis] = 0
    new_axis_list[0] = self.ch_axis
    y = x.permute(new_axis_list)
    y = y.to(self.min_val.dtype)
    y = torch.flatten(y, start_dim=1)
    if min_val.numel() == 0 or max_val.numel() == 0:
        min_val, max_val = torch.aminmax(y, dim=1)
    else:
        min_val_cur, max_val_cur = torch.aminmax(y, dim=1)
        min_val = torch.min(min_val_cur, min_val)
        max_val = torch.max(max_val_cur, max_val)
    self.min_val.resize_(min_val.shape)
    self.max_val.resize_(max_val.shape)
    self.min_val.copy_(min_val)
    self.max_val.copy_(max_val)
    return x_orig

def reset_min_max_vals(self):
    self.min_val = torch.rand(0)
    self.max_val = torch.rand(0)
)JIT";

// PlaceholderObserver: passes its configuration to the passes, observes nothing.
constexpr const char* kPlaceholder = R"JIT(
def forward(self, x: Tensor) -> Tensor:
    return x

def calculate_qparams(self):
    assert False, "calculate_qparams should not be called for PlaceholderObserver"
)JIT";

const char* class_name(ObserverKind kind) {
  switch (kind) {
    case ObserverKind::Placeholder:
      return "PlaceholderObserver";
    case ObserverKind::MinMax:
      return "MinMaxObserver";
    case ObserverKind::PerChannelMinMax:
      return "PerChannelMinMaxObserver";
  }
  return "?";
}

}  // namespace

torch::jit::Module make_observer(const ObserverSpec& spec, const std::shared_ptr<torch::jit::CompilationUnit>& cu) {
  using c10::BoolType;
  using c10::IntType;
  torch::jit::Module m(c10::QualifiedName(std::string(kNamespace) + class_name(spec.kind)), cu,
                       /*shouldMangle=*/true);
  // Module::train()/eval() expect every module to have `training`.
  m.register_attribute("training", BoolType::get(), true);
  m.register_attribute("dtype", IntType::get(), static_cast<int64_t>(spec.dtype));
  // LibTorch 2.x's passes know a dynamic activation by `is_dynamic` (1.13's
  // by compute_dtype, kept below for it): true on the placeholders that
  // compute_dtype marks, as PyTorch 2.x's dynamic presets set it.
  if (compat::kObserversHaveIsDynamic)
    m.register_attribute("is_dynamic", BoolType::get(),
                         spec.kind == ObserverKind::Placeholder && spec.compute_dtype.has_value());
  if (spec.kind == ObserverKind::Placeholder) {
    m.register_attribute("custom_op", c10::StringType::get(), std::string());
    // Present only when set: the passes use hasattr("compute_dtype") to tell
    // dynamic from static quantization.
    if (spec.compute_dtype)
      m.register_attribute("compute_dtype", IntType::get(), static_cast<int64_t>(*spec.compute_dtype));
    m.define(kPlaceholder);
    return m;
  }
  const auto [qmin, qmax] = effective_qrange(spec);
  m.register_attribute("qscheme", IntType::get(), static_cast<int64_t>(spec.qscheme));
  m.register_attribute("reduce_range", BoolType::get(), spec.reduce_range);
  m.register_attribute("has_customized_qrange", BoolType::get(),
                       spec.quant_min.has_value() && spec.quant_max.has_value());
  m.register_attribute("quant_min", IntType::get(), qmin);
  m.register_attribute("quant_max", IntType::get(), qmax);
  // torch.finfo(torch.float32).eps, a 1-element float tensor as in PyTorch.
  m.register_buffer("eps", torch::tensor({std::numeric_limits<float>::epsilon()}));
  if (spec.kind == ObserverKind::MinMax) {
    m.register_buffer("min_val", torch::tensor(std::numeric_limits<float>::infinity()));
    m.register_buffer("max_val", torch::tensor(-std::numeric_limits<float>::infinity()));
    m.define(kMinMaxForward);
  } else {
    m.register_attribute("ch_axis", IntType::get(), spec.ch_axis);
    m.register_buffer("min_val", torch::empty({0}));
    m.register_buffer("max_val", torch::empty({0}));
    m.define(kPerChannelForward);
  }
  m.define(kCalculateQParams);
  return m;
}

bool is_observer_type_name(const std::string& type_name) {
  return type_name.rfind(kNamespace, 0) == 0 || type_name.find("Observer") != std::string::npos;
}

}  // namespace bertq
