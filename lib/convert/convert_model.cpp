#include "convert/convert_model.h"

#include <fmt/format.h>
#include <torch/script.h>

#include <algorithm>
#include <map>
#include <set>

#include "base/error.h"
#include "base/text.h"
#include "convert/embeddings.h"
#include "convert/planner.h"
#include "convert/quantize.h"
#include "jit/engines.h"
#include "jit/qtensor.h"

namespace bertq {
namespace {

// A key that reaches no weight the passes quantize is almost always a typo
// or a stale config; said once every module's fate is known.
void warn_idle_keys(const QConfigDict& dict, const Plan& plan, std::vector<std::string>& warnings) {
  for (const auto& e : dict.entries) {
    if (!e.qconfig) continue;
    bool used = false;
    std::vector<std::string> reasons;
    for (const auto& mp : plan.modules) {
      if (mp.rule.key != e.key || mp.rule.kind == RuleKind::OptedOut || mp.functional) continue;
      if (mp.quantized)
        used = true;
      else if (reasons.size() < 3)
        reasons.push_back((mp.path.empty() ? "<root>" : mp.path) + ": " + mp.float_reason);
    }
    if (used) continue;
    // Functional weights are resolved by the module holding their graph.
    for (const auto& mp : plan.modules) used = used || (mp.functional && mp.quantized);
    if (!used)
      warnings.push_back(
          "qconfig key " + quoted_value(e.key) + " quantized nothing" +
          (reasons.empty() ? std::string(" (no weight-bearing module under it)") : " (" + join(reasons, "; ") + ")"));
  }
}

// The plan's prediction is bertq's model of PyTorch's passes; the outcome,
// read from the observers, is what they did and what the report shows. A
// disagreement is a gap in bertq's model, never a reason to refuse a model
// PyTorch converts: it is said, and the tests treat it as a failure.
void warn_mismatches(const Plan& plan, bool embeddings_done, std::vector<std::string>& warnings) {
  const auto wrong = outcome_mismatches(plan, embeddings_done);
  if (!wrong.empty())
    warnings.push_back("bertq predicted other results than PyTorch's passes gave for " + join(wrong, ", ") +
                       "; the report shows what the passes did (please report this with the model)");
}

class ModelConversion {
 public:
  ModelConversion(torch::jit::Module& model, const QConfigDict& dict, const ConversionSettings& s)
      : model_(model), dict_(dict), s_(s) {}

  ConvertedModel run() {
    check_settings();
    plan();
    prepare();
    return finish();
  }

  // A prepared model's observers hold its qconfig: no dict, no planning.
  ConvertedModel run_prepared() {
    check_settings();
    out_.plan = plan_from_prepared(model_);
    apply_full_range_flag();
    plan_embeddings();
    out_.floats = capture_float_tensors(model_, out_.plan);
    prepared_ = model_;
    check_prepared();
    try {
      out_.model = convert_dynamic_jit(prepared_, /*inplace=*/false, s_.stage == ConversionStage::Debug);
    } catch (const c10::Error& e) {
      throw Error(ErrorKind::Internal,
                  "PyTorch's quantization passes failed: " + first_line(e.what_without_backtrace()));
    }
    prepared_ = torch::jit::Module();
    if (s_.stage == ConversionStage::Final) quantize_embedding_rows();
    done("quantize and pack");
    widen_activations();
    out_.quantized_in_output =
        count_quantized_weights(out_.model, s_.stage == ConversionStage::Debug ? ModelKind::Debug : ModelKind::Final);
    fuse_siblings();
    return std::move(out_);
  }

 private:
  ConvertedModel finish() {
    if (s_.stage == ConversionStage::Prepared) {
      out_.model = prepared_;
      prepared_ = torch::jit::Module();
    } else {
      convert();
      if (s_.stage == ConversionStage::Final) quantize_embedding_rows();
    }
    // Only now is every module's fate known (embeddings come last).
    warn_idle_keys(dict_, out_.plan, out_.warnings);
    done("quantize and pack");
    widen_activations();
    const ModelKind kind = s_.stage == ConversionStage::Prepared ? ModelKind::Prepared
                           : s_.stage == ConversionStage::Debug  ? ModelKind::Debug
                                                                 : ModelKind::Final;
    // Counted in the output itself, for the "nothing quantized" guard. Not
    // compared with the plan: a module called twice runs two quantized ops,
    // and equal weights on one input become one (constant pooling and CSE).
    out_.quantized_in_output = count_quantized_weights(out_.model, kind);
    // Counted before: a fused weight still holds each member's weight.
    fuse_siblings();
    return std::move(out_);
  }

