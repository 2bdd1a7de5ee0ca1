// The CLI as a user meets it: the built binary on good and bad input, with the
// exact message and exit code, and never a partial output file.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include "catch.hpp"
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace {

const std::string kSource = BERTQ_SOURCE_DIR;
const std::string kModel = kSource + "/testdata/models/tiny_bert.pt";

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A scratch folder per test; checks on exit that no temporary was left behind.
struct Scratch {
  fs::path dir;
  Scratch() {
    std::string tmpl = (fs::temp_directory_path() / "bertq-cli-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
  }
  ~Scratch() { fs::remove_all(dir); }
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
  std::vector<std::string> leftovers() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().filename().string().rfind(".bertq-tmp-", 0) == 0) out.push_back(e.path());
    return out;
  }
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

Result run(const std::vector<std::string>& args) {
  Scratch io;
  std::string cmd = quote(BERTQ_BINARY);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " >" + quote(io / "stdout") + " 2>" + quote(io / "stderr") + " </dev/null";
  const int status = std::system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(io / "stdout");
  r.err = slurp(io / "stderr");
  return r;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

TEST_CASE("convert prints the summary and writes a loadable model", "[cli]") {
  Scratch s;
  const Result r = run({"convert", kModel, s / "q.pt"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("bertq quantize: " + kModel + " -> " + s / "q.pt" + " (engine onednn)\n") == 0);
  CHECK(r.out.find("  modules: 14 quantized, 8 left float (of 22 with weights)\n") != std::string::npos);
  CHECK(r.out.find("    14 x linear_dynamic\n") != std::string::npos);
  CHECK(r.out.find("    5 float: LayerNorm is not quantized by dynamic quantization\n") != std::string::npos);
  CHECK(r.out.find("    3 float: aten::embedding is not supported by graph-mode dynamic quantization\n") != std::string::npos);
  CHECK(fs::file_size(s / "q.pt") > 0);
  CHECK(s.leftovers().empty());
}

TEST_CASE("the output may not be the input, also through a link", "[cli][errors]") {
  Scratch s;
  fs::copy_file(kModel, s / "m.pt");
  const std::string before = slurp(s / "m.pt");
  Result r = run({"convert", s / "m.pt", s / "m.pt"});
  CHECK(r.code == 2);
  CHECK(r.err == "bertq: error: output " + s / "m.pt" +
                     " is the input file; bertq never overwrites its input\nhint: choose another output path\n");
  fs::create_symlink(s / "m.pt", s / "link.pt");
  r = run({"convert", s / "m.pt", s / "link.pt"});
  CHECK(r.code == 2);
  CHECK(r.err.find("is the input file") != std::string::npos);
  CHECK(slurp(s / "m.pt") == before);
}

TEST_CASE("files that are not TorchScript archives are named for what they are", "[cli][errors]") {
  const std::string expect =
      "hint: bertq expects a TorchScript archive written by torch.jit.save(torch.jit.trace(model, "
      "inputs), path) or torch.jit.script\n";
  struct Bad {
    std::string file;
    std::string message;
    std::string hint;
  };
  const std::string bad = kSource + "/testdata/bad/";
  const std::vector<Bad> cases = {
      {bad + "empty.pt", "is empty (0 bytes)", expect},
      {bad + "not_a_model.txt", "is not a TorchScript archive (not a zip file)", expect},
      {bad + "eager_pickle_legacy.pt",
       "is a legacy torch.save pickle (an eager model or a state_dict), not a TorchScript model", expect},
      {bad + "eager_zip.pt",
       "is an eager model saved with torch.save (a pickled Python object), not a TorchScript model", expect},
      {bad + "state_dict.pt",
       "is a state_dict saved with torch.save (tensors only, no code), not a TorchScript model",
       "hint: bertq expects a TorchScript archive written by torch.jit.save(torch.jit.trace(model, "
       "inputs), path) or torch.jit.script from the model that owns this state_dict\n"},
      {bad + "truncated.pt", "is a truncated zip archive (its end record is missing)",
       "hint: the file was cut short while being written or copied; save or copy it again\n"},
      {kSource + "/testdata/bad", "is a directory, not a model file", expect},
  };
  for (const auto& c : cases) {
    Scratch s;
    const Result r = run({"convert", c.file, s / "out.pt"});
    INFO(c.file);
    CHECK(r.code == 4);
    CHECK(r.err == "bertq: error: " + c.file + ": " + c.message + "\n" + c.hint);
    CHECK_FALSE(fs::exists(s / "out.pt"));
    CHECK(s.leftovers().empty());
  }
}

TEST_CASE("a model without forward is refused", "[cli][errors]") {
  Scratch s;
  const Result r = run({"convert", kSource + "/testdata/bad/no_forward.pt", s / "out.pt"});
  CHECK(r.code == 4);
  CHECK(r.err == "bertq: error: the model has no forward method\nhint: bertq quantizes what forward "
                 "computes; trace or script a module with forward\n");
  CHECK_FALSE(fs::exists(s / "out.pt"));
}

TEST_CASE("a qconfig key that names no module lists the closest modules", "[cli][errors]") {
  Scratch s;
  write_file(s / "q.json", R"({"": "per_channel_dynamic", "encoder.layer.0.attention.self.query": null})");
  Result r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "q.json"});
  CHECK(r.code == 3);
  CHECK(r.err ==
        "bertq: error: qconfig key \"encoder.layer.0.attention.self.query\" names no module in the model\n"
        "hint: closest modules: \"bert.encoder.layer.0.attention.self.query\", "
        "\"bert.encoder.layer.1.attention.self.query\", \"bert.encoder.layer.0.attention.self.key\", "
        "\"bert.encoder.layer.1.attention.self.key\", \"bert.encoder.layer.0.attention.self.value\"; run "
        "`bertq inspect MODEL` to list modules (or pass --allow-missing)\n");
  CHECK_FALSE(fs::exists(s / "out.pt"));

  r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "q.json", "--allow-missing"});
  CHECK(r.code == 0);
  CHECK(r.err.find("bertq: warning: qconfig key \"encoder.layer.0.attention.self.query\" names no "
                   "module in the model (ignored because of --allow-missing)") == 0);
  CHECK(fs::exists(s / "out.pt"));
}

