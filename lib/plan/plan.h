// The plan: for every weight-bearing module, which qconfig applies, which
// rule decided it, and what the passes will make of it, decided before any
// pass runs (as llama.cpp's quantizer decides every tensor's type first).
// After the passes, the outcome read from the observers is recorded beside
// the prediction (outcome_mismatches lists any disagreement). The report,
// the manifest, `--dry-run` and `inspect` all read this one structure.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "qconfig/qconfig.h"

namespace bertq {

enum class RuleKind {
  OwnKey,     // the module's own key
  Inherited,  // the nearest ancestor's key
  Global,     // the "" key
  OptedOut,   // a null at its own key or an ancestor's
  NoQConfig,  // no key covers it
  Flag,       // --embeddings, which overrides the dict for embedding modules
};

// JSON names of rule kinds: "own_key", "inherited", "global", "opted_out", "no_qconfig", "flag".
std::string to_string(RuleKind kind);
std::optional<RuleKind> rule_kind_from_name(const std::string& name);

struct Rule {
  RuleKind kind = RuleKind::NoQConfig;
  std::string key;  // the deciding key, if any (for Flag: the flag, "--embeddings 8bit")
  // "own key \"classifier\"", "inherited from \"bert.encoder\"", "global \"\"", ...
  std::string describe() const;
  bool operator==(const Rule& o) const { return kind == o.kind && key == o.key; }
};

// {"kind": "inherited", "key": "bert.encoder", "text": "inherited from ..."}:
// the report and the manifest store rules the same way.
nlohmann::ordered_json to_json(const Rule& rule);
// Reads what to_json wrote; nullopt if it is not a rule.
std::optional<Rule> rule_from_json(const nlohmann::ordered_json& j);

// What a weight is used by in the graph, which decides what the passes can do.
enum class WeightUse {
  Linear,        // input 1 of aten::linear (a Linear module or F.linear)
  EmbeddingBag,  // aten::embedding_bag
  Embedding,     // aten::embedding
  Other,         // LayerNorm, Conv, ... or not used
};

struct ModulePlan {
  std::string path;                    // "bert.encoder.layer.0.attention.self.query"; "" is the root
  std::string type_name;               // unmangled class name: "Linear", "LayerNorm", ...
  std::string weight_attr = "weight";  // the attribute holding the weight (an LSTM's: weight_ih_l0)
  // A weight that is not a module's `weight` parameter (a plain tensor
  // attribute or a traced constant used by F.linear): found in the prepared
  // graph, not predicted by the plan.
  bool functional = false;
  std::vector<int64_t> weight_shape;
  Rule rule;
  std::optional<QConfig> qconfig;  // what the rule resolved to
  WeightUse use = WeightUse::Other;
  // How the model's forward reaches the module (convert/call_sites.h): calls
  // outside any loop, and calls inside loop bodies, which PyTorch's passes
  // do not quantize. A Linear called k times outside loops has its weight
  // packed k times in the final model.
  int64_t calls = 0;
  int64_t calls_in_loops = 0;
  // A module holding this one's very weight that forward calls, when it
  // never calls this one (T5's `shared` and `encoder.embed_tokens`); "" otherwise.
  std::string called_as;
  std::string expected_op;  // the plan's prediction; "" = stays float
  // Why an Embedding/EmbeddingBag lookup cannot be quantized exactly (a bag
  // that averages, a padding index a bag must skip, the weight used by other
  // ops); "" if it can. Read from the module's own forward.
  std::string embedding_blocker;
  // The ops other than linear and embedding lookups that take the weight
  // ("aten::addmm", "aten::lstm"), for the float reason; "" if none.
  std::string weight_ops;
  // The outcome, read from the prepared model's weight observers.
  bool quantized = false;
  std::string op;            // "linear_dynamic", "linear_dynamic_fp16", ...
  std::string float_reason;  // why it stays float, when it does
  std::string packed_attr;   // embeddings: the root attribute holding the packed rows
};

struct Plan {
  std::vector<ModulePlan> modules;  // weight-bearing modules in module order, then functional weights
  std::vector<std::string> warnings;
  size_t quantized_count() const;
  size_t skipped_count() const;
};

// "linear_dynamic", "linear_dynamic_fp16", ... for a qconfig applied to a
// weight used as `use`; "embedding_byte", "embedding_bag_4bit", ... for a
// weight-only qconfig on an embedding (bertq's own pass, after PyTorch's);
// "" where the weight stays float.
std::string predicted_op(const QConfig& qconfig, WeightUse use);

// True for the ops of bertq's embedding pass ("embedding_byte", ...).
bool is_embedding_op(const std::string& op);

// The modules where the passes did something other than the plan predicted,
// one line each ("fc (planned linear_dynamic, got float)"). The outcome is
// what the passes did and what the report shows; a disagreement means the
// plan's model of PyTorch's passes has a gap, which the pipeline reports as
// a warning (and the tests as a failure), never as an error for a model
// PyTorch converts. Before the embedding pass has run (`embeddings_done`
// false), rows planned for it are not checked.
std::vector<std::string> outcome_mismatches(const Plan& plan, bool embeddings_done);

}  // namespace bertq
