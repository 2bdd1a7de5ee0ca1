// Helpers for testing the CLI as a user meets it: run the built binary with
// arguments, capture its exit code, stdout and stderr, in a scratch folder
// that is checked for leftover temporaries.
#pragma once

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "catch.hpp"
#include "scratch.h"

namespace cli {

namespace fs = std::filesystem;

inline const std::string kSource = BERTQ_SOURCE_DIR;
inline const std::string kBinary = BERTQ_BINARY;
inline const std::string kModel = kSource + "/testdata/models/tiny_bert.pt";
inline const std::string kSubmodules = kSource + "/testdata/models/submodules.pt";

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

using bertq::testing::slurp;
inline void write_file(const std::string& path, const std::string& text) { bertq::testing::put(path, text); }

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A scratch folder per test, removed at the end.
struct Scratch : bertq::testing::ScratchDir {
  Scratch() : ScratchDir("bertq-cli") {}
  // bertq's temporaries left anywhere under the folder.
  std::vector<std::string> leftovers() const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.path().filename().string().rfind(".bertq-tmp-", 0) == 0) out.push_back(e.path());
    return out;
  }
};

// Runs a shell command line; returns its exit status as a shell reports it.
inline int shell(const std::string& cmd) {
  const int status = std::system(("sh -c " + quote(cmd)).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs bertq with `args`; stdin from `stdin_path` (default /dev/null).
inline Result run(const std::vector<std::string>& args, const std::string& stdin_path = "/dev/null") {
  Scratch io;
  std::string cmd = quote(kBinary);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " >" + quote(io / "stdout") + " 2>" + quote(io / "stderr") + " <" + quote(stdin_path);
  Result r;
  r.code = shell(cmd);
  r.out = slurp(io / "stdout");
  r.err = slurp(io / "stderr");
  return r;
}

inline nlohmann::json parse_json(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  INFO(text);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

inline bool running_as_root() { return ::geteuid() == 0; }

}  // namespace cli
