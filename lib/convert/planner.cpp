#include "convert/planner.h"

#include <torch/script.h>

#include <functional>
#include <map>
#include <set>
#include <unordered_map>

#include "base/error.h"
#include "base/text.h"
#include "convert/quantize.h"

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
      if (!e->qconfig)
        r.kind = RuleKind::OptedOut;
      else if (key == path)
        r.kind = RuleKind::OwnKey;
      else if (key.empty())
        r.kind = RuleKind::Global;
      else
        r.kind = RuleKind::Inherited;
      return r;
    }
    if (key.empty()) break;
    const auto dot = key.rfind('.');
    key = dot == std::string::npos ? "" : key.substr(0, dot);
  }
  *entry = nullptr;
  return Rule{};
}

bool is_affine_int8_weight(const QConfig& q) {
  return q.weight.dtype == DType::QInt8 &&
         (q.weight.qscheme == QScheme::PerTensorAffine || q.weight.qscheme == QScheme::PerChannelAffine);
}

bool is_weight_only(const QConfig& q) { return q.weight.qscheme == QScheme::PerChannelAffineFloatQParams; }

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

// How the module's own forward uses its `weight` attribute.
WeightUse weight_use(const torch::jit::Module& m) {
  auto method = m.find_method("forward");
  if (!method) return WeightUse::Other;
  auto graph = method->graph();
  torch::jit::Value* self = graph->inputs()[0];
  WeightUse use = WeightUse::Other;
  for_each_node(graph->block(), [&](torch::jit::Node* n) {
    if (n->kind() != c10::prim::GetAttr || n->input(0) != self || n->s(c10::attr::name) != "weight") return;
    for (const torch::jit::Use& u : n->output()->uses()) {
      const auto kind = u.user->kind();
      if (kind == c10::aten::linear && u.offset == 1)
        use = WeightUse::Linear;
      else if (kind == c10::aten::embedding_bag && u.offset == 0)
        use = WeightUse::EmbeddingBag;
      else if (kind == c10::aten::embedding && u.offset == 0)
        use = WeightUse::Embedding;
    }
  });
  return use;
}

std::string unsupported_reason(const ModulePlan& mp) {
  const std::string& type_name = mp.type_name;
  if (type_name == "LayerNorm" || type_name == "BatchNorm1d" || type_name == "BatchNorm2d")
    return type_name + " is not quantized by dynamic quantization";
  if (mp.use == WeightUse::Embedding || type_name == "Embedding")
    return "aten::embedding is not supported by graph-mode dynamic quantization";
  // PyTorch's dynamic pass handles only linear; its embedding_bag path exists
  // for static prepare_jit/convert_jit alone (testdata/README.md).
  if (mp.use == WeightUse::EmbeddingBag || type_name == "EmbeddingBag")
    return "EmbeddingBag is not quantized by graph-mode dynamic quantization (only Linear is)";
  if (type_name == "Conv1d" || type_name == "Conv2d" || type_name == "Conv3d")
    return type_name + " is not quantized by dynamic quantization (static quantization only)";
  return "its op is not supported by graph-mode dynamic quantization";
}

std::string shown(const std::string& path) { return path.empty() ? "<root>" : path; }

}  // namespace

std::optional<std::vector<int64_t>> own_weight_shape(const torch::jit::Module& m) {
  for (const auto& p : m.named_parameters(/*recurse=*/false))
    if (p.name == "weight") return p.value.sizes().vec();
  return std::nullopt;
}

std::string short_type_name(const std::string& qualified_name) {
  const auto dot = qualified_name.rfind('.');
  return dot == std::string::npos ? qualified_name : qualified_name.substr(dot + 1);
}

namespace {

// The plan row of a module with its own `weight` parameter, or nullopt: the
// float model and a prepared one are walked the same way.
std::optional<ModulePlan> weight_bearing(const std::string& path, const torch::jit::Module& m) {
  const auto shape = own_weight_shape(m);
  if (!shape) return std::nullopt;
  ModulePlan mp;
  mp.weight_shape = *shape;
  mp.path = path;
  mp.type_name = short_type_name(m.type()->name()->qualifiedName());
  mp.use = weight_use(m);
  return mp;
}

}  // namespace

