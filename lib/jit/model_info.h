// What a model says about itself: its forward's arguments and how many
// positions it takes. Used when converting (the report and manifest record the
// positions) and when running (bench, eval and compare size their inputs).
#pragma once

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

}  // namespace bertq
