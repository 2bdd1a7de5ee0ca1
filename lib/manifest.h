// The provenance bertq stores inside each archive it writes, as the extra
// file `extra/bertq_manifest.json` (torch.jit.load in Python ignores it).
// It lets `inspect` and `diff` name the modules of a frozen model, whose
// module structure the conversion removed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "report.h"

namespace bertq {

inline constexpr const char* kManifestName = "bertq_manifest.json";

struct ManifestModule {
  std::string path;
  std::string type_name;
  bool quantized = false;
  std::string op;
  std::string rule;          // Rule::describe()
  std::string float_reason;
  std::string packed_attr;   // final models: the attribute holding its packed weight
};

struct Manifest {
  std::string bertq_version;
  std::string libtorch_version;
  std::string engine;
  std::string mode;
  std::string input_sha256;
  std::string qconfig_resolved;  // JSON text
  std::vector<ManifestModule> modules;
};

// The manifest for a report's conversion, as JSON text.
std::string manifest_json(const Report& report);

// Parses a manifest; nullopt if `text` is empty, throws Error(Model) if it is
// not a bertq manifest.
std::optional<Manifest> parse_manifest(const std::string& text);

}  // namespace bertq
