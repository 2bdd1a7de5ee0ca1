// Making the plan: resolving a qconfig dict against a model's module tree
// before any pass runs, and reading back what the passes did.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <string>
#include <vector>

#include "plan/plan.h"
#include "qconfig/engine.h"

namespace torch::jit {
struct Module;
struct Node;
}  // namespace torch::jit

namespace bertq {

// Resolves `dict` against the model's module tree exactly as PyTorch's
// InsertObservers does (own key, else the nearest ancestor's) and predicts,
// from how each weight is used in its module's graph, what the passes will
// make of it. Throws Error(Config) for keys that name no module, listing the
// nearest names (a warning instead with `allow_missing`), and for qconfigs
// the kernels of `engine` cannot run on the modules they reach.
Plan make_plan(const torch::jit::Module& model, const QConfigDict& dict, Engine engine, bool allow_missing);

// A weight that a prepared model observes: a module's attribute, or a
// constant in a module's graph (a traced F.linear on a captured tensor).
struct ObservedWeight {
  std::string module_path;  // the module holding the attribute or the graph
  std::string attr;         // attribute name; "" for a constant
  int constant_index = -1;  // n-th observed constant of that graph
  at::Tensor value;
  std::optional<at::Tensor> bias;  // the bias of the aten::linear that uses it, if constant or an attribute
  std::string op;                  // what the observer's dtype makes of it: "linear_dynamic", ...
};
std::vector<ObservedWeight> observed_weights(const torch::jit::Module& prepared);

// Records, from a prepared model's weight observers, which modules are
// quantized and to what, and why the others stay float. Weights the plan did
// not list (functional ones) are added to it.
void record_prepared(Plan& plan, const torch::jit::Module& prepared);

// A plan read back from a prepared model alone (for `bertq convert prepared.pt`).
Plan plan_from_prepared(const torch::jit::Module& prepared);

// Why an aten::embedding / aten::embedding_bag node cannot become a quantized
// lookup with the same results ("" if it can): the planner reads it on a
// module's graph, the embedding pass again on the frozen one.
std::string embedding_blocker(torch::jit::Node* lookup);

// --embeddings: what to do with every Embedding/EmbeddingBag, whatever the
// qconfig dict says (a null still opts a module out).
enum class EmbeddingRows {
  FromQConfig,  // no flag: the dict decides
  Byte,         // 8-bit rows, float scale and offset per row
  FourBit,      // 4-bit rows
  Float,        // float, as quantize_dynamic_jit leaves them
};
// Throws Error(Usage) for a value other than 8bit, 4bit or float.
EmbeddingRows parse_embedding_rows(const std::optional<std::string>& value);
// Gives every embedding row of the plan (not opted out) the flag's qconfig;
// its rule becomes {Flag, flag_text}.
void apply_embedding_rows(Plan& plan, EmbeddingRows rows, const std::string& flag_text);
// Plans float every embedding row planned for the embedding pass, with
// `why` as the reason (the pass runs on final models only). Returns how many.
size_t keep_embeddings_float(Plan& plan, const std::string& why);

// Throws Error(Model) naming the first observed weight that holds NaN or
// infinity, with the count: its scale would be NaN or infinite.
void check_finite_weights(const torch::jit::Module& prepared);

// The module's own weight parameter: `weight`, else the first whose name
// starts with "weight" (an LSTM's weight_ih_l0); nullopt if it has none.
// Weight-bearing modules are those the plan, the report and inspect list.
std::optional<std::string> own_weight_name(const torch::jit::Module& model);
// The shape of that parameter.
std::optional<std::vector<int64_t>> own_weight_shape(const torch::jit::Module& model);

// "Linear" from "__torch__.torch.nn.modules.linear.___torch_mangle_3.Linear".
std::string short_type_name(const std::string& qualified_name);

}  // namespace bertq
