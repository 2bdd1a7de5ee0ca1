// Golden tests: bertq's conversion must be bit-identical to PyTorch's Python
// quantize_dynamic_jit. The goldens are models written by Python itself
// (testdata/generate.py); each case is converted by bertq through the same
// pipeline as the CLI and compared record by record, by outputs on fixed
// inputs, and by the quantized ops in the graph.
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/script.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/error.h"
#include "catch.hpp"
#include "convert/pipeline.h"
#include "convert/quantize.h"
#include "jit/engines.h"
#include "jit/qtensor.h"
#include "report/report.h"
#include "scratch.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kTestdata = std::string(BERTQ_SOURCE_DIR) + "/testdata/";
const char* kRegenerate =
    "if PyTorch's reference changed, regenerate the goldens with: "
    "tests/scripts/install-deps.sh --reference && /usr/bin/python3 testdata/generate.py";

json load_cases() {
  std::ifstream in(kTestdata + BERTQ_GOLDEN_DIR "/cases.json");
  REQUIRE(in);
  return json::parse(in);
}

// Every record of a TorchScript archive, keyed by name without the root
// folder (which torch.jit.save names after the file).
std::map<std::string, std::string> archive_records(const std::string& path) {
  caffe2::serialize::PyTorchStreamReader reader(path);
  std::map<std::string, std::string> out;
  for (const auto& name : reader.getAllRecords()) {
    auto [data, size] = reader.getRecord(name);
    out[name].assign(static_cast<const char*>(data.get()), size);
  }
  return out;
}

