// Full 8-bit activations (--full-range-activations, the qconfig's
// full_range_activations): where bertq accepts them, the int8 arithmetic is
// exact, and the logits are what integer arithmetic on the model's own int8
// weights gives.
#include <torch/script.h>

#include <cmath>
#include <string>
#include <vector>

#include "base/error.h"
#include "catch.hpp"
#include "convert/convert_model.h"
#include "jit/engines.h"
#include "jit/qtensor.h"
#include "qconfig/qconfig.h"

namespace {

using bertq::Engine;

at::Tensor linear_dynamic(const at::Tensor& x, const c10::IValue& packed, bool reduce_range) {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_dynamic", "");
  torch::jit::Stack stack{x, packed, reduce_range};
  op.callBoxed(&stack);
  return stack.back().toTensor();
}

c10::IValue prepack(const at::Tensor& qweight, const std::optional<at::Tensor>& bias) {
  static const auto op = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::linear_prepack", "");
  torch::jit::Stack stack{qweight, bias ? c10::IValue(*bias) : c10::IValue()};
  op.callBoxed(&stack);
  return stack.back();
}

// PyTorch's ChooseQuantizationParams (quant_utils) for an input's min and max,
// as quantized::linear_dynamic calls it: uint8, no sparsity, reduce_range
// halving the range to 7 bits.
std::pair<float, int64_t> choose_qparams(float lo, float hi, bool reduce_range) {
  const int64_t qmin = 0, qmax = reduce_range ? 127 : 255;
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  float scale = static_cast<float>((static_cast<double>(hi) - lo) / static_cast<double>(qmax - qmin));
  if (scale == 0.0f || std::isinf(1.0f / scale)) scale = 0.1f;
  const double from_min = qmin - lo / static_cast<double>(scale), from_max = qmax - hi / static_cast<double>(scale);
  const double err_min = std::abs(double(qmin)) - std::abs(lo / static_cast<double>(scale));
  const double err_max = std::abs(double(qmax)) - std::abs(hi / static_cast<double>(scale));
  const double initial = err_min < err_max ? from_min : from_max;
  const int64_t zp = initial < qmin ? qmin : initial > qmax ? qmax : static_cast<int64_t>(std::nearbyint(initial));
  return {scale, zp};
}

// One dynamic linear computed with integers: the input quantized to uint8 as
// oneDNN does (x times 1/scale, rounded to nearest even, plus the zero
// point), products summed in 64 bits, then each output channel scaled by the
// input's and its weight's scale, and the bias added. Only the last step is
// floating point.
at::Tensor integer_linear(const at::Tensor& x, const at::Tensor& qweight, const std::optional<at::Tensor>& bias,
                          bool reduce_range) {
  const auto [scale, zp] = choose_qparams(x.min().item<float>(), x.max().item<float>(), reduce_range);
  const int64_t qmax = reduce_range ? 127 : 255;
  const float inv = static_cast<float>(1.0 / scale);
  const at::Tensor qx = (x.contiguous() * inv).round().add(static_cast<double>(zp)).clamp(0, qmax).to(at::kLong);
  const at::Tensor w = qweight.int_repr().to(at::kLong);  // [out, in], symmetric: zero points 0
  const at::Tensor acc = (qx - zp).matmul(w.t());         // exact in 64 bits
  const at::Tensor w_scales = qweight.qscheme() == at::kPerTensorAffine || qweight.qscheme() == at::kPerTensorSymmetric
                                  ? at::full({qweight.size(0)}, qweight.q_scale(), at::kDouble)
                                  : qweight.q_per_channel_scales().to(at::kDouble);
  at::Tensor out = acc.to(at::kDouble) * (static_cast<double>(scale) * w_scales);
  if (bias) out = out + bias->to(at::kDouble);
  return out.to(at::kFloat);
}

bool full_range_exact_here() { return bertq::full_range_refusal(Engine::OneDNN).empty(); }

// 64 inputs of 1.0 quantize to 255 (scale 1/255, zero point 0); weights of
// -128 (scale 1): each pair of products is 2 x 255 x -128 = -65280, beyond
// int16. Exact: 64 x 255 x -128 x (1/255) = -8192. A kernel that sums pairs
// in 16 bits with saturation gives 32 x -32768 / 255 = -4112.06. Packed for
// the engine set when it is made.
struct SaturatingProduct {
  at::Tensor w = at::_make_per_tensor_quantized_tensor(at::full({4, 64}, -128, at::kChar), 1.0, 0);
  c10::IValue packed = prepack(w, std::nullopt);
  at::Tensor x = at::ones({2, 64});
  at::Tensor exact = integer_linear(x, w, std::nullopt, /*reduce_range=*/false);
};

}  // namespace

