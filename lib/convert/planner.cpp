#include "convert/planner.h"

#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/fuse_linear.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/script.h>

#include <cctype>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>

#include "base/enum_names.h"
#include "base/error.h"
#include "base/text.h"
#include "convert/call_sites.h"
#include "convert/quantize.h"
#include "jit/graph_walk.h"

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

// What the module's own forward does with its `weight` attribute.
struct WeightUsage {
  WeightUse use = WeightUse::Other;
  std::string embedding_blocker;       // see ModulePlan::embedding_blocker
  std::vector<std::string> other_ops;  // ops other than linear/embedding that take the weight
};

// The int value of a constant input, if it is one (None reads as nullopt).
std::optional<int64_t> constant_int(torch::jit::Value* v) {
  const auto iv = torch::jit::toIValue(v);
  if (!iv || !iv->isInt()) return std::nullopt;
  return iv->toInt();
}

bool is_none_constant(torch::jit::Value* v) {
  const auto iv = torch::jit::toIValue(v);
  return iv && iv->isNone();
}

// Why an aten::embedding_bag node cannot become quantized::embedding_bag_*
// with the same results; "" if it can. The quantized bag ops only sum (given
// mode mean or max they still sum), cannot skip a padding index, and return
// only the first of embedding_bag's four outputs.
std::string bag_blocker(torch::jit::Node* bag) {
  const auto mode = constant_int(bag->input(4));
  if (!mode) return "its EmbeddingBag mode is not a constant";
  if (*mode != 0)
    return std::string("EmbeddingBag mode ") + (*mode == 1 ? "mean" : "max") +
           ": the quantized bag ops only sum (PyTorch's quantized::embedding_bag_byte sums whatever mode it is given)";
  if (bag->inputs().size() > 8 && !is_none_constant(bag->input(8))) {
    const auto pad = constant_int(bag->input(8));
    if (!pad || *pad >= 0) return "EmbeddingBag with padding_idx: the quantized bag ops cannot skip padding entries";
  }
  for (size_t i = 1; i < bag->outputs().size(); ++i)
    if (bag->output(i)->hasUses()) return "its forward uses embedding_bag's offset2bag/bag_size outputs";
  return "";
}

WeightUsage weight_usage_in(const std::shared_ptr<torch::jit::Graph>& graph, const std::string& weight_attr) {
  torch::jit::Value* self = graph->inputs()[0];
  WeightUsage out;
  std::vector<std::string>& others = out.other_ops;
  for_each_node_preorder(graph->block(), [&](torch::jit::Node* n) {
    if (n->kind() != c10::prim::GetAttr || n->input(0) != self || n->s(c10::attr::name) != weight_attr) return;
    for (const torch::jit::Use& u : n->output()->uses()) {
      const auto kind = u.user->kind();
      if (kind == c10::aten::linear && u.offset == 1) {
        out.use = WeightUse::Linear;
      } else if ((kind == c10::aten::embedding_bag || kind == c10::aten::embedding) && u.offset == 0) {
        out.use = kind == c10::aten::embedding ? WeightUse::Embedding : WeightUse::EmbeddingBag;
        if (out.embedding_blocker.empty()) out.embedding_blocker = embedding_blocker(u.user);
      } else if (std::find(others.begin(), others.end(), u.user->kind().toQualString()) == others.end()) {
        // A list of weights (aten::lstm takes one) counts as its consumer.
        torch::jit::Node* user = u.user;
        if (user->kind() == c10::prim::ListConstruct && user->output()->uses().size() == 1)
          user = user->output()->uses()[0].user;
        const std::string kind = user->kind().toQualString();
        if (std::find(others.begin(), others.end(), kind) == others.end()) others.push_back(kind);
      }
    }
  });
  if (out.use == WeightUse::Other && others.empty()) {
    // A traced module whose weight another module shares gets it as an
    // argument (the tracer passes a shared parameter in): its product or
    // lookup is still its own. The passes' outcome confirms it (observers
    // are matched by tensor, embeddings by value).
    for_each_node_preorder(graph->block(), [&](torch::jit::Node* n) {
      const auto kind = n->kind();
      if (out.use != WeightUse::Other) return;
      if (kind == c10::aten::linear && n->inputs().size() > 1 && n->input(1)->node()->kind() == c10::prim::Param) {
        out.use = WeightUse::Linear;
      } else if ((kind == c10::aten::embedding || kind == c10::aten::embedding_bag) &&
                 n->input(0)->node()->kind() == c10::prim::Param) {
        out.use = kind == c10::aten::embedding ? WeightUse::Embedding : WeightUse::EmbeddingBag;
        out.embedding_blocker = embedding_blocker(n);
      }
    });
  }
  if ((out.use == WeightUse::Embedding || out.use == WeightUse::EmbeddingBag) && !others.empty() &&
      out.embedding_blocker.empty())
    out.embedding_blocker = "its forward also uses the weight in " + others.front() +
                            " (max_norm renormalizes it in place; quantized rows cannot be)";
  return out;
}

