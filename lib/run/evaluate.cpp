#include "run/evaluate.h"

#include <fmt/format.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <ostream>

#include "archive/manifest.h"
#include "archive/sha256.h"
#include "base/error.h"
#include "base/files.h"
#include "base/text.h"
#include "jit/engines.h"
#include "jit/model_file.h"
#include "run/given_inputs.h"
#include "run/model_inputs.h"
#include "run/runtime.h"
#include "text/glue.h"
#include "text/tokenizer.h"

namespace bertq {
namespace {

std::vector<Example> dummy_rows(const DataOptions& o) {
  // The same draws as bench's inputs for a BERT forward(input_ids, attention_mask, token_type_ids).
  const auto t = dummy_inputs({"input_ids", "attention_mask", "token_type_ids"}, o.dummy_rows, o.max_seq_length,
                              o.dummy_vocab, o.seed);
  std::vector<Example> out;
  auto row = [](const c10::IValue& v, int64_t i) {
    const at::Tensor r = v.toTensor()[i].contiguous();
    return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
  };
  for (int64_t i = 0; i < o.dummy_rows; ++i)
    out.push_back({row(t[0], i), row(t[1], i), row(t[2], i), std::nullopt, ""});
  return out;
}

}  // namespace

namespace {

// The model's forward takes the three BERT inputs in some order; match them by
// name (Hugging Face's names), else take them in the tutorial's order.
std::vector<int> forward_input_order(const torch::jit::Module& m) {
  const auto& args = m.get_method("forward").function().getSchema().arguments();
  std::vector<int> order;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& n = args[i].name();
    if (n.find("input_ids") != std::string::npos)
      order.push_back(0);
    else if (n.find("attention_mask") != std::string::npos)
      order.push_back(1);
    else if (n.find("token_type") != std::string::npos)
      order.push_back(2);
    else
      order.push_back(static_cast<int>(i - 1));
  }
  if (order.size() != 3) {
    std::vector<std::string> names;
    for (size_t i = 1; i < args.size(); ++i) names.push_back(args[i].name());
    throw Error(ErrorKind::Model,
                "the model's forward(" + join(names, ", ") + ") takes " + std::to_string(order.size()) +
                    " inputs, not BERT's three (input_ids, attention_mask, token_type_ids)",
                "give the model's own inputs with --inputs FILE: tensors saved with torch.save, or JSON Lines keyed "
                "by forward's argument names (docs/evaluate.md)");
  }
  return order;
}

// The BERT forward arguments for examples [begin, end), in `order`.
std::vector<c10::IValue> batch_inputs(const std::vector<int>& order, const Dataset& data, int64_t begin, int64_t end) {
  std::array<at::Tensor, 3> fields;
  for (int f = 0; f < 3; ++f) {
    std::vector<at::Tensor> rows;
    for (int64_t i = begin; i < end; ++i) {
      const Example& e = data.examples[static_cast<size_t>(i)];
      const auto& v = f == 0 ? e.input_ids : f == 1 ? e.attention_mask : e.token_type_ids;
      rows.push_back(at::tensor(v, at::kLong));
    }
    fields[f] = at::stack(rows);
  }
  std::vector<c10::IValue> inputs;
  for (int k : order) inputs.emplace_back(fields[static_cast<size_t>(k)]);
  return inputs;
}

}  // namespace

ForwardFeed::ForwardFeed(const torch::jit::Module& model, const Dataset& data) : data_(data) {
  if (data.given)
    bound_ = std::make_unique<BoundInputs>(*data.given, model);
  else
    order_ = forward_input_order(model);
}

ForwardFeed::~ForwardFeed() = default;

std::string ForwardFeed::describe(int64_t n) const {
  if (bound_) return bound_->describe(n);
  return fmt::format("input_ids, attention_mask, token_type_ids: Long [{}, {}]", n,
                     data_.examples.empty() ? 0 : data_.examples.front().input_ids.size());
}

