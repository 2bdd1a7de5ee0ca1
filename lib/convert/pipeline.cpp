#include "convert/pipeline.h"

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fnmatch.h>
#include <spdlog/spdlog.h>
#include <torch/script.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <functional>
#include <future>
#include <set>
#include <sstream>

#include "archive/archive_file.h"
#include "archive/manifest.h"
#include "archive/sha256.h"
#include "base/cpu.h"
#include "base/error.h"
#include "base/files.h"
#include "base/text.h"
#include "convert/convert_model.h"
#include "convert/embeddings.h"
#include "convert/fuse_linear.h"
#include "convert/measure.h"
#include "convert/planner.h"
#include "convert/quantize.h"
#include "jit/engines.h"
#include "jit/graph_walk.h"
#include "jit/model_file.h"
#include "jit/model_info.h"
#include "jit/qtensor.h"

namespace bertq {
namespace {

// Ops that pack weights at run time. After Finalize they are folded into
// packed-parameter attributes; one left in the graph means packing failed for
// this engine (e.g. no fp16 prepack in onednn/qnnpack) and the model's first
// forward will fail.
std::vector<std::string> unfolded_prepacks(const torch::jit::Module& m) {
  std::set<std::string> kinds;
  for_each_node(m.get_method("forward").graph()->block(), [&](torch::jit::Node* n) {
    const std::string kind = n->kind().toQualString();
    if (kind.find("prepack") != std::string::npos) kinds.insert(kind);
  });
  return {kinds.begin(), kinds.end()};
}

// A key that quantizes nothing is as silent as a key that names nothing.
// The process's peak resident memory so far (VmHWM), in MiB.
long peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6)) / 1024;
  return -1;
}