TEST_CASE("a bad qconfig file fails before the model is touched", "[cli][errors]") {
  Scratch s;
  write_file(s / "q.json", "{\"\": \"per_channel_dynamic\",\n  \"classifier\": }\n");
  Result r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "q.json"});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: " + s / "q.json" +
                     ":2:17: malformed JSON: syntax error while parsing value - unexpected '}'; "
                     "expected '[', '{', or a literal\n");
  r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "missing.json"});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: cannot read qconfig file " + s / "missing.json" +
                     ": No such file or directory\n");
  CHECK_FALSE(fs::exists(s / "out.pt"));
}

TEST_CASE("a qconfig that only a model-level check can catch", "[cli][errors]") {
  Scratch s;
  SECTION("float_qparams reaching a Linear") {
    write_file(s / "q.json", R"({"": "float_qparams_weight_only"})");
    const Result r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "q.json"});
    CHECK(r.code == 3);
    CHECK(r.err.find("bertq: error: weight-only float_qparams quantization applies to EmbeddingBag, "
                     "but it reaches Linear modules bert.encoder.layer.0.attention.self.query, ") == 0);
  }
  SECTION("affine int8 weights on onednn") {
    write_file(s / "q.json", R"({"": {"preset": "per_channel_dynamic", "weight":
        {"observer": "per_channel_minmax", "qscheme": "per_channel_affine"}}})");
    const Result r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "q.json"});
    CHECK(r.code == 6);
    CHECK(r.err.find("bertq: error: onednn only supports symmetric int8 weights") == 0);
    CHECK(r.err.find("hint: use qscheme per_channel_symmetric or per_tensor_symmetric, or --engine qnnpack\n") !=
          std::string::npos);
  }
  CHECK_FALSE(fs::exists(s / "out.pt"));
}

TEST_CASE("fp16 is refused where it cannot run, unless asked for", "[cli][errors]") {
  Scratch s;
  const std::string q = kSource + "/configs/float16_dynamic.json";
  Result r = run({"convert", kModel, s / "out.pt", "--qconfig", q});
  CHECK(r.code == 6);
  CHECK(r.err ==
        "bertq: error: the converted model cannot run on this LibTorch: quantized::linear_prepack_fp16 "
        "is not available for engine onednn (fp16 dynamic quantization needs an fbgemm-enabled "
        "LibTorch)\nhint: pass --allow-unrunnable to write it anyway for an fbgemm runtime, or use "
        "per_channel_dynamic\n");
  CHECK_FALSE(fs::exists(s / "out.pt"));
  CHECK(s.leftovers().empty());
  r = run({"convert", kModel, s / "out.pt", "--qconfig", q, "--allow-unrunnable"});
  CHECK(r.code == 0);
  CHECK(r.err.find("bertq: warning: the converted model cannot run on this LibTorch") == 0);
  CHECK(fs::exists(s / "out.pt"));
}

TEST_CASE("usage errors", "[cli][errors]") {
  Scratch s;
  Result r = run({"convert", kModel, s / "out.pt", "--engine", "fbgemm"});
  CHECK(r.code == 2);
  CHECK(r.err == "bertq: error: unknown or unavailable engine \"fbgemm\"\nhint: this LibTorch has: onednn, qnnpack\n");
  r = run({"convert", kModel});
  CHECK(r.code == 2);
  CHECK(r.err.find("bertq: error: output is required") == 0);
  r = run({"frobnicate"});
  CHECK(r.code == 2);
  CHECK_FALSE(fs::exists(s / "out.pt"));
}

TEST_CASE("an unwritable output folder fails cleanly", "[cli][errors]") {
  Scratch s;
  const Result r = run({"convert", kModel, s / "no/such/dir/out.pt"});
  CHECK(r.code == 5);
  CHECK(r.err == "bertq: error: cannot write to " + s / "no/such/dir" + ": No such file or directory\n");
}

