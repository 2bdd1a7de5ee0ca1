// The provenance bertq stores inside each archive it writes, as the extra
// file `extra/bertq_manifest.json` (torch.jit.load in Python ignores it).
// It lets `inspect` and `diff` name the modules of a frozen model, whose
// module structure the conversion removed, and `batch` tell whether an output
// is up to date (the input's SHA-256 and every option that decides the result).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace bertq {

inline constexpr const char* kManifestName = "bertq_manifest.json";

struct ManifestModule {
  std::string path;
  std::string type_name;
  bool functional = false;
  bool quantized = false;
  std::string op;
  Rule rule;
  std::string float_reason;
  std::string packed_attr;                                // final models: the attribute holding its packed weight
  std::optional<std::pair<int64_t, int64_t>> fused_rows;  // --fuse-qkv: its rows of packed_attr
  std::vector<int64_t> weight_shape;
};

struct Manifest {
  int schema = 2;
  std::string bertq_version;
  std::string libtorch_version;
  std::string libtorch_package;
  std::string engine;
  std::string mode;  // Report::mode_text()
  std::string input_sha256;
  nlohmann::ordered_json options;  // result_key(): every option that decides the result
  std::optional<int64_t> max_positions;
  std::vector<ManifestModule> modules;
};

// Parses a manifest; nullopt if `text` is empty, throws Error(Model) if it is
// not a bertq manifest (naming `model_path`, the file it came from, if given).
std::optional<Manifest> parse_manifest(const std::string& text, const std::string& model_path = "");

// The manifest stored in the archive at `path`, read from the zip without
// LibTorch; nullopt if it has none. Throws Error(Model) if the archive or
// the manifest is damaged.
std::optional<Manifest> read_manifest(const std::string& path);

}  // namespace bertq
