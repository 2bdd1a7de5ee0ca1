#include "run/bench.h"

#include <fmt/format.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>
#include <ostream>

#include "archive/manifest.h"
#include "base/error.h"
#include "base/text.h"
#include "inspect/inspect.h"
#include "jit/engines.h"
#include "jit/model_file.h"
#include "run/given_inputs.h"
#include "run/model_inputs.h"

namespace bertq {
namespace {

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  // Nearest rank.
  const size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

// A fused group's modules share one attribute: "a.b.{query,key,value}".
std::map<std::string, std::string> packed_module_names(const std::optional<Manifest>& manifest) {
  std::map<std::string, std::vector<std::string>> by_attr;
  if (manifest)
    for (const auto& mm : manifest->modules)
      if (!mm.packed_attr.empty()) by_attr[mm.packed_attr].push_back(mm.path.empty() ? "<root>" : mm.path);
  std::map<std::string, std::string> out;
  for (const auto& [attr, paths] : by_attr) {
    if (paths.size() == 1) {
      out[attr] = paths.front();
      continue;
    }
    const auto dot = paths.front().rfind('.');
    const std::string prefix = dot == std::string::npos ? "" : paths.front().substr(0, dot + 1);
    std::vector<std::string> leaves;
    bool common = true;
    for (const auto& p : paths) {
      common = common && p.rfind(prefix, 0) == 0;
      leaves.push_back(p.substr(std::min(p.size(), prefix.size())));
    }
    out[attr] = common ? prefix + "{" + join(leaves, ",") + "}" : join(paths, " + ");
  }
  return out;
}

}  // namespace

BenchResult run_bench(const BenchOptions& o, const std::function<void(int, int, const std::string&)>& progress) {
  if (o.models.empty()) throw Error(ErrorKind::Usage, "no model to benchmark");
  if (o.iters < 1 || o.warmup < 0 || o.batch < 1 || o.seq < 1 || o.threads < 1 || o.vocab < 1)
    throw Error(ErrorKind::Usage, "--iters, --batch, --seq, --threads and --vocab must be positive");
  BenchResult result;
  result.options = o;
  result.runtime = configure_runtime(o.threads, o.engine ? *o.engine : default_engine(), o.tune_runtime);
  std::vector<torch::jit::Module> models;
  std::vector<std::map<std::string, std::string>> packed_names;  // per model: packed attr -> module
  for (const auto& path : o.models) {
    std::string manifest_text;
    torch::jit::Module m = load_model(path, kManifestName, &manifest_text);
    packed_names.push_back(packed_module_names(parse_manifest(manifest_text, path)));
    m.eval();
    if (!m.find_method("forward")) throw Error(ErrorKind::Model, path + ": the model has no forward method");
    if (const std::string w = saturation_warning(m, o.engine ? *o.engine : default_engine(), path); !w.empty())
      result.runtime.warnings.push_back(w);
    const auto names = forward_arguments(m);
    if (result.inputs.empty())
      result.inputs = names;
    else if (names.size() != result.inputs.size())
      throw Error(ErrorKind::Usage,
                  path + " takes " + std::to_string(names.size()) + " inputs, " + o.models[0] + " takes " +
                      std::to_string(result.inputs.size()),
                  "benchmark models of the same network");
    models.push_back(m);
  }
  std::vector<c10::IValue> inputs;
  if (!o.inputs_file.empty()) {
    const GivenInputs given = read_given_inputs(o.inputs_file);
    // Every model must take them (else the error names the argument).
    for (size_t k = 1; k < models.size(); ++k) BoundInputs(given, models[k]);
    const BoundInputs bound(given, models.front());
    result.options.batch = std::min<int64_t>(o.batch, given.rows);
    inputs = bound.rows(0, result.options.batch);
    result.inputs_described = bound.describe(result.options.batch);
  } else {
    inputs = dummy_inputs(result.inputs, o.batch, o.seq, o.vocab, o.seed);
  }
  const int total = static_cast<int>(models.size()) * (o.iters + o.warmup);
  int done = 0;
  torch::NoGradGuard no_grad;
  // Warm-ups first, then timed rounds that visit every model in turn: on a
  // shared machine, load that comes and goes then falls on every model alike
  // instead of on whichever was being timed, so the ratios stay honest.
  std::vector<ModelTiming> timings(models.size());
  auto run_once = [&](size_t k) {
    const auto start = std::chrono::steady_clock::now();
    try {
      models[k].forward(inputs);
    } catch (const std::exception& e) {
      // The interpreter's exceptions carry a TorchScript traceback; the
      // last line says what went wrong.
      if (!o.inputs_file.empty())
        throw Error(ErrorKind::Model,
                    o.models[k] + ": forward failed on the rows of " + o.inputs_file + " (" + result.inputs_described +
                        "): " + last_line(e.what()),
                    "check the inputs' shapes and dtypes against what the model was traced with");
      throw Error(ErrorKind::Model,
                  o.models[k] + ": forward failed on the dummy inputs (batch " + std::to_string(o.batch) + " x seq " +
                      std::to_string(o.seq) + "): " + last_line(e.what()),
                  "check --batch/--seq-length/--vocab against the model (e.g. its max_position_embeddings), or give "
                  "the model's own inputs with --inputs FILE");
    }
    if (progress) progress(++done, total, o.models[k]);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  for (size_t k = 0; k < models.size(); ++k)
    for (int i = 0; i < o.warmup; ++i) run_once(k);
  for (int i = 0; i < o.iters; ++i)
    for (size_t k = 0; k < models.size(); ++k) timings[k].ms.push_back(run_once(k));
  for (size_t k = 0; k < models.size(); ++k) {
    ModelTiming& t = timings[k];
    t.model = o.models[k];
    t.kind = to_string(model_kind(models[k]));
    t.mean = std::accumulate(t.ms.begin(), t.ms.end(), 0.0) / static_cast<double>(t.ms.size());
    t.median = percentile(t.ms, 0.5);
    t.p90 = percentile(t.ms, 0.9);
    t.min = *std::min_element(t.ms.begin(), t.ms.end());
    result.models.push_back(t);
  }
  for (auto& t : result.models) t.ratio = t.median / result.models.front().median;
  if (o.profile) {
    // After the timed rounds, so that the hooks cost those nothing.
    for (size_t k = 0; k < models.size(); ++k) {
      ModelProfile p = profile_forward(models[k], inputs, o.iters, packed_names[k]);
      p.model = o.models[k];
      measure_int8_bound(p);
      result.profiles.push_back(std::move(p));
    }
  }
  return result;
}

void print_bench(const BenchResult& r, std::ostream& out) {
  const std::string shape =
      r.options.inputs_file.empty()
          ? fmt::format("batch {} x seq {}", r.options.batch, r.options.seq)
          : fmt::format("{} rows of {} ({})", r.options.batch, printable(r.options.inputs_file), r.inputs_described);
  out << fmt::format("{}, {} thread{}, engine {}, {} iterations after {} warm-up\n", shape, r.runtime.threads,
                     r.runtime.threads == 1 ? "" : "s", r.runtime.engine, r.options.iters, r.options.warmup);
  out << (r.runtime.allocator_tuned ? "runtime tuned (allocator, BLAS threads)" : "runtime: LibTorch defaults")
      << "; BLAS: " << describe(r.runtime.blas) << "\n";
  size_t width = 5;
  for (const auto& t : r.models) width = std::max(width, printable_line(t.model).size());
  out << fmt::format("{:<{}}  {:<9}  {:>10}  {:>10}  {:>10}  {:>8}\n", "MODEL", width, "KIND", "mean ms", "median ms",
                     "p90 ms", "ratio");
  for (const auto& t : r.models)
    out << fmt::format("{:<{}}  {:<9}  {:>10.1f}  {:>10.1f}  {:>10.1f}  {:>8.3f}\n", printable_line(t.model), width,
                       t.kind, t.mean, t.median, t.p90, t.ratio);
  for (size_t k = 0; k < r.profiles.size(); ++k) {
    print_profile(r.profiles[k], out);
    if (r.profiles[k].int8_bound_ms > 0)
      out << fmt::format("  median {:.1f} ms (timed rounds, no hooks) / int8 bound {:.1f} ms = {:.2f}\n",
                         r.models[k].median, r.profiles[k].int8_bound_ms,
                         r.models[k].median / r.profiles[k].int8_bound_ms);
  }
}

void print_bench_json(const BenchResult& r, std::ostream& out) {
  nlohmann::ordered_json j;
  j["batch"] = r.options.batch;
  j["seq"] = r.options.inputs_file.empty() ? nlohmann::ordered_json(r.options.seq) : nlohmann::ordered_json();
  j["inputs_file"] =
      r.options.inputs_file.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(r.options.inputs_file);
  j["threads"] = r.runtime.threads;
  j["engine"] = r.runtime.engine;
  j["iters"] = r.options.iters;
  j["warmup"] = r.options.warmup;
  j["blas"] = r.runtime.blas.name;
  j["blas_threading"] = r.runtime.blas.threading;
  j["openblas_kernel"] = r.runtime.blas.kernel;
  j["openblas_kernel_source"] = r.runtime.blas.kernel_source;
  j["openblas_detected_kernel"] = r.runtime.blas.detected_kernel.empty()
                                      ? nlohmann::ordered_json()
                                      : nlohmann::ordered_json(r.runtime.blas.detected_kernel);
  j["warnings"] = r.runtime.warnings;
  j["allocator_tuned"] = r.runtime.allocator_tuned;
  j["inputs"] = r.inputs;
  nlohmann::ordered_json models = nlohmann::ordered_json::array();
  for (const auto& t : r.models)
    models.push_back({{"model", t.model},
                      {"kind", t.kind},
                      {"mean_ms", t.mean},
                      {"median_ms", t.median},
                      {"p90_ms", t.p90},
                      {"min_ms", t.min},
                      {"ratio", t.ratio},
                      {"ms", t.ms}});
  for (size_t k = 0; k < r.profiles.size(); ++k) {
    const ModelProfile& p = r.profiles[k];
    nlohmann::ordered_json ops = nlohmann::ordered_json::array(), mods = nlohmann::ordered_json::array(),
                           gemms = nlohmann::ordered_json::array();
    for (const auto& o : p.ops) ops.push_back({{"op", o.op}, {"calls", o.calls}, {"self_ms", o.self_ms}});
    for (const auto& m : p.modules) mods.push_back({{"module", m.module}, {"self_ms", m.self_ms}});
    for (const auto& g : p.gemms)
      gemms.push_back({{"m", g.m},
                       {"k", g.k},
                       {"n", g.n},
                       {"calls", g.calls},
                       {"ms_in_model", g.ms_in_model},
                       {"best_ms_alone", g.best_ms}});
    models[k]["profile"] = {
        {"iterations", p.iterations},
        {"forward_ms", p.forward_ms},
        {"ops", ops},
        {"modules", mods},
        {"int8_linears", gemms},
        {"int8_bound_ms", p.gemms.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(p.int8_bound_ms)},
        {"median_over_bound",
         p.gemms.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(r.models[k].median / p.int8_bound_ms)}};
  }
  j["models"] = models;
  out << j.dump(2) << "\n";
}

}  // namespace bertq