TEST_CASE("prepare then convert gives a quantized model", "[cli]") {
  Scratch s;
  Result r = run({"prepare", kModel, s / "prepared.pt"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("bertq prepare: ") == 0);
  r = run({"convert", s / "prepared.pt", s / "q.pt"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("bertq convert prepared: ") == 0);
  CHECK(r.out.find("  modules: 14 quantized, 8 left float (of 22 with weights)\n") != std::string::npos);
  // The qconfig was fixed at prepare time.
  r = run({"convert", s / "prepared.pt", s / "q2.pt", "--qconfig", kSource + "/configs/default_dynamic.json"});
  CHECK(r.code == 2);
  CHECK(r.err.find("is already prepared; its qconfig was fixed by `bertq prepare`") != std::string::npos);
}

TEST_CASE("convert --dry-run prints the plan and writes nothing", "[cli][report]") {
  Scratch s;
  const Result r = run({"convert", kModel, s / "out.pt", "--dry-run"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("bertq dry run: " + kModel + " -> (nothing written) (engine onednn)\n") == 0);
  CHECK(r.out.find(", estimated\n") != std::string::npos);
  CHECK(r.out.find("bert.encoder.layer.0.attention.self.query        Linear     linear_dynamic  global \"\"  32x32") !=
        std::string::npos);
  CHECK(fs::is_empty(s.dir));
}

TEST_CASE("coverage guards fail the conversion before anything is written", "[cli][errors]") {
  Scratch s;
  const std::string nested = kSource + "/testdata/qconfigs/bert_nested.json";
  Result r = run({"convert", kModel, s / "out.pt", "--qconfig", nested, "--require-quantized", "bert.encoder.*"});
  CHECK(r.code == 7);
  CHECK(r.err ==
        "bertq: error: --require-quantized \"bert.encoder.*\": 5 of 12 matching Linear modules stay float: "
        "bert.encoder.layer.1.attention.self.query (opted out: null at \"bert.encoder.layer.1\"), "
        "bert.encoder.layer.1.attention.self.key (opted out: null at \"bert.encoder.layer.1\"), "
        "bert.encoder.layer.1.attention.self.value (opted out: null at \"bert.encoder.layer.1\"), "
        "bert.encoder.layer.1.attention.output.dense (opted out: null at \"bert.encoder.layer.1\"), "
        "bert.encoder.layer.1.intermediate.dense (opted out: null at \"bert.encoder.layer.1\")\n");
  CHECK_FALSE(fs::exists(s / "out.pt"));

  r = run({"convert", kModel, s / "out.pt", "--require-quantized", "gpt2.*"});
  CHECK(r.code == 7);
  CHECK(r.err == "bertq: error: --require-quantized \"gpt2.*\" matches no Linear module\n"
                 "hint: patterns are globs over module names, e.g. \"bert.encoder.*\"\n");

  r = run({"convert", kModel, s / "out.pt", "--min-quantized-fraction", "0.9"});
  CHECK(r.code == 7);
  CHECK(r.err.find("bertq: error: 0.7") == 0);
  CHECK(r.err.find(" of the weight elements are quantized, less than --min-quantized-fraction 0.900\n") !=
        std::string::npos);
  CHECK(s.leftovers().empty());
  CHECK_FALSE(fs::exists(s / "out.pt"));

  r = run({"convert", kModel, s / "out.pt", "--require-quantized", "bert.encoder.*", "--min-quantized-fraction", "0.5"});
  CHECK(r.code == 0);
  CHECK(fs::exists(s / "out.pt"));
}

TEST_CASE("reports as JSON and HTML files", "[cli][report]") {
  Scratch s;
  const Result r = run({"convert", kModel, s / "q.pt", "--report", s / "r.json", "--html", s / "r.html"});
  REQUIRE(r.code == 0);
  const std::string json_text = slurp(s / "r.json");
  CHECK(json_text.find("\"schema\": \"bertq-report/1\"") != std::string::npos);
  const std::string html = slurp(s / "r.html");
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(html.find("bert.encoder.layer.0.attention.self.query") != std::string::npos);
  // Self-contained: nothing to fetch (the only URL is the SVG namespace).
  std::string rest = html;
  size_t urls = 0;
  for (size_t p = rest.find("http"); p != std::string::npos; p = rest.find("http", p + 4))
    if (rest.compare(p, 26, "http://www.w3.org/2000/svg") != 0) ++urls;
  CHECK(urls == 0);
  CHECK(html.find("<script") == std::string::npos);
  // --format json puts the report on stdout instead of the table.
  const Result j = run({"convert", kModel, s / "q2.pt", "--format", "json"});
  REQUIRE(j.code == 0);
  CHECK(j.out.rfind("{\n  \"schema\": \"bertq-report/1\"", 0) == 0);
}

TEST_CASE("inspect on final, debug and float models", "[cli][inspect]") {
  Scratch s;
  REQUIRE(run({"convert", kModel, s / "q.pt", "--report", s / "r.json"}).code == 0);
  REQUIRE(run({"convert", kModel, s / "d.pt", "--debug"}).code == 0);
  // The per-channel scales the report recorded, as inspect prints them.
  const std::string report = slurp(s / "r.json");
  const size_t at = report.find("\"path\": \"bert.encoder.layer.0.attention.self.query\"");
  REQUIRE(at != std::string::npos);
  const size_t open = report.find("\"scales\": [", at) + 11;
  std::string scales;
  {
    std::istringstream in(report.substr(open, report.find(']', open) - open));
    std::string item;
    while (std::getline(in, item, ',')) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6g", std::stod(item));
      scales += (scales.empty() ? "" : ", ") + std::string(buf);
    }
  }
  for (const std::string file : {"q.pt", "d.pt"}) {
    INFO(file);
    const Result r = run({"inspect", s / file, "--module", "encoder.layer.0.attention.self.query"});
    REQUIRE(r.code == 0);
    std::istringstream lines(r.out);
    std::string line;
    std::getline(lines, line);
    CHECK(line.find(s / file + (file == "q.pt" ? ": quantized model, written by bertq " : ": debug model, written by bertq ")) == 0);
    std::getline(lines, line);
    CHECK(line == "module: bert.encoder.layer.0.attention.self.query (Linear)");
    std::getline(lines, line);
    CHECK(line == (file == "q.pt" ? "state: linear_dynamic" : "state: quantized (debug): qint8"));
    std::getline(lines, line);
    CHECK(line == "rule: global \"\"");
    std::getline(lines, line);
    CHECK(line == (file == "q.pt" ? "source: packed params quantized_forward._jit_pass_packed_weight_0"
                                  : "source: debug attributes (float weight quantized with the stored scales)"));
    std::getline(lines, line);
    CHECK(line == "weight: shape [32, 32], dtype qint8, qscheme per_channel_affine, axis 0");
    CHECK(r.out.find("\nscales (32): " + scales + "\n") != std::string::npos);
    CHECK(r.out.find("\nzero points (32): 0, 0, 0,") != std::string::npos);
  }
  const Result f = run({"inspect", kModel, "--module", "encoder.layer.0.attention.self.query"});
  REQUIRE(f.code == 0);
  CHECK(f.out.find(kModel + ": float model\nmodule: bert.encoder.layer.0.attention.self.query (Linear)\n"
                            "state: float\nsource: float weight\nweight: shape [32, 32], dtype float32\n") == 0);
  // The module tree, with the deciding rule from the manifest.
  const Result tree = run({"inspect", s / "q.pt"});
  CHECK(tree.out.find("\nbert.encoder.layer.0.attention.output.LayerNorm  LayerNorm  float  [global \"\"]\n") !=
        std::string::npos);
  const Result g = run({"inspect", s / "q.pt", "--graph"});
  CHECK(g.out.find("quantized::linear_dynamic") != std::string::npos);
  const Result bad = run({"inspect", s / "q.pt", "--module", "attention.self.query"});
  CHECK(bad.code == 2);
  CHECK(bad.err == "bertq: error: module \"attention.self.query\" is ambiguous in " + s / "q.pt" +
                       ": it matches bert.encoder.layer.0.attention.self.query, "
                       "bert.encoder.layer.1.attention.self.query\nhint: give more of the name\n");
  const Result json_out = run({"inspect", s / "q.pt", "--module", "classifier", "--format", "json"});
  CHECK(json_out.code == 0);
  CHECK(json_out.out.find("\"packed_attr\": \"quantized_forward._jit_pass_packed_weight_13\"") != std::string::npos);
  const Result broken = run({"inspect", kSource + "/testdata/bad/truncated.pt"});
  CHECK(broken.code == 4);
}

TEST_CASE("diff exits 0 for identical conversions and 8 for different ones", "[cli][diff]") {
  Scratch s;
  REQUIRE(run({"convert", kModel, s / "a.pt"}).code == 0);
  REQUIRE(run({"convert", kModel, s / "b.pt"}).code == 0);
  REQUIRE(run({"convert", kModel, s / "c.pt", "--qconfig", kSource + "/configs/default_dynamic.json"}).code == 0);
  Result r = run({"diff", s / "a.pt", s / "b.pt"});
  CHECK(r.code == 0);
  CHECK(r.out == "identical: 14 quantized modules compared (" + s / "a.pt" + ", " + s / "b.pt" + ")\n");
  r = run({"diff", s / "a.pt", s / "c.pt"});
  CHECK(r.code == 8);
  CHECK(r.out.find("bert.classifier") == std::string::npos);
  CHECK(r.out.find("classifier: qint8 per_channel_affine axis 0 vs qint8 per_tensor_affine\n") != std::string::npos);
  CHECK(r.out.find("differ: 14 differences in 14 modules compared\n") != std::string::npos);
  r = run({"diff", s / "a.pt", kModel});
  CHECK(r.code == 4);
  CHECK(r.err.find("holds no quantized weights") != std::string::npos);
}

TEST_CASE("eval reproduces PyTorch's predictions, accuracy and F1 on the MRPC fixture", "[cli][eval]") {
  // testdata/mrpc/expected_eval.json comes from running the same model in
  // Python on the reference tokenizer's ids (testdata/mrpc/make_expected.py).
  const std::string expected = slurp(kSource + "/testdata/mrpc/expected_eval.json");
  const Result r = run({"eval", kSource + "/testdata/models/tiny_bert_mrpc.pt", "--task", "mrpc", "--data",
                        kSource + "/testdata/mrpc", "--vocab", kSource + "/testdata/tokenizer/vocab.txt",
                        "--max-seq-length", "32", "--format", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto squash = [](std::string s) {
    s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); }),
            s.end());
    return s;
  };
  auto field = [&](const std::string& json, const std::string& name) {
    const std::string flat = squash(json);
    const size_t at = flat.find("\"" + name + "\":");
    REQUIRE(at != std::string::npos);
    const size_t start = at + name.size() + 3;
    const size_t end = flat[start] == '[' ? flat.find(']', start) + 1 : flat.find_first_of(",}", start);
    return flat.substr(start, end - start);
  };
  CHECK(field(r.out, "predictions") == field(expected, "predictions"));
  CHECK(std::stod(field(r.out, "accuracy")) == std::stod(field(expected, "accuracy")));
  CHECK(std::stod(field(r.out, "f1")) == std::stod(field(expected, "f1")));
  CHECK(field(r.out, "examples") == "8");
  // The text form, with the evaluation time.
  const Result t = run({"eval", kSource + "/testdata/models/tiny_bert_mrpc.pt", "--task", "mrpc", "--data",
                        kSource + "/testdata/mrpc", "--vocab", kSource + "/testdata/tokenizer/vocab.txt",
                        "--max-seq-length", "32"});
  CHECK(t.out.find("  accuracy: 0.5000\n  f1: 0.6000\n  eval time: ") != std::string::npos);
}

