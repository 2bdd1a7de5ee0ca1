// Measures what a conversion did, module by module: the quantized weight's
// dtype, qscheme, scales and zero points, its error against the float weight,
// the packed-params attribute that replaced it, and the bytes each module
// owns in the input and output files.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "archive/zip_index.h"
#include "convert/fuse_linear.h"
#include "jit/qtensor.h"
#include "report/report.h"

namespace torch::jit {
struct Module;
}

namespace bertq {

// The float weight and bias of each weight-bearing module, captured before
// conversion (which may consume the model). Holding them costs no copy.
struct FloatTensors {
  struct Entry {
    at::Tensor weight;
    std::optional<at::Tensor> bias;
    // The module's other own parameters (an LSTM's further weights and
    // biases): its bytes, never quantized.
    std::vector<at::Tensor> extra;
    // False for a functional weight the passes computed (a traced
    // torch.ones(...) that constant propagation folded): no input record
    // holds it.
    bool in_input = true;
  };
  std::map<std::string, Entry> by_path;
  // The storages of every tensor the loaded input holds (attributes and
  // graph constants), recorded before the passes run.
  std::set<const void*> input_storages;
};

FloatTensors capture_float_tensors(const torch::jit::Module& model, const Plan& plan);

// Adds the plan's functional weights (found in the prepared model) to `floats`.
void capture_functional_weights(const torch::jit::Module& prepared, const Plan& plan, FloatTensors& floats);

// What measure_output needs to recognise a module's float tensors in the
// written archive: their size and a content hash. The tensors themselves must
// not be held while saving: TorchScript's pickler memoizes tensors that
// something else also holds, which would change the archive's bytes.
struct FloatFingerprints {
  struct Print {
    uint64_t nbytes = 0;
    uint64_t hash = 0;
  };
  std::map<std::string, std::vector<Print>> by_path;
};

FloatFingerprints fingerprint(const FloatTensors& floats);

// Fills each module's report from the converted model in memory (final,
// debug or prepared), after every rewrite; sets packed_attr (and
// extra_packed_attrs) for final models, and the rows of a fused weight that
// hold a module's own (`fusions`, from --fuse-qkv). Drops from `floats` the
// weights of packed modules once described: nothing needs them after.
// Returns the packed-params attributes that match no module of the report.
std::vector<std::string> describe_modules(std::vector<ModuleReport>& modules, FloatTensors& floats,
                                          const torch::jit::Module& converted,
                                          const std::vector<LinearFusion>& fusions = {});

// Which modules each packed weight of a final model holds (packed-params
// attribute -> module paths), matched as describe_modules matches them: a
// module called k times owns k attributes, and modules with equal weights on
// one input share one. Call before any fusion.
std::map<std::string, std::vector<std::string>> packed_weight_owners(const torch::jit::Module& converted,
                                                                     const Plan& plan, const FloatTensors& floats);

// The input file's breakdown and each module's bytes_before. An input loaded
// by torch::jit::load has one storage per tensor record, so distinct storages
// are distinct records.
SizeBreakdown measure_input(const ZipIndex& zip, std::vector<ModuleReport>& modules, const FloatTensors& floats);

// The output file's breakdown and each module's bytes_after: every tensor
// record of the written archive is matched by content to the tensors a module
// owns in `converted`; records no module owns count as other tensors.
SizeBreakdown measure_output(const std::string& path, std::vector<ModuleReport>& modules,
                             const FloatFingerprints& floats, const torch::jit::Module& converted);

}  // namespace bertq