// The same count as testdata/generate.py's quantized_ops().
std::map<std::string, int> quantized_ops(const torch::jit::Module& m) {
  auto graph = m.get_method("forward").graph()->copy();
  torch::jit::Inline(*graph);
  std::map<std::string, int> counts;
  static const std::set<std::string> interesting = {"aten::linear", "aten::dequantize",
                                                    "aten::_choose_qparams_per_tensor", "aten::embedding_bag",
                                                    "aten::_saturate_weight_to_fp16"};
  std::function<void(torch::jit::Block*)> visit = [&](torch::jit::Block* b) {
    for (torch::jit::Node* n : b->nodes()) {
      const std::string k = n->kind().toQualString();
      if (k.rfind("quantized::", 0) == 0 || k.rfind("aten::quantize_per_", 0) == 0 || interesting.count(k)) ++counts[k];
      for (torch::jit::Block* sub : n->blocks()) visit(sub);
    }
  };
  visit(graph->block());
  return counts;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Fixed inputs for each bundled model: testdata/models/example_inputs.pt
// (written by testdata/generate.py with the models), else built here.
std::vector<torch::jit::IValue> inputs_for(const std::string& model) {
  static const c10::Dict<c10::IValue, c10::IValue> stored =
      torch::jit::load(kTestdata + "models/example_inputs.pt").attr("inputs").toGenericDict();
  const std::string stem = fs::path(model).stem().string();
  if (stored.contains(stem)) {
    std::vector<torch::jit::IValue> in;
    for (const auto& t : stored.at(stem).toList()) in.emplace_back(t);
    return in;
  }
  torch::manual_seed(7);
  if (model.find("bert") != std::string::npos) {
    auto ids = torch::randint(0, 128, {2, 16}, torch::kLong);
    auto mask = torch::ones({2, 16}, torch::kLong);
    mask.index_put_({1, torch::indexing::Slice(10, torch::indexing::None)}, 0);
    auto types = torch::zeros({2, 16}, torch::kLong);
    types.index_put_({torch::indexing::Slice(), torch::indexing::Slice(8, torch::indexing::None)}, 1);
    return {ids, mask, types};
  }
  if (model.find("embedding_rows") != std::string::npos) {
    // testdata/embeddings.py's inputs, stored with its goldens.
    const auto t =
        torch::jit::load(kTestdata + BERTQ_GOLDEN_DIR "/embedding_rows_8bit.pt").attr("tensors").toGenericDict();
    std::vector<torch::jit::IValue> in;
    for (int i = 0; i < 5; ++i) in.emplace_back(t.at("in" + std::to_string(i)).toTensor());
    return in;
  }
  return {torch::randn({2, 16})};
}

// bertq's model of PyTorch's passes must agree with what they did on every
// model PyTorch converts; a disagreement is only a warning for users.
void check_no_mismatch(const bertq::Report& r) {
  for (const auto& w : r.warnings) {
    INFO(w);
    CHECK(w.find("bertq predicted other results") == std::string::npos);
  }
}

torch::Tensor first_tensor(const torch::jit::IValue& v) {
  if (v.isTensor()) return v.toTensor();
  return v.toTupleRef().elements()[0].toTensor();
}

void check_case(const json& c, const fs::path& workdir) {
  const std::string golden = kTestdata + c["golden"].get<std::string>();
  const std::string out = (workdir / fs::path(golden).filename()).string();
  INFO("case: " << c.dump());
  INFO(kRegenerate);

  bertq::ConvertOptions o;
  o.input = kTestdata + c["model"].get<std::string>();
  o.output = out;
  o.qconfig_path = kTestdata + c["qconfig"].get<std::string>();
  o.engine = bertq::parse_engine(c["engine"].get<std::string>());
  o.debug = c["debug"].get<bool>();
  // quantize_dynamic_jit leaves embeddings float; so does --embeddings float.
  o.embeddings = "float";
  // fp16 models convert but cannot run on this LibTorch; bertq refuses them
  // unless asked, and must still write exactly what Python writes.
  o.allow_unrunnable = true;
  // Without bertq's manifest, the file is Python's byte for byte.
  o.no_manifest = true;
  check_no_mismatch(bertq::run_convert(o));
  CHECK(bertq::testing::byte_difference(slurp(out), slurp(golden)) == "");

  // With it (the default), only the manifest is added, which Python's
  // torch.jit.load ignores; every other record is the same (LibTorch 2.x's
  // .data/serialization_id hashes all records, so it changes with it).
  o.no_manifest = false;
  bertq::run_convert(o);
  const auto want = archive_records(golden);
  auto got = archive_records(out);
  REQUIRE(got.count("extra/bertq_manifest.json") == 1);
  got.erase("extra/bertq_manifest.json");
  std::vector<std::string> want_names, got_names;
  for (const auto& r : want) want_names.push_back(r.first);
  for (const auto& r : got) got_names.push_back(r.first);
  REQUIRE(got_names == want_names);
  for (const auto& [name, bytes] : want) {
    if (name == ".data/serialization_id") continue;
    INFO("record " << name << " differs from the golden");
    CHECK(bertq::testing::byte_difference(got.at(name), bytes) == "");
  }

  torch::jit::Module expected = torch::jit::load(golden);
  torch::jit::Module actual = torch::jit::load(out);
  std::map<std::string, int> want_ops;
  for (auto it = c["quantized_ops"].begin(); it != c["quantized_ops"].end(); ++it)
    want_ops[it.key()] = it.value().get<int>();
  CHECK(quantized_ops(actual) == want_ops);

  if (c["runnable"].get<bool>()) {
    bertq::set_engine(*o.engine);
    const auto inputs = inputs_for(c["model"].get<std::string>());
    torch::NoGradGuard no_grad;
    const torch::Tensor a = first_tensor(actual.forward(inputs));
    const torch::Tensor e = first_tensor(expected.forward(inputs));
    CHECK(torch::equal(a, e));
  }
}

void check_model_cases(const std::string& model_stem) {
  const json cases = load_cases();
  const fs::path workdir =
      fs::temp_directory_path() / ("bertq-golden-" + model_stem + "-" + std::to_string(::getpid()));
  fs::create_directories(workdir);
  int checked = 0;
  for (const auto& c : cases) {
    if (fs::path(c["model"].get<std::string>()).stem() != model_stem) continue;
    if (!c["python_error"].is_null()) {
      // Python fails with an obscure message; bertq must refuse the qconfig
      // up front with its own, before writing anything.
      DYNAMIC_SECTION("refused like Python: " << c["qconfig"].get<std::string>()) {
        bertq::ConvertOptions o;
        o.input = kTestdata + c["model"].get<std::string>();
        o.output = (workdir / "refused.pt").string();
        o.qconfig_path = kTestdata + c["qconfig"].get<std::string>();
        o.debug = c["debug"].get<bool>();
        try {
          bertq::run_convert(o);
          FAIL("bertq converted what Python refuses: " << c["python_error"]);
        } catch (const bertq::Error& e) {
          if (c["python_error"].get<std::string>().find("Schema not found") != std::string::npos) {
            // torch.jit.save cannot serialize the debug model of a fork/wait
            // model; LibTorch's writer refuses it for bertq the same way.
            CHECK(e.kind() == bertq::ErrorKind::Unsupported);
            CHECK(std::string(e.what()).find("LibTorch cannot save") != std::string::npos);
          } else {
            // float_qparams (weight-only) reaching Linears.
            CHECK(e.kind() == bertq::ErrorKind::Config);
            CHECK(std::string(e.what()).rfind("weight-only float_qparams quantization applies to EmbeddingBag, but "
                                              "it reaches Linear modules ",
                                              0) == 0);
          }
        }
        CHECK_FALSE(fs::exists(o.output));
      }
      ++checked;
      continue;
    }
    DYNAMIC_SECTION(c["golden"].get<std::string>()) { check_case(c, workdir); }
    ++checked;
  }
  fs::remove_all(workdir);
  CHECK(checked > 0);
}

}  // namespace

