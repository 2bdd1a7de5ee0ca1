// The report, inspect and diff against PyTorch's own output: scales and zero
// points read back from Python's golden models, totals that add up, module
// paths that resolve as documented.
#include <torch/script.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "archive/zip_index.h"
#include "base/error.h"
#include "catch.hpp"
#include "convert/measure.h"
#include "convert/pipeline.h"
#include "convert/quantize.h"
#include "inspect/diff.h"
#include "inspect/inspect.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kTestdata = std::string(BERTQ_SOURCE_DIR) + "/testdata/";

struct TempDir {
  fs::path dir;
  explicit TempDir(const std::string& tag) {
    dir = fs::temp_directory_path() / ("bertq-" + tag + "-" + std::to_string(::getpid()));
    fs::create_directories(dir);
  }
  ~TempDir() { fs::remove_all(dir); }
  std::string operator/(const std::string& n) const { return (dir / n).string(); }
};

bertq::Report convert(const std::string& model, const std::string& qconfig, const std::string& out, bool debug = false,
                      std::optional<std::string> embeddings = std::nullopt) {
  bertq::ConvertOptions o;
  o.input = kTestdata + model;
  o.output = out;
  o.qconfig_path = kTestdata + qconfig;
  o.debug = debug;
  o.embeddings = std::move(embeddings);
  return bertq::run_convert(o);
}

std::vector<double> doubles(const at::Tensor& t) {
  const at::Tensor d = t.to(at::kDouble).contiguous();
  return {d.data_ptr<double>(), d.data_ptr<double>() + d.numel()};
}

// Independent of the report's own check: parts add up to the file on disk,
// and the modules' bytes to the modules' share.
void check_invariant(const bertq::Report& r) {
  for (const auto* b : {&r.input_sizes, &r.output_sizes}) {
    CHECK(b->modules + b->other_tensors + b->code_and_metadata + b->zip_overhead == b->total);
  }
  CHECK(r.input_sizes.total == fs::file_size(r.input.path));
  CHECK(r.output_sizes.total == fs::file_size(r.output.path));
  uint64_t before = 0, after = 0;
  for (const auto& m : r.modules) {
    before += m.bytes_before;
    after += m.bytes_after;
  }
  CHECK(before == r.input_sizes.modules);
  CHECK(after == r.output_sizes.modules);
}

}  // namespace

TEST_CASE("report scales and zero points equal those in Python's golden models", "[report][golden]") {
  std::ifstream in(kTestdata + BERTQ_GOLDEN_DIR "/cases.json");
  const json cases = json::parse(in);
  TempDir tmp("report");
  int checked_modules = 0;
  for (const auto& c : cases) {
    if (!c["python_error"].is_null() || c["debug"].get<bool>() || !c["runnable"].get<bool>() || c["engine"] != "onednn")
      continue;
    INFO("case " << c["golden"]);
    // Python's quantize_dynamic_jit leaves embeddings float.
    const bertq::Report r = convert(c["model"], c["qconfig"], tmp / "q.pt", false, "float");
    check_invariant(r);
    torch::jit::Module golden = torch::jit::load(kTestdata + c["golden"].get<std::string>());
    for (const auto& m : r.modules) {
      if (!m.plan.quantized) continue;
      INFO("module " << m.plan.path);
      REQUIRE_FALSE(m.packed_attr.empty());
      // The golden was written by Python: same attribute, same qparams.
      const at::Tensor q = bertq::unpack_packed(golden, m.packed_attr).first;
      if (q.qscheme() == at::kPerChannelAffine) {
        CHECK(m.scales == doubles(q.q_per_channel_scales()));
        CHECK(m.zero_points == doubles(q.q_per_channel_zero_points()));
        CHECK(m.axis == q.q_per_channel_axis());
      } else {
        CHECK(m.scales == std::vector<double>{q.q_scale()});
        CHECK(m.zero_points == std::vector<double>{static_cast<double>(q.q_zero_point())});
      }
      REQUIRE(m.sqnr_db.has_value());
      CHECK(*m.sqnr_db > 30.0);  // int8 of a well-behaved weight
      // (A weight tied to another module's is counted once, with that module.)
      if (m.bytes_before > 0) CHECK(m.bytes_after < m.bytes_before);
      ++checked_modules;
    }
  }
  CHECK(checked_modules > 30);
}

