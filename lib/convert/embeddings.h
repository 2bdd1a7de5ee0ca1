// Quantized embeddings: bertq's own pass, run after PyTorch's.
//
// Graph-mode dynamic quantization leaves aten::embedding and
// aten::embedding_bag float (BERT-base keeps ~95 MB of float rows). Eager
// PyTorch quantizes nn.Embedding/nn.EmbeddingBag weight-only: each row gets a
// float scale and offset (PerChannelMinMaxObserver, per_channel_affine_float_
// qparams), the rows are packed by quantized::embedding_bag_prepack and looked
// up by quantized::embedding_byte / embedding_4bit / embedding_bag_byte /
// embedding_bag_4bit. This pass does the same to a final (frozen) model, op
// for op, so that the packed bytes and every lookup equal eager PyTorch's.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace torch::jit {
struct Module;
}

namespace bertq {

// Rewrites, in the forward graph of the final model `m`, every lookup whose
// weight is the float weight of a plan row planned for an embedding op (found
// by value: freezing copied the weights into constants). Each such row gets
// one root attribute holding its packed rows (`packed_attr`), its outcome is
// recorded (quantized, op) and the float constant is dropped. Rows with
// identical weights (tied or copied) must be planned alike, or Error(Config).
// `float_weights` maps plan paths to the float weights captured before the
// passes. Returns warnings (a float weight kept alive by another use).
std::vector<std::string> quantize_embeddings(torch::jit::Module& m, Plan& plan,
                                             const std::map<std::string, at::Tensor>& float_weights);

// `float_weight` (as float32) quantized row by row for `qconfig`'s weight
// observer, as eager PyTorch's nnq.Embedding.from_float quantizes it: 8-bit
// or 4-bit rows, each with a float scale and offset.
at::Tensor quantize_rows(const at::Tensor& float_weight, const QConfig& qconfig);

// The packed rows of `float_weight` for `qconfig`'s weight observer, as eager
// PyTorch's nnq.Embedding.from_float makes them (observer, then
// quantize_per_channel with float scales and zero points, then
// quantized::embedding_bag_prepack): an EmbeddingPackedParamsBase.
c10::IValue pack_embedding_rows(const at::Tensor& float_weight, const QConfig& qconfig);

}  // namespace bertq