  void check_settings() const {
    bool asked = s_.full_range_activations;
    for (const auto& e : dict_.entries) asked = asked || (e.qconfig && e.qconfig->full_range_activations);
    if (asked && s_.stage != ConversionStage::Final)
      throw Error(ErrorKind::Usage,
                  std::string("full 8-bit activations are written into the final model's quantized linears; ") +
                      (s_.stage == ConversionStage::Debug ? "--debug writes float ones" : "prepare writes observers"),
                  "drop --full-range-activations (or the qconfig's full_range_activations), or the other option");
    if (s_.fuse_qkv && s_.stage != ConversionStage::Final)
      throw Error(ErrorKind::Usage,
                  std::string("--fuse-qkv rewrites the final model's quantized linears; ") +
                      (s_.stage == ConversionStage::Debug ? "--debug writes float ones" : "prepare writes observers"),
                  "drop one of the two");
  }

  // --full-range-activations asks it of every int8 dynamic linear.
  void apply_full_range_flag() {
    if (!s_.full_range_activations) return;
    for (auto& mp : out_.plan.modules)
      if (mp.qconfig && predicted_op(*mp.qconfig, WeightUse::Linear) == "linear_dynamic")
        mp.qconfig->full_range_activations = true;
  }

  // Full 8-bit activations where they were asked for: PyTorch's passes write
  // reduce_range=True into every quantized::linear_dynamic call, and the
  // calls whose packed weight belongs only to modules asking for 8 bits get
  // False. Refused where the int8 kernel could saturate: the model would
  // run, and be wrong.
  void widen_activations() {
    std::set<std::string> wanted;
    for (const auto& mp : out_.plan.modules)
      if (mp.quantized && mp.op == "linear_dynamic" && mp.qconfig && mp.qconfig->full_range_activations)
        wanted.insert(mp.path);
    if (wanted.empty()) return;
    require_full_range(s_.engine,
                       "drop --full-range-activations (or the qconfig's full_range_activations), convert on a CPU "
                       "with VNNI, or use --engine qnnpack");
    const auto owners = packed_weight_owners(out_.model, out_.plan, out_.floats);
    auto graph = out_.model.get_method("forward").graph();
    torch::jit::Value* eight_bits = nullptr;
    std::set<std::string> mixed;
    for (const LinearCall& call : linear_dynamic_calls(out_.model)) {
      auto it = owners.find(call.packed);
      if (it == owners.end()) continue;
      const auto asking = std::count_if(it->second.begin(), it->second.end(),
                                        [&](const std::string& path) { return wanted.count(path) > 0; });
      if (asking == 0) continue;
      if (static_cast<size_t>(asking) < it->second.size()) {
        std::vector<std::string> shown;
        for (const auto& path : it->second) shown.push_back(quoted_value(path));
        mixed.insert(join(shown, ", "));
        continue;
      }
      if (!eight_bits) {
        torch::jit::WithInsertPoint first(graph->block()->nodes().front());
        eight_bits = graph->insertConstant(false);
      }
      call.node->replaceInput(2, eight_bits);
    }
    for (const auto& group : mixed)
      out_.warnings.push_back("modules " + group +
                              " share one quantized linear, and not all of them ask for full 8-bit activations: it "
                              "keeps 7 bits");
    done("full-range activations");
  }

  // The last rewrite: everything the report describes is in the model after it.
  void fuse_siblings() {
    if (!s_.fuse_qkv) return;
    try {
      out_.fusion = fuse_sibling_linears(out_.model);
    } catch (const c10::Error& e) {
      throw Error(ErrorKind::Internal, "fusing sibling Linears failed: " + first_line(e.what_without_backtrace()));
    }
    done("fuse siblings");
  }

  void done(const char* step) {
    if (s_.step_done) s_.step_done(step);
  }

  // Every module's fate before the passes run: the dict, then --embeddings,
  // then what the passes cannot do (the embedding pass runs on final models
  // only).
  void plan() {
    out_.plan = make_plan(model_, dict_, s_.engine, s_.allow_missing);
    apply_full_range_flag();
    for (const auto& e : dict_.entries)
      if (!e.warning.empty()) out_.warnings.push_back(e.warning);
    out_.warnings.insert(out_.warnings.end(), out_.plan.warnings.begin(), out_.plan.warnings.end());
    plan_embeddings();
    out_.floats = capture_float_tensors(model_, out_.plan);
  }

