#include "qconfig/qconfig.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_set>

#include "base/enum_names.h"
#include "base/error.h"
#include "base/files.h"
#include "base/json_io.h"
#include "base/text.h"
#include "qconfig/presets_data.h"

namespace bertq {
namespace {

// ordered_json keeps the file's key order, so reports list entries as written.
using json = nlohmann::ordered_json;

const EnumNames<ObserverKind>& observer_names() {
  static const EnumNames<ObserverKind> names{{ObserverKind::Placeholder, "placeholder"},
                                             {ObserverKind::MinMax, "minmax"},
                                             {ObserverKind::PerChannelMinMax, "per_channel_minmax"}};
  return names;
}

const EnumNames<DType>& dtype_names() {
  static const EnumNames<DType> names{{DType::QUInt8, "quint8"},
                                      {DType::QInt8, "qint8"},
                                      {DType::Float16, "float16"},
                                      {DType::QUInt4x2, "quint4x2"},
                                      {DType::Float32, "float32"}};
  return names;
}

const EnumNames<QScheme>& qscheme_names() {
  static const EnumNames<QScheme> names{{QScheme::PerTensorAffine, "per_tensor_affine"},
                                        {QScheme::PerTensorSymmetric, "per_tensor_symmetric"},
                                        {QScheme::PerChannelAffine, "per_channel_affine"},
                                        {QScheme::PerChannelSymmetric, "per_channel_symmetric"},
                                        {QScheme::PerChannelAffineFloatQParams, "per_channel_affine_float_qparams"}};
  return names;
}

// Where in the document a value sits, for messages: `["sub.fc1"].weight.dtype`.
std::string child_path(const std::string& parent, const std::string& field) { return parent + "." + field; }

[[noreturn]] void fail(const std::string& source, const std::string& path, const std::string& what,
                       std::string hint = {}) {
  throw Error(ErrorKind::Config, source + ": " + path + ": " + what, std::move(hint));
}

std::string describe(const json& v) {
  std::string kind = v.type_name();
  std::string dumped = v.dump();
  if (dumped.size() > 40) dumped = dumped.substr(0, 37) + "...";
  return kind + " " + dumped;
}

// A name as Python code writes it, without its module and arguments:
// "torch.ao.quantization.observer.MinMaxObserver.with_args(...)" is
// "MinMaxObserver", "torch.ao.quantization.per_channel_dynamic_qconfig" is
// "per_channel_dynamic_qconfig".
std::string python_name(const std::string& s) {
  std::string n = s.substr(0, s.find(".with_args"));
  for (const char* prefix :
       {"torch.ao.quantization.observer.", "torch.quantization.observer.", "torch.ao.quantization.qconfig.",
        "torch.quantization.qconfig.", "torch.ao.quantization.", "torch.quantization."})
    if (n.rfind(prefix, 0) == 0) return n.substr(std::strlen(prefix));
  return n;
}

// The JSON name of a PyTorch observer class bertq implements, given as
// Python spells it; nullopt for anything else.
std::optional<std::string> json_name_of_python_class(const std::string& s) {
  static const std::pair<const char*, const char*> kClasses[] = {
      {"PlaceholderObserver", "placeholder"},
      {"MinMaxObserver", "minmax"},
      {"PerChannelMinMaxObserver", "per_channel_minmax"},
  };
  const std::string n = python_name(s);
  for (const auto& [python, name] : kClasses)
    if (n == python) return std::string(name);
  return std::nullopt;
}

// Like EnumNames::parse, with the field's place in the document and a word
// for Python's spelling (torch.qint8, MinMaxObserver).
template <typename T>
T parse_enum(const json& v, const EnumNames<T>& table, const std::string& source, const std::string& path) {
  const auto& allowed = table.names();
  if (!v.is_string()) fail(source, path, "expected a string, got " + describe(v), "allowed: " + join(allowed, ", "));
  const std::string s = v.get<std::string>();
  if (auto value = table.find(s)) return *value;
  std::string hint = "allowed: " + join(allowed, ", ");
  const std::string bare = s.rfind("torch.", 0) == 0 ? s.substr(6) : "";
  if (!bare.empty() && std::find(allowed.begin(), allowed.end(), bare) != allowed.end())
    hint = "JSON spells torch." + bare + " as \"" + bare + "\"; " + hint;
  else if (const auto name = json_name_of_python_class(s))
    hint = "PyTorch's " + python_name(s) + " is \"" + *name + "\" here; " + hint;
  else
    hint = did_you_mean(s, allowed, hint);
  fail(source, path, "unknown value " + quoted_value(s), hint);
}

int64_t parse_int(const json& v, const std::string& source, const std::string& path) {
  if (!v.is_number_integer()) fail(source, path, "expected an integer, got " + describe(v));
  // nlohmann keeps integers above INT64_MAX unsigned; get<int64_t> would wrap.
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    fail(source, path, "the integer " + clipped_value(v.dump(), 40) + " is out of range");
  return v.get<int64_t>();
}

bool parse_bool(const json& v, const std::string& source, const std::string& path) {
  if (!v.is_boolean()) fail(source, path, "expected true or false, got " + describe(v));
  return v.get<bool>();
}

// Fields each observer class takes, as in its PyTorch constructor.
const std::vector<std::string>& fields_for(ObserverKind kind) {
  static const std::vector<std::string> placeholder = {"observer", "dtype", "compute_dtype"};
  static const std::vector<std::string> minmax = {"observer",     "dtype",     "qscheme",
                                                  "reduce_range", "quant_min", "quant_max"};
  static const std::vector<std::string> per_channel = {"observer",     "dtype",     "qscheme",  "ch_axis",
                                                       "reduce_range", "quant_min", "quant_max"};
  switch (kind) {
    case ObserverKind::Placeholder:
      return placeholder;
    case ObserverKind::MinMax:
      return minmax;
    case ObserverKind::PerChannelMinMax:
      return per_channel;
  }
  return placeholder;
}

bool is_per_channel(QScheme q) {
  return q == QScheme::PerChannelAffine || q == QScheme::PerChannelSymmetric ||
         q == QScheme::PerChannelAffineFloatQParams;
}
bool is_symmetric(QScheme q) { return q == QScheme::PerTensorSymmetric || q == QScheme::PerChannelSymmetric; }

std::pair<int64_t, int64_t> dtype_range(DType d) {
  switch (d) {
    case DType::QInt8:
      return {-128, 127};
    case DType::QUInt8:
      return {0, 255};
    case DType::QUInt4x2:
      return {0, 15};
    default:
      return {0, 0};
  }
}

// Checks one observer the way PyTorch's constructors would, plus the
// combinations that PyTorch accepts but that crash or misbehave later.
void validate_observer(const ObserverSpec& s, const std::string& source, const std::string& path) {
  const std::string kind = to_string(s.kind);
  if (s.kind == ObserverKind::Placeholder) {
    if (s.compute_dtype && *s.compute_dtype != DType::QUInt8 && *s.compute_dtype != DType::Float16)
      fail(source, child_path(path, "compute_dtype"),
           "compute_dtype must be \"quint8\" (int8 dynamic) or \"float16\" (fp16 dynamic), got \"" +
               to_string(*s.compute_dtype) + "\"");
    return;
  }
  if (s.dtype != DType::QInt8 && s.dtype != DType::QUInt8 && s.dtype != DType::QUInt4x2)
    fail(source, child_path(path, "dtype"),
         "observer \"" + kind +
             "\" computes integer quantization parameters; dtype must be "
             "qint8, quint8 or quint4x2, got \"" +
             to_string(s.dtype) + "\"",
         "for float16 weights use {\"observer\": \"placeholder\", \"dtype\": \"float16\"}");
  if (s.kind == ObserverKind::MinMax && is_per_channel(s.qscheme))
    fail(source, child_path(path, "qscheme"),
         "observer \"minmax\" is per-tensor but qscheme is \"" + to_string(s.qscheme) + "\"",
         "use \"per_tensor_affine\" or \"per_tensor_symmetric\", or observer \"per_channel_minmax\"");
  if (s.kind == ObserverKind::PerChannelMinMax && !is_per_channel(s.qscheme))
    fail(source, child_path(path, "qscheme"),
         "observer \"per_channel_minmax\" is per-channel but qscheme is \"" + to_string(s.qscheme) + "\"",
         "use \"per_channel_symmetric\", \"per_channel_affine\" or "
         "\"per_channel_affine_float_qparams\", or observer \"minmax\"");
  if (s.reduce_range && is_symmetric(s.qscheme) && s.dtype == DType::QUInt8)
    fail(source, child_path(path, "reduce_range"),
         "reduce_range cannot be used with a symmetric qscheme and dtype quint8 (PyTorch raises "
         "NotImplementedError)");
  if (s.quant_min.has_value() != s.quant_max.has_value())
    fail(source, child_path(path, s.quant_min ? "quant_min" : "quant_max"),
         "quant_min and quant_max must be given together");
  if (s.quant_min) {
    const int64_t lo = *s.quant_min, hi = *s.quant_max;
    if (!(lo <= 0 && 0 <= hi))
      fail(source, child_path(path, "quant_min"),
           "the range [" + std::to_string(lo) + ", " + std::to_string(hi) + "] must include 0");
    if (!(lo < hi))
      fail(source, child_path(path, "quant_min"),
           "quant_min (" + std::to_string(lo) + ") must be less than quant_max (" + std::to_string(hi) + ")");
    const auto [dlo, dhi] = dtype_range(s.dtype);
    if (lo < dlo || hi > dhi)
      fail(source, child_path(path, "quant_min"),
           "the range [" + std::to_string(lo) + ", " + std::to_string(hi) + "] does not fit dtype " +
               to_string(s.dtype) + " [" + std::to_string(dlo) + ", " + std::to_string(dhi) + "]");
  }
  if (s.kind == ObserverKind::PerChannelMinMax && s.ch_axis != 0)
    fail(source, child_path(path, "ch_axis"),
         "ch_axis must be 0: dynamic quantization quantizes Linear and EmbeddingBag weights per "
         "output row (axis 0); got " +
             std::to_string(s.ch_axis),
         "PyTorch accepts other axes but the quantized Linear then gives errors of ~50%");
}

// The combinations of activation and weight observer that Python's
// quantize_dynamic_jit turns into a working model (testdata/README.md lists
// the experiments). Anything else either crashes PyTorch's passes or yields a
// model that fails at its first forward, so it is refused here. Returns a
// warning for combinations that work but do not mean what they say.
std::string validate_qconfig(const QConfig& q, const std::string& source, const std::string& path) {
  validate_observer(q.activation, source, child_path(path, "activation"));
  validate_observer(q.weight, source, child_path(path, "weight"));
  const ObserverSpec& a = q.activation;
  const ObserverSpec& w = q.weight;
  const std::string allowed =
      "dynamic quantization supports: int8 (activation placeholder quint8 with compute_dtype quint8, or "
      "placeholder float32, or minmax; weight minmax/per_channel_minmax qint8), fp16 (activation placeholder "
      "float16; weight placeholder float16), weight-only embedding_bag (activation placeholder float32, weight "
      "per_channel_minmax quint8/quint4x2 per_channel_affine_float_qparams)";
  const bool int8_weight = w.kind != ObserverKind::Placeholder && w.dtype == DType::QInt8 &&
                           w.qscheme != QScheme::PerChannelAffineFloatQParams;
  const bool fp16_weight = w.kind == ObserverKind::Placeholder && w.dtype == DType::Float16;
  const bool weight_only_weight = w.kind == ObserverKind::PerChannelMinMax &&
                                  w.qscheme == QScheme::PerChannelAffineFloatQParams &&
                                  (w.dtype == DType::QUInt8 || w.dtype == DType::QUInt4x2);
  std::string warning;
  if (a.kind == ObserverKind::PerChannelMinMax)
    fail(source, child_path(path, "activation.observer"),
         "a per-channel activation observer is not used by dynamic quantization", allowed);
  if (a.kind == ObserverKind::MinMax) {
    // PyTorch's own test_quantize_fork_wait passes a static observer: the
    // dynamic passes ignore it and compute activation scales per batch.
    if (!int8_weight)
      fail(source, child_path(path, "activation.observer"),
           "a minmax activation observer works only with int8 weights (qint8 minmax or per_channel_minmax)", allowed);
    warning = source + ": " + path +
              ".activation: the minmax activation observer is ignored in dynamic "
              "quantization (activation scales are computed per batch at run time); the result is the same as "
              "with the placeholder of default_dynamic";
  } else if (a.dtype == DType::QUInt8) {
    if (a.compute_dtype != DType::QUInt8)
      fail(source, child_path(path, "activation"),
           "a quint8 placeholder activation needs \"compute_dtype\": \"quint8\" (without it PyTorch's "
           "conversion crashes)",
           allowed);
    if (!int8_weight)
      fail(source, child_path(path, "weight"),
           "int8 dynamic quantization needs qint8 weights from a minmax or per_channel_minmax observer "
           "(quantized Linear packs only qint8 weights; per_channel_affine_float_qparams is for weight-only "
           "embedding_bag, and PyTorch fails on it with \"a Tensor with N elements cannot be converted to "
           "Scalar\")",
           allowed);
  } else if (a.dtype == DType::Float16) {
    if (a.compute_dtype && a.compute_dtype != DType::Float16)
      fail(source, child_path(path, "activation.compute_dtype"),
           "a float16 placeholder activation takes compute_dtype float16 or none", allowed);
    if (!fp16_weight)
      fail(source, child_path(path, "weight"), "fp16 dynamic quantization needs a float16 placeholder weight observer",
           allowed);
  } else if (a.dtype == DType::Float32) {
    // With int8 weights Python converts to int8 dynamic quantization (the
    // activation is quantized per batch), with or without compute_dtype
    // quint8; with float-qparams weights it is weight-only.
    if (a.compute_dtype && a.compute_dtype != DType::QUInt8)
      fail(source, child_path(path, "activation.compute_dtype"),
           "a float32 placeholder activation takes compute_dtype quint8 (int8 dynamic) or none", allowed);
    if (a.compute_dtype && !int8_weight)
      fail(source, child_path(path, "weight"),
           "compute_dtype quint8 means int8 dynamic quantization, which needs qint8 weights from a minmax or "
           "per_channel_minmax observer",
           allowed);
    if (!int8_weight && !weight_only_weight)
      fail(source, child_path(path, "weight"),
           "with a float32 placeholder activation the weight must be qint8 (int8 dynamic) or per_channel_minmax "
           "quint8/quint4x2 per_channel_affine_float_qparams (weight-only embedding_bag)",
           allowed);
  } else {
    fail(source, child_path(path, "activation.dtype"),
         "activation dtype \"" + to_string(a.dtype) + "\" is not used by dynamic quantization", allowed);
  }
  return warning;
}

ObserverSpec parse_observer(const json& v, const std::optional<ObserverSpec>& base, const std::string& source,
                            const std::string& path) {
  if (!v.is_object())
    fail(source, path, "expected an observer object like {\"observer\": \"minmax\", ...}, got " + describe(v));
  auto it = v.find("observer");
  // Overriding a preset, a missing "observer" means the preset's own: the
  // user changes one field of it.
  if (it == v.end() && !base)
    fail(source, path, "missing field \"observer\"", "allowed observers: " + join(observer_names().names(), ", "));
  const ObserverKind kind =
      it == v.end() ? base->kind : parse_enum(*it, observer_names(), source, child_path(path, "observer"));
  // Same observer class as the preset's: the given fields override the preset's
  // arguments. Another class: start from that class's PyTorch defaults.
  ObserverSpec s = (base && base->kind == kind) ? *base : default_observer(kind);
  const auto& allowed = fields_for(kind);
  for (auto field = v.begin(); field != v.end(); ++field) {
    const std::string& name = field.key();
    const std::string fpath = child_path(path, name);
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      static const std::vector<std::string> all = {"observer",     "dtype",     "qscheme",   "ch_axis",
                                                   "reduce_range", "quant_min", "quant_max", "compute_dtype"};
      const bool known = std::find(all.begin(), all.end(), name) != all.end();
      std::string hint = "allowed for \"" + to_string(kind) + "\": " + join(allowed, ", ");
      if (!known) hint = did_you_mean(name, all, hint);
      fail(source, fpath,
           known ? "field \"" + name + "\" does not apply to observer \"" + to_string(kind) + "\""
                 : "unknown field " + quoted_value(name),
           hint);
    }
    const json& fv = field.value();
    if (name == "dtype")
      s.dtype = parse_enum(fv, dtype_names(), source, fpath);
    else if (name == "qscheme")
      s.qscheme = parse_enum(fv, qscheme_names(), source, fpath);
    else if (name == "ch_axis")
      s.ch_axis = parse_int(fv, source, fpath);
    else if (name == "reduce_range")
      s.reduce_range = parse_bool(fv, source, fpath);
    else if (name == "quant_min")
      s.quant_min = parse_int(fv, source, fpath);
    else if (name == "quant_max")
      s.quant_max = parse_int(fv, source, fpath);
    else if (name == "compute_dtype")
      s.compute_dtype = parse_enum(fv, dtype_names(), source, fpath);
  }
  return s;
}

// Parses one value of the dict (everything but `null`). Presets are themselves
// qconfig files in configs/, so they go through this same function.
QConfigEntry parse_value(const std::string& key, const json& v, const std::string& source, const std::string& path) {
  QConfigEntry entry{key, std::nullopt, {}, {}};
  if (v.is_string()) {
    entry.preset = v.get<std::string>();
    try {
      entry.qconfig = preset(entry.preset);
    } catch (const Error& e) {
      fail(source, path, e.what(), e.hint());
    }
    return entry;
  }
  if (!v.is_object())
    fail(source, path,
         "expected null, a preset name or an object {\"activation\": ..., \"weight\": ...}, got " + describe(v),
         "presets: " + join(preset_names(), ", "));
  std::optional<QConfig> base;
  if (auto p = v.find("preset"); p != v.end()) {
    if (!p->is_string())
      fail(source, child_path(path, "preset"), "expected a preset name, got " + describe(*p),
           "presets: " + join(preset_names(), ", "));
    entry.preset = p->get<std::string>();
    try {
      base = preset(entry.preset);
    } catch (const Error& e) {
      fail(source, child_path(path, "preset"), e.what(), e.hint());
    }
  }
  for (auto field = v.begin(); field != v.end(); ++field) {
    const std::string& name = field.key();
    if (name != "preset" && name != "activation" && name != "weight" && name != "full_range_activations") {
      const std::string hint = did_you_mean(name, {"preset", "activation", "weight", "full_range_activations"},
                                            "allowed: preset, activation, weight, full_range_activations");
      fail(source, child_path(path, name), "unknown field " + quoted_value(name), hint);
    }
  }
  QConfig q;
  for (const char* which : {"activation", "weight"}) {
    const std::string fpath = child_path(path, which);
    const bool is_weight = std::string(which) == "weight";
    std::optional<ObserverSpec> base_obs;
    if (base) base_obs = is_weight ? base->weight : base->activation;
    ObserverSpec spec;
    if (auto it = v.find(which); it != v.end()) {
      spec = parse_observer(*it, base_obs, source, fpath);
    } else if (base_obs) {
      spec = *base_obs;
    } else {
      fail(source, fpath, std::string("missing field \"") + which + "\"",
           "give both \"activation\" and \"weight\", or start from a \"preset\"");
    }
    (is_weight ? q.weight : q.activation) = spec;
  }
  entry.warning = validate_qconfig(q, source, path);
  if (auto f = v.find("full_range_activations"); f != v.end()) {
    const std::string fpath = child_path(path, "full_range_activations");
    if (!f->is_boolean()) fail(source, fpath, "expected true or false, got " + describe(*f));
    q.full_range_activations = f->get<bool>();
    const bool int8_dynamic = q.activation.kind == ObserverKind::Placeholder && q.weight.dtype == DType::QInt8 &&
                              q.weight.kind != ObserverKind::Placeholder;
    if (q.full_range_activations && !int8_dynamic)
      fail(source, fpath, "full_range_activations applies to int8 dynamic linears (qint8 weights) only",
           "start from per_channel_dynamic or default_dynamic");
  }
  entry.qconfig = q;
  return entry;
}

std::string key_path(const std::string& key) { return "[" + quoted_value(key) + "]"; }

json observer_to_json(const ObserverSpec& s) {
  json j = json::object();
  j["observer"] = to_string(s.kind);
  j["dtype"] = to_string(s.dtype);
  if (s.kind == ObserverKind::Placeholder) {
    if (s.compute_dtype) j["compute_dtype"] = to_string(*s.compute_dtype);
    return j;
  }
  j["qscheme"] = to_string(s.qscheme);
  if (s.kind == ObserverKind::PerChannelMinMax) j["ch_axis"] = s.ch_axis;
  j["reduce_range"] = s.reduce_range;
  if (s.quant_min) {
    j["quant_min"] = *s.quant_min;
    j["quant_max"] = *s.quant_max;
  }
  return j;
}

json qconfig_to_json(const QConfig& q) {
  json j{{"activation", observer_to_json(q.activation)}, {"weight", observer_to_json(q.weight)}};
  // Written only when set: every other qconfig stays as PyTorch spells it.
  if (q.full_range_activations) j["full_range_activations"] = true;
  return j;
}

}  // namespace

