// `bertq tune` on a model with one deliberately sensitive layer
// (testdata/tunemodels.py): the layer whose input has outlier features stays
// float, the rest is quantized, and the qconfig it writes reproduces the
// model through `bertq convert`.
#include <caffe2/serialize/inline_container.h>
#include <torch/script.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "catch.hpp"
#include "convert/pipeline.h"
#include "run/evaluate.h"
#include "scratch.h"
#include "tune/search.h"
#include "tune/tune.h"

namespace {

const std::string kModel = std::string(BERTQ_SOURCE_DIR) + "/testdata/models/outlier_net.pt";

std::map<std::string, std::string> records(const std::string& path) {
  caffe2::serialize::PyTorchStreamReader reader(path);
  std::map<std::string, std::string> out;
  for (const auto& name : reader.getAllRecords()) {
    // Records that name the run, not the model: bertq's manifest (command
    // line, time) and LibTorch 2.x's serialization id.
    if (name.find("extra/bertq_manifest.json") != std::string::npos ||
        name.find(".data/serialization_id") != std::string::npos)
      continue;
    auto [data, size] = reader.getRecord(name);
    out[name.substr(name.find('/') + 1)].assign(static_cast<const char*>(data.get()), size);
  }
  return out;
}

bertq::TuneOptions options(const bertq::testing::ScratchDir& s, double tolerance) {
  bertq::TuneOptions o;
  o.input = kModel;
  o.output = s / "tuned.pt";
  o.qconfig_out = s / "tuned.json";
  o.tolerance = tolerance;
  o.data.max_seq_length = 16;
  o.data.dummy_rows = 32;
  o.data.dummy_vocab = 100;
  return o;
}

}  // namespace

TEST_CASE("tune keeps the one sensitive layer float and quantizes the rest", "[tune]") {
  bertq::testing::ScratchDir s("bertq-tune");
  const bertq::TuneResult r = bertq::run_tune(options(s, 0.1), "test");
  // The cheapest choice (everything quantized) misses the tolerance: the
  // test means something.
  REQUIRE_FALSE(r.trials.empty());
  CHECK(r.trials.front().metric > 0.1);
  CHECK(r.final_metric <= 0.1);
  std::map<std::string, std::string> chosen;
  for (const auto& m : r.modules) chosen[m.path] = m.chosen;
  CHECK(chosen.at("fc2") == "float");
  CHECK(chosen.at("fc1") == "int8");
  CHECK(chosen.at("fc3") == "int8");
  CHECK(chosen.at("emb") != "float");
  // fc2 is the most sensitive module, by far.
  const auto fc2 = std::find_if(r.modules.begin(), r.modules.end(), [](const auto& m) { return m.path == "fc2"; });
  for (const auto& m : r.modules)
    if (m.path != "fc2") CHECK(m.sensitivity.front() * 5 < fc2->sensitivity.front());

  const nlohmann::json q = nlohmann::json::parse(bertq::testing::slurp(s / "tuned.json"));
  CHECK(q.at("").get<std::string>() == "per_channel_dynamic");
  CHECK(q.at("fc2").is_null());
  // fc1 and fc3 are int8: per channel (the "" key) or per tensor, whichever
  // erred less on the data.
  for (const char* name : {"fc1", "fc3"}) {
    INFO(name);
    CHECK((!q.contains(name) || q.at(name) == "default_dynamic"));
  }

  // The written qconfig reproduces the model through `bertq convert`.
  bertq::ConvertOptions c;
  c.input = kModel;
  c.output = s / "again.pt";
  c.qconfig_path = s / "tuned.json";
  bertq::run_convert(c);
  const auto a = records(s / "tuned.pt"), b = records(s / "again.pt");
  REQUIRE(a.size() == b.size());
  for (const auto& [name, bytes] : a) {
    INFO("record " << name);
    REQUIRE(b.count(name));
    CHECK(bertq::testing::byte_difference(b.at(name), bytes) == "");
  }

  // The same inputs give the same choice.
  bertq::testing::ScratchDir s2("bertq-tune");
  bertq::run_tune(options(s2, 0.1), "test");
  CHECK(bertq::testing::slurp(s2 / "tuned.json") == bertq::testing::slurp(s / "tuned.json"));
}

TEST_CASE("tune says so when only the float model meets the tolerance, and writes nothing", "[tune][errors]") {
  bertq::testing::ScratchDir s("bertq-tune");
  try {
    bertq::run_tune(options(s, 0.0), "test");
    FAIL("a tolerance of 0 was met by a quantized model");
  } catch (const bertq::Error& e) {
    CHECK(e.kind() == bertq::ErrorKind::Tolerance);
    CHECK(std::string(e.what()).find("no quantized choice meets --tolerance 0 on rel_l2") == 0);
  }
  CHECK_FALSE(std::filesystem::exists(s / "tuned.pt"));
  CHECK_FALSE(std::filesystem::exists(s / "tuned.json"));
  // Labels are needed for a label metric.
  bertq::TuneOptions o = options(s, 0.1);
  o.metric = bertq::TuneMetric::F1Drop;
  try {
    bertq::run_tune(o, "test");
    FAIL("f1_drop without labels");
  } catch (const bertq::Error& e) {
    CHECK(e.kind() == bertq::ErrorKind::Usage);
    CHECK(std::string(e.what()) == "--metric f1_drop needs labelled data");
  }
}

