#include "run/model_inputs.h"

#include <torch/script.h>

#include <nlohmann/json.hpp>

#include "archive/manifest.h"
#include "base/error.h"
#include "jit/model_file.h"

namespace bertq {
namespace {

bool is_integer_input(const std::string& name) {
  return name.find("ids") != std::string::npos || name.find("mask") != std::string::npos ||
         name.find("token") != std::string::npos;
}

}  // namespace

int64_t choose_seq_length(std::optional<int64_t> requested, int64_t default_length,
                          const std::vector<std::string>& model_paths, std::string* note) {
  std::optional<int64_t> limit;
  std::string limiting;
  for (const auto& path : model_paths) {
    std::string manifest;
    const torch::jit::Module m = load_model(path, kManifestName, &manifest);
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
