// `bertq convert --fuse-qkv` and `bertq bench --profile` as a user meets them.
#include "cli/cli.h"

using namespace cli;

TEST_CASE("a fused model is shown module by module, as the unfused one", "[cli][fuse]") {
  Scratch s;
  REQUIRE(run({"convert", kModel, s / "plain.pt"}).code == 0);
  Result r = run({"convert", kModel, s / "fused.pt", "--fuse-qkv", "--report", s / "r.json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(contains(r.out,
                 "  fused: bert.encoder.layer.0.attention.self.query + bert.encoder.layer.0.attention.self.key + "
                 "bert.encoder.layer.0.attention.self.value -> _bertq_fused_linear_0\n"));
  CHECK(contains(r.err, "--fuse-qkv: 6 Linears in 2 groups share one quantized linear per group"));
  const auto report = parse_json(slurp(s / "r.json"));
  REQUIRE(report["fusions"].size() == 2);
  CHECK(report["fusions"][1]["packed_attr"] == "_bertq_fused_linear_1");
  CHECK(report["fusions"][1]["rows"] == nlohmann::json::array({32, 32, 32}));
  int fused = 0;
  for (const auto& m : report["modules"]) fused += m["fused_rows"].is_null() ? 0 : 1;
  CHECK(fused == 6);

  // inspect: the key's own rows, scales and bias, as in the unfused model.
  const std::string key = "bert.encoder.layer.1.attention.self.key";
  r = run({"inspect", s / "fused.pt", "--module", key, "--format", "json"});
  REQUIRE(r.code == 0);
  const auto f = parse_json(r.out)["module"];
  r = run({"inspect", s / "plain.pt", "--module", key, "--format", "json"});
  REQUIRE(r.code == 0);
  const auto p = parse_json(r.out)["module"];
  CHECK(f["fused_rows"] == nlohmann::json::array({32, 64}));
  CHECK(f["state"] == "linear_dynamic (fused)");
  CHECK(f["scales"] == p["scales"]);
  CHECK(f["zero_points"] == p["zero_points"]);
  CHECK(f["weight"]["shape"] == p["weight"]["shape"]);
  CHECK(f["weight"]["preview"] == p["weight"]["preview"]);
  CHECK(f["weight"]["mean"] == p["weight"]["mean"]);
  CHECK(f["bias"] == p["bias"]);
  CHECK(contains(f["source"].get<std::string>(),
                 "rows 32 to 64 (fused by --fuse-qkv with bert.encoder.layer.1.attention.self.query, "
                 "bert.encoder.layer.1.attention.self.value)"));

  // diff pairs each member with the unfused module: the weights are the same.
  r = run({"diff", s / "plain.pt", s / "fused.pt"});
  INFO(r.out);
  CHECK(r.code == 0);
  CHECK(contains(r.out, "identical: 14 quantized modules compared by module names"));
}

TEST_CASE("convert --fuse-qkv is refused with --debug, and says when it fuses nothing", "[cli][fuse]") {
  Scratch s;
  Result r = run({"convert", kModel, s / "d.pt", "--fuse-qkv", "--debug"});
  CHECK(r.code == 2);
  CHECK(contains(r.err,
                 "bertq: error: --fuse-qkv rewrites the final model's quantized linears; --debug writes "
                 "float ones\n"));
  CHECK_FALSE(fs::exists(s / "d.pt"));
  r = run({"convert", kSubmodules, s / "q.pt", "--fuse-qkv"});
  CHECK(r.code == 0);
  CHECK(contains(r.err, "--fuse-qkv fused nothing"));
}

TEST_CASE("bench --profile breaks the forward down and measures the int8 bound", "[cli][bench][fuse]") {
  Scratch s;
  REQUIRE(run({"convert", kModel, s / "fused.pt", "--fuse-qkv"}).code == 0);
  Result r = run({"bench", kModel, s / "fused.pt", "--seq-length", "16", "--iters", "2", "--warmup", "1", "--profile",
                  "--format", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto j = parse_json(r.out);
  const auto& fp = j["models"][0]["profile"];
  const auto& qp = j["models"][1]["profile"];
  CHECK(fp["int8_bound_ms"].is_null());
  CHECK(fp["int8_linears"].empty());
  // Batch 8 x 16 = 128 rows; per forward: 2 fused (32 -> 96), 2 + 2 + 2 + pooler 32 -> 32 ... as the model has.
  std::map<std::string, double> calls;
  for (const auto& g : qp["int8_linears"]) {
    CHECK(g["best_ms_alone"].get<double>() > 0);
    calls[std::to_string(g["m"].get<int>()) + "x" + std::to_string(g["k"].get<int>()) + "->" +
          std::to_string(g["n"].get<int>())] = g["calls"].get<double>();
  }
  CHECK(calls["128x32->96"] == 2);  // query, key and value, fused, in each of the two layers
  CHECK(calls["128x32->32"] == 2);  // attention.output.dense
  CHECK(calls["128x32->64"] == 2);  // intermediate.dense
  CHECK(calls["128x64->32"] == 2);  // output.dense
  CHECK(calls["8x32->32"] == 1);    // pooler, on the first token
  CHECK(calls["8x32->2"] == 1);     // classifier
  double linear_calls = 0;
  for (const auto& o : qp["ops"])
    if (o["op"] == "quantized::linear_dynamic") linear_calls = o["calls"].get<double>();
  CHECK(linear_calls == 10);
  bool pooler = false;
  for (const auto& m : qp["modules"]) pooler = pooler || m["module"] == "bert.pooler.dense";
  CHECK(pooler);
  CHECK(qp["int8_bound_ms"].get<double>() > 0);

  r = run({"bench", s / "fused.pt", "--seq-length", "16", "--iters", "1", "--warmup", "0", "--profile"});
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "bert.encoder.layer.*.attention.self.{query,key,value}"));
  CHECK(contains(r.out, "/ int8 bound"));
}
