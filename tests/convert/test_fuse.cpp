// --fuse-qkv: the fused model must compute exactly what the unfused one does,
// on every engine, and the report must describe each fused module as it
// described it unfused.
#include <torch/script.h>

#include <map>
#include <nlohmann/json.hpp>

#include "archive/manifest.h"
#include "base/error.h"
#include "catch.hpp"
#include "convert/pipeline.h"
#include "inspect/diff.h"
#include "inspect/inspect.h"
#include "jit/engines.h"
#include "jit/qtensor.h"
#include "report/report.h"
#include "scratch.h"

namespace {

const std::string kModel = std::string(BERTQ_SOURCE_DIR) + "/testdata/models/tiny_bert.pt";

int count_nodes(const torch::jit::Module& m, const std::string& kind) {
  int n = 0;
  for (const torch::jit::Node* node : m.get_method("forward").graph()->nodes())
    n += node->kind().toQualString() == kind ? 1 : 0;
  return n;
}

// Fixed inputs: a padded second sequence and two token types, batch 3 x 16.
std::vector<torch::jit::IValue> inputs() {
  torch::manual_seed(11);
  auto ids = torch::randint(0, 128, {3, 16}, torch::kLong);
  auto mask = torch::ones({3, 16}, torch::kLong);
  mask.index_put_({1, torch::indexing::Slice(9, torch::indexing::None)}, 0);
  auto types = torch::zeros({3, 16}, torch::kLong);
  types.index_put_({torch::indexing::Slice(), torch::indexing::Slice(7, torch::indexing::None)}, 1);
  return {ids, mask, types};
}

torch::Tensor logits(const std::string& path) {
  torch::jit::Module m = torch::jit::load(path);
  m.eval();
  torch::NoGradGuard no_grad;
  const auto out = m.forward(inputs());
  return out.isTensor() ? out.toTensor() : out.toTupleRef().elements()[0].toTensor();
}

}  // namespace

TEST_CASE("fused query, key and value: logits bit-identical to the unfused model on every engine", "[fuse]") {
  bertq::testing::ScratchDir s;
  const std::string per_tensor = s / "per_tensor.json";
  bertq::testing::put(per_tensor, R"({"": "default_dynamic"})");
  for (const std::string engine : {"onednn", "qnnpack"}) {
    for (const bool per_channel : {true, false}) {
      INFO("engine " << engine << (per_channel ? ", per channel" : ", per tensor"));
      bertq::ConvertOptions o;
      o.input = kModel;
      o.engine = bertq::parse_engine(engine);
      if (!per_channel) o.qconfig_path = per_tensor;
      o.output = s / "plain.pt";
      const bertq::Report plain = bertq::run_convert(o);
      o.output = s / "fused.pt";
      o.fuse_qkv = true;
      const bertq::Report fused = bertq::run_convert(o);

      // Loading repacks with the engine the conversion set.
      const torch::Tensor a = logits(s / "plain.pt"), b = logits(s / "fused.pt");
      CHECK(a.abs().sum().item<double>() > 0);
      CHECK(torch::equal(a, b));

      // Two layers: query, key and value become one linear in each.
      torch::jit::Module pm = torch::jit::load(s / "plain.pt"), fm = torch::jit::load(s / "fused.pt");
      CHECK(count_nodes(pm, "quantized::linear_dynamic") == 14);
      CHECK(count_nodes(fm, "quantized::linear_dynamic") == 10);
      CHECK(bertq::packed_weight_attrs(fm).size() == 10);
      // Query, key and value are only split into heads and multiplied: their
      // columns are read in place (a reshape instead of the view), no copy.
      CHECK(count_nodes(fm, "aten::contiguous") == count_nodes(pm, "aten::contiguous"));
      CHECK(count_nodes(fm, "aten::reshape") == count_nodes(pm, "aten::reshape") + 6);
      CHECK(count_nodes(fm, "aten::view") == count_nodes(pm, "aten::view") - 6);
      REQUIRE(fused.fusions.size() == 2);
      for (size_t layer = 0; layer < 2; ++layer) {
        const std::string prefix = "bert.encoder.layer." + std::to_string(layer) + ".attention.self.";
        CHECK(fused.fusions[layer].modules ==
              std::vector<std::string>{prefix + "query", prefix + "key", prefix + "value"});
        CHECK(fused.fusions[layer].rows == std::vector<int64_t>{32, 32, 32});
      }

      // Each module's report is its unfused report: qparams, error, bytes.
      REQUIRE(plain.modules.size() == fused.modules.size());
      int fused_modules = 0;
      for (size_t i = 0; i < plain.modules.size(); ++i) {
        const auto& p = plain.modules[i];
        const auto& f = fused.modules[i];
        INFO(p.plan.path);
        CHECK(f.qscheme == p.qscheme);
        CHECK(f.axis == p.axis);
        CHECK(f.scales == p.scales);
        CHECK(f.zero_points == p.zero_points);
        CHECK(f.max_abs_error == p.max_abs_error);
        CHECK(f.sqnr_db == p.sqnr_db);
        if (f.fused_rows) {
          ++fused_modules;
          // Its share of the fused records: 32 rows of 32 int8 weights, a
          // float32 bias, a float64 scale and an int64 zero point per row.
          CHECK(f.bytes_after == 32 * (32 + 4 + 8 + 8));
          CHECK(f.fused_rows->second - f.fused_rows->first == 32);
          // The stored rows are the module's own rows.
          const auto own = bertq::unpack_packed(pm, p.packed_attr);
          const auto rows =
              bertq::member_rows(bertq::unpack_packed(fm, f.packed_attr), f.fused_rows->first, f.fused_rows->second);
          CHECK(torch::equal(rows.first.int_repr(), own.first.int_repr()));
          CHECK(torch::equal(*rows.second, *own.second));
        }
      }
      CHECK(fused_modules == 6);
      uint64_t sum = 0;
      for (const auto& m : fused.modules) sum += m.bytes_after;
      CHECK(sum == fused.output_sizes.modules);
    }
  }
}

