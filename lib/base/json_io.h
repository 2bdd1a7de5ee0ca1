// Reading JSON files (qconfigs, batch manifests) with bertq's error messages.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/error.h"

namespace bertq {

// The whole file as text. Throws Error(kind) naming the path (also for a directory).
std::string read_text_file(const std::string& path, ErrorKind kind);

// Turns nlohmann's exception into Error(kind): "SOURCE:LINE:COL: malformed
// JSON: WHAT" for syntax errors (nlohmann reports byte offsets), without
// nlohmann's "[json.exception...]" prefix, non-printable bytes escaped.
[[noreturn]] void throw_json_error(const nlohmann::json::exception& e, std::string_view text,
                                   const std::string& source, ErrorKind kind);

}  // namespace bertq
