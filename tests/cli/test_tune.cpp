// `bertq tune` as a user meets it: the chart page, the exit codes, and no
// output when no quantized choice meets the tolerance.
#include "cli/cli.h"

using namespace cli;

namespace {
const std::string kOutlier = kSource + "/testdata/models/outlier_net.pt";
}  // namespace

TEST_CASE("tune writes the model, the qconfig and a page with the worst module first", "[cli][tune]") {
  Scratch s;
  Result r = run({"tune", kOutlier, s / "t.pt", "--tolerance", "0.1", "--qconfig-out", s / "t.json", "--rows", "32",
                  "--seq-length", "16", "--tune-html", s / "t.html", "--format", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const nlohmann::json j = parse_json(r.out);
  CHECK(j.at("final_metric").get<double>() <= 0.1);
  CHECK(j.at("qconfig").at("fc2").is_null());
  const std::string page = slurp(s / "t.html");
  const size_t fc2 = page.find("<code>fc2</code>"), fc1 = page.find("<code>fc1</code>");
  REQUIRE(fc2 != std::string::npos);
  REQUIRE(fc1 != std::string::npos);
  CHECK(fc2 < fc1);  // worst first
  CHECK(contains(page, "<tr class=\"float\"><td><code>fc2</code>"));
  CHECK(s.leftovers().empty());
}

TEST_CASE("tune: a tolerance only float meets is exit 10, and nothing is written", "[cli][tune][errors]") {
  Scratch s;
  Result r = run({"tune", kOutlier, s / "t.pt", "--tolerance", "0", "--qconfig-out", s / "t.json", "--rows", "16",
                  "--seq-length", "16"});
  CHECK(r.code == 10);
  CHECK(contains(r.err, "bertq: error: no quantized choice meets --tolerance 0 on rel_l2"));
  CHECK_FALSE(fs::exists(s / "t.pt"));
  CHECK_FALSE(fs::exists(s / "t.json"));
  CHECK(s.leftovers().empty());
  r = run({"tune", kOutlier, s / "t.pt", "--tolerance", "0.1", "--qconfig-out", s / "t.json", "--metric", "rel-l2"});
  CHECK(r.code == 2);
  CHECK(contains(r.err, "bertq: error: unknown --metric \"rel-l2\"\nhint: did you mean \"rel_l2\"?"));
  // The qconfig may not overwrite the input.
  r = run({"tune", kOutlier, s / "t.pt", "--tolerance", "0.1", "--qconfig-out", kOutlier});
  CHECK(r.code == 2);
  CHECK_FALSE(fs::exists(s / "t.pt"));
}