  void plan_embeddings() {
    if (s_.embeddings)
      apply_embedding_rows(out_.plan, parse_embedding_rows(s_.embeddings), "--embeddings " + *s_.embeddings);
    if (s_.stage != ConversionStage::Final) {
      const std::string why = std::string(s_.stage == ConversionStage::Debug ? "--debug" : "prepare") +
                              " keeps embeddings float: bertq quantizes them on the final model only";
      if (const size_t n = keep_embeddings_float(out_.plan, why))
        out_.warnings.push_back(fmt::format("{} embedding module{} planned for quantized rows stay{} float: {}", n,
                                            n == 1 ? "" : "s", n == 1 ? "s" : "", why));
    }
  }

  void prepare() {
    try {
      switch (s_.input) {
        case ConversionSettings::InputTensors::Copy:
          prepared_ = prepare_dynamic_jit(model_, dict_);
          break;
        case ConversionSettings::InputTensors::Consume:
          prepared_ = prepare_dynamic_jit_consuming(model_, dict_);
          model_ = torch::jit::Module();  // only stand-ins are left in it
          break;
        case ConversionSettings::InputTensors::Share:
          prepared_ = prepare_dynamic_jit_sharing(model_, dict_);
          break;
      }
    } catch (const c10::Error& e) {
      // InsertObservers gives each value one activation observer: modules
      // that read one value under different qconfig entries are a qconfig
      // Python's quantize_dynamic_jit refuses the same way, not a bertq bug.
      if (std::string(e.what_without_backtrace()).find("only configured with one observer") != std::string::npos)
        throw Error(ErrorKind::Config,
                    "modules that read the same input have different qconfigs, and PyTorch's graph mode gives that "
                    "input one observer (Python's quantize_dynamic_jit fails the same way)",
                    "give siblings that read one input (BERT's query, key and value) the same qconfig value");
      throw;
    }
    done("insert observers");
    record_prepared(out_.plan, prepared_);
    warn_mismatches(out_.plan, /*embeddings_done=*/false, out_.warnings);
    check_prepared();
  }

  void check_prepared() {
    capture_functional_weights(prepared_, out_.plan, out_.floats);
    // NaN would trip an assertion in the observers, infinity give infinite scales.
    check_finite_weights(prepared_);
  }

  void convert() {
    try {
      out_.model = convert_prepared_for_quantize(prepared_, s_.stage == ConversionStage::Debug);
    } catch (const c10::Error& e) {
      throw Error(ErrorKind::Internal,
                  "PyTorch's quantization passes failed: " + first_line(e.what_without_backtrace()));
    }
    // The pickler memoizes an object held twice: no second handle to the
    // result's objects may live while it is saved (convert works in place).
    prepared_ = torch::jit::Module();
  }

  // Embeddings are quantized after PyTorch's passes, on the frozen model.
  void quantize_embedding_rows() {
    std::map<std::string, at::Tensor> weights;
    for (const auto& mp : out_.plan.modules)
      if (auto f = out_.floats.by_path.find(mp.path); f != out_.floats.by_path.end())
        weights.emplace(mp.path, f->second.weight);
    std::vector<std::string> warnings;
    try {
      warnings = quantize_embeddings(out_.model, out_.plan, weights);
    } catch (const c10::Error& e) {
      throw Error(ErrorKind::Internal, "quantizing the embeddings failed: " + first_line(e.what_without_backtrace()));
    }
    out_.warnings.insert(out_.warnings.end(), warnings.begin(), warnings.end());
    warn_mismatches(out_.plan, /*embeddings_done=*/true, out_.warnings);
    size_t n = 0;
    for (const auto& mp : out_.plan.modules) n += mp.quantized && is_embedding_op(mp.op) ? 1 : 0;
    if (n > 0)
      out_.notes.push_back(fmt::format(
          "{} embedding module{} quantized by bertq (weight-only rows, as eager PyTorch's nnq.Embedding): this goes "
          "beyond quantize_dynamic_jit, which leaves embeddings float; --embeddings float matches it",
          n, n == 1 ? "" : "s"));
  }

  torch::jit::Module& model_;
  const QConfigDict& dict_;
  const ConversionSettings& s_;
  torch::jit::Module prepared_;
  ConvertedModel out_;
};

}  // namespace

ConvertedModel convert_model(torch::jit::Module& model, const QConfigDict& dict, const ConversionSettings& settings) {
  return ModelConversion(model, dict, settings).run();
}

ConvertedModel convert_prepared_model(torch::jit::Module& prepared, const ConversionSettings& settings) {
  if (settings.stage == ConversionStage::Prepared)
    throw Error(ErrorKind::Usage, "the model is already prepared (it holds observers)", "run `bertq convert` on it");
  const QConfigDict none;
  return ModelConversion(prepared, none, settings).run_prepared();
}

}  // namespace bertq