WeightUsage weight_usage(const torch::jit::Module& m, const std::string& weight_attr) {
  auto method = m.find_method("forward");
  if (!method) return {};
  // What InsertObservers sees: its preprocessing turns addmm / matmul + add
  // on a transposed weight into aten::linear (FuseLinear), and scripted
  // nn.Embedding / F.linear calls are functions whose bodies (with the
  // module's constants folded in) are what runs.
  auto graph = method->graph()->copy();
  bool calls = false;
  for_each_node_preorder(graph->block(),
                         [&](torch::jit::Node* n) { calls = calls || n->kind() == c10::prim::CallFunction; });
  if (calls) {
    torch::jit::Inline(*graph);
    torch::jit::ConstantPropagation(graph);
  }
  torch::jit::FuseLinear(graph);
  return weight_usage_in(graph, weight_attr);
}

// PyTorch's own words when a loop keeps a module float (insert_observers.cpp).
constexpr const char* kLoopWarning = "\"prim::Loop is not yet supported in quantization\"";

std::string unsupported_reason(const ModulePlan& mp) {
  const std::string& type_name = mp.type_name;
  if (mp.calls == 0 && mp.calls_in_loops == 0)
    return mp.called_as.empty() ? "forward never calls it, so graph-mode quantization never sees it"
                                : "forward never calls it; its weight is also " + mp.called_as +
                                      "'s, which forward calls (the report counts shared bytes once)";
  if (mp.use == WeightUse::Linear && mp.calls == 0)
    return "called only inside a loop (" + std::to_string(mp.calls_in_loops) +
           (mp.calls_in_loops == 1 ? " call" : " calls") +
           "), where graph-mode quantization inserts no observers: PyTorch says " + kLoopWarning;
  if (type_name == "LayerNorm" || type_name == "BatchNorm1d" || type_name == "BatchNorm2d")
    return type_name + " is not quantized by dynamic quantization";
  if (mp.use == WeightUse::Embedding || mp.use == WeightUse::EmbeddingBag) {
    if (!mp.embedding_blocker.empty()) return mp.embedding_blocker;
    if (mp.rule.kind == RuleKind::Flag)
      return "--embeddings float keeps embeddings float, as quantize_dynamic_jit does";
    return "embeddings take a weight-only qconfig (float_qparams_weight_only, or --embeddings 8bit/4bit), "
           "not the Linear one that reaches them";
  }
  if (type_name == "Embedding" || type_name == "EmbeddingBag")
    return "its forward does not look its weight up with aten::embedding or aten::embedding_bag";
  if (type_name == "Conv1d" || type_name == "Conv2d" || type_name == "Conv3d")
    return type_name + " is not quantized by dynamic quantization (static quantization only)";
  if (mp.weight_ops.find("aten::addmm") != std::string::npos)
    return "its weight goes to aten::addmm as stored ([in, out], as in GPT-2's Conv1D): PyTorch's FuseLinear turns "
           "addmm into aten::linear only for a transposed weight, and graph mode quantizes only aten::linear";
  if (mp.weight_ops.find("aten::lstm") != std::string::npos || mp.weight_ops.find("aten::gru") != std::string::npos ||
      mp.weight_ops.find("aten::rnn_") != std::string::npos)
    return "its weights go to " + mp.weight_ops +
           ", which graph-mode dynamic quantization does not quantize (eager quantize_dynamic does; graph mode "
           "quantizes only aten::linear)";
  if (!mp.weight_ops.empty())
    return "its weight goes to " + mp.weight_ops +
           ", not aten::linear: graph-mode dynamic quantization quantizes "
           "aten::linear only";
  return "its op is not supported by graph-mode dynamic quantization";
}