TEST_CASE("the JSON report holds every scale and adds up", "[report]") {
  TempDir tmp("json");
  const bertq::Report r = convert("models/tiny_bert.pt", "qconfigs/bert_nested.json", tmp / "q.pt");
  std::ostringstream s;
  bertq::print_json(r, s);
  const json j = json::parse(s.str());
  CHECK(j["schema"] == "bertq-report/2");
  CHECK(j["input"]["sha256"].get<std::string>().size() == 64);
  CHECK(j["output"]["bytes"] == fs::file_size(tmp / "q.pt"));
  const json& out = j["sizes"]["output"];
  CHECK(out["modules"].get<uint64_t>() + out["other_tensors"].get<uint64_t>() +
            out["code_and_metadata"].get<uint64_t>() + out["zip_overhead"].get<uint64_t>() ==
        out["total"].get<uint64_t>());
  uint64_t after = 0;
  for (const auto& m : j["modules"]) after += m["bytes_after"].get<uint64_t>();
  CHECK(after == out["modules"].get<uint64_t>());
  const json* query = nullptr;
  for (const auto& m : j["modules"])
    if (m["path"] == "bert.encoder.layer.0.attention.self.query") query = &m;
  REQUIRE(query);
  CHECK((*query)["scales"].size() == 32);
  // The stored tensor's qscheme (as inspect shows it), and the observer's.
  CHECK((*query)["qscheme"] == "per_channel_affine");
  CHECK((*query)["observer_qscheme"] == "per_channel_symmetric");
  CHECK((*query)["rule"]["kind"] == "global");
  for (const auto& m : j["modules"])
    if (m["path"] == "bert.encoder.layer.1.attention.self.query") {
      CHECK(m["state"] == "float");
      CHECK(m["rule"]["kind"] == "opted_out");
      CHECK(m["rule"]["key"] == "bert.encoder.layer.1");
    }
  CHECK(j["qconfig"]["given"].is_object());
  CHECK(j["qconfig"]["resolved"][""]["weight"]["observer"] == "per_channel_minmax");
}

TEST_CASE("inspect reads the same scales from final and debug models as the report", "[inspect]") {
  TempDir tmp("inspect");
  const bertq::Report r = convert("models/tiny_bert.pt", "qconfigs/per_channel.json", tmp / "q.pt");
  convert("models/tiny_bert.pt", "qconfigs/per_channel.json", tmp / "qd.pt", /*debug=*/true);
  const bertq::ModuleReport* query = nullptr;
  for (const auto& m : r.modules)
    if (m.plan.path == "bert.encoder.layer.0.attention.self.query") query = &m;
  REQUIRE(query);
  for (const auto* file : {"q.pt", "qd.pt"}) {
    INFO(file);
    bertq::InspectOptions o;
    o.path = tmp / file;
    o.module = "encoder.layer.0.attention.self.query";  // the design card's suffix
    const bertq::Inspection ins = bertq::inspect_model(o);
    REQUIRE(ins.detail);
    CHECK(ins.detail->module.path == "bert.encoder.layer.0.attention.self.query");
    CHECK(ins.detail->scales == query->scales);
    CHECK(ins.detail->zero_points == query->zero_points);
    CHECK(ins.detail->weight.shape == std::vector<int64_t>{32, 32});
    CHECK(ins.detail->module.rule == "global \"\"");
    CHECK(ins.kind == (std::string(file) == "q.pt" ? bertq::ModelKind::Final : bertq::ModelKind::Debug));
  }
}

TEST_CASE("inspect resolves suffixes and lists candidates for bad paths", "[inspect][errors]") {
  bertq::InspectOptions o;
  o.path = kTestdata + "models/tiny_bert.pt";
  o.module = "self.query";
  try {
    bertq::inspect_model(o);
    FAIL("ambiguous path accepted");
  } catch (const bertq::Error& e) {
    CHECK(e.kind() == bertq::ErrorKind::Usage);
    CHECK(std::string(e.what()) == "module \"self.query\" is ambiguous in " + o.path +
                                       ": it matches bert.encoder.layer.0.attention.self.query, "
                                       "bert.encoder.layer.1.attention.self.query");
  }
  o.module = "encoder.layer.7.attention.self.query";
  try {
    bertq::inspect_model(o);
    FAIL("unknown path accepted");
  } catch (const bertq::Error& e) {
    CHECK(std::string(e.what()) == "no module \"encoder.layer.7.attention.self.query\" in " + o.path);
    CHECK(e.hint().rfind("closest modules: bert.encoder.layer.0.attention.self.query, "
                         "bert.encoder.layer.1.attention.self.query",
                         0) == 0);
  }
  // A suffix must start at a dot: "query" inside "self.query" is fine, "uery" is not.
  CHECK(bertq::resolve_module_path("layer.0.attention.self.query",
                                   {"bert.encoder.layer.0.attention.self.query", "x.layer.0.attention.self.key"},
                                   "m") == "bert.encoder.layer.0.attention.self.query");
  CHECK_THROWS_AS(bertq::resolve_module_path("uery", {"a.query"}, "m"), bertq::Error);
}