TEST_CASE("golden: tiny_bert matches quantize_dynamic_jit", "[golden]") { check_model_cases("tiny_bert"); }
TEST_CASE("golden: submodules matches quantize_dynamic_jit", "[golden]") { check_model_cases("submodules"); }
TEST_CASE("golden: functional_linear matches quantize_dynamic_jit", "[golden]") {
  check_model_cases("functional_linear");
}
TEST_CASE("golden: scripted_if matches quantize_dynamic_jit", "[golden]") { check_model_cases("scripted_if"); }
TEST_CASE("golden: embedding_bag matches quantize_dynamic_jit", "[golden]") { check_model_cases("embedding_bag"); }
TEST_CASE("golden: a Linear head tied to an embedding matches quantize_dynamic_jit", "[golden]") {
  check_model_cases("embedding_rows");
}
TEST_CASE("golden: modules called twice and three times match quantize_dynamic_jit", "[golden][calls]") {
  check_model_cases("calls_twice");
  check_model_cases("calls_thrice");
}
TEST_CASE("golden: Linears with equal weights on one input match quantize_dynamic_jit", "[golden][calls]") {
  check_model_cases("calls_equal_weights");
}
TEST_CASE("golden: a block shared by every depth (ALBERT's pattern) matches quantize_dynamic_jit", "[golden][calls]") {
  check_model_cases("calls_shared_depths");
}
TEST_CASE("golden: reuse inside an if matches quantize_dynamic_jit", "[golden][calls]") {
  check_model_cases("calls_if_reuse");
}
TEST_CASE("golden: Linears in loops match quantize_dynamic_jit", "[golden][calls]") {
  check_model_cases("calls_loop_const");
  check_model_cases("calls_loop_runtime");
  check_model_cases("calls_loop_and_outside");
}
TEST_CASE("golden: a submodule run through fork/wait matches quantize_dynamic_jit", "[golden][calls]") {
  check_model_cases("calls_fork_wait");
}
TEST_CASE("golden: ALBERT, DistilBERT, RoBERTa and ELECTRA match quantize_dynamic_jit", "[golden][zoo]") {
  for (const char* m : {"zoo_albert", "zoo_distilbert", "zoo_roberta", "zoo_electra"}) check_model_cases(m);
}
TEST_CASE("golden: GPT-2, a T5 encoder, ViT, an LSTM classifier and an MLP match quantize_dynamic_jit",
          "[golden][zoo]") {
  for (const char* m : {"zoo_gpt2", "zoo_t5", "zoo_vit", "zoo_lstm", "zoo_mlp"}) check_model_cases(m);
}
TEST_CASE("golden: functional weights match quantize_dynamic_jit", "[golden]") {
  check_model_cases("functional_attr");
  check_model_cases("functional_const");
  check_model_cases("functional_buffer");
}