TEST_CASE("eval and compare refuse bad data with the file and line", "[cli][eval][errors]") {
  Scratch s;
  const std::string model = kSource + "/testdata/models/tiny_bert_mrpc.pt";
  const std::string vocab = kSource + "/testdata/tokenizer/vocab.txt";
  fs::create_directories(s / "mrpc");
  fs::copy_file(kSource + "/testdata/mrpc/bad_columns.tsv", s / "mrpc/dev.tsv");
  Result r = run({"eval", model, "--task", "mrpc", "--data", s / "mrpc", "--vocab", vocab});
  CHECK(r.code == 2);
  CHECK(r.err.find("bertq: error: " + s / "mrpc/dev.tsv" + ":") == 0);
  CHECK(r.err.find("column") != std::string::npos);
  r = run({"eval", model, "--task", "sst2", "--data", s / "mrpc", "--vocab", vocab});
  CHECK(r.code == 2);
  CHECK(r.err == "bertq: error: unknown task \"sst2\"\nhint: supported: mrpc; other tasks: --tokenized FILE\n");
  r = run({"eval", model});
  CHECK(r.code == 2);
  CHECK(r.err.find("bertq: error: eval needs labelled data") == 0);
  r = run({"eval", model, "--task", "mrpc", "--data", kSource + "/testdata/mrpc", "--vocab", s / "none.txt"});
  CHECK(r.code == 2);
}

