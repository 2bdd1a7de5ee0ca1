#include "run/model_inputs.h"

#include <torch/script.h>

#include <nlohmann/json.hpp>

#include "archive/manifest.h"
#include "archive/model_file.h"
#include "base/error.h"

namespace bertq {
namespace {

bool is_integer_input(const std::string& name) {
  return name.find("ids") != std::string::npos || name.find("mask") != std::string::npos ||
         name.find("token") != std::string::npos;
}

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

int64_t choose_seq_length(std::optional<int64_t> requested, int64_t default_length,
                          const std::vector<std::string>& model_paths, std::string* note) {
  std::optional<int64_t> limit;
  std::string limiting;
  for (const auto& path : model_paths) {
    std::string manifest;
    const torch::jit::Module m = load_model(path, "bertq_manifest.json", &manifest);
    const auto n = max_positions(m, manifest, path);
    if (n && (!limit || *n < *limit)) {
      limit = n;
      limiting = path;
    }
  }
  if (requested) {
    if (*requested < 1) throw Error(ErrorKind::Usage, "--seq-length must be positive");
    if (limit && *requested > *limit)
      throw Error(ErrorKind::Usage,
                  "--seq-length " + std::to_string(*requested) + " is longer than " + limiting + " takes (" +
                      std::to_string(*limit) + " positions)",
                  "use --seq-length " + std::to_string(*limit) + " or less");
    return *requested;
  }
  if (limit && default_length > *limit) {
    if (note)
      *note = limiting + " has " + std::to_string(*limit) + " positions: using --seq-length " + std::to_string(*limit) +
              " instead of the default " + std::to_string(default_length);
    return *limit;
  }
  return default_length;
}

std::vector<c10::IValue> dummy_inputs(const std::vector<std::string>& names, int64_t batch, int64_t seq, int64_t vocab,
                                      uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  std::vector<c10::IValue> inputs;
  for (const auto& name : names) {
    if (is_integer_input(name))
      inputs.emplace_back(
          at::randint(0, name.find("input_ids") != std::string::npos ? vocab : 2, {batch, seq}, gen, at::kLong));
    else
      inputs.emplace_back(at::randn({batch, seq}, gen));
  }
  return inputs;
}

}  // namespace bertq