// Quantized embedding rows have no graph-mode reference: the goldens hold
// what eager PyTorch computes (testdata/embeddings.py), for every output of
// a model with every kind of lookup, and each module's packed rows.
void check_embedding_rows(const std::string& bits) {
  const bertq::testing::ScratchDir workdir("bertq-emb-golden");
  const std::string golden = kTestdata + BERTQ_GOLDEN_DIR "/embedding_rows_" + bits + ".pt";
  INFO(kRegenerate);
  const c10::Dict<c10::IValue, c10::IValue> want = torch::jit::load(golden).attr("tensors").toGenericDict();
  auto tensor = [&](const std::string& key) {
    INFO("golden key " << key);
    REQUIRE(want.contains(key));
    return want.at(key).toTensor();
  };
  bertq::ConvertOptions o;
  o.input = kTestdata + "models/embedding_rows.pt";
  o.output = workdir / "q.pt";
  o.qconfig_path = kTestdata + "qconfigs/embedding_rows_" + bits + ".json";
  const bertq::Report r = bertq::run_convert(o);

  torch::jit::Module q = torch::jit::load(o.output);
  std::vector<torch::jit::IValue> inputs;
  for (int i = 0; i < 5; ++i) inputs.emplace_back(tensor("in" + std::to_string(i)));
  const auto outputs = q.forward(inputs).toTuple()->elements();
  REQUIRE(outputs.size() == 10);
  // Outputs that went through a float kernel after the lookups are compared
  // with the same kernel applied here, on this CPU (OpenBLAS and the float
  // bag sums pick their code by CPU, so Python's numbers are the generating
  // machine's): output 1 is F.linear(h, head.weight) on output 0, and 6 and 7
  // are bags that stay float, the float model's own. The rest are dequantized
  // rows, sums of them and elementwise adds: the quantized lookup kernels are
  // plain loops compiled once, the same on every x86-64 CPU, so Python's
  // numbers must be matched bit for bit.
  torch::jit::Module float_model = torch::jit::load(o.input);
  const std::vector<c10::IValue> float_outputs = float_model.forward(inputs).toTupleRef().elements().vec();
  for (size_t i = 0; i < outputs.size(); ++i) {
    INFO("output " << i);
    at::Tensor expected = tensor("out" + std::to_string(i));
    if (i == 1) expected = at::linear(tensor("out0"), float_model.attr("word").toModule().attr("weight").toTensor());
    if (i == 6 || i == 7) expected = float_outputs[i].toTensor();
    CHECK(outputs[i].toTensor().sizes() == expected.sizes());
    CHECK(torch::equal(outputs[i].toTensor(), expected));
  }

  const std::string op = bits == "8bit" ? "_byte" : "_4bit";
  std::map<std::string, const bertq::ModuleReport*> by_path;
  for (const auto& m : r.modules) by_path[m.plan.path] = &m;
  for (const std::string name : {"word", "pos", "bag", "bag_last", "tied_a", "tied_b"}) {
    INFO("module " << name);
    const bertq::ModuleReport& m = *by_path.at(name);
    CHECK(m.plan.quantized);
    CHECK(m.plan.op == (m.plan.type_name == "EmbeddingBag" ? "embedding_bag" : "embedding") + op);
    REQUIRE_FALSE(m.packed_attr.empty());
    const at::Tensor rows = bertq::unpack_packed(q, m.packed_attr).first;
    CHECK(rows.scalar_type() == (bits == "8bit" ? at::kQUInt8 : at::kQUInt4x2));
    CHECK(torch::equal(rows.int_repr(), tensor(name + ".int")));
    CHECK(torch::equal(rows.q_per_channel_scales(), tensor(name + ".scales")));
    CHECK(torch::equal(rows.q_per_channel_zero_points(), tensor(name + ".zero_points")));
  }
  // One weight, one copy of its rows.
  CHECK(by_path.at("tied_a")->packed_attr == by_path.at("tied_b")->packed_attr);
  // Bags the quantized ops would get wrong stay float, and say why.
  CHECK_FALSE(by_path.at("mean_bag")->plan.quantized);
  CHECK(by_path.at("mean_bag")->plan.float_reason.find("mode mean") != std::string::npos);
  CHECK_FALSE(by_path.at("pad_bag")->plan.quantized);
  CHECK(by_path.at("pad_bag")->plan.float_reason.find("padding_idx") != std::string::npos);
  // The float Linear head tied to the word embedding keeps the float weight.
  CHECK_FALSE(by_path.at("head")->plan.quantized);
  bool said = false;
  for (const auto& w : r.warnings) said = said || w.find("float weight of word stays") != std::string::npos;
  CHECK(said);
  bool noted = false;
  for (const auto& n : r.notes) noted = noted || n.find("beyond quantize_dynamic_jit") != std::string::npos;
  CHECK(noted);
}

