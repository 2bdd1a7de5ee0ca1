#include "plan.h"

#include <torch/script.h>

#include <functional>
#include <map>
#include <set>

#include "error.h"
#include "quantize.h"
#include "text_util.h"

namespace bertq {
namespace {

// The key that decides `path`: its own, else the nearest ancestor's, else "".
Rule resolve(const std::string& path, const QConfigDict& dict, const QConfigEntry** entry) {
  std::string key = path;
  while (true) {
    if (const QConfigEntry* e = dict.find(key)) {
      *entry = e;
      Rule r;
      r.key = key;
      if (!e->qconfig) r.kind = RuleKind::OptedOut;
      else if (key == path) r.kind = RuleKind::OwnKey;
      else if (key.empty()) r.kind = RuleKind::Global;
      else r.kind = RuleKind::Inherited;
      return r;
    }
    if (key.empty()) break;
    const auto dot = key.rfind('.');
    key = dot == std::string::npos ? "" : key.substr(0, dot);
  }
  *entry = nullptr;
  return Rule{};
}

bool has_own_weight(const torch::jit::Module& m, std::vector<int64_t>* shape) {
  for (const auto& p : m.named_parameters(/*recurse=*/false)) {
    if (p.name == "weight") {
      *shape = p.value.sizes().vec();
      return true;
    }
  }
  return false;
}

bool is_affine_int8_weight(const QConfig& q) {
  return q.weight.dtype == DType::QInt8 &&
         (q.weight.qscheme == QScheme::PerTensorAffine || q.weight.qscheme == QScheme::PerChannelAffine);
}

bool is_weight_only(const QConfig& q) { return q.activation.dtype == DType::Float32; }

std::string op_for(const torch::jit::Module& observer) {
  const int64_t dtype = observer.attr("dtype").toInt();
  if (dtype == static_cast<int64_t>(DType::Float16)) return "linear_dynamic_fp16";
  if (dtype == static_cast<int64_t>(DType::QUInt8)) return "embedding_bag_byte";
  if (dtype == static_cast<int64_t>(DType::QUInt4x2)) return "embedding_bag_4bit";
  return "linear_dynamic";
}

// Visits every node of a graph, nested blocks included.
void for_each_node(torch::jit::Block* block, const std::function<void(torch::jit::Node*)>& fn) {
  for (torch::jit::Node* n : block->nodes()) {
    fn(n);
    for (torch::jit::Block* b : n->blocks()) for_each_node(b, fn);
  }
}

// Weight attributes of `m` that a weight observer watches, with that observer.
std::vector<std::pair<std::string, torch::jit::Module>> observed_weights(const torch::jit::Module& m) {
  std::vector<std::pair<std::string, torch::jit::Module>> out;
  auto method = m.find_method("forward");
  if (!method) return out;
  auto graph = method->graph();
  torch::jit::Value* self = graph->inputs()[0];
  for_each_node(graph->block(), [&](torch::jit::Node* n) {
    if (n->kind() != c10::prim::CallMethod || n->s(c10::attr::name) != "forward" ||
        n->inputs().size() < 2)
      return;
    torch::jit::Node* obs = n->input(0)->node();
    torch::jit::Node* src = n->input(1)->node();
    if (obs->kind() != c10::prim::GetAttr || src->kind() != c10::prim::GetAttr) return;
    const std::string obs_name = obs->s(c10::attr::name);
    if (obs_name.rfind("_observer_", 0) != 0 || src->input(0) != self) return;
    if (!m.hasattr(obs_name)) return;
    out.emplace_back(src->s(c10::attr::name), m.attr(obs_name).toModule());
  });
  return out;
}

std::string unsupported_reason(const std::string& type_name) {
  if (type_name == "LayerNorm" || type_name == "BatchNorm1d" || type_name == "BatchNorm2d")
    return type_name + " is not quantized by dynamic quantization";
  if (type_name == "Embedding")
    return "aten::embedding is not supported by graph-mode dynamic quantization";
  // PyTorch 1.13's dynamic pass handles only linear; its embedding_bag path
  // exists for static prepare_jit/convert_jit alone (testdata/README.md).
  if (type_name == "EmbeddingBag")
    return "EmbeddingBag is not quantized by PyTorch 1.13's graph-mode dynamic quantization "
           "(only Linear is)";
  if (type_name == "Conv1d" || type_name == "Conv2d" || type_name == "Conv3d")
    return type_name + " is not quantized by dynamic quantization (static quantization only)";
  return "its op is not supported by graph-mode dynamic quantization";
}

}  // namespace

std::string Rule::describe() const {
  switch (kind) {
    case RuleKind::OwnKey: return "own key \"" + key + "\"";
    case RuleKind::Inherited: return "inherited from \"" + key + "\"";
    case RuleKind::Global: return "global \"\"";
    case RuleKind::OptedOut: return "null at \"" + key + "\"";
    case RuleKind::NoQConfig: return "no qconfig";
  }
  return "?";
}

size_t Plan::quantized_count() const {
  size_t n = 0;
  for (const auto& m : modules) n += m.quantized ? 1 : 0;
  return n;
}

size_t Plan::skipped_count() const { return modules.size() - quantized_count(); }

std::string short_type_name(const std::string& qualified_name) {
  const auto dot = qualified_name.rfind('.');
  return dot == std::string::npos ? qualified_name : qualified_name.substr(dot + 1);
}

Plan make_plan(const torch::jit::Module& model, const QConfigDict& dict, Engine engine,
               bool allow_missing) {
  Plan plan;
  std::vector<std::string> names;
  for (const auto& child : model.named_modules()) names.push_back(child.name);

  // PyTorch ignores keys that name no module; that silent no-op is the most
  // common way a qconfig fails, so it is an error here.
  for (const auto& e : dict.entries) {
    if (std::find(names.begin(), names.end(), e.key) != names.end()) continue;
    std::vector<std::string> shown;
    for (const auto& n : nearest(e.key, names, 5)) shown.push_back("\"" + n + "\"");
    const std::string msg = "qconfig key \"" + e.key + "\" names no module in the model";
    const std::string hint = "closest modules: " + join(shown, ", ") +
                             "; run `bertq inspect MODEL` to list modules";
    if (!allow_missing) throw Error(ErrorKind::Config, msg, hint + " (or pass --allow-missing)");
    plan.warnings.push_back(msg + " (ignored because of --allow-missing); " + hint);
  }

  std::vector<std::string> bad_affine, bad_weight_only;
  for (const auto& child : model.named_modules()) {
    ModulePlan mp;
    if (!has_own_weight(child.value, &mp.weight_shape)) continue;
    mp.path = child.name;
    mp.type_name = short_type_name(child.value.type()->name()->qualifiedName());
    const QConfigEntry* entry = nullptr;
    mp.rule = resolve(mp.path, dict, &entry);
    if (entry) mp.qconfig = entry->qconfig;
    if (mp.qconfig) {
      const bool linear_like = mp.type_name != "EmbeddingBag" && mp.type_name != "Embedding";
      if (engine == Engine::OneDNN && is_affine_int8_weight(*mp.qconfig) && linear_like)
        bad_affine.push_back(mp.path.empty() ? "<root>" : mp.path);
      if (is_weight_only(*mp.qconfig) && mp.type_name == "Linear")
        bad_weight_only.push_back(mp.path);
    }
    plan.modules.push_back(std::move(mp));
  }
  auto listed = [](const std::vector<std::string>& v) {
    std::vector<std::string> head(v.begin(), v.begin() + std::min<size_t>(v.size(), 5));
    return join(head, ", ") + (v.size() > 5 ? ", ... (" + std::to_string(v.size()) + " in all)" : "");
  };
  if (!bad_affine.empty())
    throw Error(ErrorKind::Unsupported,
                "onednn only supports symmetric int8 weights, but the qconfig gives affine weights "
                "(non-zero zero points) to " + listed(bad_affine) +
                    "; the model would fail at its first forward",
                "use qscheme per_channel_symmetric or per_tensor_symmetric, or --engine qnnpack");
  if (!bad_weight_only.empty())
    throw Error(ErrorKind::Config,
                "weight-only float_qparams quantization applies to EmbeddingBag, but it reaches "
                "Linear modules " + listed(bad_weight_only) +
                    " (PyTorch fails there with \"a Tensor with N elements cannot be converted to "
                    "Scalar\")",
                "give those Linear modules their own qconfig or null");
  return plan;
}

void record_prepared(Plan& plan, const torch::jit::Module& prepared) {
  std::map<std::string, torch::jit::Module> by_path;
  for (const auto& child : prepared.named_modules()) by_path.emplace(child.name, child.value);
  for (auto& mp : plan.modules) {
    auto it = by_path.find(mp.path);
    if (it == by_path.end()) continue;
    for (const auto& [attr, observer] : observed_weights(it->second)) {
      if (attr != "weight") continue;
      mp.quantized = true;
      mp.op = op_for(observer);
    }
    if (mp.quantized) continue;
    if (mp.rule.kind == RuleKind::OptedOut) mp.float_reason = "opted out: " + mp.rule.describe();
    else if (mp.rule.kind == RuleKind::NoQConfig) mp.float_reason = "no qconfig covers it";
    else mp.float_reason = unsupported_reason(mp.type_name);
  }
}

Plan plan_from_prepared(const torch::jit::Module& prepared) {
  Plan plan;
  for (const auto& child : prepared.named_modules()) {
    ModulePlan mp;
    if (!has_own_weight(child.value, &mp.weight_shape)) continue;
    mp.path = child.name;
    mp.type_name = short_type_name(child.value.type()->name()->qualifiedName());
    plan.modules.push_back(std::move(mp));
  }
  record_prepared(plan, prepared);
  for (auto& mp : plan.modules)
    if (!mp.quantized) mp.float_reason = "not observed in the prepared model";
  return plan;
}

}  // namespace bertq
