// --fuse-qkv: one quantized linear for sibling Linears that read one input.
//
// BERT's query, key and value projections each quantize the same hidden
// state (a min/max pass and a quantize pass over it) and each run a 768-wide
// GEMM. quantized::linear_dynamic quantizes its input from that input alone,
// accumulates in int32 (exact) and scales each output channel by its own
// weight scale, so one linear over the rows of all three weights, whose
// per-channel scales, zero points and bias are the members' own, computes
// every output element exactly as the member that owns it did: the input is
// quantized once and the GEMM is three times wider. Each member's output is
// then a contiguous copy of its columns, so what reads it sees the layout it
// saw before, unless all that reads it is a split into heads feeding matrix
// products (BERT's attention), which read the columns in place.
// tests/convert/test_fuse.cpp checks the logits bit for bit on both engines.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace torch::jit {
struct Module;
}

namespace bertq {

// One fused group, as the report and the manifest record it.
struct LinearFusion {
  std::string attr;                  // the fused packed-params attribute
  std::vector<std::string> members;  // the packed-params attributes it replaced, in output-column order
  std::vector<int64_t> rows;         // each member's output features
  // Members quantized per tensor before the fusion: the fused weight holds
  // their one scale and zero point on every row, and the report describes
  // them as they were.
  std::vector<bool> per_tensor;
};

// A group of siblings left alone, and why.
struct SkippedFusion {
  std::vector<std::string> members;
  std::string reason;
};

struct FusionResult {
  std::vector<LinearFusion> fused;
  std::vector<SkippedFusion> skipped;
};

// Rewrites the forward graph of the final model `m`: every set of two or more
// quantized::linear_dynamic calls in one block that read the same value with
// the same reduce_range becomes one call on a new root attribute
// `_bertq_fused_linear_N` (packed with the current quantized engine), and
// the members' packed params leave the model. Members must be int8 with the
// same input width, and all or none must have a bias (a zero bias would turn
// -0.0 into +0.0); other groups are skipped with a reason.
FusionResult fuse_sibling_linears(torch::jit::Module& m);

}  // namespace bertq
