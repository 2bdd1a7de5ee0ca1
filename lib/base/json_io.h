// Reading JSON (qconfigs, batch manifests, pre-tokenized data) strictly and
// with bertq's error messages.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace bertq {

struct StrictJson {
  nlohmann::json doc;                 // objects as sorted maps: lookups stay logarithmic
  std::vector<std::string> top_keys;  // the top-level object's keys, in the text's order
};

// Parses `text` as one JSON document, in time linear in its size, refusing
// what nlohmann would accept silently: a NUL byte (nlohmann stops there as if
// the text ended), a key twice in one object (nlohmann keeps the last), and
// nesting deeper than `max_depth`. Errors are Error(kind) starting with
// "SOURCE:LINE:COL: malformed JSON: " or "SOURCE: PATH: duplicate key".
// `line`, when given, is the text's line number in its file (JSON Lines).
StrictJson parse_json_strict(std::string_view text, const std::string& source, ErrorKind kind, int max_depth,
                             size_t line = 0);

// The same document as an ordered_json (objects keep the text's key order),
// after parse_json_strict's checks, in time linear in the text: nlohmann's
// own ordered parse searches an object's keys on every insert, which made
// 300,000 qconfig keys take minutes.
nlohmann::ordered_json parse_json_ordered(std::string_view text, const std::string& source, ErrorKind kind,
                                          int max_depth);

// Turns nlohmann's exception into Error(kind): "SOURCE:LINE:COL: malformed
// JSON: WHAT" for syntax errors (nlohmann reports byte offsets), without
// nlohmann's "[json.exception...]" prefix, non-printable bytes escaped.
[[noreturn]] void throw_json_error(const nlohmann::json::exception& e, std::string_view text, const std::string& source,
                                   ErrorKind kind, size_t line = 0);

}  // namespace bertq