std::vector<ObservedWeight> observed_weights(const torch::jit::Module& prepared) {
  std::vector<ObservedWeight> out;
  for (const auto& child : prepared.named_modules()) {
    const torch::jit::Module& m = child.value;
    auto method = m.find_method("forward");
    if (!method) continue;
    auto graph = method->graph();
    torch::jit::Value* self = graph->inputs()[0];
    int constants = 0;
    for_each_node(graph->block(), [&](torch::jit::Node* n) {
      if (n->kind() != c10::prim::CallMethod || n->s(c10::attr::name) != "forward" || n->inputs().size() < 2) return;
      torch::jit::Node* obs = n->input(0)->node();
      torch::jit::Node* src = n->input(1)->node();
      if (obs->kind() != c10::prim::GetAttr || obs->input(0) != self) return;
      const std::string obs_name = obs->s(c10::attr::name);
      if (obs_name.rfind("_observer_", 0) != 0 || !m.hasattr(obs_name)) return;
      ObservedWeight w;
      w.op = op_for(m.attr(obs_name).toModule());
      if (src->kind() == c10::prim::GetAttr) {
        // self.weight, or self.sub.weight reached through GetAttr chains.
        std::vector<std::string> chain{src->s(c10::attr::name)};
        torch::jit::Node* owner = src->input(0)->node();
        torch::jit::Value* base = src->input(0);
        while (base != self && owner->kind() == c10::prim::GetAttr) {
          chain.insert(chain.begin(), owner->s(c10::attr::name));
          base = owner->input(0);
          owner = base->node();
        }
        if (base != self) return;
        w.attr = chain.back();
        chain.pop_back();
        std::string path = child.name;
        torch::jit::Module holder = m;
        for (const auto& c : chain) {
          path = path.empty() ? c : path + "." + c;
          holder = holder.attr(c).toModule();
        }
        w.module_path = path;
        const c10::IValue v = holder.attr(w.attr);
        if (!v.isTensor()) return;
        w.value = v.toTensor();
      } else if (src->kind() == c10::prim::Constant) {
        const auto v = torch::jit::toIValue(src->output());
        if (!v || !v->isTensor()) return;
        w.module_path = child.name;
        w.constant_index = constants++;
        w.value = v->toTensor();
      } else {
        return;  // an activation
      }
      // The bias of the linear this weight feeds, so that the report can
      // match the packed weight (which holds both).
      // (The observer's output replaces the weight in the linear's inputs.)
      std::vector<torch::jit::Use> uses = n->input(1)->uses();
      for (const auto& u : n->output()->uses()) uses.push_back(u);
      for (const torch::jit::Use& u : uses) {
        if (u.user->kind() != c10::aten::linear || u.offset != 1 || u.user->inputs().size() < 3) continue;
        torch::jit::Node* b = u.user->input(2)->node();
        if (b->kind() == c10::prim::Constant) {
          if (auto v = torch::jit::toIValue(b->output()); v && v->isTensor()) w.bias = v->toTensor();
        } else if (b->kind() == c10::prim::GetAttr && b->input(0) == self && m.hasattr(b->s(c10::attr::name))) {
          if (auto v = m.attr(b->s(c10::attr::name)); v.isTensor()) w.bias = v.toTensor();
        }
      }
      out.push_back(std::move(w));
    });
  }
  return out;
}

