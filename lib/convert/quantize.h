// The C++ counterpart of torch.ao.quantization.quantize_jit's dynamic API.
//
//   Python                                   bertq
//   prepare_dynamic_jit(m, qconfig_dict)      bertq::prepare_dynamic_jit(m, dict)
//   convert_dynamic_jit(m, inplace, debug)    bertq::convert_dynamic_jit(m, inplace, debug)
//   quantize_dynamic_jit(m, dict, debug=d)    bertq::quantize_dynamic_jit(m, dict, d)
//
// Each runs the same LibTorch passes, in the same order and with the same
// clones, as PyTorch 1.13's Python functions, so the results are identical.
// Callers include <torch/script.h> themselves; this header stays light.
#pragma once

#include <string>
#include <vector>

#include "qconfig/qconfig.h"

namespace torch::jit {
struct Module;
}

namespace bertq {

// Inserts observer modules for every value `qconfig_dict` asks to quantize
// (PyTorch's prepare_dynamic_jit). The input is not modified.
torch::jit::Module prepare_dynamic_jit(const torch::jit::Module& model, const QConfigDict& qconfig_dict);

// The same result as prepare_dynamic_jit, without copying the weights: the
// prepared model takes `model`'s tensors and `model` is left with empty ones,
// unusable. For callers that drop the float model anyway (bertq convert): on
// BERT-base it saves two 438 MB copies. Falls back to copying where sharing
// could change the result (BatchNorm folding, tensors that are views).
torch::jit::Module prepare_dynamic_jit_consuming(torch::jit::Module& model, const QConfigDict& qconfig_dict);

// The same again, for callers that keep `model` and convert it many times
// (tune): the prepared model shares `model`'s tensors, which are back in
// `model` when this returns, also when it throws. Neither PyTorch's passes nor
// bertq's write into a weight: converting reads the float tensors and makes
// new quantized ones, so the float model stays as it was. Not for a model
// about to be saved while `model` lives: the pickler memoizes tensors held
// twice, which changes the archive's bytes.
torch::jit::Module prepare_dynamic_jit_sharing(torch::jit::Module& model, const QConfigDict& qconfig_dict);

// Replaces observed Linear/EmbeddingBag calls by dynamic quantized ones
// (PyTorch's convert_dynamic_jit). With debug, keeps the float graph with
// quantize/dequantize pairs and *_scale_* / *_zero_point_* attributes.
torch::jit::Module convert_dynamic_jit(torch::jit::Module& prepared, bool inplace = false, bool debug = false);

// The second half of quantize_dynamic_jit: an in-place convert_dynamic_jit of
// a model fresh from prepare_dynamic_jit, then quantize_jit.py's last cleanup
// of the forward graph. For callers that look at the prepared model first.
torch::jit::Module convert_prepared_for_quantize(torch::jit::Module& prepared, bool debug);

// prepare_dynamic_jit then an in-place convert_dynamic_jit, as in PyTorch.
torch::jit::Module quantize_dynamic_jit(const torch::jit::Module& model, const QConfigDict& qconfig_dict,
                                        bool debug = false);

// True if the model holds observers inserted by prepare_dynamic_jit.
bool is_prepared(const torch::jit::Module& model);

}  // namespace bertq