TEST_CASE("golden: 8-bit embedding rows match eager quantize_dynamic", "[golden][embeddings]") {
  check_embedding_rows("8bit");
}
TEST_CASE("golden: 4-bit embedding rows match PyTorch's ops", "[golden][embeddings]") { check_embedding_rows("4bit"); }

// 4-bit rows pack two values to a byte and keep each row's scale and offset
// in float16: rows of odd width, or values beyond float16's range, get 8-bit
// rows instead, with a warning, and still look up what float does.
TEST_CASE("embedding rows 4-bit rows cannot hold get 8-bit rows, with a warning", "[embeddings]") {
  const bertq::testing::ScratchDir workdir("bertq-emb-4bit");
  struct Case {
    int64_t width;
    double magnitude;
    const char* why;
  };
  for (const Case c :
       {Case{3, 1.0, "odd width (3)"}, Case{1, 1.0, "odd width (1)"}, Case{4, 1e6, "beyond float16's range (65504)"}}) {
    INFO(c.why);
    torch::jit::Module m("Lookup");
    torch::manual_seed(3);
    m.register_parameter("weight", torch::randn({10, c.width}) * c.magnitude, false);
    m.define("def forward(self, ids):\n  return torch.embedding(self.weight, ids)\n");
    const std::string in = workdir / "m.pt";
    m.save(in);
    bertq::ConvertOptions o;
    o.input = in;
    o.output = workdir / "q.pt";
    o.embeddings = "4bit";
    o.allow_nothing_quantized = true;
    const bertq::Report r = bertq::run_convert(o);
    REQUIRE(r.modules.size() == 1);
    CHECK(r.modules[0].plan.op == "embedding_byte");
    bool said = false;
    for (const auto& w : r.warnings)
      said = said || (w.find("8-bit rows instead of 4-bit") != std::string::npos && w.find(c.why) != std::string::npos);
    CHECK(said);
    const at::Tensor ids = torch::tensor({{0, 9, 4}, {3, 3, 1}}, torch::kLong);
    const at::Tensor want = m.forward({ids}).toTensor();
    const at::Tensor got = torch::jit::load(o.output).forward({ids}).toTensor();
    REQUIRE(got.sizes() == want.sizes());
    CHECK(torch::allclose(got, want, 0.02, 0.02 * c.magnitude));
  }
}

// Inputs the float lookups refuse or answer with empty tensors: the quantized
// lookups must do the same, never crash, read out of bounds or compute
// silently what float refuses.
TEST_CASE("quantized embedding lookups do no worse than float on odd inputs", "[embeddings]") {
  const bertq::testing::ScratchDir workdir("bertq-emb-odd");
  const auto golden =
      torch::jit::load(kTestdata + BERTQ_GOLDEN_DIR "/embedding_rows_8bit.pt").attr("tensors").toGenericDict();
  std::vector<at::Tensor> base;
  for (int i = 0; i < 5; ++i) base.push_back(golden.at("in" + std::to_string(i)).toTensor());
  // testdata/embeddings.py's EmbOdd: the lookups bertq rewrites, alone.
  torch::jit::Module float_model = torch::jit::load(kTestdata + "models/embedding_odd.pt");
  struct Variant {
    const char* what;
    std::function<void(std::vector<at::Tensor>&)> change;
  };
  const std::vector<Variant> variants = {
      {"as traced", [](std::vector<at::Tensor>&) {}},
      {"no bags", [](std::vector<at::Tensor>& in) { in[2] = at::empty({0}, at::kLong); }},
      {"no ids in any bag",
       [](std::vector<at::Tensor>& in) {
         in[1] = at::empty({0}, at::kLong);
         in[2] = at::zeros({4}, at::kLong);
         in[3] = at::zeros({5}, at::kLong);
         in[4] = at::empty({0});
       }},
      {"per-sample weights shorter than the ids", [](std::vector<at::Tensor>& in) { in[4] = in[4].narrow(0, 0, 3); }},
      {"offsets not starting at 0",
       [](std::vector<at::Tensor>& in) {
         in[2] = at::tensor({1, 4, 4, 6}, at::kLong);
       }},
      {"decreasing offsets",
       [](std::vector<at::Tensor>& in) {
         in[2] = at::tensor({0, 4, 2, 6}, at::kLong);
       }},
      {"an offset beyond the ids",
       [](std::vector<at::Tensor>& in) {
         in[3] = at::tensor({0, 4, 4, 6, 99}, at::kLong);
       }},
      {"an id out of range", [](std::vector<at::Tensor>& in) { in[1][0] = 1000; }},
  };
  for (const std::string bits : {"8bit", "4bit"}) {
    bertq::ConvertOptions o;
    o.input = kTestdata + "models/embedding_odd.pt";
    o.output = workdir / ("q" + bits + ".pt");
    o.embeddings = bits;
    const bertq::Report r = bertq::run_convert(o);
    REQUIRE(r.quantized_count() == 3);
    torch::jit::Module q = torch::jit::load(o.output);
    for (const auto& v : variants) {
      INFO(bits << ": " << v.what);
      std::vector<at::Tensor> in = base;
      for (auto& t : in) t = t.clone();
      v.change(in);
      const std::vector<c10::IValue> args(in.begin(), in.end());
      std::optional<std::vector<c10::IValue>> want, got;
      try {
        want = float_model.forward(args).toTupleRef().elements().vec();
      } catch (const std::exception&) {
      }
      try {
        got = q.forward(args).toTupleRef().elements().vec();
      } catch (const std::exception&) {
      }
      REQUIRE(want.has_value() == got.has_value());
      if (!want) continue;
      for (size_t i = 0; i < want->size(); ++i) CHECK((*got)[i].toTensor().sizes() == (*want)[i].toTensor().sizes());
    }
  }
}