std::string shown(const std::string& path) { return path.empty() ? "<root>" : path; }

// The op the module's qconfig makes of it, unless its lookup cannot be
// quantized exactly (then it stays float, and float_reason says why).
// PyTorch's passes observe only what forward reaches outside loops; bertq's
// embedding pass rewrites every lookup left in the frozen graph, in loops too.
std::string planned_op(const ModulePlan& mp) {
  if (!mp.qconfig) return "";
  const std::string op = predicted_op(*mp.qconfig, mp.use);
  if (is_embedding_op(op)) return mp.embedding_blocker.empty() && mp.calls + mp.calls_in_loops > 0 ? op : "";
  return mp.calls > 0 ? op : "";
}

void record_calls(ModulePlan& mp, const std::map<std::string, CallCount>& calls) {
  if (auto c = calls.find(mp.path); c != calls.end()) {
    mp.calls = c->second.outside_loops;
    mp.calls_in_loops = c->second.in_loops;
  }
}

// One weight held by modules under several names (a module registered
// twice, or T5's `shared` and `encoder.embed_tokens` holding one tensor):
// the names forward never calls point at one it does.
void note_aliases(const torch::jit::Module& model, std::vector<ModulePlan>& modules) {
  std::map<const void*, std::vector<std::string>> paths;
  for (const auto& child : model.named_modules())
    if (const auto w = own_weight_name(child.value))
      paths[child.value.attr(*w).toTensor().storage().unsafeGetStorageImpl()].push_back(child.name);
  std::map<std::string, const ModulePlan*> by_path;
  for (const auto& mp : modules) by_path[mp.path] = &mp;
  for (const auto& [object, names] : paths) {
    if (names.size() < 2) continue;
    std::string called;
    for (const auto& n : names)
      if (auto it = by_path.find(n); it != by_path.end() && it->second->calls + it->second->calls_in_loops > 0)
        called = n;
    if (called.empty()) continue;
    for (auto& mp : modules)
      if (std::find(names.begin(), names.end(), mp.path) != names.end() && mp.calls + mp.calls_in_loops == 0)
        mp.called_as = called;
  }
}

}  // namespace

std::string embedding_blocker(torch::jit::Node* n) {
  return n->kind() == c10::aten::embedding_bag ? bag_blocker(n) : "";
}

std::optional<std::string> own_weight_name(const torch::jit::Module& m) {
  std::optional<std::string> first;
  for (const auto& p : m.named_parameters(/*recurse=*/false)) {
    if (p.name == "weight") return p.name;
    if (!first && p.name.rfind("weight", 0) == 0) first = p.name;
  }
  return first;
}

