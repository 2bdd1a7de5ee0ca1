#include "plan/options.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/text.h"

namespace bertq {
namespace {

using json = nlohmann::ordered_json;
using O = ConvertOptions;

template <typename... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <typename... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

[[noreturn]] void bad(const std::string& source, const std::string& where, const std::string& what,
                      std::string hint = {}) {
  throw Error(ErrorKind::Config, source + ": " + where + ": " + what, std::move(hint));
}

std::string resolve_path(const std::string& base, const std::string& p) {
  namespace fs = std::filesystem;
  if (base.empty() || fs::path(p).is_absolute()) return p;
  return (fs::path(base) / p).lexically_normal().string();
}

}  // namespace

const std::vector<OptionSpec>& convert_option_specs() {
  //                   key, flag, help, field, is_path, changes_result, in_batch, in_prepare
  static const std::vector<OptionSpec> specs = {
      {"qconfig", "--qconfig",
       "qconfig JSON (docs/qconfig.md), - for stdin; default: per_channel_dynamic for the whole model",
       &O::qconfig_path, true, true, true, true},
      {"engine", "--engine", "quantized engine: onednn, qnnpack (x86, fbgemm where present); default: the best one",
       &O::engine, false, true, true, true},
      {"embeddings", "--embeddings",
       "8bit or 4bit: quantize every Embedding/EmbeddingBag's rows (a null in the qconfig still opts out); float: "
       "keep them float, as quantize_dynamic_jit does; default: as the qconfig says",
       &O::embeddings, false, true, true, false},
      {"fuse_qkv", "--fuse-qkv",
       "fuse quantized Linears that read the same input (attention's query, key and value) into one: the input is "
       "quantized once and the GEMM is wider; outputs stay bit-identical",
       &O::fuse_qkv, false, true, true, false},
      {"full_range_activations", "--full-range-activations",
       "quantize the int8 linears' inputs to the full 8 bits (reduce_range=False) instead of PyTorch's 7: smaller "
       "error, exact only where the int8 kernel accumulates in 32 bits (onednn with VNNI, qnnpack), refused "
       "elsewhere; per module: the qconfig's full_range_activations",
       &O::full_range_activations, false, true, true, false},
      {"debug", "--debug", "write the debug model (float simulation, scales kept as attributes), like debug=True",
       &O::debug, false, true, true, false},
      {"allow_missing", "--allow-missing", "warn instead of failing when a qconfig key names no module",
       &O::allow_missing, false, true, true, true},
      {"allow_unrunnable", "--allow-unrunnable",
       "write the model even if this LibTorch cannot run it (fp16 needs fbgemm)", &O::allow_unrunnable, false, true,
       true, false},
      {"allow_requantize", "--allow-requantize",
       "accept an input that is already quantized (its float Linears are quantized, the rest kept)",
       &O::allow_requantize, false, true, true, true},
      {"allow_nothing_quantized", "--allow-nothing-quantized",
       "write the output even if nothing was quantized (otherwise exit 7)", &O::allow_nothing_quantized, false, true,
       true, true},
      {"require_quantized", "--require-quantized",
       "fail (exit 7) unless every Linear whose name matches this glob is quantized (repeatable)",
       &O::require_quantized, false, true, true, true},
      {"min_quantized_fraction", "--min-quantized-fraction",
       "fail (exit 7) unless at least this fraction of the weight elements is quantized", &O::min_quantized_fraction,
       false, true, true, true},
      {"no_manifest", "--no-manifest",
       "do not store extra/bertq_manifest.json (the archive then equals Python's byte for byte)", &O::no_manifest,
       false, true, false, true},
      {"threads", "--threads", "LibTorch threads (the output is the same for any count)", &O::threads, false, false,
       true, true},
      {"report", "--report", "also write the report as JSON to this file (also when a guard fails)", &O::report_path,
       true, false, true, true},
      {"html", "--html", "also write the report as a self-contained HTML page (also when a guard fails)", &O::html_path,
       true, false, true, true},
  };
  return specs;
}

json result_key(const ConvertOptions& o, const json& resolved_qconfig) {
  json key = json::object();
  for (const auto& s : convert_option_specs()) {
    if (!s.changes_result) continue;
    if (std::string(s.key) == "qconfig") {
      key["qconfig"] = resolved_qconfig;
      continue;
    }
    std::visit(Overloaded{[&](bool O::*f) { key[s.key] = o.*f; },
                          [&](std::optional<std::string> O::*f) { key[s.key] = o.*f ? json(*(o.*f)) : json(); },
                          [&](std::optional<double> O::*f) { key[s.key] = o.*f ? json(*(o.*f)) : json(); },
                          [&](std::optional<int> O::*f) { key[s.key] = o.*f ? json(*(o.*f)) : json(); },
                          [&](std::optional<Engine> O::*f) { key[s.key] = o.*f ? json(to_string(*(o.*f))) : json(); },
                          [&](std::vector<std::string> O::*f) { key[s.key] = o.*f; }},
               s.field);
  }
  return key;
}

void options_from_json(const json& e, const std::string& base, const std::string& source, const std::string& where,
                       const std::vector<std::string>& own_fields, ConvertOptions& o) {
  std::vector<std::string> allowed = own_fields;
  for (const auto& s : convert_option_specs())
    if (s.in_batch) allowed.push_back(s.key);
  for (auto it = e.begin(); it != e.end(); ++it) {
    const std::string& k = it.key();
    const std::string path = where + "." + printable(k);
    if (std::find(own_fields.begin(), own_fields.end(), k) != own_fields.end()) continue;
    const OptionSpec* spec = nullptr;
    for (const auto& s : convert_option_specs())
      if (s.in_batch && k == s.key) spec = &s;
    if (!spec) {
      bad(source, path, "unknown field " + quoted_value(k),
          did_you_mean(k, allowed, "allowed: " + join(allowed, ", ")));
    }
    const json& v = it.value();
    std::visit(Overloaded{[&](bool O::*f) {
                            if (!v.is_boolean()) bad(source, path, "expected true or false");
                            o.*f = v.get<bool>();
                          },
                          [&](std::optional<std::string> O::*f) {
                            if (!v.is_string() || v.get<std::string>().empty())
                              bad(source, path, "expected a non-empty string");
                            o.*f = spec->is_path ? resolve_path(base, v.get<std::string>()) : v.get<std::string>();
                          },
                          [&](std::optional<double> O::*f) {
                            if (!v.is_number()) bad(source, path, "expected a number");
                            o.*f = v.get<double>();
                          },
                          [&](std::optional<int> O::*f) {
                            if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 256)
                              bad(source, path, "expected an integer from 1 to 256");
                            o.*f = static_cast<int>(v.get<int64_t>());
                          },
                          [&](std::optional<Engine> O::*f) {
                            if (!v.is_string()) bad(source, path, "expected an engine name");
                            const auto engine = engine_from_name(v.get<std::string>());
                            if (!engine)
                              bad(source, path, "unknown engine " + quoted_value(v.get<std::string>()),
                                  did_you_mean(v.get<std::string>(), engine_names(),
                                               "engines: " + join(engine_names(), ", ")));
                            o.*f = engine;
                          },
                          [&](std::vector<std::string> O::*f) {
                            if (!v.is_array()) bad(source, path, "expected an array of strings");
                            std::vector<std::string> items;
                            for (const auto& x : v) {
                              if (!x.is_string()) bad(source, path, "expected an array of strings");
                              items.push_back(x.get<std::string>());
                            }
                            o.*f = items;
                          }},
               spec->field);
  }
  if (o.min_quantized_fraction && !(*o.min_quantized_fraction >= 0 && *o.min_quantized_fraction <= 1))
    bad(source, where + ".min_quantized_fraction", "expected a number from 0 to 1");
}