bool ObserverSpec::operator==(const ObserverSpec& o) const {
  return kind == o.kind && dtype == o.dtype && qscheme == o.qscheme && ch_axis == o.ch_axis &&
         reduce_range == o.reduce_range && quant_min == o.quant_min && quant_max == o.quant_max &&
         compute_dtype == o.compute_dtype;
}

ObserverSpec default_observer(ObserverKind kind) {
  ObserverSpec s;
  s.kind = kind;
  switch (kind) {
    case ObserverKind::Placeholder:
      s.dtype = DType::Float32;
      break;
    case ObserverKind::MinMax:
      s.dtype = DType::QUInt8;
      s.qscheme = QScheme::PerTensorAffine;
      break;
    case ObserverKind::PerChannelMinMax:
      s.dtype = DType::QUInt8;
      s.qscheme = QScheme::PerChannelAffine;
      break;
  }
  return s;
}

std::pair<int64_t, int64_t> effective_qrange(const ObserverSpec& s) {
  if (s.quant_min && s.quant_max) {
    int64_t lo = *s.quant_min, hi = *s.quant_max;
    // Python floors (//); C++ truncates. The ranges include 0, so lo <= 0.
    if (s.reduce_range) {
      lo = lo >= 0 ? lo / 2 : -((-lo + 1) / 2);
      hi = hi >= 0 ? hi / 2 : -((-hi + 1) / 2);
    }
    return {lo, hi};
  }
  switch (s.dtype) {
    case DType::QInt8:
      return s.reduce_range ? std::pair<int64_t, int64_t>{-64, 63} : std::pair<int64_t, int64_t>{-128, 127};
    case DType::QUInt8:
      return s.reduce_range ? std::pair<int64_t, int64_t>{0, 127} : std::pair<int64_t, int64_t>{0, 255};
    default:
      return {0, 15};
  }
}

