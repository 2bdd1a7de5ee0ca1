// Architectures beside BERT (testdata/zoo.py): what bertq does with each, as
// a user meets it. That each converts exactly as Python does is the golden
// tests' job (tests/convert/test_golden.cpp).
#include "cli/cli.h"

using namespace cli;

namespace {
const char* const kZoo[] = {"zoo_albert", "zoo_distilbert", "zoo_roberta", "zoo_electra", "zoo_gpt2",
                            "zoo_t5",     "zoo_vit",        "zoo_lstm",    "zoo_mlp"};
}  // namespace

TEST_CASE("every architecture of the zoo: the report names each weight and why it stays float", "[cli][zoo]") {
  for (const std::string name : kZoo) {
    INFO(name);
    Scratch s;
    const Result r = run({"convert", kSource + "/testdata/models/" + name + ".pt", s / "q.pt", "--format", "json"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const auto j = parse_json(r.out);
    std::map<std::string, nlohmann::json> by_type;
    for (const auto& m : j["modules"]) {
      INFO(m["path"]);
      if (m["state"] == "float") {
        CHECK_FALSE(m["float_reason"].get<std::string>().empty());
        // The generic reason means bertq could not say what keeps it float.
        CHECK(m["float_reason"] != "its op is not supported by graph-mode dynamic quantization");
      }
      by_type[m["type"].get<std::string>()] = m;
    }
    CHECK(j["summary"]["quantized"].get<int>() > 0);
    if (name == "zoo_lstm") {
      // An LSTM's weights are its own, not "other tensors".
      REQUIRE(by_type.count("LSTM"));
      CHECK(by_type["LSTM"]["bytes_before"].get<int64_t>() > 50000);
      CHECK(contains(by_type["LSTM"]["float_reason"], "aten::lstm"));
      CHECK(j["sizes"]["input"]["other_tensors"] == 0);
    }
    if (name == "zoo_gpt2") CHECK(contains(by_type["Conv1D"]["float_reason"], "aten::addmm"));
    if (name == "zoo_vit") CHECK(contains(by_type["Conv2d"]["float_reason"], "static quantization only"));
    if (name == "zoo_albert") {
      bool noted = false;
      for (const auto& n : j["notes"]) noted = noted || contains(n, "called from several places");
      CHECK(noted);
    }
  }
}

TEST_CASE("every architecture of the zoo takes --embeddings and --fuse-qkv, and tunes on its own inputs",
          "[cli][zoo]") {
  for (const std::string name : kZoo) {
    INFO(name);
    Scratch s;
    const std::string model = kSource + "/testdata/models/" + name + ".pt";
    Result r = run({"convert", model, s / "q.pt", "--embeddings", "8bit", "--fuse-qkv", "--format", "json"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const auto j = parse_json(r.out);
    // Fused, or a warning that says why not.
    bool said = !j["fusions"].empty();
    for (const auto& w : j["warnings"]) said = said || contains(w, "--fuse-qkv");
    CHECK(said);
    r = run({"tune", model, s / "t.pt", "--inputs", kSource + "/testdata/inputs/" + name + "_rows.pt", "--tolerance",
             "0.5", "--qconfig-out", s / "t.json"});
    CHECK(r.code == 0);
    CHECK(fs::exists(s / "t.pt"));
  }
}
