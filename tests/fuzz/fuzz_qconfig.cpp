// libFuzzer target for the qconfig parser (lib/qconfig.cpp).
//
// parse_qconfig must either return a dict or throw bertq::Error: any other
// exception (nlohmann's type_error, std::out_of_range, bad_alloc, ...), a
// crash, an ASan report or a UBSan report is a finding.
//
// Built by tests/fuzz/CMakeLists.txt with -DBERTQ_FUZZ=ON (clang only); run
// with tests/fuzz/run_fuzzers.sh.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/error.h"
#include "qconfig/qconfig.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  bertq::QConfigDict dict;
  try {
    dict = bertq::parse_qconfig(text, "fuzz.json");
  } catch (const bertq::Error&) {
    return 0;  // expected for malformed or invalid documents
  }
  // A dict that parsed is written fully explicit into reports; that JSON must
  // parse back (no bertq::Error allowed here) to the same qconfigs.
  const std::string again = bertq::to_json(dict).dump();
  const bertq::QConfigDict round = bertq::parse_qconfig(again, "fuzz-roundtrip.json");
  if (round.entries.size() != dict.entries.size()) __builtin_trap();
  for (size_t i = 0; i < dict.entries.size(); ++i) {
    if (round.entries[i].key != dict.entries[i].key) __builtin_trap();
    if (!(round.entries[i].qconfig == dict.entries[i].qconfig)) __builtin_trap();
  }
  return 0;
}
