// The plan: for every weight-bearing module, which qconfig applies and which
// rule decided it, decided before any pass runs (as llama.cpp's quantizer
// decides every tensor's type first). After the passes, the plan records what
// each module became. The summary, and later the report, `--dry-run` and
// `inspect`, all read this one structure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "qconfig.h"

namespace torch::jit {
struct Module;
}

namespace bertq {

enum class Engine;

enum class RuleKind {
  OwnKey,     // the module's own key
  Inherited,  // the nearest ancestor's key
  Global,     // the "" key
  OptedOut,   // a null at its own key or an ancestor's
  NoQConfig,  // no key covers it
};

struct Rule {
  RuleKind kind = RuleKind::NoQConfig;
  std::string key;  // the deciding key, if any
  // "own key \"classifier\"", "inherited from \"bert.encoder\"", "global \"\"", ...
  std::string describe() const;
};

struct ModulePlan {
  std::string path;       // "bert.encoder.layer.0.attention.self.query"; "" is the root
  std::string type_name;  // unmangled class name: "Linear", "LayerNorm", ...
  std::vector<int64_t> weight_shape;
  Rule rule;
  std::optional<QConfig> qconfig;  // what the rule resolved to
  // Filled from the prepared model.
  bool quantized = false;
  std::string op;           // "linear_dynamic", "linear_dynamic_fp16", "embedding_bag_byte", ...
  std::string float_reason; // why it stays float, when it does
};

struct Plan {
  std::vector<ModulePlan> modules;  // weight-bearing modules, in module order
  std::vector<std::string> warnings;
  size_t quantized_count() const;
  size_t skipped_count() const;
};

// Resolves `dict` against the model's module tree exactly as PyTorch's
// InsertObservers does (own key, else the nearest ancestor's). Throws
// Error(Config) for keys that name no module, listing the nearest names
// (a warning instead with `allow_missing`), and for qconfigs the kernels of
// `engine` cannot run on the modules they reach.
Plan make_plan(const torch::jit::Module& model, const QConfigDict& dict, Engine engine,
               bool allow_missing);

// Records, from a prepared model's weight observers, which modules are
// quantized and to what, and why the others stay float.
void record_prepared(Plan& plan, const torch::jit::Module& prepared);

// A plan read back from a prepared model alone (for `bertq convert prepared.pt`).
Plan plan_from_prepared(const torch::jit::Module& prepared);

// "Linear" from "__torch__.torch.nn.modules.linear.___torch_mangle_3.Linear".
std::string short_type_name(const std::string& qualified_name);

}  // namespace bertq