Plan make_plan(const torch::jit::Module& model, const QConfigDict& dict, Engine engine, bool allow_missing) {
  Plan plan;
  std::unordered_map<std::string, bool> names;
  std::vector<std::string> name_list;
  for (const auto& child : model.named_modules()) {
    names.emplace(child.name, true);
    name_list.push_back(child.name);
  }

  // PyTorch ignores keys that name no module; that silent no-op is the most
  // common way a qconfig fails, so it is an error here. With
  // --allow-missing, the first few get their closest names, the rest a count
  // (a hostile file may hold a million keys).
  size_t missing = 0;
  for (const auto& e : dict.entries) {
    if (names.count(e.key)) continue;
    ++missing;
    const std::string msg = "qconfig key " + quoted_value(e.key) + " names no module in the model";
    if (!allow_missing || missing <= 5) {
      std::vector<std::string> near;
      for (const auto& n : nearest(e.key, name_list, 5)) near.push_back(quoted_value(n));
      const std::string hint = "closest modules: " + join(near, ", ") + "; run `bertq inspect MODEL` to list modules";
      if (!allow_missing) throw Error(ErrorKind::Config, msg, hint + " (or pass --allow-missing)");
      plan.warnings.push_back(msg + " (ignored because of --allow-missing); " + hint);
    }
  }
  if (missing > 5)
    plan.warnings.push_back(std::to_string(missing - 5) +
                            " more qconfig keys name no module (ignored because of "
                            "--allow-missing)");

  std::vector<std::string> bad_affine, bad_weight_only;
  for (const auto& child : model.named_modules()) {
    std::optional<ModulePlan> found = weight_bearing(child.name, child.value);
    if (!found) continue;
    ModulePlan& mp = *found;
    const QConfigEntry* entry = nullptr;
    mp.rule = resolve(mp.path, dict, &entry);
    if (entry) mp.qconfig = entry->qconfig;
    if (mp.qconfig) {
      if (mp.use == WeightUse::Linear) {
        if (engine == Engine::OneDNN && is_affine_int8_weight(*mp.qconfig)) bad_affine.push_back(shown(mp.path));
        if (is_weight_only(*mp.qconfig)) bad_weight_only.push_back(shown(mp.path));
      }
      mp.expected_op = predicted_op(*mp.qconfig, mp.use);
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
                "(non-zero zero points) to " +
                    listed(bad_affine) + "; the model would fail at its first forward",
                "use qscheme per_channel_symmetric or per_tensor_symmetric, or --engine qnnpack");
  if (!bad_weight_only.empty())
    throw Error(ErrorKind::Config,
                "weight-only float_qparams quantization applies to EmbeddingBag, but it reaches "
                "Linear modules " +
                    listed(bad_weight_only) +
                    " (PyTorch fails there with \"a Tensor with N elements cannot be converted to Scalar\")",
                "give those Linear modules their own qconfig or null");
  return plan;
}

void record_prepared(Plan& plan, const torch::jit::Module& prepared) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < plan.modules.size(); ++i) index[plan.modules[i].path] = i;
  for (const auto& w : observed_weights(prepared)) {
    auto it = w.constant_index < 0 && w.attr == "weight" ? index.find(w.module_path) : index.end();
    if (it != index.end()) {
      ModulePlan& mp = plan.modules[it->second];
      mp.quantized = true;
      mp.op = w.op;
      continue;
    }
    // A weight the plan did not list: F.linear on a plain tensor attribute
    // or on a traced constant. It counts like any quantized module.
    ModulePlan mp;
    mp.functional = true;
    if (w.constant_index >= 0) {
      mp.weight_attr = "<constant " + std::to_string(w.constant_index) + ">";
      mp.type_name = "constant";
    } else {
      mp.weight_attr = w.attr;
      mp.type_name = "attribute";
    }
    mp.path = w.module_path.empty() ? mp.weight_attr : w.module_path + "." + mp.weight_attr;
    mp.weight_shape = w.value.sizes().vec();
    mp.use = WeightUse::Linear;
    mp.quantized = true;
    mp.op = w.op;
    plan.modules.push_back(std::move(mp));
  }
  for (auto& mp : plan.modules) {
    if (mp.quantized) continue;
    if (mp.rule.kind == RuleKind::OptedOut)
      mp.float_reason = "opted out: " + mp.rule.describe();
    else if (mp.rule.kind == RuleKind::NoQConfig)
      mp.float_reason = "no qconfig covers it";
    else
      mp.float_reason = unsupported_reason(mp);
  }
}

Plan plan_from_prepared(const torch::jit::Module& prepared) {
  Plan plan;
  for (const auto& child : prepared.named_modules())
    if (auto mp = weight_bearing(child.name, child.value)) plan.modules.push_back(std::move(*mp));
  record_prepared(plan, prepared);
  for (auto& mp : plan.modules) {
    mp.expected_op = mp.quantized ? mp.op : "";  // nothing to predict: the observers are the plan
    if (!mp.quantized) mp.float_reason = "not observed in the prepared model";
  }
  return plan;
}

void check_finite_weights(const torch::jit::Module& prepared) {
  for (const auto& w : observed_weights(prepared)) {
    if (!w.value.is_floating_point()) continue;
    const int64_t bad = w.value.numel() - w.value.isfinite().sum().item<int64_t>();
    if (bad == 0) continue;
    const std::string where =
        w.constant_index >= 0 ? "a constant weight in " + shown(w.module_path) : shown(w.module_path) + "." + w.attr;
    throw Error(ErrorKind::Model,
                "the weight " + where + " has " + std::to_string(bad) + " non-finite values (NaN or infinity) of " +
                    std::to_string(w.value.numel()) + "; quantization needs finite weights",
                "the model's training diverged or the file was damaged; fix the weights, or opt the module out "
                "with null in the qconfig");
  }
}

}  // namespace bertq