// Per-channel weights with reduce_range, or a 7-bit range spelled out, were
// reported to crash PyTorch 2.6's Python on some CPUs. Whatever a version's
// Python does there, bertq's int8 weights, scales, zero points and biases
// are the arithmetic of 1.13's Python, which is the same in both versions'
// observer.py: checked against 1.13's goldens on every build.
TEST_CASE("7-bit per-channel weights hold 1.13's int8 values and qparams on every LibTorch", "[golden]") {
  const bertq::testing::ScratchDir s("bertq-range64");
  for (const std::string q : {"preset_override", "weight_range_64"}) {
    INFO("qconfig " << q);
    bertq::ConvertOptions o;
    o.input = kTestdata + "models/tiny_bert.pt";
    o.output = s / "q.pt";
    o.qconfig_path = kTestdata + "qconfigs/" + q + ".json";
    o.embeddings = "float";
    bertq::run_convert(o);
    const torch::jit::Module ours = torch::jit::load(o.output);
    const torch::jit::Module ref = torch::jit::load(kTestdata + "golden/1.13/tiny_bert__" + q + "__onednn.pt");
    const auto a = bertq::packed_weight_attrs(ours), b = bertq::packed_weight_attrs(ref);
    REQUIRE(a.size() == 14);
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      INFO("packed weight " << i);
      const auto [w, bias] = bertq::unpack_packed(ours, a[i]);
      const auto [rw, rbias] = bertq::unpack_packed(ref, b[i]);
      CHECK(torch::equal(w.int_repr(), rw.int_repr()));
      CHECK(w.int_repr().abs().max().item<int>() <= 64);  // 7 bits: -64..63
      CHECK(torch::equal(w.q_per_channel_scales(), rw.q_per_channel_scales()));
      CHECK(torch::equal(w.q_per_channel_zero_points(), rw.q_per_channel_zero_points()));
      REQUIRE(bias.has_value() == rbias.has_value());
      if (bias) CHECK(torch::equal(*bias, *rbias));
    }
  }
}

TEST_CASE("a model only PyTorch 2.x can express: converted by a 2.x build, refused by a 1.13 one", "[golden]") {
  // testdata/models/v2/sdpa_bert.pt: BERT with Hugging Face's SDPA attention,
  // traced by PyTorch 2.6 (aten::scaled_dot_product_attention).
  if (std::string(BERTQ_LIBTORCH_VERSION).rfind("1.", 0) != 0) {
    check_model_cases("sdpa_bert");
    return;
  }
  bertq::ConvertOptions o;
  o.input = kTestdata + "models/v2/sdpa_bert.pt";
  o.output = (fs::temp_directory_path() / ("bertq-sdpa-" + std::to_string(::getpid()) + ".pt")).string();
  try {
    bertq::run_convert(o);
    FAIL("LibTorch 1.13 converted a model that uses aten::scaled_dot_product_attention");
  } catch (const bertq::Error& e) {
    CHECK(e.kind() == bertq::ErrorKind::Model);
    CHECK(std::string(e.what()) ==
          o.input +
              ": it was traced with a newer PyTorch: it uses aten::scaled_dot_product_attention, "
              "which LibTorch " BERTQ_LIBTORCH_VERSION " does not have");
    CHECK(e.hint() == "convert it with a bertq built against LibTorch 2.x (docs/libtorch.md)");
  }
  CHECK_FALSE(fs::exists(o.output));
}

