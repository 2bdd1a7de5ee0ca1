// `bertq eval` and `bertq compare`: run models over a dataset in batches, the
// way the PyTorch tutorial evaluates BERT on GLUE MRPC, and measure accuracy,
// F1 and how closely a quantized model follows its float original.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

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
};

struct DataOptions {
  std::string task;  // "mrpc" (GLUE MRPC dev.tsv under data_dir)
  std::string data_dir;
  std::string vocab;      // BERT vocab.txt (uncased WordPiece)
  std::string tokenized;  // or: JSON Lines of input_ids/attention_mask/token_type_ids[/label]
  int64_t max_seq_length = 128;
  // Neither: dummy rows like `bertq bench`'s (ids in [0, dummy_vocab)).
  int64_t dummy_rows = 64;
  int64_t dummy_vocab = 2;
  uint64_t seed = 0;
};

// A description of where the examples came from, for the output.
struct Dataset {
  std::string source;
  std::vector<Example> examples;
};

// Throws Error(Usage) for a bad combination of options or unreadable data,
// naming the file and line of a malformed row.
Dataset load_dataset(const DataOptions& options);

struct RunOptions {
  int64_t batch = 8;
  int threads = 1;
  std::optional<Engine> engine;
};

using Progress = std::function<void(int64_t done, int64_t total, const std::string& what)>;

struct EvalResult {
  std::string model;
  std::string source;
  int64_t examples = 0;
  int64_t labelled = 0;
  double accuracy = 0;
  double f1 = 0;  // binary F1 of class 1 (GLUE's MRPC metric), when labels are 0/1
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

// ||other - reference|| / ||reference|| in float64; 0 when they are equal,
// infinity when only the reference is zero.
double relative_l2(const at::Tensor& reference, const at::Tensor& other);

// argmax of each row.
std::vector<int64_t> argmax_rows(const at::Tensor& logits);

// Which of (input_ids, attention_mask, token_type_ids) each forward argument
// takes, by name (Throws Error(Model) unless forward takes three).
std::vector<int> forward_input_order(const torch::jit::Module& m);
// The forward arguments for examples [begin, end), in `order`.
std::vector<c10::IValue> batch_inputs(const std::vector<int>& order, const Dataset& data, int64_t begin, int64_t end);

struct CompareResult {
  std::string float_model, quantized_model, source;
  int64_t examples = 0;
  double max_abs_diff = 0, mean_abs_diff = 0;
  // ||quantized - float|| / ||float|| over every logit (0 for identical
  // outputs, infinity if the float logits are all zero and the others not).
  double rel_l2 = 0;
  double agreement = 0;    // fraction of rows whose argmax agrees
  double f1_vs_float = 0;  // F1 of the quantized predictions, float predictions as labels
  double float_seconds = 0, quantized_seconds = 0;
};

CompareResult compare_models(const std::string& float_model, const std::string& quantized_model, const Dataset& data,
                             const RunOptions& run, const Progress& progress = {});

// Binary F1 of class 1, as sklearn's f1_score(labels, preds) (0 when undefined).
double binary_f1(const std::vector<int64_t>& labels, const std::vector<int64_t>& preds);

void print_eval(const EvalResult& r, std::ostream& out);
void print_eval_json(const EvalResult& r, std::ostream& out);
void print_compare(const CompareResult& r, std::ostream& out);
void print_compare_json(const CompareResult& r, std::ostream& out);

}  // namespace bertq