// Logs how long each step took (with -v), so users can see where time goes.
class StepTimer {
 public:
  void done(const char* step) {
    const auto now = std::chrono::steady_clock::now();
    spdlog::debug("{}: {:.2f} s, peak RSS {} MiB", step, std::chrono::duration<double>(now - last_).count(),
                  peak_rss_mib());
    last_ = now;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string shown_path(const std::string& path) { return path.empty() ? "<root>" : path; }

bool linear_like(const ModulePlan& m) { return m.type_name == "Linear" || m.use == WeightUse::Linear; }

// One conversion, step by step; run_convert calls the steps in order. Each
// step reads what the earlier ones left in the members and reads no file
// again.
class Conversion {
 public:
  Conversion(const ConvertOptions& o, const std::string& command_line) : o_(o) {
    r_.bertq_version = BERTQ_VERSION;
    r_.libtorch_version = BERTQ_LIBTORCH_VERSION;
    r_.libtorch_package = BERTQ_LIBTORCH_PACKAGE;
    r_.options = o;
    r_.command_line = command_line;
    r_.created = utc_now();
    r_.debug = o.debug;
    r_.dry_run = o.dry_run;
    r_.mode = o.prepare_only ? ConvertMode::Prepare : ConvertMode::Quantize;
    r_.input.path = o.input;
    r_.output.path = o.output;
  }

  // Every path is checked before any work: outputs must be regular files or
  // new, and none may be an input or another output.
  void check_paths() {
    if (o_.output.empty() && !o_.dry_run) throw Error(ErrorKind::Usage, "output is required (or --dry-run)");
    if (o_.prepare_only && o_.debug) throw Error(ErrorKind::Usage, "--debug applies to convert, not prepare");
    if (o_.fuse_qkv && o_.debug)
      throw Error(ErrorKind::Usage,
                  "--fuse-qkv rewrites the final model's quantized linears; --debug writes float ones",
                  "drop one of the two");
    std::vector<InputPath> inputs{{"input", o_.input}};
    if (o_.qconfig_path) inputs.push_back({"--qconfig", *o_.qconfig_path});
    std::vector<OutputPath> outputs;
    if (!o_.dry_run) {
      model_out_ = check_output_path("output", o_.output);
      outputs.push_back(model_out_);
    }
    if (o_.report_path) outputs.push_back(*(report_out_ = check_text_output_path("--report", *o_.report_path)));
    if (o_.html_path) outputs.push_back(*(html_out_ = check_text_output_path("--html", *o_.html_path)));
    check_distinct(inputs, outputs);
    // A run killed by SIGKILL leaves its temporary folder behind; the next
    // run into the same folder removes it.
    for (const auto& out : outputs) {
      if (out.to_stdout) continue;
      const std::string dir = std::filesystem::path(out.target).parent_path().string();
      if (const int n = remove_stale_temporaries(dir.empty() ? "." : dir))
        spdlog::info("removed {} temporary folder{} left by an interrupted bertq run in {}", n, n == 1 ? "" : "s",
                     printable(dir.empty() ? "." : dir));
    }
    // Every output's temporary folder now: one that cannot be written fails
    // here, before any work, and all are renamed into place together.
    for (const auto& out : outputs) staged_.add(out);
  }

  // The qconfig first: a typo there should not cost a model load.
  void read_qconfig() {
    if (o_.qconfig_path)
      dict_ = load_qconfig_file(*o_.qconfig_path, &r_.qconfig_text);
    else
      dict_ = default_qconfig_dict();
    r_.qconfig = dict_;
    parse_embedding_rows(o_.embeddings);  // a bad --embeddings fails before the model loads
  }

  // Checks the whole archive (structure, every CRC-32, tensor extents) before
  // LibTorch reads it, then loads it through the same open file.
  void open_and_load() {
    engine_ = o_.engine ? *o_.engine : default_engine();
    if (o_.engine) parse_engine(to_string(*o_.engine));  // says clearly if this LibTorch lacks it
    r_.engine = to_string(engine_);
    set_engine(engine_);
    // The passes quantize and pack every weight through LibTorch's parallel
    // loops; the output is the same for any count.
    const ThreadChoice threads = conversion_threads(o_.threads, threads_set_in_environment(), usable_cpus());
    if (threads.threads) at::set_num_threads(*threads.threads);
    spdlog::debug("LibTorch threads: {} ({})", at::get_num_threads(), threads.why);
    input_ = std::make_unique<ArchiveFile>(o_.input);
    timer_.done("check archive");
    r_.input.bytes = input_->size();
    // The hash runs on the second core while the passes run on the first; it
    // reads the same descriptor LibTorch read.
    input_sha_ = std::async(std::launch::async, [this] { return input_->sha256(); });
    check_producer();
    model_ = load_model(*input_);
    timer_.done("check and load");
  }

  // A file bertq itself wrote names the LibTorch that wrote it. One from a
  // newer LibTorch holds that version's ops and observer code, which this one
  // would misread or run differently; a prepared model must be converted by
  // the release line that prepared it (2.x observers carry `is_dynamic`, and
  // the qparams must come from the same observer.py to match Python).
  void check_producer() {
    const std::string record = std::string("extra/") + kManifestName;
    if (!input_->index().find(record)) return;
    const std::optional<Manifest> m = parse_manifest(input_->read_record(record), o_.input);
    if (!m) return;
    const std::string here = BERTQ_LIBTORCH_VERSION;
    const auto newer = compare_versions(m->libtorch_version, here);
    if (!newer)
      throw Error(ErrorKind::Model, o_.input + ": its bertq manifest names an unreadable LibTorch version " +
                                        quoted_value(m->libtorch_version, 40));
    if (*newer > 0)
      throw Error(ErrorKind::Model,
                  o_.input + ": it was written by bertq with LibTorch " + m->libtorch_version +
                      ", newer than this bertq's LibTorch " + here,
                  "use a bertq built against LibTorch " + m->libtorch_version + " or newer (docs/libtorch.md)");
    if (m->mode == to_string(ConvertMode::Prepare, false) && compare_versions(m->libtorch_version, here, 2) != 0)
      throw Error(ErrorKind::Model,
                  o_.input + ": it was prepared with LibTorch " + m->libtorch_version +
                      ", whose observers differ from this bertq's LibTorch " + here,
                  "prepare the float model again with this bertq, or convert it with a bertq built against "
                  "LibTorch " +
                      m->libtorch_version);
  }

  // Refuses inputs that are not float models (unless asked), and picks the
  // path for a prepared one.
  void classify_input() {
    const ModelKind kind = model_kind(model_);
    if (kind == ModelKind::Debug)
      throw Error(ErrorKind::Model,
                  o_.input +
                      " is a debug model (float weights with stored scales, written by --debug or "
                      "quantize_dynamic_jit(debug=True)); quantizing it again would quantize twice",
                  "convert the float model it came from; did you swap INPUT and OUTPUT?");
    if (kind == ModelKind::Final && !o_.allow_requantize)
      throw Error(ErrorKind::Model,
                  o_.input + " is already quantized (" + std::to_string(count_quantized_weights(model_, kind)) +
                      " quantized weights, quantized::linear_dynamic in its graph); converting it again would "
                      "overwrite " +
                      (o_.output.empty() ? std::string("nothing") : o_.output) + " with a copy of it",
                  "did you swap INPUT and OUTPUT? `bertq convert FLOAT.pt QUANTIZED.pt`; --allow-requantize "
                  "quantizes what is still float in it");
    if (kind == ModelKind::Prepared) {
      if (o_.prepare_only)
        throw Error(ErrorKind::Usage, o_.input + " is already prepared (it holds observers)",
                    "run `bertq convert` on it");
      if (o_.qconfig_path)
        throw Error(ErrorKind::Usage, o_.input + " is already prepared; its qconfig was fixed by `bertq prepare`",
                    "drop --qconfig, or convert the float model instead");
      r_.mode = ConvertMode::ConvertPrepared;
    }
    r_.max_positions = max_positions(model_);
  }

  // The model's conversion, in memory: one of the four paths (prepare,
  // convert a prepared model, final, debug), each explicit in its stage.
  void convert() {
    ConversionSettings s;
    s.engine = engine_;
    s.stage = o_.prepare_only ? ConversionStage::Prepared : o_.debug ? ConversionStage::Debug : ConversionStage::Final;
    s.allow_missing = o_.allow_missing;
    s.embeddings = o_.embeddings;
    s.fuse_qkv = o_.fuse_qkv;
    s.full_range_activations = o_.full_range_activations;
    s.input = ConversionSettings::InputTensors::Consume;
    s.step_done = [this](const char* step) { timer_.done(step); };
    ConvertedModel c =
        r_.mode == ConvertMode::ConvertPrepared ? convert_prepared_model(model_, s) : convert_model(model_, dict_, s);
    // The pickler memoizes an object held twice: no second handle to the
    // result's objects may live while it is saved.
    model_ = torch::jit::Module();
    result_ = std::move(c.model);
    plan_ = std::move(c.plan);
    floats_ = std::move(c.floats);
    fusion_ = std::move(c.fusion);
    r_.warnings.insert(r_.warnings.end(), c.warnings.begin(), c.warnings.end());
    r_.notes.insert(r_.notes.end(), c.notes.begin(), c.notes.end());
    r_.quantized_in_output = c.quantized_in_output;
  }

  // The report's modules, once, from the model every rewrite has run on.
  // Input sizes first: they need every float tensor, which describe_modules
  // then lets go of as it finishes with each packed module.
  void describe() {
    r_.modules = module_reports(plan_);
    r_.input_sizes = measure_input(input_->index(), r_.modules, floats_);
    const std::vector<std::string> unattributed = describe_modules(r_.modules, floats_, result_, fusion_.fused);
    if (!o_.prepare_only && !o_.debug) {
      for (const auto& m : r_.modules)
        if (m.plan.quantized && m.plan.op == "linear_dynamic" && m.packed_attr.empty())
          r_.warnings.push_back("report: no packed weight in the output holds " + shown_path(m.plan.path) +
                                "'s weight (is every call of it dead code?); its scales and bytes are missing from "
                                "the report");
      if (!unattributed.empty())
        r_.warnings.push_back("report: could not tell which module the packed weight" +
                              std::string(unattributed.size() == 1 ? " " : "s ") + join(unattributed, ", ") +
                              " came from; " + (unattributed.size() == 1 ? "its" : "their") +
                              " bytes count as other tensors");
      note_repeated_calls();
      if (o_.fuse_qkv) note_fusions();
      note_full_range();
    }
    if (!o_.prepare_only) warn_outlier_modules();
    timer_.done("describe modules");
  }

  void note_full_range() {
    size_t n = 0;
    for (const auto& m : r_.modules) n += m.activation_bits == 8 ? 1 : 0;
    if (n == 0) return;
    r_.notes.push_back(fmt::format(
        "{} int8 linear{} quantize{} {} input to the full 8 bits (reduce_range=False; quantize_dynamic_jit writes "
        "7): exact with onednn on a CPU with VNNI and with qnnpack; bench and compare warn where it is not",
        n, n == 1 ? "" : "s", n == 1 ? "s" : "", n == 1 ? "its" : "their"));
  }

  // Modules whose weights lose far more than the rest (4-bit position rows,
  // a Linear with an outlier row) are said in every format, not only marked
  // on the HTML page: the same rule as the page's red marks.
  void warn_outlier_modules() {
    // Twice the page's 3 dB for its red marks: 4x the noise power, beyond the
    // spread of int8 Linears even in a small model.
    constexpr double kOutlierDb = 6.0;
    std::vector<double> values;
    for (const auto& m : r_.modules)
      if (m.plan.quantized && m.sqnr_db && std::isfinite(*m.sqnr_db)) values.push_back(*m.sqnr_db);
    if (values.size() < 3) return;
    std::sort(values.begin(), values.end());
    const size_t n = values.size();
    const double median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    std::vector<std::string> low;
    for (const auto& m : r_.modules)
      if (m.plan.quantized && m.sqnr_db && *m.sqnr_db < median - kOutlierDb)
        low.push_back(fmt::format("{} ({} {:.1f} dB)", shown_path(m.plan.path), m.plan.op, *m.sqnr_db));
    if (low.empty()) return;
    r_.warnings.push_back(fmt::format(
        "{} module{} lose{} far more precision than the rest, weight SQNR more than {:.0f} dB below the median of "
        "{:.1f} dB: {}; a higher precision for {} (8-bit rows for embeddings, a null qconfig key for float) keeps "
        "more, and `bertq compare` measures what it costs the outputs",
        low.size(), low.size() == 1 ? "" : "s", low.size() == 1 ? "s" : "", kOutlierDb, median, join(low, ", "),
        low.size() == 1 ? "it" : "them"));
  }

  // A module called several times is inlined at each call by Finalize, and
  // its weight packed once per call: the file holds that many copies.
  void note_repeated_calls() {
    std::vector<std::string> once, copied;
    for (const auto& m : r_.modules) {
      const int64_t calls = m.plan.calls + m.plan.calls_in_loops;
      if (m.packed_attr.empty() || calls < 2) continue;
      const size_t copies = 1 + m.extra_packed_attrs.size();
      std::string item = fmt::format("{} ({} calls{})", shown_path(m.plan.path), calls,
                                     m.plan.calls_in_loops ? fmt::format(", {} in loops", m.plan.calls_in_loops) : "");
      if (copies == 1)
        once.push_back(std::move(item));
      else
        copied.push_back(item + fmt::format(": {} copies", copies));
    }
    auto head = [](const std::vector<std::string>& v) {
      std::vector<std::string> h(v.begin(), v.begin() + std::min<size_t>(v.size(), 4));
      return join(h, ", ") + (v.size() > 4 ? fmt::format(" and {} more", v.size() - 4) : "");
    };
    if (!once.empty())
      r_.notes.push_back(fmt::format("{} module{} called from several places, quantized once and stored once: {}",
                                     once.size(), once.size() == 1 ? " is" : "s are", head(once)));
    if (!copied.empty())
      r_.notes.push_back(
          fmt::format("{} module{} called from several places, quantized once; PyTorch's passes "
                      "pack the weight once per inlined call: {}",
                      copied.size(), copied.size() == 1 ? " is" : "s are", head(copied)));
  }

  // --fuse-qkv's groups by module, from the described modules: each one's
  // rows of the fused weight are its own weight, described as such.
  void note_fusions() {
    std::multimap<std::string, const ModuleReport*> by_source;  // (attr, first row) -> modules
    auto key = [](const std::string& attr, int64_t row) { return attr + "#" + std::to_string(row); };
    for (const auto& m : r_.modules)
      if (m.fused_rows) by_source.emplace(key(m.packed_attr, m.fused_rows->first), &m);
    // The module a member came from (its old attribute if the report could
    // not tell), as data: renderers show "" as <root>.
    size_t linears = 0;
    for (const auto& fusion : fusion_.fused) {
      FusedGroup g{fusion.attr, {}, fusion.rows};
      int64_t begin = 0;
      for (size_t i = 0; i < fusion.members.size(); ++i) {
        auto it = by_source.find(key(fusion.attr, begin));
        g.modules.push_back(it == by_source.end() ? fusion.members[i] : it->second->plan.path);
        begin += fusion.rows[i];
      }
      linears += fusion.members.size();
      r_.fusions.push_back(std::move(g));
    }
    // Skipped groups name the packed weights they kept, which the report
    // describes under their modules' names.
    std::map<std::string, std::string> path_of;
    for (const auto& m : r_.modules)
      if (!m.packed_attr.empty() && !m.fused_rows) path_of.emplace(m.packed_attr, m.plan.path);
    std::set<std::string> said;  // a block shared by every depth is skipped at each depth alike
    for (const auto& s : fusion_.skipped) {
      std::vector<std::string> names;
      for (const auto& a : s.members) {
        auto it = path_of.find(a);
        const std::string name = it == path_of.end() ? a : it->second;
        names.push_back(name.empty() ? "<root>" : name);
      }
      const std::string w = "--fuse-qkv left " + join(names, ", ") + " unfused: " + s.reason;
      if (said.insert(w).second) r_.warnings.push_back(w);
    }
    if (fusion_.fused.empty() && fusion_.skipped.empty())
      r_.warnings.push_back("--fuse-qkv fused nothing: no two quantized Linears read the same input");
    else if (fusion_.fused.empty())
      r_.warnings.push_back("--fuse-qkv fused nothing (the warnings above say why)");
    else
      r_.notes.push_back(fmt::format(
          "--fuse-qkv: {} Linears in {} group{} share one quantized linear per group (the input is quantized once); "
          "outputs are bit-identical to the unfused model",
          linears, fusion_.fused.size(), fusion_.fused.size() == 1 ? "" : "s"));
  }

  // CI guards fail before the model is written; the report files are still
  // written, since that is when CI needs them.
  void check_guards_or_fail() {
    r_.guards = check_guards(r_, o_);
    std::vector<std::string> failed;
    std::string hint;
    for (const auto& g : r_.guards)
      if (!g.passed) failed.push_back(g.message);
    if (failed.empty()) return;
    for (const auto& w : r_.warnings) spdlog::warn("{}", printable_line(w));
    finish_input();
    write_report_files();
    staged_.commit();  // the report files only: the model is not written
    for (const auto& g : r_.guards)
      if (!g.passed && g.name == "nothing quantized")
        hint =
            "--allow-nothing-quantized writes it anyway; run `bertq convert --dry-run` to see why each "
            "module stays float";
    throw GuardFailure(r_, join(failed, "; "),
                       hint.empty() ? "the report lists why each float module stays float" : hint);
  }

  void check_runnable() {
    if (o_.prepare_only || o_.debug) return;
    const auto prepacks = unfolded_prepacks(result_);
    if (prepacks.empty()) return;
    // An int8 prepack left in the graph: freezing could not run it, which
    // an empty weight does (Linear(8, 0)); Python's model fails the same way.
    if (std::find(prepacks.begin(), prepacks.end(), "quantized::linear_prepack") != prepacks.end()) {
      std::vector<std::string> empty;
      for (const auto& mp : plan_.modules)
        if (mp.quantized && std::find(mp.weight_shape.begin(), mp.weight_shape.end(), 0) != mp.weight_shape.end())
          empty.push_back(fmt::format("{} ([{}])", shown_path(mp.path), fmt::join(mp.weight_shape, ", ")));
      const std::string why =
          "the converted model cannot run: quantized::linear_prepack could not pack " +
          (empty.empty() ? std::string("a weight") : "the empty weight of " + join(empty, ", ")) +
          ", so its first forward would fail (Python's quantize_dynamic_jit gives the same broken model)";
      if (!o_.allow_unrunnable)
        throw Error(ErrorKind::Unsupported, why,
                    empty.empty() ? "run `bertq convert --dry-run` to see which modules are quantized"
                                  : "opt the module out with null in the qconfig");
      r_.warnings.push_back(why + "; written anyway (--allow-unrunnable)");
      return;
    }
    const std::string msg = "the converted model cannot run on this LibTorch: " + join(prepacks, ", ") +
                            " is not available for engine " + r_.engine +
                            " (fp16 dynamic quantization needs an fbgemm-enabled LibTorch)";
    if (!o_.allow_unrunnable)
      throw Error(ErrorKind::Unsupported, msg,
                  "pass --allow-unrunnable to write it anyway for an fbgemm runtime, or use per_channel_dynamic");
    r_.warnings.push_back(msg + "; written anyway (--allow-unrunnable)");
  }

  // Writes the model (or, for a dry run, a copy in a temporary folder that
  // is measured and removed), then measures what was written.
  void save_and_measure() {
    const FloatFingerprints prints = fingerprint(floats_);
    // Hold no extra reference to the model's tensors while saving (see
    // FloatFingerprints), or the archive would differ from Python's; this
    // also frees the float weights that the packed ones replaced.
    floats_ = FloatTensors();
    finish_input();
    std::map<std::string, std::string> extra;
    if (!o_.no_manifest) extra[kManifestName] = manifest_json(r_);
    std::string written;
    std::unique_ptr<TempDir> dry;
    if (o_.dry_run) {
      // The archive's layout depends on the output's file name.
      const std::string name =
          o_.output.empty() ? std::string("model.pt") : std::filesystem::path(o_.output).filename().string();
      dry = std::make_unique<TempDir>((std::filesystem::temp_directory_path() / name).string());
      save_model_to(result_, dry->file(), "a dry run's copy in " + dry->path(), extra);
      written = dry->file();
    } else {
      save_model_to(result_, staged_.file(model_out_), model_out_.path, extra);
      written = staged_.file(model_out_);
    }
    timer_.done("save");
    r_.output.bytes = file_size(written);
    std::future<std::string> sha;
    if (!o_.dry_run) sha = std::async(std::launch::async, sha256_file, written);
    r_.output_sizes = measure_output(written, r_.modules, prints, result_);
    if (!o_.dry_run) r_.output.sha256 = sha.get();
    check_totals(r_);
    timer_.done("measure");
  }

  void write_report_files() {
    if (report_out_) {
      std::ostringstream s;
      print_json(r_, s);
      staged_.write(*report_out_, s.str());
    }
    if (html_out_) {
      std::ostringstream s;
      print_html(r_, s);
      staged_.write(*html_out_, s.str());
    }
  }

  // Every output into place together, once all are written.
  void commit() { staged_.commit(); }

  Report take_report() { return std::move(r_); }

 private:
  // The input's hash, and the check that it did not change while read.
  void finish_input() {
    if (input_sha_.valid()) r_.input.sha256 = input_sha_.get();
    input_->check_unchanged();
  }

  const ConvertOptions& o_;
  Report r_;
  StepTimer timer_;
  QConfigDict dict_;
  Engine engine_ = Engine::OneDNN;
  OutputPath model_out_;
  std::optional<OutputPath> report_out_, html_out_;
  StagedOutputs staged_;
  std::unique_ptr<ArchiveFile> input_;
  std::future<std::string> input_sha_;
  torch::jit::Module model_, result_;
  Plan plan_;
  FloatTensors floats_;
  FusionResult fusion_;
};

}  // namespace

std::vector<GuardResult> check_guards(const Report& r, const ConvertOptions& o) {
  std::vector<GuardResult> out;
  if (!o.allow_nothing_quantized) {
    GuardResult g{"nothing quantized", r.quantized_in_output > 0, ""};
    if (!g.passed)
      g.message = "nothing was quantized: no weight is reached by a qconfig that quantizes it (" +
                  std::to_string(r.modules.size()) + " weight-bearing modules, all float)";
    out.push_back(g);
  }
  for (const auto& pattern : o.require_quantized) {
    GuardResult g{"require_quantized " + quoted_value(pattern), true, ""};
    size_t matched = 0;
    std::vector<std::string> still_float;
    for (const auto& m : r.modules) {
      if (!linear_like(m.plan) || fnmatch(pattern.c_str(), m.plan.path.c_str(), 0) != 0) continue;
      ++matched;
      if (!m.plan.quantized) still_float.push_back(m.plan.path + " (" + m.plan.float_reason + ")");
    }
    if (matched == 0) {
      g.passed = false;
      g.message = "--require-quantized " + quoted_value(pattern) +
                  " matches no Linear module (patterns are globs over module names, e.g. \"bert.encoder.*\")";
    } else if (!still_float.empty()) {
      std::vector<std::string> head(still_float.begin(), still_float.begin() + std::min<size_t>(still_float.size(), 5));
      g.passed = false;
      g.message = "--require-quantized " + quoted_value(pattern) + ": " + std::to_string(still_float.size()) + " of " +
                  std::to_string(matched) + " matching Linear modules stay float: " + join(head, ", ") +
                  (still_float.size() > 5 ? ", ..." : "");
    }
    out.push_back(g);
  }
  if (o.min_quantized_fraction) {
    const double f = r.quantized_weight_fraction();
    GuardResult g{"min_quantized_fraction " + format_g17(*o.min_quantized_fraction), f >= *o.min_quantized_fraction,
                  ""};
    if (!g.passed)
      g.message = fmt::format("{:.3f} of the weight elements are quantized, less than --min-quantized-fraction {:.3f}",
                              f, *o.min_quantized_fraction);
    out.push_back(g);
  }
  return out;
}

Report run_convert(const ConvertOptions& o, const std::string& command_line) {
  Conversion c(o, command_line);
  c.check_paths();
  c.read_qconfig();
  c.open_and_load();
  c.classify_input();
  c.convert();
  c.describe();
  c.check_guards_or_fail();
  c.check_runnable();
  c.save_and_measure();
  c.write_report_files();
  c.commit();
  return c.take_report();
}

}  // namespace bertq
