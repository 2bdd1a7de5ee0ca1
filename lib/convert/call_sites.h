// How often `forward` reaches each module, and how many of those calls sit
// inside a loop. PyTorch's InsertObservers walks the call graph from forward
// and does not enter prim::Loop bodies ("prim::Loop is not yet supported in
// quantization"): a module reached only through loops keeps its float weight,
// while one reached at least once outside a loop is quantized in its own
// graph, which every call then runs, inside loops too. A module called k
// times outside loops is inlined k times by Finalize, so its weight is packed
// once per call. The plan reads both facts from here.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace torch::jit {
struct Module;
}

namespace bertq {

struct CallCount {
  // Call chains from the root's forward to the module's methods, counted
  // with multiplicity (a block called twice that calls the module once
  // calls it twice). Capped at kMaxCount: a hostile graph must not overflow.
  int64_t outside_loops = 0;  // chains that pass through no loop body
  int64_t in_loops = 0;       // chains with at least one loop body on the way
  int64_t total() const { return outside_loops + in_loops; }
  static constexpr int64_t kMaxCount = int64_t{1} << 40;
};

// Module path ("" is the root) -> how the root's forward reaches it. Modules
// never reached are absent. Calls are followed through GetAttr chains from
// `self`, into if-branches (but not branches that always raise, as
// InsertObservers skips them), into loop bodies (counted as in_loops), and
// into torch.jit.fork subgraphs (which InsertObservers inlines). The walk is
// linear in the size of the graphs, whatever the nesting.
std::map<std::string, CallCount> count_calls(const torch::jit::Module& root);

}  // namespace bertq
