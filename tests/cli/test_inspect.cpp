// `bertq inspect` and `bertq diff` as a user meets them.
#include <cstdio>

#include "cli/cli.h"

using namespace cli;

TEST_CASE("inspect on final, debug and float models shows one truth", "[cli][inspect]") {
  Scratch s;
  REQUIRE(run({"convert", kModel, s / "q.pt", "--report", s / "r.json"}).code == 0);
  REQUIRE(run({"convert", kModel, s / "d.pt", "--debug"}).code == 0);
  // The per-channel scales the report recorded, as inspect prints them.
  const auto report = parse_json(slurp(s / "r.json"));
  nlohmann::json query;
  for (const auto& m : report["modules"])
    if (m["path"] == "bert.encoder.layer.0.attention.self.query") query = m;
  REQUIRE(query.is_object());
  CHECK(query["qscheme"] == "per_channel_affine");
  std::string scales;
  for (const auto& v : query["scales"]) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
    scales += (scales.empty() ? "" : ", ") + std::string(buf);
  }
  for (const std::string file : {"q.pt", "d.pt"}) {
    INFO(file);
    const Result r = run({"inspect", s / file, "--module", "encoder.layer.0.attention.self.query"});
    REQUIRE(r.code == 0);
    std::istringstream lines(r.out);
    std::string line;
    std::getline(lines, line);
    CHECK(line.find(s / file + (file == "q.pt" ? ": quantized model, written by bertq "
                                               : ": debug model, written by bertq ")) == 0);
    std::getline(lines, line);
    CHECK(line == "module: bert.encoder.layer.0.attention.self.query (Linear)");
    std::getline(lines, line);
    CHECK(line == (file == "q.pt" ? "state: linear_dynamic" : "state: quantized (debug): qint8"));
    std::getline(lines, line);
    CHECK(line == "rule: global \"\"");
    std::getline(lines, line);
    CHECK(line == (file == "q.pt" ? "source: packed params quantized_forward._jit_pass_packed_weight_0"
                                  : "source: debug attributes (float weight quantized with the stored scales)"));
    std::getline(lines, line);
    // A final model's linear runs with PyTorch's 7-bit activations.
    if (file == "q.pt") {
      CHECK(line == "activations: quantized per batch to 7 bits (reduce_range True, as PyTorch writes)");
      std::getline(lines, line);
    }
    // The same qscheme as the report's.
    CHECK(line == "weight: shape [32, 32], dtype qint8, qscheme " + query["qscheme"].get<std::string>() + ", axis 0");
    CHECK(contains(r.out, "\nscales (32): " + scales + "\n"));
    CHECK(contains(r.out, "\nzero points (32): 0, 0, 0,"));
  }
  const Result f = run({"inspect", kModel, "--module", "encoder.layer.0.attention.self.query"});
  REQUIRE(f.code == 0);
  CHECK(f.out.find(kModel + ": float model\nmodule: bert.encoder.layer.0.attention.self.query (Linear)\n"
                            "state: float\nsource: float weight\nweight: shape [32, 32], dtype float32\n") == 0);
  // The module tree in aligned columns: the deciding rule from the manifest,
  // or for a float module why it stays float.
  const Result tree = run({"inspect", s / "q.pt"});
  CHECK(contains(tree.out,
                 "\nbert.encoder.layer.0.attention.output.LayerNorm  LayerNorm  float           LayerNorm is "
                 "not quantized by dynamic quantization\n"));
  CHECK(contains(tree.out,
                 "\nbert.encoder.layer.0.attention.self.query        Linear     linear_dynamic  [global "
                 "\"\"]\n"));
  // JSON gives the rule as the report does: an object.
  const auto tj = parse_json(run({"inspect", s / "q.pt", "--format", "json"}).out);
  bool checked = false;
  for (const auto& m : tj["modules"])
    if (m["path"] == "bert.encoder.layer.0.attention.self.query") {
      CHECK(m["rule"]["kind"] == "global");
      CHECK(m["rule"]["text"] == "global \"\"");
      checked = true;
    }
  CHECK(checked);
  CHECK(contains(tree.out, ", LibTorch " + std::string(BERTQ_LIBTORCH_VERSION)));
  const Result g = run({"inspect", s / "q.pt", "--graph"});
  CHECK(contains(g.out, "quantized::linear_dynamic"));
  const Result bad = run({"inspect", s / "q.pt", "--module", "attention.self.query"});
  CHECK(bad.code == 2);
  CHECK(bad.err == "bertq: error: module \"attention.self.query\" is ambiguous in " + s / "q.pt" +
                       ": it matches bert.encoder.layer.0.attention.self.query, "
                       "bert.encoder.layer.1.attention.self.query\nhint: give more of the name\n");
  const Result js = run({"inspect", s / "q.pt", "--module", "classifier", "--format", "json"});
  CHECK(js.code == 0);
  CHECK(parse_json(js.out)["module"]["packed_attr"] == "quantized_forward._jit_pass_packed_weight_13");
  const Result broken = run({"inspect", kSource + "/testdata/bad/truncated.pt"});
  CHECK(broken.code == 4);
}
