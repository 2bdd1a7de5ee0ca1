#include "base/json_io.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/text.h"

namespace bertq {

std::string read_text_file(const std::string& path, ErrorKind kind) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(kind, "cannot read " + path + ": it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(kind, "cannot read " + path + ": " + errno_message());
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw Error(kind, "cannot read " + path + ": " + errno_message());
  return buf.str();
}

void throw_json_error(const nlohmann::json::exception& e, std::string_view text, const std::string& source,
                      ErrorKind kind) {
  std::string what = e.what();
  if (const auto* parse = dynamic_cast<const nlohmann::json::parse_error*>(&e)) {
    const auto [line, col] = line_column(text, parse->byte);
    // "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ..."
    if (auto pos = what.find(": "); pos != std::string::npos) what = what.substr(pos + 2);
    throw Error(kind, source + ":" + std::to_string(line) + ":" + std::to_string(col) + ": malformed JSON: " +
                          printable(what));
  }
  // e.g. out_of_range.406 for a number too large for a double.
  if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
  throw Error(kind, source + ": malformed JSON: " + printable(what));
}

}  // namespace bertq
