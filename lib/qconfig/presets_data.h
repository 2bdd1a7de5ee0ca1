// The preset files of configs/, compiled in by CMake (see presets_data.cpp.in).
#pragma once

#include <vector>

namespace bertq {

struct EmbeddedPreset {
  const char* name;  // file name without .json
  const char* json;  // file contents
};

const std::vector<EmbeddedPreset>& embedded_presets();

}  // namespace bertq
