// The qconfig: which observer decides the quantization of activations and
// weights, per module, in the same shape as PyTorch's `qconfig_dict`.
//
// This header is free of LibTorch so that the parser, its tests and its fuzz
// target compile in seconds.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace bertq {

// The three observer classes graph-mode dynamic quantization needs, named as in
// torch/ao/quantization/observer.py.
enum class ObserverKind { Placeholder, MinMax, PerChannelMinMax };

// Values are c10::ScalarType codes, so they can be stored in a TorchScript
// observer's `dtype` attribute as PyTorch's own observers do.
enum class DType : int {
  Float16 = 5,
  Float32 = 6,
  QInt8 = 12,
  QUInt8 = 13,
  QUInt4x2 = 16,
};

// Values are c10::QScheme codes, for the same reason.
enum class QScheme : int {
  PerTensorAffine = 0,
  PerChannelAffine = 1,
  PerTensorSymmetric = 2,
  PerChannelSymmetric = 3,
  PerChannelAffineFloatQParams = 4,
};

// One observer's constructor arguments. Defaults are PyTorch 1.13's.
struct ObserverSpec {
  ObserverKind kind = ObserverKind::Placeholder;
  DType dtype = DType::Float32;
  QScheme qscheme = QScheme::PerTensorAffine;
  int64_t ch_axis = 0;
  bool reduce_range = false;
  std::optional<int64_t> quant_min;
  std::optional<int64_t> quant_max;
  std::optional<DType> compute_dtype;  // placeholder only: marks dynamic quantization

  bool operator==(const ObserverSpec& o) const;
  bool operator!=(const ObserverSpec& o) const { return !(*this == o); }
};

// PyTorch's constructor defaults for an observer of `kind`.
ObserverSpec default_observer(ObserverKind kind);

// (quant_min, quant_max) as the observer computes them (calculate_qmin_qmax in
// torch/ao/quantization/utils.py).
std::pair<int64_t, int64_t> effective_qrange(const ObserverSpec& spec);

struct QConfig {
  ObserverSpec activation;
  ObserverSpec weight;
  // int8 dynamic linears quantize their input to the full 8 bits
  // (reduce_range=False in quantized::linear_dynamic) instead of the 7 bits
  // PyTorch's graph mode always writes. bertq's own option, not PyTorch's:
  // exact only where the int8 kernel accumulates in 32 bits (docs/qconfig.md).
  bool full_range_activations = false;
  bool operator==(const QConfig& o) const {
    return activation == o.activation && weight == o.weight && full_range_activations == o.full_range_activations;
  }
};

// One entry of the dict. `qconfig` empty means `null`: not quantized.
struct QConfigEntry {
  std::string key;
  std::optional<QConfig> qconfig;
  std::string preset;   // the preset name if the value was (or started from) one
  std::string warning;  // set when the value works but does not mean what it says
};

// Entries in file order; keys are unique.
struct QConfigDict {
  std::vector<QConfigEntry> entries;
  // The entry for `key`, or nullptr; constant time (a dict may hold many keys).
  const QConfigEntry* find(std::string_view key) const;

 private:
  // Rebuilt by find() whenever `entries` has changed size.
  mutable std::unordered_map<std::string, size_t> index_;
};

// Names of the built-in presets, in documentation order.
const std::vector<std::string>& preset_names();

// The preset's qconfig; throws Error(Config) naming the allowed presets.
QConfig preset(std::string_view name);

// Parses and validates a qconfig JSON document. `source` names it in errors
// ("q.json"). Throws Error(Config) with the JSON path of the bad value.
QConfigDict parse_qconfig(std::string_view json_text, const std::string& source);

// Most bytes a qconfig may have; a real one is a few kB.
inline constexpr size_t kMaxQConfigBytes = 16 << 20;

// Reads (once, as a stream: "-" is stdin, pipes and FIFOs work, the size cap
// holds while reading) and parses a qconfig file; `text`, if given, receives
// the file as read.
QConfigDict load_qconfig_file(const std::string& path, std::string* text = nullptr);

// The dict bertq uses without --qconfig: per_channel_dynamic for the whole model.
QConfigDict default_qconfig_dict();

// Names used in the JSON format and in reports.
std::string to_string(ObserverKind kind);
std::string to_string(DType dtype);
std::string to_string(QScheme qscheme);

// The dict in bertq's JSON format, fully explicit (every field written), so
// that a report shows exactly what was applied.
nlohmann::ordered_json to_json(const QConfigDict& dict);
nlohmann::ordered_json to_json(const QConfig& qconfig);

}  // namespace bertq
