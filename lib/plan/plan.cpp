#include "plan/plan.h"

#include <nlohmann/json.hpp>

#include "base/enum_names.h"
#include "base/error.h"
#include "base/text.h"

namespace bertq {

namespace {
const EnumNames<RuleKind>& rule_kind_names() {
  static const EnumNames<RuleKind> names{{RuleKind::OwnKey, "own_key"},       {RuleKind::Inherited, "inherited"},
                                         {RuleKind::Global, "global"},        {RuleKind::OptedOut, "opted_out"},
                                         {RuleKind::NoQConfig, "no_qconfig"}, {RuleKind::Flag, "flag"}};
  return names;
}
}  // namespace

std::string to_string(RuleKind kind) { return rule_kind_names().name(kind); }

std::optional<RuleKind> rule_kind_from_name(const std::string& name) { return rule_kind_names().find(name); }

std::string Rule::describe() const {
  switch (kind) {
    case RuleKind::OwnKey:
      return "own key \"" + key + "\"";
    case RuleKind::Inherited:
      return "inherited from \"" + key + "\"";
    case RuleKind::Global:
      return "global \"\"";
    case RuleKind::OptedOut:
      return "null at \"" + key + "\"";
    case RuleKind::NoQConfig:
      return "no qconfig";
    case RuleKind::Flag:
      return key;
  }
  return "?";
}

nlohmann::ordered_json to_json(const Rule& rule) {
  return {{"kind", to_string(rule.kind)},
          {"key", rule.kind == RuleKind::NoQConfig ? nlohmann::ordered_json() : nlohmann::ordered_json(rule.key)},
          {"text", rule.describe()}};
}

std::optional<Rule> rule_from_json(const nlohmann::ordered_json& j) {
  if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string()) return std::nullopt;
  const auto kind = rule_kind_from_name(j["kind"].get<std::string>());
  if (!kind) return std::nullopt;
  Rule r;
  r.kind = *kind;
  if (j.contains("key") && j["key"].is_string()) r.key = j["key"].get<std::string>();
  return r;
}

size_t Plan::quantized_count() const {
  size_t n = 0;
  for (const auto& m : modules) n += m.quantized ? 1 : 0;
  return n;
}

size_t Plan::skipped_count() const { return modules.size() - quantized_count(); }

std::string predicted_op(const QConfig& q, WeightUse use) {
  const bool weight_only = q.weight.qscheme == QScheme::PerChannelAffineFloatQParams;
  // PyTorch's dynamic pass quantizes linear only (its embedding_bag path is
  // for static quantization; testdata/README.md). Embeddings with a
  // weight-only qconfig are bertq's own pass (convert/embeddings.h).
  if (use == WeightUse::Embedding || use == WeightUse::EmbeddingBag) {
    if (!weight_only) return "";
    return std::string(use == WeightUse::Embedding ? "embedding" : "embedding_bag") +
           (q.weight.dtype == DType::QUInt4x2 ? "_4bit" : "_byte");
  }
  if (use != WeightUse::Linear) return "";
  if (q.weight.dtype == DType::Float16) return "linear_dynamic_fp16";
  if (weight_only) return "";  // refused for Linear by make_plan
  return "linear_dynamic";
}

bool is_embedding_op(const std::string& op) { return op.rfind("embedding_", 0) == 0; }

std::vector<std::string> outcome_mismatches(const Plan& plan, bool embeddings_done) {
  std::vector<std::string> wrong;
  for (const auto& m : plan.modules) {
    if (m.functional) continue;  // found in the graph, nothing was predicted
    if (!embeddings_done && is_embedding_op(m.expected_op)) continue;
    const std::string got = m.quantized ? m.op : "";
    if (got != m.expected_op)
      wrong.push_back((m.path.empty() ? "<root>" : m.path) + " (planned " +
                      (m.expected_op.empty() ? "float" : m.expected_op) + ", got " + (got.empty() ? "float" : got) +
                      ")");
  }
  return wrong;
}

}  // namespace bertq
