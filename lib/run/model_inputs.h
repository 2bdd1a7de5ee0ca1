// What a model takes: its forward's argument names, how many positions it
// has, and dummy inputs built like the PyTorch tutorial's ids_tensor. Shared
// by bench, eval and compare.
#pragma once

#include <ATen/core/ivalue.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace torch::jit {
struct Module;
}

namespace bertq {

// forward's argument names, without self.
std::vector<std::string> forward_arguments(const torch::jit::Module& model);

// The longest sequence the model takes: the rows of its position embedding
// (a module named *position_embeddings, or a position_ids buffer), also in a
// frozen model through bertq's manifest or the position_ids constant;
// nullopt if the model does not say.
// `model_path` names the file in messages about its manifest.
std::optional<int64_t> max_positions(const torch::jit::Module& model, const std::string& manifest_text = "",
                                     const std::string& model_path = "");

// The sequence length to run with: `requested` if given (Error(Usage) if it
// exceeds a model's positions), else `default_length`, lowered to the
// smallest model's positions with `*note` saying so.
int64_t choose_seq_length(std::optional<int64_t> requested, int64_t default_length,
                          const std::vector<std::string>& model_paths, std::string* note);

// Random token ids in [0, vocab) for *ids inputs, 0/1 for masks and token
// types, floats otherwise, each [batch, seq], from a generator seeded with
// `seed` (the same inputs for every model of a run).
std::vector<c10::IValue> dummy_inputs(const std::vector<std::string>& names, int64_t batch, int64_t seq, int64_t vocab,
                                      uint64_t seed);

}  // namespace bertq
