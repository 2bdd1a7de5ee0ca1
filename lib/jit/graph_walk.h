// Walking a TorchScript graph: the one walker for each visiting order, for
// bertq's passes and checks (planner, embeddings, fusion, tune's probe, the
// archive's constant scan).
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <functional>

namespace bertq {

// Calls `fn` on every node of `block`, a node's nested blocks before the node
// itself, in graph order. `fn` may replace or destroy the node it is given.
inline void for_each_node(torch::jit::Block* block, const std::function<void(torch::jit::Node*)>& fn) {
  for (auto it = block->nodes().begin(); it != block->nodes().end();) {
    torch::jit::Node* n = *it++;
    for (torch::jit::Block* b : n->blocks()) for_each_node(b, fn);
    fn(n);
  }
}

// Calls `fn` on every node of `block`, each node before its nested blocks, in
// graph order (the order in which the interpreter meets them). `fn` must not
// destroy the node it is given.
inline void for_each_node_preorder(torch::jit::Block* block, const std::function<void(torch::jit::Node*)>& fn) {
  for (torch::jit::Node* n : block->nodes()) {
    fn(n);
    for (torch::jit::Block* b : n->blocks()) for_each_node_preorder(b, fn);
  }
}

}  // namespace bertq