TEST_CASE("diff says whether two conversions are identical", "[diff]") {
  TempDir tmp("diff");
  convert("models/tiny_bert.pt", "qconfigs/per_channel.json", tmp / "a.pt");
  convert("models/tiny_bert.pt", "qconfigs/per_channel.json", tmp / "b.pt");
  convert("models/tiny_bert.pt", "qconfigs/per_tensor.json", tmp / "c.pt");
  convert("models/tiny_bert.pt", "qconfigs/bert_nested.json", tmp / "d.pt");
  const bertq::DiffResult same = bertq::diff_models(tmp / "a.pt", tmp / "b.pt");
  CHECK(same.identical());
  CHECK(same.compared == 14);
  CHECK(same.matched_by == "module names");
  // Python's golden of the same conversion has no manifest: the modules pair
  // by packed-params attribute, and bertq's output is identical to it.
  const bertq::DiffResult py =
      bertq::diff_models(tmp / "a.pt", kTestdata + BERTQ_GOLDEN_DIR "/tiny_bert__per_channel__onednn.pt");
  CHECK(py.matched_by == "packed-params attributes");
  CHECK(py.compared == 14);
  CHECK(py.identical());
  // ... and differs from Python's per-tensor golden in every module.
  const bertq::DiffResult py_other =
      bertq::diff_models(tmp / "a.pt", kTestdata + BERTQ_GOLDEN_DIR "/tiny_bert__per_tensor__onednn.pt");
  CHECK(py_other.differences.size() == 14);
  const bertq::DiffResult other = bertq::diff_models(tmp / "a.pt", tmp / "c.pt");
  REQUIRE_FALSE(other.identical());
  CHECK(other.differences[0].module == "bert.encoder.layer.0.attention.output.dense");
  CHECK(other.differences[0].what == "qscheme");
  CHECK(other.differences[0].a == "qint8 per_channel_affine axis 0");
  CHECK(other.differences[0].b == "qint8 per_tensor_affine");
  const bertq::DiffResult fewer = bertq::diff_models(tmp / "a.pt", tmp / "d.pt");
  CHECK(std::count_if(fewer.differences.begin(), fewer.differences.end(), [](const bertq::ModuleDiff& d) {
          return d.what == "only in A";
        }) == 6);  // layer 1 but its output.dense (5), and the classifier
  CHECK_THROWS_AS(bertq::diff_models(tmp / "a.pt", kTestdata + "models/tiny_bert.pt"), bertq::Error);
}

TEST_CASE("a dry run measures exactly what convert writes, and writes nothing", "[report]") {
  TempDir tmp("dry");
  bertq::ConvertOptions o;
  o.input = kTestdata + "models/tiny_bert.pt";
  o.output = tmp / "q.pt";
  o.qconfig_path = kTestdata + "qconfigs/per_channel.json";
  o.dry_run = true;
  const bertq::Report r = bertq::run_convert(o);
  CHECK(r.mode_text() == "dry run");
  CHECK(r.dry_run);
  CHECK(r.quantized_count() == 14);
  CHECK(r.output.sha256.empty());
  // Nothing in the output's folder: not the output, not a temporary.
  CHECK(fs::is_empty(tmp.dir));
  const bertq::Report real = convert("models/tiny_bert.pt", "qconfigs/per_channel.json", tmp / "q.pt");
  CHECK(r.output.bytes == real.output.bytes);
  CHECK(r.output_sizes.modules == real.output_sizes.modules);
  CHECK(r.output_sizes.code_and_metadata == real.output_sizes.code_and_metadata);
  for (size_t i = 0; i < r.modules.size(); ++i) CHECK(r.modules[i].bytes_after == real.modules[i].bytes_after);
}

