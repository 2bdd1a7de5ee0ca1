// The plan is the decision; the passes' outcome is recorded beside it, and
// outcome_mismatches lists every disagreement (run_convert turns them into
// warnings, the golden tests into failures).
#include "base/error.h"
#include "catch.hpp"
#include "plan/plan.h"

using namespace bertq;

TEST_CASE("the plan's prediction and the passes' outcome must agree", "[plan]") {
  Plan plan;
  ModulePlan linear;
  linear.path = "fc";
  linear.type_name = "Linear";
  linear.use = WeightUse::Linear;
  linear.qconfig = preset("per_channel_dynamic");
  linear.expected_op = predicted_op(*linear.qconfig, linear.use);
  CHECK(linear.expected_op == "linear_dynamic");
  linear.quantized = true;
  linear.op = "linear_dynamic";
  plan.modules.push_back(linear);
  ModulePlan norm;
  norm.path = "norm";
  norm.type_name = "LayerNorm";
  plan.modules.push_back(norm);
  CHECK(outcome_mismatches(plan, true).empty());
  // The passes left a module float that the plan said they would quantize.
  plan.modules[0].quantized = false;
  CHECK(outcome_mismatches(plan, true) == std::vector<std::string>{"fc (planned linear_dynamic, got float)"});
  // ... or quantized one the plan left float.
  plan.modules[0].quantized = true;
  plan.modules[1].quantized = true;
  plan.modules[1].op = "linear_dynamic";
  CHECK(outcome_mismatches(plan, true) == std::vector<std::string>{"norm (planned float, got linear_dynamic)"});
  // Functional weights are found by the passes, not predicted.
  plan.modules[1].quantized = false;
  ModulePlan functional;
  functional.path = "w";
  functional.functional = true;
  functional.quantized = true;
  functional.op = "linear_dynamic";
  plan.modules.push_back(functional);
  CHECK(outcome_mismatches(plan, true).empty());
  // What graph mode does per qconfig and use.
  CHECK(predicted_op(preset("float16_dynamic"), WeightUse::Linear) == "linear_dynamic_fp16");
  CHECK(predicted_op(preset("per_channel_dynamic"), WeightUse::Embedding).empty());
  // Weight-only qconfigs reach embeddings through bertq's own pass.
  CHECK(predicted_op(preset("float_qparams_weight_only"), WeightUse::EmbeddingBag) == "embedding_bag_byte");
  CHECK(predicted_op(preset("float_qparams_weight_only"), WeightUse::Embedding) == "embedding_byte");
  QConfig four_bit = preset("float_qparams_weight_only");
  four_bit.weight.dtype = DType::QUInt4x2;
  CHECK(predicted_op(four_bit, WeightUse::Embedding) == "embedding_4bit");
  CHECK(predicted_op(four_bit, WeightUse::Linear).empty());
  // Rows planned for the embedding pass are checked once it has run.
  ModulePlan emb;
  emb.path = "emb";
  emb.use = WeightUse::Embedding;
  emb.expected_op = "embedding_byte";
  plan.modules.push_back(emb);
  CHECK(outcome_mismatches(plan, false).empty());
  CHECK(outcome_mismatches(plan, true) == std::vector<std::string>{"emb (planned embedding_byte, got float)"});
  plan.modules.back().quantized = true;
  plan.modules.back().op = "embedding_byte";
  CHECK(outcome_mismatches(plan, true).empty());
}