std::vector<c10::IValue> ForwardFeed::rows(int64_t begin, int64_t end) const {
  return bound_ ? bound_->rows(begin, end) : batch_inputs(order_, data_, begin, end);
}

namespace {

at::Tensor first_tensor(const c10::IValue& v) {
  if (v.isTensor()) return v.toTensor();
  if (v.isTuple() && !v.toTupleRef().elements().empty()) return first_tensor(v.toTupleRef().elements()[0]);
  if (v.isGenericDict()) return first_tensor(v.toGenericDict().begin()->value());
  throw Error(ErrorKind::Model, "the model's output is not a tensor or a tuple starting with the logits");
}

}  // namespace

// Logits of every example, in order, batch by batch.
at::Tensor run_logits(const std::string& path, const Dataset& data, const RunOptions& run, const Progress& progress,
                      double* seconds) {
  torch::jit::Module m = load_model(path);
  return run_logits(m, path, data, run, progress, seconds);
}

at::Tensor run_logits(torch::jit::Module& m, const std::string& path, const Dataset& data, const RunOptions& run,
                      const Progress& progress, double* seconds) {
  m.eval();
  if (run.warn)
    if (const std::string w = saturation_warning(m, run.engine ? *run.engine : default_engine(), path); !w.empty())
      run.warn(w);
  const ForwardFeed feed(m, data);
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> outs;
  const int64_t n = static_cast<int64_t>(data.examples.size());
  const auto start = std::chrono::steady_clock::now();
  for (int64_t begin = 0; begin < n; begin += run.batch) {
    const int64_t end = std::min(n, begin + run.batch);
    std::vector<c10::IValue> inputs = feed.rows(begin, end);
    try {
      // One row of numbers per example, whatever the output's shape.
      const at::Tensor out = first_tensor(m.forward(inputs)).to(at::kFloat);
      outs.push_back(out.dim() == 0 ? out.reshape({1, 1}) : out.reshape({out.size(0), -1}));
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error(ErrorKind::Model, path + ": forward failed on rows " + std::to_string(begin) + "-" +
                                        std::to_string(end - 1) + " (" + feed.describe(end - begin) +
                                        "): " + last_line(e.what()));
    }
    if (progress) progress(end, n, path);
  }
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return outs.empty() ? at::empty({0, 0}) : at::cat(outs);
}

double relative_l2(const at::Tensor& reference, const at::Tensor& other) {
  const double noise = (other.to(at::kDouble) - reference.to(at::kDouble)).norm().item<double>();
  const double signal = reference.to(at::kDouble).norm().item<double>();
  return noise == 0 ? 0 : signal == 0 ? std::numeric_limits<double>::infinity() : noise / signal;
}

std::vector<int64_t> argmax_rows(const at::Tensor& logits) {
  const at::Tensor a = logits.argmax(1).contiguous();
  return {a.data_ptr<int64_t>(), a.data_ptr<int64_t>() + a.numel()};
}

void prepare_runtime(const RunOptions& run) {
  configure_runtime(run.threads, run.engine ? *run.engine : default_engine());
}

double binary_f1(const std::vector<int64_t>& labels, const std::vector<int64_t>& preds) {
  int64_t tp = 0, fp = 0, fn = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (preds[i] == 1 && labels[i] == 1)
      ++tp;
    else if (preds[i] == 1)
      ++fp;
    else if (labels[i] == 1)
      ++fn;
  }
  if (tp == 0) return 0.0;  // sklearn: 0 when precision and recall are both 0
  const double precision = double(tp) / double(tp + fp), recall = double(tp) / double(tp + fn);
  return 2 * precision * recall / (precision + recall);
}

std::optional<double> defined_f1(const std::vector<int64_t>& labels, const std::vector<int64_t>& preds) {
  const auto has_one = [](const std::vector<int64_t>& v) { return std::find(v.begin(), v.end(), 1) != v.end(); };
  if (!has_one(labels) && !has_one(preds)) return std::nullopt;
  return binary_f1(labels, preds);
}

