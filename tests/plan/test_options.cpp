// The one option schema: CLI flags, manifest fields, child arguments and the
// up-to-date key all come from it.
#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"
#include "catch.hpp"
#include "plan/options.h"

using namespace bertq;
using json = nlohmann::ordered_json;

TEST_CASE("every option has one key and one flag", "[options]") {
  std::set<std::string> keys, flags;
  for (const auto& s : convert_option_specs()) {
    CHECK(keys.insert(s.key).second);
    CHECK(flags.insert(s.flag).second);
    // The flag is the key, dashed.
    std::string dashed = s.key;
    for (char& c : dashed) c = c == '_' ? '-' : c;
    CHECK(std::string(s.flag) == "--" + dashed);
  }
}

TEST_CASE("the result key holds every option that decides the result", "[options]") {
  ConvertOptions o;
  const json key = result_key(o, json::object());
  // Stated, not derived from the schema's own flags: a new option must be
  // placed here on purpose.
  const std::set<std::string> deciding = {"qconfig",
                                          "engine",
                                          "embeddings",
                                          "fuse_qkv",
                                          "full_range_activations",
                                          "debug",
                                          "allow_missing",
                                          "allow_unrunnable",
                                          "allow_requantize",
                                          "allow_nothing_quantized",
                                          "require_quantized",
                                          "min_quantized_fraction",
                                          "no_manifest"};
  const std::set<std::string> not_deciding = {"threads", "report", "html"};
  for (const auto& s : convert_option_specs()) {
    INFO(s.key);
    CHECK((deciding.count(s.key) + not_deciding.count(s.key)) == 1);
    CHECK(key.contains(s.key) == (deciding.count(s.key) == 1));
  }
  CHECK(convert_option_specs().size() == deciding.size() + not_deciding.size());
  // Guards and allow-flags are part of it (a batch job that adds a guard reruns).
  ConvertOptions guarded = o;
  guarded.min_quantized_fraction = 0.5;
  CHECK(result_key(guarded, json::object()) != key);
  guarded = o;
  guarded.require_quantized = {"bert.*"};
  CHECK(result_key(guarded, json::object()) != key);
  // Threads and report paths do not change the output file.
  ConvertOptions other = o;
  other.threads = 2;
  other.report_path = "r.json";
  CHECK(result_key(other, json::object()) == key);
}

TEST_CASE("manifest fields parse into options, with did-you-mean and types checked", "[options]") {
  ConvertOptions o;
  options_from_json(json::parse(R"({"qconfig": "q.json", "engine": "qnnpack", "debug": true,
      "require_quantized": ["a.*", "b.*"], "min_quantized_fraction": 0.25, "report": "r/x.json"})"),
                    "/base", "m.json", "jobs[0]", {}, o);
  CHECK(o.qconfig_path == "/base/q.json");
  CHECK(o.engine == Engine::QNNPACK);
  CHECK(o.debug);
  CHECK(o.require_quantized == std::vector<std::string>{"a.*", "b.*"});
  CHECK(o.min_quantized_fraction == 0.25);
  CHECK(o.report_path == "/base/r/x.json");
  auto message = [](const std::string& text) {
    ConvertOptions x;
    try {
      options_from_json(json::parse(text), "", "m.json", "jobs[1]", {"input", "output"}, x);
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::Config);
      return std::string(e.what()) + " | " + e.hint();
    }
    return std::string("accepted");
  };
  CHECK(message(R"({"qconfg": "q.json"})")
            .find("m.json: jobs[1].qconfg: unknown field \"qconfg\" | did you mean "
                  "\"qconfig\"?") == 0);
  CHECK(message(R"({"debug": "yes"})") == "m.json: jobs[1].debug: expected true or false | ");
  CHECK(message(R"({"engine": "onedn"})").find("unknown engine \"onedn\" | did you mean \"onednn\"?") !=
        std::string::npos);
  CHECK(message(R"({"min_quantized_fraction": 2})") ==
        "m.json: jobs[1].min_quantized_fraction: expected a number from 0 to 1 | ");
  CHECK(message(R"({"threads": 0})") == "m.json: jobs[1].threads: expected an integer from 1 to 256 | ");
  CHECK(message(R"({"no_manifest": true})").find("unknown field") != std::string::npos);  // not for batch
  CHECK(message(R"({"input": "x.pt"})") == "accepted");                                   // the caller's own field
}

TEST_CASE("child arguments put every path after --", "[options]") {
  ConvertOptions o;
  o.input = "--dry-run";
  o.output = "-v";
  o.qconfig_path = "-weird.json";
  o.require_quantized = {"*"};
  o.min_quantized_fraction = 0.1;
  o.engine = Engine::QNNPACK;
  o.debug = true;
  const auto a = options_to_args(o);
  const auto dashdash = std::find(a.begin(), a.end(), "--");
  REQUIRE(dashdash != a.end());
  CHECK(a.front() == "convert");
  CHECK(std::vector<std::string>(dashdash + 1, a.end()) == std::vector<std::string>{"--dry-run", "-v"});
  CHECK(std::find(a.begin(), dashdash, "--qconfig=-weird.json") != dashdash);
  CHECK(std::find(a.begin(), dashdash, "--min-quantized-fraction=0.1") != dashdash);
  CHECK(std::find(a.begin(), dashdash, "--engine=qnnpack") != dashdash);
  CHECK(std::find(a.begin(), dashdash, "--debug") != dashdash);
}