TEST_CASE("fusion leaves a lone Linear and the debug model alone", "[fuse]") {
  bertq::testing::ScratchDir s;
  bertq::ConvertOptions o;
  o.input = std::string(BERTQ_SOURCE_DIR) + "/testdata/models/outlier_net.pt";
  o.output = s / "out.pt";
  o.fuse_qkv = true;
  const bertq::Report r = bertq::run_convert(o);
  CHECK(r.fusions.empty());
  bool warned = false;
  for (const auto& w : r.warnings) warned = warned || w.find("--fuse-qkv fused nothing") != std::string::npos;
  CHECK(warned);

  o.input = kModel;
  o.debug = true;
  try {
    bertq::run_convert(o);
    FAIL("--fuse-qkv with --debug was accepted");
  } catch (const bertq::Error& e) {
    CHECK(e.kind() == bertq::ErrorKind::Usage);
  }
}

TEST_CASE("a manifest whose fused rows lie is bad input for inspect and diff", "[fuse]") {
  bertq::testing::ScratchDir s;
  bertq::ConvertOptions o;
  o.input = kModel;
  o.output = s / "fused.pt";
  o.fuse_qkv = true;
  bertq::run_convert(o);
  torch::jit::ExtraFilesMap extra{{bertq::kManifestName, ""}};
  torch::jit::Module m = torch::jit::load(s / "fused.pt", c10::nullopt, extra);
  const auto manifest = nlohmann::ordered_json::parse(extra[bertq::kManifestName]);
  const std::string key = "bert.encoder.layer.0.attention.self.key";
  const std::string unfused = "bert.encoder.layer.0.attention.output.dense";
  // Rows beyond the weight, reversed, fractional (nlohmann would read 0.5 as
  // 0), the whole fused weight (the module's weight_shape says 32 rows), and
  // rows on a module that shares its packed weight with no other.
  const std::vector<std::pair<std::string, nlohmann::ordered_json>> lies = {
      {key, {32, 6400}}, {key, {64, 32}}, {key, {0.5, 10.7}}, {key, {0, 96}}, {unfused, {0, 32}}};
  for (const auto& [module, lie] : lies) {
    INFO(module << " " << lie.dump());
    auto hostile = manifest;
    bool found = false;
    for (auto& mm : hostile["modules"])
      if (mm["path"] == module) {
        if (module == key) CHECK(mm["fused_rows"] == nlohmann::ordered_json{32, 64});
        mm["fused_rows"] = lie;
        found = true;
      }
    REQUIRE(found);
    m.save(s / "lying.pt", {{bertq::kManifestName, hostile.dump()}});
    try {
      bertq::inspect_model({s / "lying.pt", module, false});
      FAIL("inspect accepted the lie");
    } catch (const bertq::Error& e) {
      CHECK(e.kind() == bertq::ErrorKind::Model);
    }
    try {
      bertq::diff_models(s / "fused.pt", s / "lying.pt");
      FAIL("diff accepted the lie");
    } catch (const bertq::Error& e) {
      CHECK(e.kind() == bertq::ErrorKind::Model);
    }
  }
}
