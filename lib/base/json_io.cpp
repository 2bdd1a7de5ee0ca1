#include "base/json_io.h"

#include <unordered_set>

#include "base/text.h"

namespace bertq {

namespace {

// "SOURCE:LINE:COL" for byte `offset` (nlohmann's, just past the character).
std::string position(std::string_view text, size_t offset, const std::string& source, size_t line) {
  auto [l, col] = line_column(text, offset);
  return source + ":" + std::to_string(line ? line : l) + ":" + std::to_string(col);
}

}  // namespace

void throw_json_error(const nlohmann::json::exception& e, std::string_view text, const std::string& source,
                      ErrorKind kind, size_t line) {
  std::string what = e.what();
  if (const auto* parse = dynamic_cast<const nlohmann::json::parse_error*>(&e)) {
    // "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ..."
    if (auto pos = what.find(": "); pos != std::string::npos) what = what.substr(pos + 2);
    throw Error(kind, position(text, parse->byte, source, line) + ": malformed JSON: " + printable(what));
  }
  // e.g. out_of_range.406 for a number too large for a double.
  if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
  throw Error(kind, source + (line ? ":" + std::to_string(line) : "") + ": malformed JSON: " + printable(what));
}

StrictJson parse_json_strict(std::string_view text, const std::string& source, ErrorKind kind, int max_depth,
                             size_t line) {
  if (const auto nul = text.find('\0'); nul != std::string_view::npos)
    throw Error(kind, position(text, nul + 1, source, line) + ": malformed JSON: a NUL byte (JSON text holds none)");
  StrictJson out;
  std::vector<std::unordered_set<std::string>> seen;  // keys of each open object
  std::vector<std::string> open_keys;                 // the current key of each open object
  std::string duplicate;                              // its JSON path
  int deepest = 0;
  auto on_event = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    deepest = std::max(deepest, depth);
    // Past the limit nothing is kept, so memory stays small; reported below.
    if (depth > max_depth) return false;
    switch (event) {
      case nlohmann::json::parse_event_t::object_start:
        seen.emplace_back();
        open_keys.emplace_back();
        break;
      case nlohmann::json::parse_event_t::object_end:
        if (!seen.empty()) seen.pop_back();
        if (!open_keys.empty()) open_keys.pop_back();
        break;
      case nlohmann::json::parse_event_t::key: {
        if (seen.empty()) break;
        const std::string& k = parsed.get_ref<const std::string&>();
        open_keys.back() = k;
        if (!seen.back().insert(k).second && duplicate.empty()) {
          duplicate = "[" + quoted_value(open_keys[0]) + "]";
          for (size_t i = 1; i < open_keys.size(); ++i) duplicate += "." + printable(open_keys[i]);
        }
        if (seen.size() == 1) out.top_keys.push_back(k);
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    out.doc = nlohmann::json::parse(text.begin(), text.end(), on_event);
  } catch (const nlohmann::json::exception& e) {
    throw_json_error(e, text, source, kind, line);
  }
  const std::string where = source + (line ? ":" + std::to_string(line) : "");
  if (deepest > max_depth)
    throw Error(kind, where + ": nested more than " + std::to_string(max_depth) + " levels deep");
  if (!duplicate.empty())
    throw Error(kind, where + ": " + duplicate + ": duplicate key", "each key may appear once in an object");
  return out;
}

}  // namespace bertq
