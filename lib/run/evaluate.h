// `bertq eval` and `bertq compare`: run models over a dataset in batches, the
// way the PyTorch tutorial evaluates BERT on GLUE MRPC, and measure accuracy,
// F1 and how closely a quantized model follows its float original.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/files.h"

namespace at {
class Tensor;
}
namespace c10 {
class IValue;
}
namespace torch::jit {
struct Module;
}

namespace bertq {

enum class Engine;

// One input row, padded to the dataset's sequence length.
struct Example {
  std::vector<int64_t> input_ids, attention_mask, token_type_ids;
  std::optional<int64_t> label;
  std::string origin;  // where the row is, for messages: "dev.tsv:12", "rows.pt: row 3"
};

struct DataOptions {
  std::string inputs;  // --inputs: the model's own inputs (run/given_inputs.h), any forward
  std::string task;    // "mrpc" (GLUE MRPC dev.tsv under data_dir)
  std::string data_dir;
  std::string vocab;      // BERT vocab.txt (uncased WordPiece)
  std::string tokenized;  // or: JSON Lines of input_ids/attention_mask/token_type_ids[/label]
  int64_t max_seq_length = 128;
  // Neither: dummy rows like `bertq bench`'s (ids in [0, dummy_vocab)).
  int64_t dummy_rows = 64;
  int64_t dummy_vocab = 2;
  uint64_t seed = 0;
};

struct GivenInputs;

// A description of where the examples came from, for the output.
struct Dataset {
  std::string source;
  // One per row. With `given`, the rows are the file's and an Example holds
  // only the row's label.
  std::vector<Example> examples;
  std::shared_ptr<const GivenInputs> given;  // --inputs
};

// Throws Error(Usage) for a bad combination of options or unreadable data,
// naming the file and line of a malformed row.
Dataset load_dataset(const DataOptions& options);

// Every file `options` makes a command read (the task's dev.tsv under --data,
// --vocab, --tokenized, --inputs): no output may land on one.
std::vector<InputPath> data_input_paths(const DataOptions& options);

struct RunOptions {
  int64_t batch = 8;
  int threads = 1;
  std::optional<Engine> engine;
  // Told what makes a model's results on this machine suspect (full 8-bit
  // activations on a CPU whose int8 kernel saturates), once per model run.
  std::function<void(const std::string&)> warn;
};

using Progress = std::function<void(int64_t done, int64_t total, const std::string& what)>;

// Throws Error(Model), naming the row, for a label that is not one of the
// classes of `logits` (rows x classes): an accuracy against labels the model
// cannot predict would be a number with no meaning.
void check_labels(const at::Tensor& logits, const Dataset& data);

struct EvalResult {
  std::string model;
  std::string source;
  int64_t examples = 0;
  int64_t labelled = 0;
  double accuracy = 0;
  // Binary F1 of class 1 (GLUE's MRPC metric); none when neither the labels
  // nor the predictions hold class 1 (0/0: undefined, not 0).
  std::optional<double> f1;
  double seconds = 0;
  int64_t batches = 0;
  std::vector<int64_t> predictions;  // argmax of each example's logits
};

EvalResult evaluate(const std::string& model, const Dataset& data, const RunOptions& run,
                    const Progress& progress = {});

// The model's logits (its first output) over every example, in batches of
// run.batch, as float32 [examples, classes]. `seconds` gets the forward time.
at::Tensor run_logits(const std::string& path, const Dataset& data, const RunOptions& run, const Progress& progress,
                      double* seconds);
// The same for a model already loaded; `name` names it in messages.
at::Tensor run_logits(torch::jit::Module& model, const std::string& name, const Dataset& data, const RunOptions& run,
                      const Progress& progress, double* seconds);

// ||other - reference|| / ||reference|| in float64; 0 when they are equal,
// infinity when only the reference is zero.
double relative_l2(const at::Tensor& reference, const at::Tensor& other);

// argmax of each row.
std::vector<int64_t> argmax_rows(const at::Tensor& logits);

class BoundInputs;

// How a dataset's rows become one model's forward arguments: the rows of an
// --inputs file bound to the forward's signature, else BERT's three token
// tensors, matched to the forward's arguments by name (Error(Model), with a
// hint at --inputs, unless forward takes three).
class ForwardFeed {
 public:
  ForwardFeed(const torch::jit::Module& model, const Dataset& data);
  ~ForwardFeed();
  // The forward arguments for rows [begin, end).
  std::vector<c10::IValue> rows(int64_t begin, int64_t end) const;
  // "x: Float [8, 16]" per argument for `n` rows, for messages.
  std::string describe(int64_t n) const;

 private:
  const Dataset& data_;
  std::vector<int> order_;  // BERT: which of (input_ids, attention_mask, token_type_ids) each argument takes
  std::unique_ptr<BoundInputs> bound_;
};

struct CompareResult {
  std::string float_model, quantized_model, source;
  int64_t examples = 0;
  double max_abs_diff = 0, mean_abs_diff = 0;
  // ||quantized - float|| / ||float|| over every logit (0 for identical
  // outputs, infinity if the float logits are all zero and the others not).
  double rel_l2 = 0;
  double agreement = 0;  // fraction of rows whose argmax agrees
  std::optional<double>
      f1_vs_float;  // F1 of the quantized predictions, float predictions as labels (as EvalResult::f1)
  double float_seconds = 0, quantized_seconds = 0;
};

CompareResult compare_models(const std::string& float_model, const std::string& quantized_model, const Dataset& data,
                             const RunOptions& run, const Progress& progress = {});

// Binary F1 of class 1, as sklearn's f1_score(labels, preds) (0 when undefined).
double binary_f1(const std::vector<int64_t>& labels, const std::vector<int64_t>& preds);
// The same, none when it is undefined: no row is class 1 in labels or predictions.
std::optional<double> defined_f1(const std::vector<int64_t>& labels, const std::vector<int64_t>& preds);

// Whether `other` can be measured against `reference`: when bertq's
// manifest in one of them records the model it was converted from, both
// must come from the same float model (the reference itself, or the model
// the reference too was converted from). Unknown (no manifest) passes.
// Returns "" when related; otherwise the reason, which callers refuse with
// (Error(Usage)) unless the user allowed unrelated models.
std::string unrelated_reason(const std::string& reference, const std::string& other);

void print_eval(const EvalResult& r, std::ostream& out);
void print_eval_json(const EvalResult& r, std::ostream& out);
void print_compare(const CompareResult& r, std::ostream& out);
void print_compare_json(const CompareResult& r, std::ostream& out);

}  // namespace bertq