const QConfigEntry* QConfigDict::find(std::string_view key) const {
  if (index_.size() != entries.size()) {
    index_.clear();
    for (size_t i = 0; i < entries.size(); ++i) index_.emplace(entries[i].key, i);
  }
  auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &entries[it->second];
}

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& p : embedded_presets()) n.push_back(p.name);
    return n;
  }();
  return names;
}

QConfig preset(std::string_view name) {
  for (const auto& p : embedded_presets()) {
    if (name != p.name) continue;
    // A preset file is a qconfig dict with one "" entry written out in full.
    const std::string source = "configs/" + std::string(p.name) + ".json";
    json doc = json::parse(p.json);
    auto it = doc.find("");
    if (it == doc.end() || !it->is_object())
      throw Error(ErrorKind::Internal, source + ": a preset file must have one \"\" entry");
    return *parse_value("", *it, source, key_path("")).qconfig;
  }
  std::string hint = "presets: " + join(preset_names(), ", ");
  const std::string n(name), py = python_name(n);
  const std::string stem =
      py.size() > 8 && py.compare(py.size() - 8, 8, "_qconfig") == 0 ? py.substr(0, py.size() - 8) : "";
  if (!stem.empty() && std::find(preset_names().begin(), preset_names().end(), stem) != preset_names().end())
    hint = "PyTorch's " + py + " is the preset \"" + stem + "\" here; " + hint;
  else if (const auto observer = json_name_of_python_class(n))
    hint = "PyTorch's " + python_name(n) +
           " is an observer, not a qconfig: write {\"activation\": ..., \"weight\": "
           "{\"observer\": \"" +
           *observer + "\", ...}}, or a preset; " + hint;
  else
    hint = did_you_mean(n, preset_names(), hint);
  throw Error(ErrorKind::Config, "unknown preset " + quoted_value(name), hint);
}