std::vector<std::string> options_to_args(const ConvertOptions& o) {
  std::vector<std::string> a = {o.prepare_only ? "prepare" : "convert"};
  for (const auto& s : convert_option_specs()) {
    std::visit(Overloaded{[&](bool O::*f) {
                            if (o.*f) a.push_back(s.flag);
                          },
                          [&](std::optional<std::string> O::*f) {
                            // "--flag=VALUE": a value that starts with "-" stays a value.
                            if (o.*f) a.push_back(std::string(s.flag) + "=" + *(o.*f));
                          },
                          [&](std::optional<double> O::*f) {
                            if (o.*f) a.push_back(std::string(s.flag) + "=" + format_g17(*(o.*f)));
                          },
                          [&](std::optional<int> O::*f) {
                            if (o.*f) a.push_back(std::string(s.flag) + "=" + std::to_string(*(o.*f)));
                          },
                          [&](std::optional<Engine> O::*f) {
                            if (o.*f) a.push_back(std::string(s.flag) + "=" + to_string(*(o.*f)));
                          },
                          [&](std::vector<std::string> O::*f) {
                            for (const auto& v : o.*f) a.push_back(std::string(s.flag) + "=" + v);
                          }},
               s.field);
  }
  if (o.dry_run) a.push_back("--dry-run");
  a.push_back("--");
  a.push_back(o.input);
  if (!o.output.empty()) a.push_back(o.output);
  return a;
}

}  // namespace bertq