TEST_CASE("the plan resolves the tutorial's nested qconfig as PyTorch does", "[plan]") {
  const fs::path workdir = fs::temp_directory_path() / ("bertq-plan-" + std::to_string(::getpid()));
  fs::create_directories(workdir);
  bertq::ConvertOptions o;
  o.input = kTestdata + "models/submodules.pt";
  o.output = (workdir / "q.pt").string();
  o.qconfig_path = kTestdata + "qconfigs/tutorial_nested.json";
  const bertq::Report r = bertq::run_convert(o);
  fs::remove_all(workdir);

  std::map<std::string, const bertq::ModulePlan*> by_path;
  for (const auto& m : r.modules) by_path[m.plan.path] = &m.plan;
  REQUIRE(by_path.size() == 3);

  const auto& fc = *by_path.at("fc");
  CHECK(fc.rule.kind == bertq::RuleKind::Global);
  CHECK(fc.rule.describe() == "global \"\"");
  CHECK(*fc.qconfig == bertq::preset("default_dynamic"));
  CHECK(fc.quantized);
  CHECK(fc.op == "linear_dynamic");

  const auto& fc1 = *by_path.at("sub.fc1");
  CHECK(fc1.rule.kind == bertq::RuleKind::OwnKey);
  CHECK(fc1.rule.describe() == "own key \"sub.fc1\"");
  CHECK(fc1.qconfig->weight.kind == bertq::ObserverKind::MinMax);
  CHECK(fc1.qconfig->weight.quant_min == -127);
  CHECK(fc1.quantized);

  const auto& fc2 = *by_path.at("sub.fc2");
  CHECK(fc2.rule.kind == bertq::RuleKind::OptedOut);
  CHECK(fc2.rule.describe() == "null at \"sub.fc2\"");
  CHECK_FALSE(fc2.quantized);
  CHECK(fc2.float_reason == "opted out: null at \"sub.fc2\"");

  // "sub" itself decides nothing here (both its Linears have their own key),
  // which is worth a warning rather than silence.
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0] == "qconfig key \"sub\" quantized nothing (no weight-bearing module under it)");
}

TEST_CASE("the plan says inherited for a child of a keyed module", "[plan]") {
  const fs::path workdir = fs::temp_directory_path() / ("bertq-plan2-" + std::to_string(::getpid()));
  fs::create_directories(workdir);
  bertq::ConvertOptions o;
  o.input = kTestdata + "models/tiny_bert.pt";
  o.output = (workdir / "q.pt").string();
  o.qconfig_path = kTestdata + "qconfigs/bert_nested.json";
  const bertq::Report r = bertq::run_convert(o);
  fs::remove_all(workdir);
  std::map<std::string, const bertq::ModulePlan*> by_path;
  for (const auto& m : r.modules) by_path[m.plan.path] = &m.plan;
  CHECK(by_path.at("bert.encoder.layer.1.attention.self.query")->rule.describe() == "null at \"bert.encoder.layer.1\"");
  CHECK_FALSE(by_path.at("bert.encoder.layer.1.attention.self.query")->quantized);
  CHECK(by_path.at("bert.encoder.layer.1.output.dense")->rule.describe() ==
        "own key \"bert.encoder.layer.1.output.dense\"");
  CHECK(by_path.at("bert.encoder.layer.1.output.dense")->quantized);
  CHECK(by_path.at("bert.encoder.layer.0.attention.self.query")->rule.describe() == "global \"\"");
  CHECK(by_path.at("classifier")->rule.describe() == "null at \"classifier\"");
  CHECK(r.quantized_count() == 8);  // layer 0 (6) + layer 1's output.dense + pooler
}