namespace {

// The SHA-256 of the float model `path` came from: its manifest's record,
// or its own bytes when it has no manifest (a float model).
struct Origin {
  std::string sha256;
  bool from_manifest = false;
};

Origin origin_of(const std::string& path) {
  if (auto m = read_manifest(path); m && !m->input_sha256.empty()) return {m->input_sha256, true};
  return {sha256_file(path), false};
}

}  // namespace

std::string unrelated_reason(const std::string& reference, const std::string& other) {
  const auto mr = read_manifest(reference), mo = read_manifest(other);
  if ((!mr || mr->input_sha256.empty()) && (!mo || mo->input_sha256.empty())) return "";  // nothing recorded
  if (!mo || mo->input_sha256.empty()) return "";  // the other's source is unknown
  const Origin r = origin_of(reference);
  if (r.sha256 == mo->input_sha256) return "";
  return other + " was converted from the model with SHA-256 " + mo->input_sha256.substr(0, 16) + "..., not from " +
         reference + (r.from_manifest ? "'s source (" : " (") + r.sha256.substr(0, 16) + "...)";
}

namespace {

// --data names the folder the tutorial's glue_data/MRPC is: a file there
// (dev.tsv itself, most often) gets the folder to give instead.
void check_data_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto st = fs::status(dir, ec);
  if (st.type() == fs::file_type::not_found)
    throw Error(ErrorKind::Usage, "--data " + dir + " does not exist",
                "--data takes the folder that holds MRPC's dev.tsv (the tutorial's glue_data/MRPC)");
  if (st.type() != fs::file_type::directory) {
    const std::string parent = fs::path(dir).parent_path().string();
    throw Error(ErrorKind::Usage, "--data " + dir + " is " + file_kind(dir) + ", not a folder",
                fs::path(dir).filename() == "dev.tsv"
                    ? "--data takes the folder that holds dev.tsv: --data " + (parent.empty() ? "." : parent)
                    : "--data takes the folder that holds MRPC's dev.tsv; for a file of your own, --tokenized FILE");
  }
  if (!fs::exists(fs::path(dir) / "dev.tsv", ec))
    throw Error(ErrorKind::Usage, "--data " + dir + " has no dev.tsv",
                "--data takes the folder that holds MRPC's dev.tsv (the tutorial's glue_data/MRPC)");
}

}  // namespace

std::vector<InputPath> data_input_paths(const DataOptions& o) {
  std::vector<InputPath> out;
  if (!o.data_dir.empty()) out.push_back({"--data", (std::filesystem::path(o.data_dir) / "dev.tsv").string()});
  if (!o.vocab.empty()) out.push_back({"--vocab", o.vocab});
  if (!o.tokenized.empty()) out.push_back({"--tokenized", o.tokenized});
  if (!o.inputs.empty()) out.push_back({"--inputs", o.inputs});
  return out;
}

