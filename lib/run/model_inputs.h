// The inputs bench, eval and compare run a model with: the sequence length
// (within every model's positions) and dummy inputs built like the PyTorch
// tutorial's ids_tensor.
#pragma once

#include <ATen/core/ivalue.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "jit/model_info.h"

namespace torch::jit {
struct Module;
}

namespace bertq {

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