// Limits that keep a hostile or mistaken file from costing minutes or
// gigabytes; real qconfigs are a few kB, a few levels deep, with module names
// of at most a few hundred characters.
constexpr int kMaxDepth = 32;
constexpr size_t kMaxKeyLength = 4096;

namespace {

// A hint for JSON written the Python way, which is the commonest way a
// hand-written qconfig is malformed.
std::string pythonism_hint(std::string_view text) {
  for (const char* word : {"None", "True", "False"}) {
    const std::string w = word;
    for (size_t p = text.find(w); p != std::string_view::npos; p = text.find(w, p + 1)) {
      const bool start = p == 0 || !std::isalnum(static_cast<unsigned char>(text[p - 1]));
      const bool end = p + w.size() >= text.size() || !std::isalnum(static_cast<unsigned char>(text[p + w.size()]));
      if (start && end) return "this looks like Python: JSON spells None, True and False as null, true and false";
    }
  }
  if (text.find('\'') != std::string_view::npos) return "this looks like Python: JSON strings take double quotes";
  if (text.find("torch.") != std::string_view::npos)
    return "write names without \"torch.\": \"qint8\", not torch.qint8 (see docs/qconfig.md)";
  return "";
}

}  // namespace

QConfigDict parse_qconfig(std::string_view text, const std::string& source) {
  if (text.size() > kMaxQConfigBytes)
    throw Error(ErrorKind::Config, source + ": " + std::to_string(text.size()) +
                                       " bytes is too large for a qconfig (at most " +
                                       std::to_string(kMaxQConfigBytes) + ")");
  StrictJson parsed;
  try {
    parsed = parse_json_strict(text, source, ErrorKind::Config, kMaxDepth);
  } catch (const Error& err) {
    std::string what = err.what();
    // A qconfig is at most four levels deep; say so.
    if (what.find(": nested more than ") != std::string::npos) what += "; a qconfig is at most four";
    const std::string hint = what.find("malformed JSON") != std::string::npos ? pythonism_hint(text) : "";
    throw Error(ErrorKind::Config, what, hint.empty() ? err.hint() : hint);
  }
  const nlohmann::json& doc = parsed.doc;
  const std::vector<std::string>& order = parsed.top_keys;
  if (!doc.is_object())
    throw Error(ErrorKind::Config,
                source + ": expected a JSON object mapping module names to qconfigs, got " + describe(json(doc)),
                "example: {\"\": \"per_channel_dynamic\", \"classifier\": null}");
  QConfigDict dict;
  dict.entries.reserve(order.size());
  for (const auto& key : order) {
    if (key.size() > kMaxKeyLength)
      throw Error(ErrorKind::Config, source + ": a key of " + std::to_string(key.size()) +
                                         " characters is not a module name (at most " + std::to_string(kMaxKeyLength) +
                                         "): " + quoted_value(key, 40));
    const std::string path = key_path(key);
    const json value = json(doc.at(key));
    if (value.is_null()) {
      dict.entries.push_back({key, std::nullopt, {}, {}});
      continue;
    }
    dict.entries.push_back(parse_value(key, value, source, path));
  }
  return dict;
}