Dataset load_dataset(const DataOptions& o) {
  Dataset d;
  if (o.max_seq_length < 2) throw Error(ErrorKind::Usage, "--seq-length must be at least 2");
  if (!o.inputs.empty()) {
    if (!o.task.empty() || !o.data_dir.empty() || !o.tokenized.empty())
      throw Error(ErrorKind::Usage, "give either --inputs or --task/--data/--vocab/--tokenized, not both");
    auto given = std::make_shared<GivenInputs>(read_given_inputs(o.inputs));
    for (size_t i = 0; i < given->labels.size(); ++i)
      d.examples.push_back({{}, {}, {}, given->labels[i], given->origins[i]});
    d.source = o.inputs;
    d.given = std::move(given);
  } else if (!o.task.empty() || !o.data_dir.empty()) {
    if (!o.tokenized.empty())
      throw Error(ErrorKind::Usage, "give either --task/--data/--vocab or --tokenized, not both");
    // MRPC is the one task: --data alone means it.
    if (!o.task.empty() && o.task != "mrpc")
      throw Error(ErrorKind::Usage, "unknown task " + quoted_value(o.task),
                  "supported: mrpc; other tasks: --tokenized FILE");
    if (o.data_dir.empty() || o.vocab.empty())
      throw Error(ErrorKind::Usage, "--task mrpc needs --data DIR (with dev.tsv) and --vocab vocab.txt");
    check_data_folder(o.data_dir);
    const std::string tsv = (std::filesystem::path(o.data_dir) / "dev.tsv").string();
    const WordPieceTokenizer tok = WordPieceTokenizer::from_file(o.vocab);
    size_t line = 1;  // the header
    for (const auto& ex : read_mrpc_tsv(tsv)) {
      const Encoding enc = tok.encode_pair(ex.a, ex.b, static_cast<size_t>(o.max_seq_length));
      d.examples.push_back(
          {enc.input_ids, enc.attention_mask, enc.token_type_ids, ex.label, tsv + ":" + std::to_string(++line)});
    }
    d.source = tsv;
  } else if (!o.tokenized.empty()) {
    size_t line = 0;  // one row a line (an empty line is an error but at the end)
    for (const auto& ex : read_tokenized_jsonl(o.tokenized))
      d.examples.push_back(
          {ex.input_ids, ex.attention_mask, ex.token_type_ids, ex.label, o.tokenized + ":" + std::to_string(++line)});
    d.source = o.tokenized;
  } else {
    d.examples = dummy_rows(o);
    d.source = "dummy inputs (" + std::to_string(o.dummy_rows) + " rows x " + std::to_string(o.max_seq_length) + ")";
  }
  if (d.examples.empty()) throw Error(ErrorKind::Usage, d.source + " has no examples");
  return d;
}

void check_labels(const at::Tensor& logits, const Dataset& data) {
  const int64_t classes = logits.dim() == 2 ? logits.size(1) : 0;
  for (const auto& e : data.examples)
    if (e.label && (*e.label < 0 || *e.label >= classes))
      throw Error(ErrorKind::Model,
                  printable_line(e.origin.empty() ? data.source : e.origin) + ": label " + std::to_string(*e.label) +
                      " is not one of the model's " + std::to_string(classes) + " classes (0 to " +
                      std::to_string(classes - 1) + ")",
                  "check that the data is this model's task");
}

EvalResult evaluate(const std::string& model, const Dataset& data, const RunOptions& run, const Progress& progress) {
  prepare_runtime(run);
  EvalResult r;
  r.model = model;
  r.source = data.source;
  r.examples = static_cast<int64_t>(data.examples.size());
  r.batches = (r.examples + run.batch - 1) / run.batch;
  const at::Tensor logits = run_logits(model, data, run, progress, &r.seconds);
  check_labels(logits, data);
  const auto preds = argmax_rows(logits);
  r.predictions = preds;
  std::vector<int64_t> labels, labelled_preds;
  for (size_t i = 0; i < data.examples.size(); ++i)
    if (data.examples[i].label) {
      labels.push_back(*data.examples[i].label);
      labelled_preds.push_back(preds[i]);
    }
  r.labelled = static_cast<int64_t>(labels.size());
  if (labels.empty())
    throw Error(ErrorKind::Usage, data.source + " has no labels to evaluate against",
                "use `bertq compare` to measure a quantized model against its float original");
  int64_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) correct += labels[i] == labelled_preds[i];
  r.accuracy = double(correct) / double(labels.size());
  r.f1 = defined_f1(labels, labelled_preds);
  return r;
}