std::optional<std::vector<int64_t>> own_weight_shape(const torch::jit::Module& m) {
  const auto name = own_weight_name(m);
  if (!name) return std::nullopt;
  return m.attr(*name).toTensor().sizes().vec();
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
  mp.weight_attr = *own_weight_name(m);
  mp.weight_shape = *shape;
  mp.path = path;
  mp.type_name = short_type_name(m.type()->name()->qualifiedName());
  const WeightUsage usage = weight_usage(m, mp.weight_attr);
  mp.use = usage.use;
  mp.embedding_blocker = usage.embedding_blocker;
  mp.weight_ops = join(usage.other_ops, ", ");
  const bool embedding = mp.use == WeightUse::Embedding || mp.use == WeightUse::EmbeddingBag;
  if (embedding && mp.embedding_blocker.empty() && (shape->size() != 2 || (*shape)[0] == 0 || (*shape)[1] == 0))
    mp.embedding_blocker = "its weight is not a non-empty 2-D table of rows";
  return mp;
}

}  // namespace

namespace {

// The submodule path P if `observed` is passed to P.forward and P has a
// `weight` parameter of its own; nullopt otherwise.
std::optional<std::string> tied_user(torch::jit::Value* observed, torch::jit::Value* self, const torch::jit::Module& m,
                                     const std::string& m_path) {
  for (const torch::jit::Use& u : observed->uses()) {
    if (u.user->kind() != c10::prim::CallMethod || u.offset == 0) continue;
    std::vector<std::string> chain;
    torch::jit::Value* base = u.user->input(0);
    while (base != self && base->node()->kind() == c10::prim::GetAttr) {
      chain.insert(chain.begin(), base->node()->s(c10::attr::name));
      base = base->node()->input(0);
    }
    if (base != self || chain.empty()) continue;
    torch::jit::Module holder = m;
    std::string path = m_path;
    for (const auto& c : chain) {
      const c10::IValue sub = holder.attr(c);
      if (!sub.isModule()) return std::nullopt;
      holder = sub.toModule();
      path = path.empty() ? c : path + "." + c;
    }
    // Normally P's own weight holds the same values (the passes' clones
    // untie tied weights); if a file's P holds other values, what P
    // multiplies by is still what was passed in, so P is the quantized one.
    if (holder.hasattr("weight") && holder.attr("weight").isTensor() && own_weight_shape(holder)) return path;
  }
  return std::nullopt;
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
    for_each_node_preorder(graph->block(), [&](torch::jit::Node* n) {
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
        // A weight two modules share (a Linear head tied to an embedding) is
        // observed where the tracer reads it, in the parent, and handed to
        // the module that multiplies by it: that module is the quantized one.
        if (auto user = tied_user(n->output(), self, m, child.name)) {
          w.module_path = *user;
          w.attr = "weight";
        }
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
  // Eager mode's qconfig_dict also takes module types ({"Linear": ...} or
  // {nn.Linear: ...}); graph mode's takes only names, so a key that is a type
  // of this model, or spelled like one, is said to be one.
  std::set<std::string> type_names;
  for (const auto& child : model.named_modules())
    type_names.insert(short_type_name(child.value.type()->name()->qualifiedName()));
  auto looks_like_type = [&](const std::string& key) {
    const std::string last = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
    return type_names.count(last) > 0 ||
           (key.find('.') == std::string::npos && !key.empty() && std::isupper(static_cast<unsigned char>(key[0])));
  };
  size_t missing = 0;
  for (const auto& e : dict.entries) {
    if (names.count(e.key)) continue;
    ++missing;
    const std::string msg = "qconfig key " + quoted_value(e.key) + " names no module in the model";
    if (!allow_missing || missing <= 5) {
      std::vector<std::string> near;
      for (const auto& n : nearest(e.key, name_list, 5)) near.push_back(quoted_value(n));
      const std::string hint =
          std::string(looks_like_type(e.key) ? "keys are module paths (\"\" is the whole model); graph mode has no "
                                               "type keys, so name each module (or a parent of them); "
                                             : "") +
          "closest modules: " + join(near, ", ") + "; run `bertq inspect MODEL` to list modules";
      if (!allow_missing) throw Error(ErrorKind::Config, msg, hint + " (or pass --allow-missing)");
      plan.warnings.push_back(msg + " (ignored because of --allow-missing); " + hint);
    }
  }
  if (missing > 5)
    plan.warnings.push_back(std::to_string(missing - 5) +
                            " more qconfig keys name no module (ignored because of "
                            "--allow-missing)");

  std::vector<std::string> bad_affine, bad_weight_only;
  const auto calls = count_calls(model);
  for (const auto& child : model.named_modules()) {
    std::optional<ModulePlan> found = weight_bearing(child.name, child.value);
    if (!found) continue;
    ModulePlan& mp = *found;
    record_calls(mp, calls);
    const QConfigEntry* entry = nullptr;
    mp.rule = resolve(mp.path, dict, &entry);
    if (entry) mp.qconfig = entry->qconfig;
    if (mp.qconfig) {
      if (mp.use == WeightUse::Linear) {
        if (engine == Engine::OneDNN && is_affine_int8_weight(*mp.qconfig)) bad_affine.push_back(shown(mp.path));
        if (is_weight_only(*mp.qconfig)) bad_weight_only.push_back(shown(mp.path));
      }
      mp.expected_op = planned_op(mp);
    }
    plan.modules.push_back(std::move(mp));
  }
  note_aliases(model, plan.modules);
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
    if (mp.quantized || !mp.float_reason.empty()) continue;
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
  const auto calls = count_calls(prepared);
  for (const auto& child : prepared.named_modules())
    if (auto mp = weight_bearing(child.name, child.value)) {
      record_calls(*mp, calls);
      plan.modules.push_back(std::move(*mp));
    }
  note_aliases(prepared, plan.modules);
  record_prepared(plan, prepared);
  for (auto& mp : plan.modules) {
    mp.expected_op = mp.quantized ? mp.op : "";  // nothing to predict: the observers are the plan
    if (!mp.quantized) mp.float_reason = "not observed in the prepared model";
  }
  return plan;
}

EmbeddingRows parse_embedding_rows(const std::optional<std::string>& value) {
  if (!value) return EmbeddingRows::FromQConfig;
  static const EnumNames<EmbeddingRows> names{
      {EmbeddingRows::Byte, "8bit"}, {EmbeddingRows::FourBit, "4bit"}, {EmbeddingRows::Float, "float"}};
  if (auto rows = names.find(*value)) return *rows;
  throw Error(
      ErrorKind::Usage, "--embeddings takes 8bit, 4bit or float, got " + quoted_value(*value),
      did_you_mean(*value, names.names(), "8bit: 8-bit rows; 4bit: 4-bit rows; float: as quantize_dynamic_jit"));
}

void apply_embedding_rows(Plan& plan, EmbeddingRows rows, const std::string& flag_text) {
  if (rows == EmbeddingRows::FromQConfig) return;
  std::optional<QConfig> q;
  if (rows != EmbeddingRows::Float)
    q = preset(rows == EmbeddingRows::FourBit ? "float_qparams_weight_only_4bit" : "float_qparams_weight_only");
  for (auto& mp : plan.modules) {
    if (mp.functional || (mp.use != WeightUse::Embedding && mp.use != WeightUse::EmbeddingBag)) continue;
    // A null in the qconfig is the user's word for this module: it wins.
    if (mp.rule.kind == RuleKind::OptedOut) continue;
    mp.rule = Rule{RuleKind::Flag, flag_text};
    mp.qconfig = q;
    mp.expected_op = planned_op(mp);
  }
}

size_t keep_embeddings_float(Plan& plan, const std::string& why) {
  size_t n = 0;
  for (auto& mp : plan.modules) {
    if (!is_embedding_op(mp.expected_op)) continue;
    mp.expected_op.clear();
    mp.float_reason = why;
    ++n;
  }
  return n;
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