// The search alone, with a "meets the tolerance" rule in place of models.
namespace {

struct Asked {
  std::vector<bertq::Levels> levels;
  std::vector<std::string> notes;
};

bertq::SearchResult search(const std::vector<std::vector<double>>& errors,
                           const std::function<bool(const bertq::Levels&)>& rule, Asked& asked) {
  std::vector<std::string> names;
  for (size_t i = 0; i < errors.size(); ++i) names.push_back("m" + std::to_string(i));
  return bertq::search_levels(errors, names, [&](const bertq::Levels& lv, const std::string& note, size_t) {
    asked.levels.push_back(lv);
    asked.notes.push_back(note);
    return rule(lv);
  });
}

}  // namespace

TEST_CASE("tune's search raises the most sensitive module first and stops at the fewest upgrades", "[tune][search]") {
  Asked asked;
  // m0 errs most: it goes float first, and that alone meets the tolerance.
  const auto r = search(
      {{0.5}, {0.1}, {0.3}}, [](const bertq::Levels& lv) { return lv[0] == 1; }, asked);
  CHECK_FALSE(r.only_float);
  CHECK(r.levels == bertq::Levels{1, 0, 0});
  CHECK(asked.notes == std::vector<std::string>{"cheapest everywhere", "search", "undo m0"});
  CHECK(asked.levels[0] == bertq::Levels{0, 0, 0});
  CHECK(asked.levels[1] == bertq::Levels{1, 0, 0});
}

TEST_CASE("tune's search undoes an upgrade the tolerance does not need", "[tune][search]") {
  Asked asked;
  // m0 is raised first but only m1 matters: the binary search applies m0's
  // and m1's upgrades (1 misses, 2 meets), and undoing m0's keeps the
  // tolerance ...
  auto r = search(
      {{0.5}, {0.4}, {0.3}}, [](const bertq::Levels& lv) { return lv[1] == 1; }, asked);
  CHECK_FALSE(r.only_float);
  CHECK(r.levels == bertq::Levels{0, 1, 0});
  CHECK(asked.notes == std::vector<std::string>{"cheapest everywhere", "search", "search", "undo m1", "undo m0"});
  // ... and when every upgrade seemed needed, the undos still find the one
  // module that must stay float, instead of "only float meets it".
  Asked again;
  r = search(
      {{0.5}, {0.4}}, [](const bertq::Levels& lv) { return lv[1] == 1; }, again);
  CHECK_FALSE(r.only_float);
  CHECK(r.levels == bertq::Levels{0, 1});
  CHECK(again.notes == std::vector<std::string>{"cheapest everywhere", "search", "all float", "undo m1", "undo m0"});
}

TEST_CASE("tune's search steps embeddings through their levels in order of error", "[tune][search]") {
  Asked asked;
  // m0 is an embedding (4-bit errs 0.9, 8-bit 0.2): 4-bit -> 8-bit first,
  // then m1 (0.5), then m0 to float. Needed: m0 at 8-bit or better.
  const auto r = search(
      {{0.9, 0.2}, {0.5}}, [](const bertq::Levels& lv) { return lv[0] >= 1; }, asked);
  CHECK(r.levels == bertq::Levels{1, 0});
  REQUIRE(asked.levels.size() >= 2);
  CHECK(asked.levels[1] == bertq::Levels{1, 0});  // 1 of the 3 upgrades: m0 to 8-bit, not m1 to float
}

TEST_CASE("tune's search says when only float meets the tolerance, after asking for it once", "[tune][search]") {
  Asked asked;
  const auto r = search(
      {{0.5}, {0.4}},
      [](const bertq::Levels& lv) {
        return lv == bertq::Levels{1, 1};
      },
      asked);
  CHECK(r.only_float);
  CHECK(r.levels == bertq::Levels{1, 1});
  CHECK(asked.notes == std::vector<std::string>{"cheapest everywhere", "search", "all float", "undo m1", "undo m0"});
}

TEST_CASE("F1 is undefined, not 0, when no row is class 1", "[tune][eval]") {
  // sklearn's f1_score gives 0 there (with a warning); a report that prints
  // "F1 0.0000" beside 100 % agreement misleads.
  CHECK_FALSE(bertq::defined_f1({0, 0, 0}, {0, 0, 0}).has_value());
  CHECK(bertq::binary_f1({0, 0, 0}, {0, 0, 0}) == 0);
  CHECK(*bertq::defined_f1({1, 0, 0}, {0, 0, 0}) == 0);  // a class-1 row missed: F1 is 0
  CHECK(*bertq::defined_f1({0, 0, 0}, {1, 0, 0}) == 0);
  CHECK(*bertq::defined_f1({1, 1, 0, 0}, {1, 0, 0, 1}) == 0.5);  // precision and recall 1/2
}
