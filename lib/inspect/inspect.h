// `bertq inspect`: what a model holds, read back from the file alone: float,
// prepared, debug or final (frozen, packed) models. Gathered into structs,
// then rendered as text or JSON.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace torch::jit {
struct Module;
}

#include "jit/qtensor.h"

namespace bertq {

struct InspectedModule {
  std::string path;
  std::string type_name;
  std::string state;              // "float", "linear_dynamic", "observed: linear_dynamic", ...
  std::string rule;               // the deciding qconfig rule, from the bertq manifest ("" if unknown)
  std::optional<Rule> rule_data;  // the same as data, rendered as the report renders it
  std::string float_reason;
  std::string packed_attr;
  std::optional<std::pair<int64_t, int64_t>> fused_rows;  // --fuse-qkv: its rows of packed_attr
};

struct TensorSummary {
  std::vector<int64_t> shape;
  std::string dtype;
  double min = 0, max = 0, mean = 0, std = 0;  // of the (dequantized) values
  std::string preview;                         // like print(tensor), summarized
  std::vector<double> values;                  // all values, only for small tensors (bias)
};

struct ModuleDetail {
  InspectedModule module;
  std::string source;  // where the numbers come from: "packed params", "debug attributes", "float weight"
  std::string qscheme;
  std::optional<int64_t> axis;
  std::vector<double> scales;
  std::vector<double> zero_points;
  TensorSummary weight;                     // dequantized for quantized weights
  std::optional<int64_t> int_min, int_max;  // the integer values' range, when quantized
  std::optional<TensorSummary> bias;
  // An int8 linear of a final model: the bits its input is quantized to at
  // run time, read from the graph (7: reduce_range True, PyTorch's; 8: full).
  std::optional<int> activation_bits;
};

struct Inspection {
  std::string path;
  ModelKind kind = ModelKind::Float;
  bool has_manifest = false;
  std::string bertq_version, libtorch_version, engine, input_sha256, mode;  // from the manifest
  std::vector<InspectedModule> modules;
  std::optional<ModuleDetail> detail;  // with --module
  std::string graph;                   // with --graph
};

struct InspectOptions {
  std::string path;
  std::optional<std::string> module;  // full name or unambiguous suffix
  bool graph = false;
};

// Throws Error(Model) for unreadable models, Error(Usage) for an unknown or
// ambiguous --module (listing the candidates).
Inspection inspect_model(const InspectOptions& options);

void print_inspection(const Inspection& inspection, std::ostream& out);
void print_inspection_json(const Inspection& inspection, std::ostream& out);

// Resolves `query` among `paths`: an exact name, or the only name that ends
// with "." + query. Throws Error(Usage) listing candidates otherwise.
std::string resolve_module_path(const std::string& query, const std::vector<std::string>& paths,
                                const std::string& model_path);

}  // namespace bertq
