// One conversion of a loaded model, in memory: plan, PyTorch's passes and
// bertq's embedding rows, with no file read or written. `run_convert` wraps it
// with the files (input checks, load, save, measurements, report); `tune`
// calls it once per trial on the model it loaded once.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "convert/fuse_linear.h"
#include "convert/measure.h"
#include "plan/plan.h"
#include "qconfig/engine.h"
#include "qconfig/qconfig.h"

namespace bertq {

// What the conversion produces. The fourth path, converting a model prepared
// before, is convert_prepared_model: it starts from the observers, not a dict.
enum class ConversionStage {
  Prepared,  // observers inserted (prepare_dynamic_jit)
  Final,     // quantized and packed, embeddings included (quantize_dynamic_jit + bertq's rows)
  Debug,     // float simulation with the scales kept (debug=True); embeddings stay float
};

struct ConversionSettings {
  Engine engine = Engine::OneDNN;
  ConversionStage stage = ConversionStage::Final;
  bool allow_missing = false;             // a qconfig key that names no module is a warning
  std::optional<std::string> embeddings;  // --embeddings: 8bit, 4bit or float for every lookup
  bool fuse_qkv = false;                  // --fuse-qkv: final models only, the last rewrite
  // --full-range-activations: every int8 dynamic linear quantizes its input
  // to 8 bits, as if each qconfig said full_range_activations; final only.
  bool full_range_activations = false;
  // What happens to the model's tensors. Copy: the model is untouched (as
  // Python's quantize_dynamic_jit). Consume: they move to the result, halving
  // peak memory; the model is left unusable (bertq convert). Share: the
  // result uses them too and the model stays usable; for trials that are
  // measured, not saved (tune), see prepare_dynamic_jit_sharing.
  enum class InputTensors { Copy, Consume, Share } input = InputTensors::Copy;
  std::function<void(const char* step)> step_done;  // called after each step, for timing logs
};

struct ConvertedModel {
  torch::jit::Module model;  // the result
  Plan plan;                 // what happened to every weight-bearing module
  FloatTensors floats;       // their float tensors, for the report's measurements
  FusionResult fusion;       // --fuse-qkv: which packed weights became one, and which could not
  std::vector<std::string> warnings, notes;
  size_t quantized_in_output = 0;  // quantized weights counted in the result itself
};

// Converts the float model `model` with `dict`. Throws Error (Usage for
// --fuse-qkv on a stage other than Final, Config for a qconfig the model or
// engine cannot take, Model for non-finite weights, Internal when PyTorch's
// passes fail).
ConvertedModel convert_model(torch::jit::Module& model, const QConfigDict& dict, const ConversionSettings& settings);

// Converts a model prepared before (`bertq prepare`, prepare_dynamic_jit):
// its observers hold the qconfig. The stage is Final or Debug; the model is
// left as it was.
ConvertedModel convert_prepared_model(torch::jit::Module& prepared, const ConversionSettings& settings);

}  // namespace bertq
