#include "jit/model_info.h"

#include <torch/script.h>

#include "archive/manifest.h"

namespace bertq {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::vector<std::string> forward_arguments(const torch::jit::Module& m) {
  std::vector<std::string> names;
  const auto& args = m.get_method("forward").function().getSchema().arguments();
  for (size_t i = 1; i < args.size(); ++i) names.push_back(args[i].name());  // 0 is self
  return names;
}

std::optional<int64_t> max_positions(const torch::jit::Module& m, const std::string& manifest_text,
                                     const std::string& model_path) {
  for (const auto& child : m.named_modules()) {
    if (ends_with(child.name, "position_embeddings") && child.value.hasattr("weight")) {
      const auto w = child.value.attr("weight");
      if (w.isTensor() && w.toTensor().dim() == 2) return w.toTensor().size(0);
    }
  }
  for (const auto& b : m.named_buffers())
    if (ends_with(b.name, "position_ids") && b.value.dim() >= 1) return b.value.size(-1);
  // bertq's manifest records it for frozen models, whose modules are gone.
  if (const auto manifest = parse_manifest(manifest_text, model_path); manifest && manifest->max_positions)
    return manifest->max_positions;
  return std::nullopt;
}

}  // namespace bertq
