// `bertq diff` as a user meets it.
#include "cli/cli.h"

using namespace cli;

TEST_CASE("diff exits 0 for identical conversions and 8 for different ones", "[cli][diff]") {
  Scratch s;
  REQUIRE(run({"convert", kModel, s / "a.pt"}).code == 0);
  REQUIRE(run({"convert", kModel, s / "b.pt"}).code == 0);
  REQUIRE(run({"convert", kModel, s / "c.pt", "--qconfig", kSource + "/configs/default_dynamic.json"}).code == 0);
  Result r = run({"diff", s / "a.pt", s / "b.pt"});
  CHECK(r.code == 0);
  CHECK(r.out == "identical: 14 quantized modules compared by module names (" + s / "a.pt" + ", " + s / "b.pt" + ")\n");
  r = run({"diff", s / "a.pt", s / "c.pt"});
  CHECK(r.code == 8);
  CHECK_FALSE(contains(r.out, "bert.classifier"));
  CHECK(contains(r.out, "classifier: qscheme qint8 per_channel_affine axis 0 vs qint8 per_tensor_affine\n"));
  CHECK(contains(r.out, "differ: 14 differences in 14 modules compared by module names\n"));
  r = run({"diff", s / "a.pt", s / "c.pt", "--format", "json"});
  CHECK(r.code == 8);
  const auto j = parse_json(r.out);
  CHECK(j["identical"] == false);
  CHECK(j["differences"].size() == 14);
  CHECK(j["differences"][0]["what"] == "qscheme");
  r = run({"diff", s / "a.pt", kModel});
  CHECK(r.code == 4);
  CHECK(contains(r.err, "holds no quantized weights"));
}

TEST_CASE("diff confirms the headline: bertq's output is Python's", "[cli][diff]") {
  // The golden is Python's quantize_dynamic_jit of the same model and qconfig:
  // it has no bertq manifest, so modules pair by packed-params attribute.
  Scratch s;
  REQUIRE(run({"convert", kModel, s / "q.pt", "--qconfig", kSource + "/testdata/qconfigs/per_channel.json"}).code == 0);
  const std::string golden = kSource + "/testdata/" BERTQ_GOLDEN_DIR "/tiny_bert__per_channel__onednn.pt";
  Result r = run({"diff", s / "q.pt", golden});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK(r.out ==
        "identical: 14 quantized modules compared by packed-params attributes (" + s / "q.pt" + ", " + golden + ")\n");
  r = run({"diff", golden, s / "q.pt", "--format", "json"});
  CHECK(r.code == 0);
  CHECK(parse_json(r.out)["identical"] == true);
  r = run({"diff", s / "q.pt", kSource + "/testdata/" BERTQ_GOLDEN_DIR "/tiny_bert__per_tensor__onednn.pt"});
  CHECK(r.code == 8);
}
