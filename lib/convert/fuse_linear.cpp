#include "convert/fuse_linear.h"

#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/script.h>

#include <map>
#include <optional>
#include <set>

#include "jit/graph_walk.h"
#include "jit/qtensor.h"

namespace bertq {
namespace {

struct Member {
  torch::jit::Node* node;
  std::string attr;
  at::Tensor weight;  // quantized, [out, in]
  std::optional<at::Tensor> bias;
};

// Attribute names read anywhere in `graph` by prim::GetAttr on `self`, with
// their count.
void count_attr_reads(torch::jit::Graph& graph, std::map<std::string, int>& reads) {
  torch::jit::Value* self = graph.inputs().empty() ? nullptr : graph.inputs()[0];
  for_each_node(graph.block(), [&](torch::jit::Node* n) {
    if (n->kind() == c10::prim::GetAttr && n->input(0) == self) ++reads[n->s(c10::attr::name)];
  });
}

// Why `members` cannot share one packed weight, or "".
std::string why_not(const std::vector<Member>& members) {
  const Member& first = members.front();
  for (const Member& m : members) {
    const at::Tensor& w = m.weight;
    if (!w.is_quantized() || w.scalar_type() != at::kQInt8 || w.dim() != 2) return m.attr + " is not an int8 matrix";
    const auto qs = w.qscheme();
    const bool per_channel = qs == at::kPerChannelAffine || qs == at::kPerChannelSymmetric;
    if (per_channel && w.q_per_channel_axis() != 0) return m.attr + " is quantized along axis 1";
    if (!per_channel && qs != at::kPerTensorAffine && qs != at::kPerTensorSymmetric)
      return m.attr + " has qscheme " + c10::toString(qs);
    if (w.size(1) != first.weight.size(1)) return "their input widths differ";
    if (m.bias.has_value() != first.bias.has_value())
      return "some have a bias and some do not (a zero bias would turn -0.0 into +0.0)";
    if (m.bias && m.bias->scalar_type() != at::kFloat) return m.attr + "'s bias is not float32";
  }
  return "";
}

// The members' rows, scales, zero points and biases, stacked in order.
c10::IValue pack_fused(const std::vector<Member>& members) {
  std::vector<at::Tensor> values, scales, zero_points, biases;
  for (const Member& m : members) {
    values.push_back(m.weight.int_repr());
    auto [s, z] = row_qparams(m.weight);
    scales.push_back(s);
    zero_points.push_back(z);
    if (m.bias) biases.push_back(*m.bias);
  }
  std::optional<at::Tensor> bias;
  if (!biases.empty()) bias = at::cat(biases);
  return prepack_linear(
      at::_make_per_channel_quantized_tensor(at::cat(values), at::cat(scales), at::cat(zero_points), 0), bias);
}

// True if `v` reaches nothing but matrix products, through layout-only
// views: every use is a permute or transpose (whose output obeys the same
// rule) or an aten::matmul. aten::matmul gives a batched product inputs that
// it reshapes to 3-D, copying any that are not viewable so, and bmm and
// BLAS compute the same sums whatever the source strides: the values
// reaching the product are the same as from a contiguous tensor.
bool feeds_only_matmul(torch::jit::Value* v) {
  for (const torch::jit::Use& use : v->uses()) {
    const c10::Symbol kind = use.user->kind();
    if (kind == c10::aten::matmul) continue;
    if ((kind == c10::aten::permute || kind == c10::aten::transpose) && use.offset == 0 &&
        feeds_only_matmul(use.user->output()))
      continue;
    return false;
  }
  return true;
}

// A member's columns can be used in place, without the copy that keeps the
// layout, when the member's output is only split into heads and multiplied:
// one aten::view (or reshape) of it, which then feeds only matrix products
// (BERT's query, key and value), besides aten::size calls (the head shape is
// computed from its size, which the columns share). The view becomes a
// reshape, which is the same view where the columns allow one and a copy
// where they do not.
torch::jit::Node* head_split_without_copy(torch::jit::Value* member_out) {
  torch::jit::Node* split = nullptr;
  for (const torch::jit::Use& use : member_out->uses()) {
    const c10::Symbol kind = use.user->kind();
    if (kind == c10::aten::size) continue;
    if ((kind != c10::aten::view && kind != c10::aten::reshape) || use.offset != 0 || split) return nullptr;
    split = use.user;
  }
  return split && feeds_only_matmul(split->output()) ? split : nullptr;
}

}  // namespace

FusionResult fuse_sibling_linears(torch::jit::Module& m) {
  FusionResult result;
  auto graph = m.get_method("forward").graph();
  torch::jit::Value* self = graph->inputs()[0];

  // A member's packed params must be read once, by its own call, and by no
  // other method: they leave the model.
  std::map<std::string, int> reads;
  count_attr_reads(*graph, reads);
  std::set<std::string> elsewhere;
  for (const auto& method : m.get_methods()) {
    if (method.name() == "forward") continue;
    std::map<std::string, int> other;
    count_attr_reads(*method.graph(), other);
    for (const auto& [name, n] : other) elsewhere.insert(name);
  }

  // Siblings: same input value, same reduce_range, same block, in graph order.
  using Key = std::tuple<torch::jit::Block*, torch::jit::Value*, bool>;
  std::map<Key, std::vector<torch::jit::Node*>> groups;
  // Siblings that cannot take part, with the first reason, per group.
  std::map<Key, std::pair<std::vector<std::string>, std::string>> held_back;
  std::vector<Key> order;
  static const c10::Symbol linear_dynamic = c10::Symbol::fromQualString("quantized::linear_dynamic");
  for_each_node(graph->block(), [&](torch::jit::Node* n) {
    if (n->kind() != linear_dynamic || n->inputs().size() != 3) return;
    const auto reduce_range = torch::jit::toIValue(n->input(2));
    if (!reduce_range || !reduce_range->isBool()) return;
    const Key key{n->owningBlock(), n->input(0), reduce_range->toBool()};
    auto [it, fresh] = groups.try_emplace(key);
    if (fresh) order.push_back(key);
    torch::jit::Node* get = n->input(1)->node();
    std::string why;
    std::string name = "a packed weight held as a graph constant";
    if (get->kind() != c10::prim::GetAttr || get->input(0) != self) {
      why = "a frozen graph holds their packed weights as constants (a scripted model with loops)";
    } else {
      name = get->s(c10::attr::name);
      if (n->input(1)->uses().size() != 1 || reads[name] != 1 || elsewhere.count(name))
        why = "their packed weights are also used by other calls (a module called from several places)";
      else if (!is_packed_linear(m.attr(name)))
        why = name + " is not a packed Linear weight";
    }
    if (why.empty()) {
      it->second.push_back(n);
    } else {
      auto& [names, reason] = held_back[key];
      names.push_back(name);
      if (reason.empty()) reason = why;
    }
  });

  std::vector<std::string> gone;
  for (const Key& key : order) {
    std::vector<torch::jit::Node*> nodes = groups[key];
    // Siblings that could not take part are said, not silently skipped.
    if (auto h = held_back.find(key); h != held_back.end() && nodes.size() + h->second.first.size() >= 2)
      result.skipped.push_back({h->second.first, h->second.second});
    if (nodes.size() < 2) continue;
    std::sort(nodes.begin(), nodes.end(), [](torch::jit::Node* a, torch::jit::Node* b) { return a->isBefore(b); });
    std::vector<Member> members;
    for (torch::jit::Node* n : nodes) {
      Member mem{n, n->input(1)->node()->s(c10::attr::name), {}, {}};
      std::tie(mem.weight, mem.bias) = unpack_packed(m, mem.attr);
      members.push_back(std::move(mem));
    }
    std::vector<std::string> names;
    for (const Member& mem : members) names.push_back(mem.attr);
    if (const std::string reason = why_not(members); !reason.empty()) {
      result.skipped.push_back({names, reason});
      continue;
    }

    LinearFusion fusion;
    fusion.attr = "_bertq_fused_linear_" + std::to_string(result.fused.size());
    const c10::IValue packed = pack_fused(members);
    m.register_attribute(fusion.attr, packed.type(), packed);

    torch::jit::Node* first = members.front().node;
    torch::jit::Value* fused_out = nullptr;
    {
      torch::jit::WithInsertPoint guard(first);
      torch::jit::Value* p = graph->insertGetAttr(self, fusion.attr);
      fused_out = graph->insert(linear_dynamic, {first->input(0), p, std::get<2>(key)});
    }
    int64_t begin = 0;
    for (Member& mem : members) {
      const int64_t rows = mem.weight.size(0);
      torch::jit::WithInsertPoint guard(mem.node);
      // Columns [begin, begin + rows) of the last dimension, copied out so
      // that views and strides downstream are as before, unless all that
      // follows is a split into heads and matrix products.
      torch::jit::Value* cols =
          graph->insert(c10::aten::slice, {fused_out, int64_t{-1}, begin, begin + rows, int64_t{1}});
      if (torch::jit::Node* split = head_split_without_copy(mem.node->output(0))) {
        torch::jit::WithInsertPoint at_split(split);
        torch::jit::Value* heads = graph->insert(c10::aten::reshape, {cols, split->input(1)});
        split->output()->replaceAllUsesWith(heads);
        split->destroy();
        mem.node->output(0)->replaceAllUsesWith(cols);  // the size calls
      } else {
        mem.node->output(0)->replaceAllUsesWith(graph->insert(c10::aten::contiguous, {cols}));
      }
      mem.node->destroy();
      fusion.members.push_back(mem.attr);
      fusion.rows.push_back(rows);
      const auto qs = mem.weight.qscheme();
      fusion.per_tensor.push_back(qs == at::kPerTensorAffine || qs == at::kPerTensorSymmetric);
      gone.push_back(mem.attr);
      begin += rows;
    }
    result.fused.push_back(std::move(fusion));
  }

  // The members' GetAttr nodes are dead now; their attributes would still be
  // saved (their weights twice) until removed.
  torch::jit::EliminateDeadCode(graph);
  for (const std::string& attr : gone) {
    m._ivalue()->unsafeRemoveAttr(attr);
    m.type()->unsafeRemoveAttribute(attr);
  }
  return result;
}

}  // namespace bertq