TEST_CASE("full 8-bit activations: a product that would saturate 16-bit sums is exact where bertq allows it",
          "[full_range]") {
  bertq::set_engine(Engine::OneDNN);
  const SaturatingProduct p;
  // 7 bits (PyTorch's): 127 x -128 x 2 fits in int16 everywhere.
  const at::Tensor seven = linear_dynamic(p.x, p.packed, /*reduce_range=*/true);
  CHECK(at::allclose(seven, integer_linear(p.x, p.w, std::nullopt, true), 1e-6, 1e-3));
  CHECK(std::abs(seven[0][0].item<double>() - (-128.0 * 64 * 127 / 127)) < 1e-2);
  const at::Tensor eight = linear_dynamic(p.x, p.packed, /*reduce_range=*/false);
  const at::Tensor& exact = p.exact;
  CHECK(std::abs(exact[0][0].item<double>() + 8192.0) < 1e-2);
  if (full_range_exact_here()) {
    INFO("oneDNN with VNNI: " << eight);
    CHECK(at::allclose(eight, exact, 1e-6, 1e-3));
  } else {
    // bertq refuses full 8 bits here (the CLI tests check that); what the
    // kernel gives is only shown.
    WARN("full 8-bit activations are refused on this CPU (" << bertq::full_range_refusal(Engine::OneDNN)
                                                            << "); the kernel gave " << eight[0][0].item<double>()
                                                            << " for an exact -8192");
  }
}

TEST_CASE("full 8-bit activations: qnnpack multiplies 8-bit inputs exactly, whatever reduce_range says",
          "[full_range]") {
  // Why bertq accepts full 8-bit activations with qnnpack on any CPU: its
  // kernels widen both operands to 16 bits before multiplying and sum in 32,
  // and always quantize the input to 8 bits (qlinear_dynamic.cpp: "qnnpack
  // incorrectly ignores reduce_range").
  bertq::set_engine(Engine::QNNPACK);
  const SaturatingProduct p;
  for (const bool reduce_range : {false, true}) {
    INFO("reduce_range " << reduce_range);
    CHECK(at::allclose(linear_dynamic(p.x, p.packed, reduce_range), p.exact, 1e-6, 1e-3));
  }
  bertq::set_engine(Engine::OneDNN);
  CHECK(bertq::full_range_refusal(Engine::QNNPACK).empty());
}

TEST_CASE("full 8-bit activations: the logits equal integer arithmetic on the model's own weights", "[full_range]") {
  if (!full_range_exact_here()) {
    WARN("skipped: full 8-bit activations are refused on this CPU: " << bertq::full_range_refusal(Engine::OneDNN));
    return;
  }
  // One Linear, large enough that 8 bits and 7 bits give different logits,
  // with inputs whose pairs of products overflow int16 at 8 bits.
  torch::manual_seed(5);
  torch::jit::Module m("FullRangeProbe");
  m.register_parameter("weight", torch::randn({48, 96}) * 0.5, false);
  m.register_parameter("bias", torch::randn({48}) * 0.1, false);
  m.define("def forward(self, x):\n  return torch.linear(x, self.weight, self.bias)\n");
  m.eval();
  const at::Tensor x = torch::rand({5, 96}) * 4.0;

  for (const bool full : {false, true}) {
    INFO("full_range_activations " << full);
    bertq::ConversionSettings s;
    s.engine = Engine::OneDNN;
    s.full_range_activations = full;
    bertq::set_engine(s.engine);
    bertq::ConvertedModel c = bertq::convert_model(m, bertq::default_qconfig_dict(), s);
    const auto calls = bertq::linear_dynamic_calls(c.model);
    REQUIRE(calls.size() == 1);
    CHECK(bertq::full_range_linears(c.model).size() == (full ? 1u : 0u));
    const auto [qweight, bias] = bertq::unpack_packed(c.model, calls[0].packed);
    torch::NoGradGuard no_grad;
    const at::Tensor got = c.model.forward({x}).toTensor();
    const at::Tensor want = integer_linear(x, qweight, bias, /*reduce_range=*/!full);
    // The scaling and the bias are float in oneDNN: a few ulps.
    CHECK(at::allclose(got, want, 1e-5, 1e-5));
    // And it is not the other width's result.
    const at::Tensor other = integer_linear(x, qweight, bias, /*reduce_range=*/full);
    CHECK_FALSE(at::allclose(got, other, 1e-5, 1e-5));
  }
}

TEST_CASE("full 8-bit activations are refused for debug and prepared models", "[full_range]") {
  torch::jit::Module m = torch::jit::load(std::string(BERTQ_SOURCE_DIR) + "/testdata/models/submodules.pt");
  for (const auto stage : {bertq::ConversionStage::Debug, bertq::ConversionStage::Prepared}) {
    bertq::ConversionSettings s;
    s.stage = stage;
    s.full_range_activations = true;
    try {
      (void)bertq::convert_model(m, bertq::default_qconfig_dict(), s);
      FAIL("accepted");
    } catch (const bertq::Error& e) {
      CHECK(e.kind() == bertq::ErrorKind::Usage);
      CHECK(std::string(e.what()).find("full 8-bit activations") != std::string::npos);
    }
  }
}
