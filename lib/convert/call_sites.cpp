#include "convert/call_sites.h"

#include <torch/script.h>

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace bertq {
namespace {

using torch::jit::Block;
using torch::jit::Node;
using torch::jit::Value;

// One call of a module's method, in the graph of the method that calls it.
struct Site {
  std::string path;
  std::string method;
  bool in_loop = false;
};

// PyTorch's alwaysRaisesException (insert_observers.cpp): an if-branch that
// always raises is not walked for observers.
bool always_raises(Block* block) {
  for (Node* n : block->nodes()) {
    if (n->kind() == c10::prim::RaiseException) return true;
    if (n->kind() == c10::prim::If) {
      bool all = true;
      for (Block* b : n->blocks()) all = all && always_raises(b);
      if (all) return true;
    }
  }
  return false;
}

std::string join_path(const std::string& a, const std::string& b) { return a.empty() ? b : a + "." + b; }

// The calls one method makes, read from its graph.
class MethodSites {
 public:
  MethodSites(const torch::jit::Module& module, std::string path, const std::shared_ptr<torch::jit::Graph>& graph)
      : module_(module), path_(std::move(path)), self_(graph->inputs()[0]) {
    walk(graph->block(), false);
  }
  std::vector<Site> take() { return std::move(sites_); }

 private:
  // The path of the module `v` holds: `self`, or a chain of GetAttr from it
  // (through the inputs of fork subgraphs); nullopt for anything else.
  std::optional<std::string> module_path(Value* v) const {
    std::vector<std::string> chain;
    while (v != self_) {
      if (auto a = alias_.find(v); a != alias_.end()) {
        v = a->second;
        continue;
      }
      if (v->node()->kind() != c10::prim::GetAttr) return std::nullopt;
      chain.push_back(v->node()->s(c10::attr::name));
      v = v->node()->input(0);
    }
    torch::jit::Module holder = module_;
    std::string path = path_;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      if (!holder.hasattr(*it)) return std::nullopt;
      const c10::IValue sub = holder.attr(*it);
      if (!sub.isModule()) return std::nullopt;
      holder = sub.toModule();
      path = join_path(path, *it);
    }
    return path;
  }

  void walk(Block* block, bool in_loop) {
    for (Node* n : block->nodes()) {
      if (n->kind() == c10::prim::CallMethod) {
        if (auto p = module_path(n->input(0))) sites_.push_back({*p, n->s(c10::attr::name), in_loop});
      } else if (n->kind() == c10::prim::fork && n->hasAttribute(c10::attr::Subgraph)) {
        // InsertObservers inlines fork/wait first, so the forked calls are
        // ordinary calls at the fork.
        const auto sub = n->g(c10::attr::Subgraph);
        for (size_t i = 0; i < sub->inputs().size() && i < n->inputs().size(); ++i)
          alias_[sub->inputs()[i]] = n->input(i);
        walk(sub->block(), in_loop);
      }
      for (Block* b : n->blocks()) {
        if (n->kind() == c10::prim::If && always_raises(b)) continue;
        walk(b, in_loop || n->kind() == c10::prim::Loop);
      }
    }
  }

  const torch::jit::Module& module_;
  const std::string path_;
  Value* self_;
  std::unordered_map<Value*, Value*> alias_;
  std::vector<Site> sites_;
};

int64_t capped_sum(int64_t a, int64_t b) { return std::min(CallCount::kMaxCount, a + b); }

}  // namespace

std::map<std::string, CallCount> count_calls(const torch::jit::Module& root) {
  std::unordered_map<std::string, torch::jit::Module> modules;
  for (const auto& child : root.named_modules()) modules.emplace(child.name, child.value);
  // Nodes of the call graph are (module path, method); TorchScript has no
  // recursion, so the graph is a DAG. Each method's sites are read once and
  // the multiplicities propagate in topological order: linear in the graphs'
  // size even for a block that calls a block that calls ... twice each.
  auto key = [](const std::string& path, const std::string& method) { return path + '\n' + method; };
  std::unordered_map<std::string, std::vector<Site>> sites;
  std::vector<std::string> post_order;
  std::unordered_set<std::string> seen;
  struct Frame {
    std::string key;
    size_t next = 0;
  };
  auto read_sites = [&](const std::string& path, const std::string& method) -> bool {
    const std::string k = key(path, method);
    if (!seen.insert(k).second) return false;
    auto m = modules.find(path);
    std::vector<Site> found;
    if (m != modules.end())
      if (auto fn = m->second.find_method(method)) found = MethodSites(m->second, path, fn->graph()).take();
    sites.emplace(k, std::move(found));
    return true;
  };
  std::vector<Frame> stack;
  if (read_sites("", "forward")) stack.push_back({key("", "forward")});
  while (!stack.empty()) {
    Frame& top = stack.back();
    const std::vector<Site>& out = sites.at(top.key);
    if (top.next == out.size()) {
      post_order.push_back(top.key);
      stack.pop_back();
      continue;
    }
    const Site& s = out[top.next++];
    if (read_sites(s.path, s.method)) stack.push_back({key(s.path, s.method)});
  }

  std::unordered_map<std::string, CallCount> reach;
  reach[key("", "forward")].outside_loops = 1;
  std::map<std::string, CallCount> by_module;
  by_module[""].outside_loops = 1;
  auto add = [](CallCount& to, const CallCount& from, bool in_loop) {
    if (in_loop) {
      to.in_loops = capped_sum(to.in_loops, capped_sum(from.outside_loops, from.in_loops));
    } else {
      to.outside_loops = capped_sum(to.outside_loops, from.outside_loops);
      to.in_loops = capped_sum(to.in_loops, from.in_loops);
    }
  };
  for (auto it = post_order.rbegin(); it != post_order.rend(); ++it) {
    const CallCount here = reach[*it];
    const std::string caller = it->substr(0, it->find('\n'));
    for (const Site& s : sites.at(*it)) {
      add(reach[key(s.path, s.method)], here, s.in_loop);
      // A module's calls of its own methods are not calls of the module.
      if (s.path != caller) add(by_module[s.path], here, s.in_loop);
    }
  }
  return by_module;
}

}  // namespace bertq