CompareResult compare_models(const std::string& float_model, const std::string& quantized_model, const Dataset& data,
                             const RunOptions& run, const Progress& progress) {
  prepare_runtime(run);
  CompareResult r;
  r.float_model = float_model;
  r.quantized_model = quantized_model;
  r.source = data.source;
  r.examples = static_cast<int64_t>(data.examples.size());
  const at::Tensor a = run_logits(float_model, data, run, progress, &r.float_seconds);
  const at::Tensor b = run_logits(quantized_model, data, run, progress, &r.quantized_seconds);
  if (a.sizes() != b.sizes())
    throw Error(ErrorKind::Model,
                "the models' outputs differ in shape: " + c10::str(a.sizes()) + " vs " + c10::str(b.sizes()));
  const at::Tensor diff = (a - b).abs();
  r.max_abs_diff = diff.max().item<double>();
  r.mean_abs_diff = diff.mean().item<double>();
  r.rel_l2 = relative_l2(a, b);
  const auto pa = argmax_rows(a), pb = argmax_rows(b);
  int64_t same = 0;
  for (size_t i = 0; i < pa.size(); ++i) same += pa[i] == pb[i];
  r.agreement = double(same) / double(pa.size());
  r.f1_vs_float = defined_f1(pa, pb);
  return r;
}

namespace {

std::string f1_text(const std::optional<double>& f1) {
  return f1 ? fmt::format("{:.4f}", *f1) : std::string("n/a (no row is class 1, predicted or labelled)");
}

nlohmann::ordered_json f1_json(const std::optional<double>& f1) {
  return f1 ? nlohmann::ordered_json(*f1) : nlohmann::ordered_json();
}

}  // namespace

void print_eval(const EvalResult& r, std::ostream& out) {
  out << fmt::format(
      "{} on {}\n  examples: {} ({} batch{})\n  accuracy: {:.4f}\n  f1: {}\n  eval time: {:.2f} s ({:.1f} ms "
      "per batch)\n",
      printable_line(r.model), printable_line(r.source), r.examples, r.batches, r.batches == 1 ? "" : "es", r.accuracy,
      f1_text(r.f1), r.seconds, 1000 * r.seconds / double(std::max<int64_t>(1, r.batches)));
}

void print_eval_json(const EvalResult& r, std::ostream& out) {
  nlohmann::ordered_json j{{"model", r.model},       {"data", r.source},     {"examples", r.examples},
                           {"labelled", r.labelled}, {"batches", r.batches}, {"accuracy", r.accuracy},
                           {"f1", f1_json(r.f1)},    {"seconds", r.seconds}, {"predictions", r.predictions}};
  out << j.dump(2) << "\n";
}

void print_compare(const CompareResult& r, std::ostream& out) {
  out << fmt::format(
      "{} vs {} on {}\n  examples: {}\n  max abs logit difference: {:.6g}\n  mean abs logit difference: {:.6g}\n"
      "  relative L2 logit error: {:.6g}\n"
      "  argmax agreement: {:.4f} ({} of {} disagree)\n  F1 of quantized vs float predictions: {}\n"
      "  time: float {:.2f} s, quantized {:.2f} s\n",
      printable_line(r.float_model), printable_line(r.quantized_model), printable_line(r.source), r.examples,
      r.max_abs_diff, r.mean_abs_diff, r.rel_l2, r.agreement, std::llround((1 - r.agreement) * double(r.examples)),
      r.examples, f1_text(r.f1_vs_float), r.float_seconds, r.quantized_seconds);
}

void print_compare_json(const CompareResult& r, std::ostream& out) {
  nlohmann::ordered_json j{{"float_model", r.float_model},
                           {"quantized_model", r.quantized_model},
                           {"data", r.source},
                           {"examples", r.examples},
                           {"max_abs_diff", r.max_abs_diff},
                           {"mean_abs_diff", r.mean_abs_diff},
                           {"rel_l2", r.rel_l2},
                           {"agreement", r.agreement},
                           {"f1_vs_float", f1_json(r.f1_vs_float)},
                           {"float_seconds", r.float_seconds},
                           {"quantized_seconds", r.quantized_seconds}};
  out << j.dump(2) << "\n";
}

}  // namespace bertq