TEST_CASE("eval on pre-tokenized data", "[cli][eval]") {
  Scratch s;
  std::string line = "{\"input_ids\": [2, 10, 11, 3";
  std::string mask = "], \"attention_mask\": [1, 1, 1, 1";
  std::string types = "], \"token_type_ids\": [0, 0, 0, 0";
  write_file(s / "data.jsonl", line + mask + types + "], \"label\": 1}\n" + line + mask + types + "], \"label\": 0}\n");
  const Result r = run({"eval", kSource + "/testdata/models/tiny_bert_mrpc.pt", "--tokenized", s / "data.jsonl",
                        "--format", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("\"examples\": 2") != std::string::npos);
  CHECK(r.out.find("\"accuracy\": 0.5") != std::string::npos);  // two equal rows, one of each label
}

TEST_CASE("compare reports agreement and fails past --max-disagreement", "[cli][compare]") {
  Scratch s;
  const std::string model = kSource + "/testdata/models/tiny_bert_mrpc.pt";
  REQUIRE(run({"convert", model, s / "q.pt"}).code == 0);
  Result r = run({"compare", model, s / "q.pt", "--max-seq-length", "32", "--rows", "64"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("on dummy inputs (64 rows x 32)\n  examples: 64\n  max abs logit difference: ") != std::string::npos);
  const size_t at = r.out.find("argmax agreement: ");
  REQUIRE(at != std::string::npos);
  const double agreement = std::stod(r.out.substr(at + 18));
  CHECK(agreement > 0.8);
  CHECK(agreement < 1.0);  // this wide-init model does flip a few rows
  r = run({"compare", model, s / "q.pt", "--max-seq-length", "32", "--rows", "64", "--max-disagreement", "0.5"});
  CHECK(r.code == 0);
  r = run({"compare", model, s / "q.pt", "--max-seq-length", "32", "--rows", "64", "--max-disagreement", "0"});
  CHECK(r.code == 7);
  CHECK(r.err.find(" of the rows change their predicted class, more than --max-disagreement 0.0000\n") !=
        std::string::npos);
  // Against itself: identical.
  r = run({"compare", model, model, "--max-seq-length", "32", "--rows", "16", "--max-disagreement", "0"});
  CHECK(r.code == 0);
  CHECK(r.out.find("max abs logit difference: 0\n") != std::string::npos);
  // On the MRPC fixture too.
  r = run({"compare", model, s / "q.pt", "--task", "mrpc", "--data", kSource + "/testdata/mrpc", "--vocab",
           kSource + "/testdata/tokenizer/vocab.txt", "--max-seq-length", "32"});
  CHECK(r.code == 0);
  CHECK(r.out.find("on " + kSource + "/testdata/mrpc/dev.tsv\n  examples: 8\n") != std::string::npos);
}

TEST_CASE("bench times several models on the same dummy inputs", "[cli][bench]") {
  Scratch s;
  REQUIRE(run({"convert", kModel, s / "q.pt"}).code == 0);
  Result r = run({"bench", kModel, s / "q.pt", "--seq", "16", "--iters", "3", "--warmup", "1", "--format", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("\"batch\": 8") != std::string::npos);
  CHECK(r.out.find("\"threads\": 1") != std::string::npos);
  CHECK(r.out.find("\"inputs\": [\n    \"input_ids\",\n    \"attention_mask\",\n    \"token_type_ids\"\n  ]") !=
        std::string::npos);
  CHECK(r.out.find("\"kind\": \"float\"") != std::string::npos);
  CHECK(r.out.find("\"kind\": \"quantized\"") != std::string::npos);
  CHECK(r.out.find("\"ratio\": 1.0") != std::string::npos);
  r = run({"bench", kModel, "--seq", "16", "--iters", "2"});
  CHECK(r.code == 0);
  CHECK(r.out.find("batch 8 x seq 16, 1 thread, engine onednn, 2 iterations after 2 warm-up\n") == 0);
  // The tiny model has 64 positions: the tutorial's 128 does not fit, and the
  // message says so instead of dumping the TorchScript traceback.
  r = run({"bench", kModel});
  CHECK(r.code == 4);
  CHECK(r.err ==
        "bertq: error: " + kModel + ": forward failed on the dummy inputs (batch 8 x seq 128): RuntimeError: The size of "
        "tensor a (128) must match the size of tensor b (64) at non-singleton dimension 1\n"
        "hint: check --batch/--seq/--vocab against the model (e.g. its max_position_embeddings)\n");
}

namespace {

// A batch folder: three bundled models, a corrupted one, and a job with a bad qconfig.
void make_batch_folder(const Scratch& s) {
  for (const char* m : {"tiny_bert.pt", "submodules.pt", "scripted_if.pt"})
    fs::copy_file(kSource + "/testdata/models/" + m, s / (std::string("in/") + m), fs::copy_options::recursive);
  fs::copy_file(kSource + "/testdata/bad/truncated.pt", s / "in/broken.pt");
  write_file(s / "badq.json", R"({"": "per_channel"})");
  write_file(s / "batch.json", R"({
    "directories": [{"input_dir": "in", "glob": "*.pt", "output_dir": "out"}],
    "jobs": [{"input": "in/submodules.pt", "output": "out/sub_badq.pt", "qconfig": "badq.json"}]
  })");
}

}  // namespace

TEST_CASE("batch converts the good jobs, reports the bad ones, and skips what is up to date", "[cli][batch]") {
  Scratch s;
  fs::create_directories(s / "in");
  fs::create_directories(s / "out");
  make_batch_folder(s);
  Result r = run({"batch", s / "batch.json", "-j", "2", "--summary", s / "summary.json"});
  CHECK(r.code == 9);
  CHECK(r.out.find("] ok  " + s / "in/tiny_bert.pt" + " -> " + s / "out/tiny_bert.pt\n") != std::string::npos);
  CHECK(r.out.find("] failed  " + s / "in/broken.pt" + " -> " + s / "out/broken.pt: " + s / "in/broken.pt" +
                   ": is a truncated zip archive (its end record is missing)") != std::string::npos);
  CHECK(r.out.find("] failed  " + s / "in/submodules.pt" + " -> " + s / "out/sub_badq.pt: " + s / "badq.json" +
                   ": [\"\"]: unknown preset \"per_channel\"") != std::string::npos);
  CHECK(r.out.find("batch: 3 converted, 0 up to date, 2 failed, 5 in all\n") != std::string::npos);
  CHECK(fs::exists(s / "out/tiny_bert.pt"));
  CHECK_FALSE(fs::exists(s / "out/broken.pt"));
  CHECK_FALSE(fs::exists(s / "out/sub_badq.pt"));
  for (const auto& e : fs::directory_iterator(s / "out"))
    CHECK(e.path().filename().string().rfind(".bertq-tmp-", 0) != 0);
  const std::string summary = slurp(s / "summary.json");
  CHECK(summary.find("\"ok\": 3") != std::string::npos);
  CHECK(summary.find("\"failed\": 2") != std::string::npos);

  // A second run skips what is up to date; a changed input is redone.
  r = run({"batch", s / "batch.json"});
  CHECK(r.code == 9);
  CHECK(r.out.find("batch: 0 converted, 3 up to date, 2 failed, 5 in all\n") != std::string::npos);
  fs::copy_file(kSource + "/testdata/models/scripted_if.pt", s / "in/submodules.pt", fs::copy_options::overwrite_existing);
  r = run({"batch", s / "batch.json"});
  CHECK(r.out.find("] ok  " + s / "in/submodules.pt" + " -> " + s / "out/submodules.pt\n") != std::string::npos);
  CHECK(r.out.find("batch: 1 converted, 2 up to date, 2 failed, 5 in all\n") != std::string::npos);
  r = run({"batch", s / "batch.json", "--force"});
  CHECK(r.out.find("batch: 3 converted, 0 up to date, 2 failed, 5 in all\n") != std::string::npos);
}

TEST_CASE("batch shards 1/2 and 2/2 convert every job exactly once", "[cli][batch]") {
  Scratch s;
  fs::create_directories(s / "in");
  for (int i = 0; i < 5; ++i) fs::copy_file(kSource + "/testdata/models/scripted_if.pt", s / ("in/m" + std::to_string(i) + ".pt"));
  write_file(s / "batch.json", R"({"directories": [{"input_dir": "in", "glob": "m*.pt", "output_dir": "out"}]})");
  fs::create_directories(s / "out");
  const Result a = run({"batch", s / "batch.json", "--shard", "1/2"});
  const Result b = run({"batch", s / "batch.json", "--shard", "2/2"});
  CHECK(a.code == 0);
  CHECK(b.code == 0);
  CHECK(a.err == "bertq: shard 1/2: 3 of 5 jobs\n");
  CHECK(b.err == "bertq: shard 2/2: 2 of 5 jobs\n");
  for (int i = 0; i < 5; ++i) {
    const std::string out = s / ("out/m" + std::to_string(i) + ".pt");
    INFO(out);
    CHECK(fs::exists(out));
    const bool in_a = a.out.find("] ok  " + s / ("in/m" + std::to_string(i) + ".pt")) != std::string::npos;
    const bool in_b = b.out.find("] ok  " + s / ("in/m" + std::to_string(i) + ".pt")) != std::string::npos;
    CHECK(in_a != in_b);  // exactly one shard did it
  }
  CHECK(run({"batch", s / "batch.json", "--shard", "3/2"}).code == 2);
}

TEST_CASE("batch manifests that would lose work are refused before anything runs", "[cli][batch][errors]") {
  Scratch s;
  write_file(s / "dup.json", R"({"jobs": [{"input": "a.pt", "output": "o.pt"}, {"input": "b.pt", "output": "o.pt"}]})");
  Result r = run({"batch", s / "dup.json"});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: " + s / "dup.json" + ": jobs: two jobs write " + s / "o.pt" + " (inputs " + s / "a.pt" +
                     " and " + s / "b.pt" + ")\n");
  write_file(s / "chain.json", R"({"jobs": [{"input": "a.pt", "output": "b.pt"}, {"input": "b.pt", "output": "c.pt"}]})");
  r = run({"batch", s / "chain.json"});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: " + s / "chain.json" + ": jobs: the output " + s / "b.pt" + " is the input of a job\n");
  write_file(s / "typo.json", R"({"jobs": [{"input": "a.pt", "output": "b.pt", "qconfg": "q.json"}]})");
  r = run({"batch", s / "typo.json"});
  CHECK(r.code == 3);
  CHECK(r.err.find("bertq: error: " + s / "typo.json" + ": jobs[0].qconfg: unknown field \"qconfg\"\nhint: did you mean \"qconfig\"?") == 0);
  write_file(s / "empty.json", R"({"directories": [{"input_dir": ".", "glob": "*.onnx", "output_dir": "out"}]})");
  r = run({"batch", s / "empty.json"});
  CHECK(r.code == 3);
  CHECK(r.err.find("\"*.onnx\" matches no file in ") != std::string::npos);
  r = run({"batch", s.dir.string()});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: " + s.dir.string() + " is a directory, not a batch manifest\n");
}

TEST_CASE("an interrupted batch leaves no partial output and says what finished", "[cli][batch]") {
  Scratch s;
  fs::create_directories(s / "in");
  for (int i = 0; i < 8; ++i) fs::copy_file(kModel, s / ("in/m" + std::to_string(i) + ".pt"));
  write_file(s / "batch.json", R"({"directories": [{"input_dir": "in", "output_dir": "out"}]})");
  fs::create_directories(s / "out");
  // SIGTERM once the first conversion is done (polled, so a slow machine
  // does not fail the test); `wait` returns the batch's exit code.
  const std::string cmd = quote(BERTQ_BINARY) + " batch " + quote(s / "batch.json") + " --summary " +
                          quote(s / "summary.json") + " > " + quote(s / "log") + " 2>&1 & pid=$!; n=0; while [ ! -e " +
                          quote(s / "out/m0.pt") + " ] && [ $n -lt 1200 ]; do sleep 0.1; n=$((n+1)); done; sleep 0.3; " +
                          "kill -TERM $pid; wait $pid; echo $? > " + quote(s / "code");
  REQUIRE(std::system(("sh -c " + quote(cmd)).c_str()) == 0);
  CHECK(slurp(s / "code") == "130\n");
  const std::string summary = slurp(s / "summary.json");
  CHECK(summary.find("\"interrupted\": true") != std::string::npos);
  CHECK(summary.find("\"not_run\": ") != std::string::npos);
  int complete = 0;
  for (const auto& e : fs::directory_iterator(s / "out")) {
    const std::string name = e.path().filename().string();
    CHECK(name.rfind(".bertq-tmp-", 0) != 0);  // no temporary left behind
    // Every output present is complete: it loads.
    const Result r = run({"inspect", e.path().string()});
    CHECK(r.code == 0);
    ++complete;
  }
  CHECK(complete >= 1);
  CHECK(complete < 8);
  CHECK(summary.find("\"ok\": " + std::to_string(complete)) != std::string::npos);
}

TEST_CASE("the same input, qconfig and engine give byte-identical files whatever the thread count", "[cli][determinism]") {
  Scratch s;
  fs::create_directories(s / "a");
  fs::create_directories(s / "b");
  REQUIRE(run({"convert", kModel, s / "a/q.pt", "--threads", "1"}).code == 0);
  REQUIRE(run({"convert", kModel, s / "b/q.pt", "--threads", "2"}).code == 0);
  CHECK(slurp(s / "a/q.pt") == slurp(s / "b/q.pt"));
  REQUIRE(run({"convert", kModel, s / "a/d.pt", "--threads", "1", "--debug"}).code == 0);
  REQUIRE(run({"convert", kModel, s / "b/d.pt", "--threads", "2", "--debug"}).code == 0);
  CHECK(slurp(s / "a/d.pt") == slurp(s / "b/d.pt"));
}

TEST_CASE("hostile qconfig files get a clear error", "[cli][errors]") {
  Scratch s;
  write_file(s / "deep.json", "{\"\": " + std::string(100000, '[') + std::string(100000, ']') + "}");
  Result r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "deep.json"});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: " + s / "deep.json" + ": nested more than 32 levels deep; a qconfig is at most four\n");
  write_file(s / "utf.json", "{\"\xff\xfe\": null}");
  r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "utf.json"});
  CHECK(r.code == 3);
  CHECK(r.err.find("bertq: error: " + s / "utf.json" + ":1:3: malformed JSON: syntax error while parsing object key - "
                   "invalid string: ill-formed UTF-8 byte; last read: '\"\\xff'") == 0);
  write_file(s / "long.json", "{\"" + std::string(100000, 'a') + "\": null}");
  r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "long.json"});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: " + s / "long.json" + ": a key of 100000 characters is not a module name (at most 4096): \"" +
                     std::string(40, 'a') + "\"...\n");
  r = run({"convert", kModel, s / "out.pt", "--qconfig", s.dir.string()});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: qconfig " + s.dir.string() + " is a directory, not a JSON file\n");
  CHECK_FALSE(fs::exists(s / "out.pt"));
}

