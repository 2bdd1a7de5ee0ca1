// A temporary folder for one test, removed with everything in it when the
// test ends, and the two file helpers every test that writes files needs.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

namespace bertq::testing {

struct ScratchDir {
  std::filesystem::path dir;
  explicit ScratchDir(const std::string& prefix = "bertq-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    dir = ::mkdtemp(tmpl.data());
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
};

inline void put(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// "" if `got` holds the same bytes as `want`, else where they first differ.
// CHECK(byte_difference(a, b) == "") prints that on failure, not two whole
// files (which Catch2's reporter takes minutes to wrap).
inline std::string byte_difference(const std::string& got, const std::string& want) {
  if (got == want) return "";
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return "sizes " + std::to_string(got.size()) + " and " + std::to_string(want.size()) + ", first difference at byte " +
         std::to_string(i);
}

}  // namespace bertq::testing
