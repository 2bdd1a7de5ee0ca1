#include "tune/tune.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/script.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <locale>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>
#include <tuple>

#include "archive/archive_file.h"
#include "base/enum_names.h"
#include "base/error.h"
#include "base/files.h"
#include "base/text.h"
#include "convert/convert_model.h"
#include "convert/embeddings.h"
#include "convert/observers.h"
#include "convert/pipeline.h"
#include "convert/planner.h"
#include "jit/engines.h"
#include "jit/graph_walk.h"
#include "jit/model_file.h"
#include "jit/qtensor.h"
#include "qconfig/qconfig.h"
#include "report/html.h"
#include "report/report_css.h"
#include "tune/search.h"

namespace bertq {
namespace {

using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

const EnumNames<TuneMetric>& metric_names() {
  static const EnumNames<TuneMetric> names{{TuneMetric::RelL2, "rel_l2"},
                                           {TuneMetric::MaxAbs, "max_abs"},
                                           {TuneMetric::Disagreement, "disagreement"},
                                           {TuneMetric::F1Drop, "f1_drop"},
                                           {TuneMetric::AccuracyDrop, "accuracy_drop"}};
  return names;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The metric of `q`'s logits against float's (and the labels').
double measure(TuneMetric metric, const at::Tensor& f, const at::Tensor& q, const Dataset& data) {
  switch (metric) {
    case TuneMetric::RelL2:
      return relative_l2(f, q);
    case TuneMetric::MaxAbs:
      return f.numel() == 0 ? 0 : (q - f).abs().max().item<double>();
    case TuneMetric::Disagreement: {
      const auto a = argmax_rows(f), b = argmax_rows(q);
      size_t differ = 0;
      for (size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
      return a.empty() ? 0 : double(differ) / double(a.size());
    }
    case TuneMetric::F1Drop:
    case TuneMetric::AccuracyDrop: {
      const auto a = argmax_rows(f), b = argmax_rows(q);
      std::vector<int64_t> labels, pa, pb;
      for (size_t i = 0; i < data.examples.size(); ++i)
        if (data.examples[i].label) {
          labels.push_back(*data.examples[i].label);
          pa.push_back(a[i]);
          pb.push_back(b[i]);
        }
      if (metric == TuneMetric::F1Drop) return binary_f1(labels, pa) - binary_f1(labels, pb);
      size_t ca = 0, cb = 0;
      for (size_t i = 0; i < labels.size(); ++i) {
        ca += pa[i] == labels[i];
        cb += pb[i] == labels[i];
      }
      return (double(ca) - double(cb)) / double(labels.size());
    }
  }
  return 0;
}

// A Linear weight packed as the passes pack it for per_channel_dynamic, or
// for default_dynamic (one scale per weight).
c10::IValue pack_linear(const at::Tensor& w, const std::optional<at::Tensor>& b, bool per_tensor) {
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module observer =
      make_observer(preset(per_tensor ? "default_dynamic" : "per_channel_dynamic").weight, cu);
  observer.forward({w});
  const auto qparams = observer.run_method("calculate_qparams").toTuple();
  const at::Tensor scale = qparams->elements()[0].toTensor(), zp = qparams->elements()[1].toTensor();
  const at::Tensor q = per_tensor ? at::quantize_per_tensor(w, scale.item<double>(), zp.item<int64_t>(), at::kQInt8)
                                  : at::quantize_per_channel(w, scale.to(at::kDouble), zp.to(at::kLong), 0, at::kQInt8);
  return prepack_linear(q, b);
}

// Relative L2 error of a module's quantized rows.
double rows_error(const at::Tensor& w, const QConfig& q) {
  const at::Tensor f = w.to(at::kFloat);
  const double noise = (quantize_rows(f, q).dequantize() - f).to(at::kDouble).norm().item<double>();
  const double signal = f.to(at::kDouble).norm().item<double>();
  return signal == 0 ? 0 : noise / signal;
}

struct Candidate {
  std::string path;
  std::string type_name;
  bool embedding = false;
  bool per_tensor = false;          // Linear: its int8 level uses one scale, which erred less on the data
  bool full_range = false;          // Linear: its int8 level takes 8-bit activations, which erred less
  std::vector<std::string> levels;  // cheapest first; float after the last
  std::vector<double> errors;
  size_t module_index = 0;     // plan order
  int64_t rows = 0, cols = 0;  // the weight's shape, for size estimates
};

// The bytes a candidate's weight takes at `level` (float past the last):
// int8 rows with a float64 scale and an int64 zero point each (one pair for
// per-tensor), embedding rows with their float32 (8-bit) or float16 (4-bit)
// scale and offset packed in. An estimate from the shapes, for the progress
// lines; the final model is measured.
uint64_t weight_bytes(const Candidate& c, size_t level) {
  const auto rows = static_cast<uint64_t>(c.rows), cols = static_cast<uint64_t>(c.cols);
  if (level >= c.levels.size()) return 4 * rows * cols;
  if (!c.embedding) return rows * cols + (c.per_tensor ? 16 : 16 * rows);
  return c.levels[level] == "8bit" ? rows * (cols + 8) : rows * ((cols + 1) / 2 + 4);
}

uint64_t estimated_bytes(const std::vector<Candidate>& cands, const std::vector<size_t>& level, uint64_t float_bytes) {
  int64_t bytes = static_cast<int64_t>(float_bytes);
  for (size_t i = 0; i < cands.size(); ++i)
    bytes -= static_cast<int64_t>(weight_bytes(cands[i], cands[i].levels.size())) -
             static_cast<int64_t>(weight_bytes(cands[i], level[i]));
  return static_cast<uint64_t>(std::max<int64_t>(bytes, 0));
}

// Thrown by a trial past --max-trials or --time-limit: the search ends there.
struct StopSearch {};

// The sensitivity of every Linear: one pass over the data through the frozen
// float model, with each Linear's int8 counterpart computed beside it.
void probe_linears(const torch::jit::Module& model, std::vector<Candidate>& cands, const Dataset& data, int64_t batch,
                   bool try_full_range, const Progress& progress) {
  // The int8 variants each Linear is measured at: per channel and per
  // tensor, with PyTorch's 7-bit activations and, where asked (and exact
  // here), 8-bit ones. Same size and speed: the int8 level takes the best.
  struct Variant {
    bool per_tensor, full_range;
  };
  std::vector<Variant> variants = {{false, false}, {true, false}};
  if (try_full_range) variants.insert(variants.end(), {{false, true}, {true, true}});
  std::map<std::string, std::pair<at::Tensor, std::optional<at::Tensor>>> weights;
  std::map<std::string, torch::jit::Module> by_path;
  for (const auto& child : model.named_modules()) by_path.emplace(child.name, child.value);
  for (const auto& c : cands) {
    if (c.embedding) continue;
    const torch::jit::Module& m = by_path.at(c.path);
    std::optional<at::Tensor> bias;
    if (m.hasattr("bias") && m.attr("bias").isTensor()) bias = m.attr("bias").toTensor();
    weights.emplace(c.path, std::make_pair(m.attr("weight").toTensor(), bias));
  }
  const ForwardFeed feed(model, data);
  torch::jit::Module frozen = torch::jit::freeze_module(model);
  auto graph = frozen.get_method("forward").graph()->copy();
  torch::jit::Value* self = graph->inputs()[0];

  std::vector<std::string> probed;                  // candidate path per probe, in output order
  std::map<std::string, torch::jit::Value*> reads;  // candidate path -> the value its Linear reads
  std::vector<torch::jit::Value*> stats;
  std::map<std::string, std::string> attr_of;
  std::vector<torch::jit::Node*> linears;
  for_each_node(graph->block(), [&](torch::jit::Node* n) {
    if (n->kind() == c10::aten::linear && n->input(1)->node()->kind() == c10::prim::Constant) linears.push_back(n);
  });
  for (torch::jit::Node* n : linears) {
    const auto w = torch::jit::toIValue(n->input(1));
    if (!w || !w->isTensor()) continue;
    const at::Tensor& wt = w->toTensor();
    std::string owner;
    for (const auto& [path, wb] : weights)
      if (wb.first.sizes() == wt.sizes() && at::equal(wb.first, wt)) {
        owner = path;
        break;
      }
    if (owner.empty()) continue;
    if (!attr_of.count(owner)) {
      const std::string attr = "_bertq_tune_packed_" + std::to_string(attr_of.size());
      for (const bool per_tensor : {false, true}) {
        const c10::IValue packed = pack_linear(wt, weights.at(owner).second, per_tensor);
        frozen.register_attribute(attr + (per_tensor ? "_t" : "_c"), packed.type(), packed);
      }
      attr_of[owner] = attr;
    }
    // Beside the Linear, which keeps its output: the model computes what it
    // did. One sum per variant, then the signal.
    torch::jit::WithInsertPoint guard(n->next());
    torch::jit::Value* y = n->output();
    for (const Variant& v : variants) {
      torch::jit::Value* packed = graph->insertGetAttr(self, attr_of[owner] + (v.per_tensor ? "_t" : "_c"));
      torch::jit::Value* yq =
          graph->insert(c10::Symbol::fromQualString("quantized::linear_dynamic"), {n->input(0), packed, !v.full_range});
      torch::jit::Value* d = graph->insert(c10::aten::sub, {y, yq});
      stats.push_back(graph->insert(c10::aten::sum, {graph->insert(c10::aten::mul, {d, d})}));
    }
    stats.push_back(graph->insert(c10::aten::sum, {graph->insert(c10::aten::mul, {y, y})}));
    probed.push_back(owner);
    reads[owner] = n->input(0);
  }
  torch::jit::Node* ret = graph->return_node();
  torch::jit::WithInsertPoint guard(ret);
  torch::jit::Value* list = graph->insertNode(graph->createList(c10::TensorType::get(), stats))->output();
  torch::jit::Value* both = graph->insertNode(graph->createTuple({ret->input(0), list}))->output();
  ret->replaceInput(0, both);
  torch::jit::GraphFunction probe("bertq_tune_probe", graph, nullptr);

  const size_t per_linear = variants.size() + 1;
  std::map<std::string, std::vector<double>> sums;  // path -> noise per variant, then signal
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(data.examples.size());
  for (int64_t begin = 0; begin < n; begin += batch) {
    const int64_t end = std::min(n, begin + batch);
    std::vector<c10::IValue> stack{frozen._ivalue()};
    for (auto& v : feed.rows(begin, end)) stack.push_back(std::move(v));
    probe.run(stack);
    const auto out = stack.back().toTupleRef().elements();
    const auto values = out[1].toTensorList();
    for (size_t i = 0; i < probed.size(); ++i) {
      auto& sum = sums[probed[i]];
      sum.resize(per_linear);
      for (size_t k = 0; k < per_linear; ++k) sum[k] += values.get(per_linear * i + k).item<double>();
    }
    if (progress) progress(end, n, "sensitivity");
  }
  // Linears reading one value (BERT's query, key and value) must share their
  // weight observer's scheme: PyTorch's InsertObservers gives the value one
  // activation observer, and fails (in Python too) when their qconfigs
  // differ. So the scheme is chosen per group, by the group's summed
  // relative error; full 8-bit activations stay each module's own.
  std::map<torch::jit::Value*, std::vector<std::string>> groups;
  for (const auto& [path, value] : reads) groups[value].push_back(path);
  std::map<std::string, bool> per_tensor_of;
  for (const auto& [value, members] : groups) {
    double err[2] = {0, 0};
    for (const auto& path : members) {
      const auto& sum = sums[path];
      if (sum.size() != per_linear || sum.back() == 0) continue;
      // The 7-bit variants (the first two) decide the scheme, so that a
      // Linear alone chooses as it did before 8-bit activations were offered.
      err[0] += sum[0] / sum.back();
      err[1] += sum[1] / sum.back();
    }
    for (const auto& path : members) per_tensor_of[path] = err[1] < err[0];
  }
  for (auto& c : cands) {
    if (c.embedding) continue;
    auto it = sums.find(c.path);
    // A Linear the frozen graph does not multiply by (unused): no error.
    if (it == sums.end() || it->second.back() == 0) {
      c.errors = {0};
      continue;
    }
    // The same size and speed: the int8 level takes whichever erred less
    // (on a tie the first: per channel, 7 bits, the tutorial's choice),
    // within its group's scheme.
    const bool per_tensor = per_tensor_of.count(c.path) ? per_tensor_of[c.path] : false;
    std::optional<size_t> best;
    for (size_t k = 0; k < variants.size(); ++k)
      if (variants[k].per_tensor == per_tensor && (!best || it->second[k] < it->second[*best])) best = k;
    c.per_tensor = per_tensor;
    c.full_range = variants[*best].full_range;
    c.errors = {std::sqrt(it->second[*best] / it->second.back())};
  }
}

// The qconfig for a choice, in file order: per_channel_dynamic for the whole
// model, null (no preset) for float Linears, a weight-only preset or null per
// embedding; a Linear's int8 level its own preset when it is not the
// whole model's, with full_range_activations when it takes 8 bits.
struct ChoiceEntry {
  std::string key;
  std::optional<std::string> preset;  // none: null
  bool full_range = false;
};
using Choice = std::vector<ChoiceEntry>;
Choice choice_for(const std::vector<Candidate>& cands, const std::vector<size_t>& level) {
  Choice q{{"", "per_channel_dynamic"}};
  for (size_t i = 0; i < cands.size(); ++i) {
    const Candidate& c = cands[i];
    const bool is_float = level[i] >= c.levels.size();
    if (!c.embedding) {
      if (is_float)
        q.push_back({c.path, std::nullopt});
      else if (c.per_tensor || c.full_range)
        q.push_back({c.path, c.per_tensor ? "default_dynamic" : "per_channel_dynamic", c.full_range});
      continue;
    }
    if (is_float)
      q.push_back({c.path, std::nullopt});
    else
      q.push_back(
          {c.path, c.levels[level[i]] == "4bit" ? "float_qparams_weight_only_4bit" : "float_qparams_weight_only"});
  }
  return q;
}

// The file `bertq convert --qconfig` reproduces the choice from.
json qconfig_json(const Choice& choice) {
  json q = json::object();
  for (const auto& e : choice)
    q[e.key] = !e.preset      ? json(nullptr)
               : e.full_range ? json{{"preset", *e.preset}, {"full_range_activations", true}}
                              : json(*e.preset);
  return q;
}

// The same, as the dict a trial converts with (no text in between).
QConfigDict qconfig_dict(const Choice& choice) {
  QConfigDict dict;
  for (const auto& e : choice) {
    std::optional<QConfig> q;
    if (e.preset) {
      q = preset(*e.preset);
      q->full_range_activations = e.full_range;
    }
    dict.entries.push_back({e.key, q, e.preset.value_or(""), ""});
  }
  return dict;
}

}  // namespace

std::optional<TuneMetric> tune_metric_from_name(const std::string& name) { return metric_names().find(name); }

std::string to_string(TuneMetric metric) { return metric_names().name(metric); }

const std::vector<std::string>& tune_metric_names() { return metric_names().names(); }

double parse_tolerance(const std::string& text, TuneMetric metric) {
  std::string t = text;
  const bool percent = !t.empty() && t.back() == '%';
  if (percent) t.pop_back();
  double v = 0;
  size_t used = 0;
  try {
    v = std::stod(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (t.empty() || used != t.size() || !std::isfinite(v) || v < 0)
    throw Error(ErrorKind::Usage, "--tolerance " + quoted_value(text) + " is not a number >= 0",
                "e.g. --tolerance 0.03, or 3% for " + to_string(metric));
  if (!percent) return v;
  if (metric == TuneMetric::MaxAbs)
    throw Error(ErrorKind::Usage,
                "--tolerance " + quoted_value(text) + ": max_abs is in the logits' unit, not a fraction",
                "give the largest absolute logit difference allowed, e.g. --tolerance 0.05");
  return v / 100;
}

TuneResult run_tune(const TuneOptions& o, const std::string& command_line, const Progress& progress) {
  const auto start = Clock::now();
  if (!(o.tolerance >= 0)) throw Error(ErrorKind::Usage, "--tolerance must be a number >= 0");
  // Every path first: nothing runs if an output would land on an input.
  std::vector<InputPath> inputs{{"input", o.input}};
  const OutputPath model_out = check_output_path("output", o.output);
  const OutputPath qconfig_out = check_text_output_path("--qconfig-out", o.qconfig_out);
  std::vector<OutputPath> outputs{model_out, qconfig_out};
  std::optional<OutputPath> tune_report_out, tune_html_out, report_out, html_out;
  for (auto [flag, given, out] :
       {std::tuple{"--tune-report", &o.tune_report_path, &tune_report_out},
        std::tuple{"--tune-html", &o.tune_html_path, &tune_html_out},
        std::tuple{"--report", &o.report_path, &report_out}, std::tuple{"--html", &o.html_path, &html_out}})
    if (*given) {
      *out = check_text_output_path(flag, **given);
      outputs.push_back(**out);
    }
  for (auto& in : data_input_paths(o.data)) inputs.push_back(std::move(in));
  check_distinct(inputs, outputs);
  // Every output is staged now (one that cannot be written fails before the
  // search) and all are renamed into place together at the end: the model,
  // qconfig and reports exist only if all of them were written.
  StagedOutputs staged;
  for (const auto& out : outputs) staged.add(out);

  const Dataset data = load_dataset(o.data);
  if (data.examples.empty()) throw Error(ErrorKind::Usage, "tune needs at least one example");
  if (o.metric == TuneMetric::F1Drop || o.metric == TuneMetric::AccuracyDrop) {
    const bool labelled =
        std::any_of(data.examples.begin(), data.examples.end(), [](const Example& e) { return e.label.has_value(); });
    if (!labelled)
      throw Error(ErrorKind::Usage, "--metric " + to_string(o.metric) + " needs labelled data",
                  "use --metric rel_l2, max_abs or disagreement, which compare with the float model");
  }
  RunOptions run = o.run;
  run.engine = o.engine;
  const Engine engine = o.engine ? *o.engine : default_engine();
  if (o.full_range_activations)
    require_full_range(engine, "drop --full-range-activations, tune on a CPU with VNNI, or use --engine qnnpack");
  set_engine(engine);

  TuneResult r;
  r.metric = o.metric;
  r.tolerance = o.tolerance;
  // The float model is checked and loaded once; every trial converts it in
  // memory (convert_model copies, so it stays float).
  uint64_t float_bytes = 0;
  torch::jit::Module float_model = [&] {
    ArchiveFile file(o.input);
    float_bytes = file.index().file_size;
    return load_model(std::move(file));
  }();
  float_model.eval();
  double ignored = 0;
  const at::Tensor float_logits = run_logits(float_model, o.input, data, run, progress, &ignored);
  check_labels(float_logits, data);

  // The candidates: every Linear the default qconfig quantizes, every
  // embedding bertq can quantize, in module order.
  std::vector<Candidate> cands;
  {
    const torch::jit::Module& model = float_model;
    QConfigDict dict = default_qconfig_dict();
    Plan plan = make_plan(model, dict, engine, false);
    for (size_t i = 0; i < plan.modules.size(); ++i) {
      const ModulePlan& mp = plan.modules[i];
      if (mp.functional) continue;
      Candidate c{mp.path, mp.type_name, false, false, false, {}, {}, i};
      if (mp.weight_shape.size() == 2) {
        c.rows = mp.weight_shape[0];
        c.cols = mp.weight_shape[1];
      }
      if (mp.use == WeightUse::Linear && mp.expected_op == "linear_dynamic") {
        c.levels = {"int8"};
      } else if (o.embeddings && (mp.use == WeightUse::Embedding || mp.use == WeightUse::EmbeddingBag) &&
                 mp.embedding_blocker.empty()) {
        c.embedding = true;
        c.levels = {"4bit", "8bit"};
      } else {
        continue;
      }
      cands.push_back(c);
    }
  }
  if (cands.empty())
    throw Error(ErrorKind::Model, o.input + " has no module bertq can quantize (no Linear, no embedding)");

  // The baseline, before the search: what plain `bertq convert` gives on
  // this data, so that the tolerance can be read against it.
  {
    ConversionSettings cs;
    cs.engine = engine;
    cs.input = ConversionSettings::InputTensors::Share;
    ConvertedModel plain = convert_model(float_model, default_qconfig_dict(), cs);
    double s = 0;
    r.baseline_metric =
        measure(o.metric, float_logits, run_logits(plain.model, "the plain conversion", data, run, {}, &s), data);
    std::vector<size_t> plain_levels;
    for (const auto& c : cands) plain_levels.push_back(c.embedding ? c.levels.size() : 0);
    r.baseline_estimated_bytes = estimated_bytes(cands, plain_levels, float_bytes);
    spdlog::info(
        "tune: baseline: plain `bertq convert` (per_channel_dynamic) gives {} {:.6g}, which {} --tolerance {}, at "
        "about {}; the float model: 0 at {} ({:.0f} s so far)",
        to_string(o.metric), r.baseline_metric, r.baseline_metric <= o.tolerance ? "meets" : "misses",
        format_g17(o.tolerance), format_bytes(static_cast<int64_t>(r.baseline_estimated_bytes)),
        format_bytes(static_cast<int64_t>(float_bytes)), seconds_since(start));
  }
  {
    // Embeddings' sensitivity: their rows' own error at 4 and 8 bits.
    std::map<std::string, torch::jit::Module> by_path;
    for (const auto& child : float_model.named_modules()) by_path.emplace(child.name, child.value);
    for (auto& c : cands)
      if (c.embedding) {
        const at::Tensor w = by_path.at(c.path).attr("weight").toTensor();
        c.errors = {rows_error(w, preset("float_qparams_weight_only_4bit")),
                    rows_error(w, preset("float_qparams_weight_only"))};
      }
  }
  const auto probe_start = Clock::now();
  probe_linears(float_model, cands, data, run.batch, o.full_range_activations, progress);
  r.probe_seconds = seconds_since(probe_start);

  std::vector<std::vector<double>> errors;
  std::vector<std::string> names;
  for (const auto& c : cands) {
    errors.push_back(c.errors);
    names.push_back(c.path);
  }
  // At most: the cheapest choice, the binary search, four undos, the final one.
  size_t upgrades = 0;
  for (const auto& e : errors) upgrades += e.size();
  const size_t most = 2 + static_cast<size_t>(std::ceil(std::log2(double(upgrades) + 1))) + 4;

  // Trials are qconfig objects converted in memory; the same choice is
  // measured once.
  std::map<std::string, double> measured;  // qconfig text -> metric
  double trial_seconds = 0;
  // The smallest choice measured to meet the tolerance, for a search that
  // stops early.
  std::optional<std::pair<uint64_t, Levels>> best_meeting;
  auto try_levels = [&](const std::vector<size_t>& lv, const std::string& note, size_t k) {
    const Choice choice = choice_for(cands, lv);
    const std::string text = qconfig_json(choice).dump();
    const uint64_t bytes = estimated_bytes(cands, lv, float_bytes);
    double m;
    if (auto it = measured.find(text); it != measured.end()) {
      m = it->second;
    } else {
      if (o.max_trials && r.conversions >= *o.max_trials) {
        r.stopped_early = "--max-trials " + std::to_string(*o.max_trials);
        throw StopSearch{};
      }
      if (o.time_limit && seconds_since(start) >= *o.time_limit) {
        r.stopped_early = "--time-limit " + format_g17(*o.time_limit);
        throw StopSearch{};
      }
      const auto t = Clock::now();
      ConversionSettings cs;
      cs.engine = engine;
      cs.input = ConversionSettings::InputTensors::Share;
      ConvertedModel q = convert_model(float_model, qconfig_dict(choice), cs);
      const double convert_seconds = seconds_since(t);
      ++r.conversions;
      double s = 0;
      m = measure(o.metric, float_logits, run_logits(q.model, "the trial model", data, run, {}, &s), data);
      spdlog::debug("tune: trial {}: conversion {:.2f} s, evaluation {:.2f} s", r.conversions, convert_seconds, s);
      measured[text] = m;
      trial_seconds += seconds_since(t);
      // The estimate is refined with every trial: the mean trial so far
      // times the trials the search may still need.
      size_t left = most > r.conversions ? most - r.conversions : 1;
      if (o.max_trials) left = std::min(left, *o.max_trials - std::min(*o.max_trials, r.conversions));
      spdlog::info(
          "tune: trial {} ({}): {} {:.6g} ({}), about {}; {:.0f} s so far, at most {} more trial{}, "
          "about {:.0f} s",
          r.conversions, note, to_string(o.metric), m, m <= o.tolerance ? "meets" : "misses",
          format_bytes(static_cast<int64_t>(bytes)), seconds_since(start), left, left == 1 ? "" : "s",
          double(left) * trial_seconds / double(r.conversions));
    }
    TuneTrial trial{k, m, m <= o.tolerance, note, bytes, {}};
    for (size_t i = 0; i < cands.size(); ++i)
      if (lv[i] >= cands[i].levels.size()) trial.kept_float.push_back(cands[i].path);
    r.trials.push_back(std::move(trial));
    if (m <= o.tolerance && (!best_meeting || bytes < best_meeting->first)) best_meeting.emplace(bytes, lv);
    if (progress) progress(static_cast<int64_t>(r.trials.size()), 0, note);
    return m <= o.tolerance;
  };

  auto best_trial = [&] {
    double best = std::numeric_limits<double>::infinity();
    for (const auto& t : r.trials) best = std::min(best, t.metric);
    return best;
  };
  SearchResult found;
  try {
    found = search_levels(errors, names, try_levels);
  } catch (const StopSearch&) {
    if (!best_meeting)
      throw Error(ErrorKind::Tolerance,
                  fmt::format("tune stopped ({}) after {} trial{} before any choice met --tolerance {} on {}; the "
                              "best gave {:.6g}",
                              r.stopped_early, r.conversions, r.conversions == 1 ? "" : "s", format_g17(o.tolerance),
                              to_string(o.metric), best_trial()),
                  "allow more trials or time, or raise --tolerance");
    spdlog::warn(
        "tune: stopped early ({}) after {} trials: writing the smallest choice measured to meet the "
        "tolerance; a longer search may quantize more",
        r.stopped_early, r.conversions);
    found.levels = best_meeting->second;
  }
  if (found.only_float)
    throw Error(ErrorKind::Tolerance,
                fmt::format("no quantized choice meets --tolerance {} on {} (the best trial gave {:.6g}; plain "
                            "`bertq convert` gives {:.6g}); only the float model does",
                            format_g17(o.tolerance), to_string(o.metric), best_trial(), r.baseline_metric),
                "raise --tolerance, or check the data (--metric " + to_string(o.metric) + ")");
  const Levels& level = found.levels;

  // The choice, converted by the real pipeline from the staged qconfig into
  // the staged OUTPUT (and its staged reports), measured there: the model
  // written is the one `bertq convert --qconfig` makes from that file.
  const std::string text = qconfig_json(choice_for(cands, level)).dump(2) + "\n";
  staged.write(qconfig_out, text);
  ConvertOptions co;
  co.input = o.input;
  co.output = staged.file(model_out);
  // A qconfig bound for standard output is read by the conversion from a
  // private copy; reports bound there are rendered from what it returns.
  std::optional<TempDir> qconfig_copy;
  if (qconfig_out.to_stdout) {
    qconfig_copy.emplace((std::filesystem::temp_directory_path() / "qconfig.json").string());
    write_file_atomic(OutputPath{"the tuned qconfig", qconfig_copy->file(), qconfig_copy->file()}, text);
  }
  co.qconfig_path = qconfig_copy ? qconfig_copy->file() : staged.file(qconfig_out);
  co.engine = engine;
  if (report_out && !report_out->to_stdout) co.report_path = staged.file(*report_out);
  if (html_out && !html_out->to_stdout) co.html_path = staged.file(*html_out);
  const Report final_report = run_convert(co, command_line);
  if (report_out && report_out->to_stdout) {
    std::ostringstream json;
    print_json(final_report, json);
    staged.write(*report_out, json.str());
  }
  if (html_out && html_out->to_stdout) {
    std::ostringstream page;
    print_html(final_report, page);
    staged.write(*html_out, page.str());
  }
  ++r.conversions;
  double s = 0;
  r.final_metric = measure(o.metric, float_logits, run_logits(co.output, data, run, {}, &s), data);
  if (r.final_metric > o.tolerance)
    throw Error(ErrorKind::Internal,
                fmt::format("the tuned model measures {:.6g}, beyond the tolerance it met before", r.final_metric));
  r.qconfig_json = text;
  r.input_bytes = final_report.input.bytes;
  r.output_bytes = final_report.output.bytes;
  spdlog::info("tune: final conversion, as `bertq convert --qconfig` makes it: {} {:.6g}, {} ({:.0f} s in all)",
               to_string(o.metric), r.final_metric, format_bytes(static_cast<int64_t>(r.output_bytes)),
               seconds_since(start));

  for (size_t i = 0; i < cands.size(); ++i) {
    const Candidate& c = cands[i];
    TunedModule m{c.path, c.type_name, c.levels, "", 0, c.errors, "", ""};
    if (!c.embedding) {
      m.int8_scheme = c.per_tensor ? "per_tensor" : "per_channel";
      m.activation_bits = c.full_range ? 8 : 7;
    }
    m.chosen = level[i] >= c.levels.size() ? "float" : c.levels[level[i]];
    const size_t rank =
        static_cast<size_t>(std::count_if(cands.begin(), cands.end(),
                                          [&](const Candidate& x) { return x.errors.front() > c.errors.front(); })) +
        1;
    // Specific to the module: its own sensitivity and rank, and what the
    // trial that tried it one level cheaper measured, if one did.
    const std::string own = fmt::format("{} on its own errs {:.3g} (rank {} of {})", c.levels.front(), c.errors.front(),
                                        rank, cands.size());
    const TuneTrial* undo = nullptr;
    for (const auto& t : r.trials)
      if (t.note == "undo " + c.path) undo = &t;
    if (level[i] == 0)
      m.why = undo ? fmt::format("{}; with it the model measured {:.4g}, within the tolerance", own, undo->metric)
                   : fmt::format("{}; the model meets the tolerance with it", own);
    else if (undo && !undo->meets)
      m.why =
          fmt::format("raised: {}; one level cheaper the model measured {:.4g}, over the tolerance", own, undo->metric);
    else if (!r.stopped_early.empty())
      m.why = fmt::format("raised: {}; the search stopped early ({}) before trying it cheaper", own, r.stopped_early);
    else
      m.why = fmt::format(
          "raised: {}; the search raises modules in order of sensitivity until the model meets the "
          "tolerance, and kept this one",
          own);
    r.modules.push_back(m);
  }
  r.seconds = seconds_since(start);
  if (tune_report_out) staged.write(*tune_report_out, tune_json(r));
  if (tune_html_out) staged.write(*tune_html_out, tune_html(r));
  staged.commit();
  return r;
}

std::string tune_json(const TuneResult& r) {
  json j;
  j["schema"] = "bertq-tune/2";
  j["metric"] = to_string(r.metric);
  j["tolerance"] = r.tolerance;
  j["final_metric"] = r.final_metric;
  j["conversions"] = r.conversions;
  j["seconds"] = r.seconds;
  j["sensitivity_seconds"] = r.probe_seconds;
  j["input_bytes"] = r.input_bytes;
  j["output_bytes"] = r.output_bytes;
  j["baseline"] = {{"qconfig", "per_channel_dynamic"},
                   {"metric", r.baseline_metric},
                   {"estimated_bytes", r.baseline_estimated_bytes}};
  j["stopped_early"] = r.stopped_early.empty() ? json() : json(r.stopped_early);
  json mods = json::array();
  for (const auto& m : r.modules) {
    json s = json::object();
    for (size_t i = 0; i < m.levels.size(); ++i) s[m.levels[i]] = m.sensitivity[i];
    mods.push_back({{"path", m.path},
                    {"type", m.type_name},
                    {"sensitivity", s},
                    {"int8_scheme", m.int8_scheme.empty() ? json() : json(m.int8_scheme)},
                    {"activation_bits", m.activation_bits ? json(m.activation_bits) : json()},
                    {"chosen", m.chosen},
                    {"why", m.why}});
  }
  j["modules"] = mods;
  json trials = json::array();
  for (const auto& t : r.trials)
    trials.push_back({{"upgrades", t.upgrades},
                      {"metric", t.metric},
                      {"meets", t.meets},
                      {"note", t.note},
                      {"estimated_bytes", t.estimated_bytes},
                      {"kept_float", t.kept_float.size()}});
  j["trials"] = trials;
  j["qconfig"] = json::parse(r.qconfig_json.empty() ? "null" : r.qconfig_json);
  return j.dump(2) + "\n";
}

std::string tune_html(const TuneResult& r) {
  std::vector<const TunedModule*> worst;
  for (const auto& m : r.modules) worst.push_back(&m);
  std::stable_sort(worst.begin(), worst.end(), [](const TunedModule* a, const TunedModule* b) {
    return a->sensitivity.front() > b->sensitivity.front();
  });
  double top = 0;
  for (const auto* m : worst) top = std::max(top, m->sensitivity.front());
  std::ostringstream page;
  page.imbue(std::locale::classic());
  HtmlWriter out(page);
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>bertq tune</title>\n<style>"_html
      << Markup::embedded(report_css())
      << ".bar{height:10px;background:#7a8ca8;display:inline-block;vertical-align:middle}"
         ".float .bar{background:#c0504d}td.why{font-size:12.5px}</style></head><body>\n<h1>bertq tune</h1>\n"_html;
  out << "<p>"_html << to_string(r.metric) << " " << fmt::format("{:.6g}", r.final_metric) << " &le; tolerance "_html
      << format_g17(r.tolerance) << "; " << fmt::format("{:.2f} MB", double(r.input_bytes) / 1e6) << " &rarr; "_html
      << fmt::format("{:.2f} MB", double(r.output_bytes) / 1e6) << "; " << r.conversions << " conversions, "
      << fmt::format("{:.1f}", r.seconds) << " s. Plain <code>bertq convert</code> gives "_html
      << fmt::format("{:.6g}", r.baseline_metric) << " at about "
      << fmt::format("{:.2f} MB", double(r.baseline_estimated_bytes) / 1e6) << ".</p>\n"_html;
  if (!r.stopped_early.empty())
    out << "<p class=\"alert warn\">The search stopped early ("_html << r.stopped_early
        << "): this is the smallest choice measured to meet the tolerance; a longer search may quantize more.</p>\n"_html;

  out << "<h2>Sensitivity, worst modules first</h2>\n<p class=\"note\">Relative L2 error of each module's output "
         "(Linear, int8) or rows (embeddings: 4-bit, 8-bit) when only it is quantized; the bar is scaled to the "
         "worst, at the module's cheapest precision.</p>\n<table>\n<thead><tr><th>module</th><th>type</th>"
         "<th>sensitivity</th><th></th><th>chosen</th><th>int8 scheme</th><th>why</th></tr></thead>\n<tbody>\n"_html;
  for (const auto* m : worst) {
    const double v = m->sensitivity.front();
    const int width = top > 0 ? static_cast<int>(std::lround(200 * v / top)) : 0;
    out << (m->chosen == "float" ? "<tr class=\"float\">"_html : "<tr>"_html) << "<td><code>"_html << m->path
        << "</code></td><td>"_html << m->type_name << "</td><td>"_html;
    for (size_t i = 0; i < m->levels.size(); ++i)
      out << (i ? "<br>"_html : ""_html) << m->levels[i] << " " << fmt::format("{:.4g}", m->sensitivity[i]);
    out << "</td><td><span class=\"bar\" style=\"width:"_html << width << "px\"></span></td><td>"_html << m->chosen
        << "</td><td>"_html << (m->int8_scheme.empty() ? "-" : m->int8_scheme)
        << (m->activation_bits == 8 ? ", 8-bit activations" : "") << "</td><td class=\"why\">"_html << m->why
        << "</td></tr>\n"_html;
  }
  out << "</tbody></table>\n"_html;

  out << "<h2>Trials</h2>\n<p class=\"note\">Each choice the search converted and measured, in order; sizes are "
         "estimated from the weights' shapes.</p>\n<table>\n<thead><tr><th>#</th><th>trial</th><th>upgrades</th>"
         "<th>modules kept float</th><th>"_html
      << to_string(r.metric) << "</th><th>meets</th><th>size (about)</th></tr></thead>\n<tbody>\n"_html;
  for (size_t i = 0; i < r.trials.size(); ++i) {
    const TuneTrial& t = r.trials[i];
    out << (t.meets ? "<tr>"_html : "<tr class=\"float\">"_html) << "<td>"_html << i + 1 << "</td><td>"_html << t.note
        << "</td><td>"_html << t.upgrades << "</td><td>"_html << t.kept_float.size() << "</td><td>"_html
        << fmt::format("{:.6g}", t.metric) << "</td><td>"_html << (t.meets ? "yes" : "no") << "</td><td>"_html
        << format_bytes(static_cast<int64_t>(t.estimated_bytes)) << "</td></tr>\n"_html;
  }
  out << "</tbody></table>\n<h2>The chosen qconfig</h2>\n<p class=\"note\"><code>bertq convert INPUT OUTPUT "
         "--qconfig</code> with it makes the tuned model.</p>\n<pre>"_html
      << r.qconfig_json << "</pre>\n</body></html>\n"_html;
  return page.str();
}

void print_tune(const TuneResult& r, std::ostream& out) {
  size_t floats = 0;
  for (const auto& m : r.modules) floats += m.chosen == "float";
  out << fmt::format(
      "bertq tune: {} {:.6g} <= tolerance {} ({} of {} modules kept float; {} conversions, {:.1f} s, "
      "sensitivity pass {:.1f} s)\n",
      to_string(r.metric), r.final_metric, format_g17(r.tolerance), floats, r.modules.size(), r.conversions, r.seconds,
      r.probe_seconds);
  out << fmt::format("  size: {:.2f} MB -> {:.2f} MB\n", double(r.input_bytes) / 1e6, double(r.output_bytes) / 1e6);
  out << fmt::format("  baseline: plain `bertq convert` gives {} {:.6g} at about {:.2f} MB\n", to_string(r.metric),
                     r.baseline_metric, double(r.baseline_estimated_bytes) / 1e6);
  if (!r.stopped_early.empty())
    out << "  stopped early (" << r.stopped_early
        << "): the smallest choice measured to meet the tolerance; a longer search may quantize more\n";
  std::vector<const TunedModule*> worst;
  for (const auto& m : r.modules) worst.push_back(&m);
  std::stable_sort(worst.begin(), worst.end(), [](const TunedModule* a, const TunedModule* b) {
    return a->sensitivity.front() > b->sensitivity.front();
  });
  out << fmt::format("\n{:<48} {:<10} {:>12} {:>8}\n", "MODULE (most sensitive first)", "TYPE", "SENSITIVITY",
                     "CHOSEN");
  for (const TunedModule* m : worst)
    out << fmt::format("{:<48} {:<10} {:>12.4g} {:>8}\n", m->path, m->type_name, m->sensitivity.front(), m->chosen);
}

}  // namespace bertq