TEST_CASE("embedding rows in the report, inspect, diff and a dry run", "[report][embeddings]") {
  TempDir tmp("emb-report");
  const bertq::Report r = convert("models/embedding_rows.pt", "qconfigs/embedding_rows_8bit.json", tmp / "q8.pt");
  check_invariant(r);
  const bertq::ModuleReport* word = nullptr;
  for (const auto& m : r.modules)
    if (m.plan.path == "word") word = &m;
  REQUIRE(word);
  CHECK(word->dtype == "quint8");
  CHECK(word->qscheme == "per_channel_affine_float_qparams");
  CHECK(word->scales.size() == 50);
  CHECK(word->zero_points.size() == 50);
  CHECK(word->scales[7] == 1.0);  // the constant row: max - min <= eps
  CHECK(word->sqnr_db > 40);
  CHECK(word->bytes_after < word->bytes_before / 2);

  // inspect shows the module's rows from the file, with the report's numbers.
  bertq::InspectOptions io;
  io.path = tmp / "q8.pt";
  io.module = "word";
  const bertq::Inspection ins = bertq::inspect_model(io);
  REQUIRE(ins.detail);
  CHECK(ins.detail->module.state == "embedding_byte");
  CHECK(ins.detail->source == "packed params " + word->packed_attr);
  CHECK(ins.detail->scales == word->scales);
  CHECK(ins.detail->zero_points == word->zero_points);
  CHECK(ins.detail->weight.shape == std::vector<int64_t>{50, 12});

  // diff pairs embedding modules like Linear ones, and sees 4-bit rows differ.
  convert("models/embedding_rows.pt", "qconfigs/embedding_rows_8bit.json", tmp / "q8b.pt");
  convert("models/embedding_rows.pt", "qconfigs/embedding_rows_4bit.json", tmp / "q4.pt");
  CHECK(bertq::diff_models(tmp / "q8.pt", tmp / "q8b.pt").identical());
  const bertq::DiffResult d = bertq::diff_models(tmp / "q8.pt", tmp / "q4.pt");
  REQUIRE_FALSE(d.identical());
  CHECK(std::any_of(d.differences.begin(), d.differences.end(),
                    [](const bertq::ModuleDiff& x) { return x.module == "word"; }));

  // A dry run measures exactly the file convert writes.
  bertq::ConvertOptions o;
  o.input = kTestdata + "models/embedding_rows.pt";
  o.output = tmp / "dry.pt";
  o.embeddings = "4bit";
  o.dry_run = true;
  const bertq::Report dry = bertq::run_convert(o);
  CHECK_FALSE(fs::exists(o.output));
  o.dry_run = false;
  const bertq::Report real = bertq::run_convert(o);
  CHECK(dry.output_sizes.total == real.output_sizes.total);
  CHECK(dry.output_sizes.total == fs::file_size(o.output));
}

TEST_CASE("embedding rows: bad weights and bad ids fail as the float model does", "[embeddings][errors]") {
  TempDir tmp("emb-bad");
  // A NaN in one row: bad input (exit 4), named with its count, nothing written.
  torch::jit::Module m = torch::jit::load(kTestdata + "models/embedding_rows.pt");
  at::Tensor w = m.attr("word").toModule().attr("weight").toTensor().detach().clone();
  w[3][5] = std::numeric_limits<float>::quiet_NaN();
  m.attr("word").toModule().setattr("weight", w);
  m.save(tmp / "nan.pt");
  bertq::ConvertOptions o;
  o.input = tmp / "nan.pt";
  o.output = tmp / "q.pt";
  o.qconfig_path = kTestdata + "qconfigs/embedding_rows_8bit.json";
  try {
    bertq::run_convert(o);
    FAIL("a NaN weight was quantized");
  } catch (const bertq::Error& e) {
    CHECK(e.kind() == bertq::ErrorKind::Model);
    CHECK(std::string(e.what()).find("the weight word.weight has 1 non-finite values (NaN or infinity) of 600") == 0);
  }
  CHECK_FALSE(fs::exists(o.output));

  // An id past the vocabulary: the quantized model refuses it with the float
  // lookup's own check (bertq's rewrite runs it first), instead of reading
  // past the rows.
  convert("models/embedding_rows.pt", "qconfigs/embedding_rows_8bit.json", tmp / "q8.pt");
  torch::jit::Module q = torch::jit::load(tmp / "q8.pt");
  torch::jit::Module f = torch::jit::load(kTestdata + "models/embedding_rows.pt");
  const auto golden =
      torch::jit::load(kTestdata + BERTQ_GOLDEN_DIR "/embedding_rows_8bit.pt").attr("tensors").toGenericDict();
  std::vector<torch::jit::IValue> in;
  for (int i = 0; i < 5; ++i) in.emplace_back(golden.at("in" + std::to_string(i)).toTensor().clone());
  auto refusal = [&](torch::jit::Module& model) -> std::string {
    try {
      model.forward(in);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  };
  for (const int64_t bad : {int64_t{50}, int64_t{-1}}) {  // the vocabulary is 0..49
    INFO("id " << bad);
    in[0].toTensor()[1][3] = bad;
    CHECK(refusal(f).find("index out of range in self") != std::string::npos);
    // (On a table with no columns the same check words it otherwise.)
    CHECK(refusal(q).find("out of DATA bounds") != std::string::npos);
  }
}