QConfigDict load_qconfig_file(const std::string& path, std::string* text) {
  const std::string content = read_file_capped(path, kMaxQConfigBytes, ErrorKind::Config, "qconfig file");
  QConfigDict dict = parse_qconfig(content, path == "-" ? std::string("<stdin>") : path);
  if (text) *text = content;
  return dict;
}

QConfigDict default_qconfig_dict() {
  QConfigDict d;
  d.entries.push_back({"", preset("per_channel_dynamic"), "per_channel_dynamic", {}});
  return d;
}

std::string to_string(ObserverKind kind) { return observer_names().name(kind); }
std::string to_string(DType dtype) { return dtype_names().name(dtype); }
std::string to_string(QScheme qscheme) { return qscheme_names().name(qscheme); }

json to_json(const QConfigDict& dict) {
  // The dict's keys are unique (the parser refused duplicates), so entries go
  // straight onto the ordered object's list: j[key] would search it first,
  // which makes 300,000 keys quadratic.
  json j = json::object();
  auto& entries = j.get_ref<json::object_t&>();
  entries.reserve(dict.entries.size());
  for (const auto& e : dict.entries) entries.emplace_back(e.key, e.qconfig ? qconfig_to_json(*e.qconfig) : json());
  return j;
}

json to_json(const QConfig& q) { return qconfig_to_json(q); }

}  // namespace bertq
