// bertq's own rewrites, one at a time on a model converted in memory
// (convert_model): the graph each leaves is checked with LibTorch's FileCheck
// and must pass Graph::lint(), which finds a use before its definition, a
// value used after its node was destroyed, or a dangling block.
#include <torch/csrc/jit/testing/file_check.h>
#include <torch/script.h>

#include <string>

#include "catch.hpp"
#include "convert/convert_model.h"
#include "convert/fuse_linear.h"
#include "jit/engines.h"
#include "qconfig/qconfig.h"

namespace {

const std::string kModels = std::string(BERTQ_SOURCE_DIR) + "/testdata/models/";

std::shared_ptr<torch::jit::Graph> forward_graph(torch::jit::Module& m) { return m.get_method("forward").graph(); }

bertq::ConvertedModel convert(torch::jit::Module& model, std::optional<std::string> embeddings = std::nullopt) {
  bertq::ConversionSettings s;
  s.engine = bertq::Engine::OneDNN;
  s.embeddings = std::move(embeddings);
  bertq::set_engine(s.engine);
  return bertq::convert_model(model, bertq::default_qconfig_dict(), s);
}

}  // namespace

TEST_CASE("the embedding pass replaces a float lookup by a guarded quantized one, and the graph lints", "[passes]") {
  for (const auto& [rows, op] : {std::pair<std::string, std::string>{"8bit", "quantized::embedding_byte("},
                                 std::pair<std::string, std::string>{"4bit", "quantized::embedding_4bit("}}) {
    INFO(rows);
    // outlier_net: one Embedding(100, 16) over input_ids.
    torch::jit::Module model = torch::jit::load(kModels + "outlier_net.pt");
    bertq::ConvertedModel q = convert(model, rows);
    auto graph = forward_graph(q.model);
    graph->lint();
    // The float op runs first on a table of the same rows and no columns (its
    // checks and its output's shape), then the quantized op on the ids padded
    // by one, cut back and reshaped to the guard's shape.
    torch::jit::testing::FileCheck().check("prim::GetAttr[name=\"_bertq_packed_embedding_0\"]")->run(*graph);
    torch::jit::testing::FileCheck()
        .check("prim::Constant[value=[ CPUFloatType{100,0} ]]")
        ->check("aten::embedding(")
        ->check("aten::cat(")
        ->check(op)
        ->check("aten::narrow(")
        ->check("aten::reshape(")
        ->check_not("aten::embedding(")
        ->run(*graph);
    torch::jit::testing::FileCheck().check_count("aten::embedding(", 1, /*exactly=*/true)->run(*graph);
    // The float table itself is gone from the graph.
    torch::jit::testing::FileCheck().check_not("CPUFloatType{100,16}")->run(*graph);
  }
  // Every kind of lookup (padding, 1-D and 3-D ids, bags, tied weights):
  // the rewritten graph is well formed.
  torch::jit::Module all = torch::jit::load(kModels + "embedding_rows.pt");
  bertq::ConvertedModel q = convert(all, "8bit");
  forward_graph(q.model)->lint();
  torch::jit::testing::FileCheck().check("quantized::embedding_byte(")->run(*forward_graph(q.model));
  // Without --embeddings, the default qconfig leaves them float, as Python does.
  torch::jit::Module plain = torch::jit::load(kModels + "outlier_net.pt");
  bertq::ConvertedModel f = convert(plain);
  torch::jit::testing::FileCheck()
      .check("aten::embedding(")
      ->check_not("quantized::embedding")
      ->run(*forward_graph(f.model));
}

TEST_CASE("fusing query, key and value leaves one quantized linear per group, and the graph lints", "[passes]") {
  torch::jit::Module model = torch::jit::load(kModels + "tiny_bert.pt");
  bertq::ConvertedModel q = convert(model);
  auto graph = forward_graph(q.model);
  // tiny_bert: 2 layers x (query, key, value, attention output, intermediate,
  // output) + pooler + classifier = 14 quantized linears.
  torch::jit::testing::FileCheck().check_count("quantized::linear_dynamic", 14, /*exactly=*/true)->run(*graph);
  const bertq::FusionResult r = bertq::fuse_sibling_linears(q.model);
  REQUIRE(r.fused.size() == 2);
  graph = forward_graph(q.model);
  graph->lint();
  // Each layer's three become one: 14 - 2 x 2.
  torch::jit::testing::FileCheck()
      .check_count("quantized::linear_dynamic", 10, /*exactly=*/true)
      ->check_not("_bertq_fused_linear_2")
      ->run(*graph);
  torch::jit::testing::FileCheck().check("prim::GetAttr[name=\"_bertq_fused_linear_0\"]")->run(*graph);
}