TEST_CASE("a corrupted archive is refused, never a crash", "[cli][errors]") {
  Scratch s;
  std::string bytes = slurp(kModel);
  // Flip bytes inside the first record's data: the zip stays well formed,
  // its checksum no longer matches.
  const size_t at = bytes.find("PK\x03\x04", 0);
  REQUIRE(at != std::string::npos);
  for (size_t i = at + 200; i < at + 260 && i < bytes.size(); ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
  write_file(s / "corrupt.pt", bytes);
  Result r = run({"convert", s / "corrupt.pt", s / "out.pt"});
  CHECK(r.code == 4);
  CHECK(r.err.find("bertq: error: " + s / "corrupt.pt" + ": ") == 0);
  CHECK_FALSE(fs::exists(s / "out.pt"));
  // A central directory pointing past the end of the file.
  std::string cd = slurp(kModel);
  const size_t eocd = cd.rfind(std::string("PK\x05\x06", 4));
  REQUIRE(eocd != std::string::npos);
  cd[eocd + 16] = '\xff';
  cd[eocd + 17] = '\xff';
  cd[eocd + 18] = '\xff';
  cd[eocd + 19] = '\x7f';
  write_file(s / "cd.pt", cd);
  r = run({"convert", s / "cd.pt", s / "out.pt"});
  CHECK(r.code == 4);
  CHECK(r.err.find("corrupted zip archive") != std::string::npos);
  r = run({"inspect", s / "cd.pt"});
  CHECK(r.code == 4);
}

TEST_CASE("a full disk is a write error and leaves nothing behind", "[cli][errors]") {
  Scratch s;
  // A 64 KiB file size limit stands in for a full disk: writes fail with EFBIG.
  const std::string cmd = "ulimit -f 64; " + quote(BERTQ_BINARY) + " convert " + quote(kModel) + " " + quote(s / "out.pt") +
                          " > " + quote(s / "log") + " 2>&1; echo $? > " + quote(s / "code");
  REQUIRE(std::system(("sh -c " + quote(cmd)).c_str()) == 0);
  CHECK(slurp(s / "code") == "5\n");
  CHECK(slurp(s / "log").find("bertq: error: cannot write " + s / "out.pt") == 0);
  CHECK_FALSE(fs::exists(s / "out.pt"));
  CHECK(s.leftovers().empty());
}

TEST_CASE("a model with nothing to quantize: a warning and a valid model, or an error when required", "[cli]") {
  Scratch s;
  const std::string model = kSource + "/testdata/bad/nothing_quantizable.pt";
  Result r = run({"convert", model, s / "out.pt"});
  CHECK(r.code == 0);
  CHECK(r.err.find("bertq: warning: nothing was quantized: no Linear module is reached by a qconfig; the output "
                   "computes what the input does\n") != std::string::npos);
  CHECK(run({"inspect", s / "out.pt"}).code == 0);
  r = run({"convert", model, s / "out2.pt", "--min-quantized-fraction", "0.1"});
  CHECK(r.code == 7);
  CHECK_FALSE(fs::exists(s / "out2.pt"));
}

TEST_CASE("archives found by fuzz_archive are refused, never a crash", "[cli][errors]") {
  // testdata/bad/fuzz: reproducers of bugs the fuzzer found (sizes and offsets
  // from zip64 records that wrapped 64-bit sums; a version record that is not a number).
  for (const char* name : {"cd_size_wrap.pt", "entry_size_wrap.pt", "bad_version.pt"}) {
    Scratch s;
    const std::string file = kSource + "/testdata/bad/fuzz/" + name;
    INFO(file);
    Result r = run({"inspect", file});
    CHECK(r.code == 4);
    CHECK(r.err.find("bertq: error: " + file + ": ") == 0);
    r = run({"convert", file, s / "out.pt"});
    CHECK(r.code == 4);
    CHECK_FALSE(fs::exists(s / "out.pt"));
  }
}
