// The CLI as a user meets it: the built binary on good and bad input, with the
// exact message and exit code, and never a partial output file.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
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
