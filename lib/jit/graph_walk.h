// Walking a TorchScript graph, for bertq's own passes (embeddings, fusion).
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

}  // namespace bertq
