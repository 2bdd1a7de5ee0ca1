// The C++ API as docs/api.md shows it, called as a user's program would:
// quantize_dynamic_jit, and prepare_dynamic_jit + convert_dynamic_jit, give
// the file Python's quantize_dynamic_jit wrote, byte for byte, and leave the
// input model as it was.
#include <torch/script.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "base/files.h"
#include "catch.hpp"
#include "convert/convert_model.h"
#include "convert/quantize.h"
#include "jit/engines.h"
#include "jit/model_file.h"
#include "qconfig/qconfig.h"
#include "scratch.h"

namespace {

using bertq::testing::byte_difference;
using bertq::testing::ScratchDir;
using bertq::testing::slurp;

const std::string kTestdata = std::string(BERTQ_SOURCE_DIR) + "/testdata/";
const std::string kGolden = kTestdata + BERTQ_GOLDEN_DIR "/";

// Every parameter and buffer, copied: what the model holds, to compare later.
std::vector<at::Tensor> state_of(const torch::jit::Module& m) {
  std::vector<at::Tensor> out;
  for (const auto& p : m.named_parameters(true)) out.push_back(p.value.clone());
  for (const auto& b : m.named_buffers(true)) out.push_back(b.value.clone());
  return out;
}

// As torch.jit.save: Module::save alone writes another data.pkl for models
// that keep submodules (debug, prepared), see docs/api.md.
void save(const torch::jit::Module& m, const std::string& path) {
  bertq::save_model_atomic(m, bertq::check_output_path("output", path));
}

bool same_state(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!a[i].equal(b[i])) return false;
  return true;
}

// tiny_bert's three inputs, batch 2 x 16.
std::vector<c10::IValue> tiny_bert_inputs() {
  return {at::randint(0, 100, {2, 16}, at::kLong), at::ones({2, 16}, at::kLong), at::zeros({2, 16}, at::kLong)};
}

// The model's first output (the logits) on `inputs`.
at::Tensor first_output_of(torch::jit::Module& m, const std::vector<c10::IValue>& inputs) {
  const c10::IValue out = m.forward(inputs);
  return out.isTensor() ? out.toTensor() : out.toTupleRef().elements()[0].toTensor();
}

}  // namespace

TEST_CASE("the C++ API writes Python's quantize_dynamic_jit file byte for byte", "[api]") {
  ScratchDir dir;
  bertq::set_engine(bertq::Engine::OneDNN);
  torch::jit::Module model = torch::jit::load(kTestdata + "models/tiny_bert.pt");
  const auto before = state_of(model);
  const bertq::QConfigDict dict = bertq::load_qconfig_file(kTestdata + "qconfigs/per_channel.json");

  // The archive's root folder is the file's name without .pt: the same name
  // as Python's file, in a scratch folder.
  const std::string final_name = "tiny_bert__per_channel__onednn.pt";
  const std::string debug_name = "tiny_bert__per_channel__onednn__debug.pt";
  SECTION("quantize_dynamic_jit") {
    torch::jit::Module q = bertq::quantize_dynamic_jit(model, dict);
    save(q, dir / final_name);
    CHECK(byte_difference(slurp(dir / final_name), slurp(kGolden + final_name)) == "");
  }
  SECTION("quantize_dynamic_jit, debug") {
    torch::jit::Module q = bertq::quantize_dynamic_jit(model, dict, /*debug=*/true);
    save(q, dir / debug_name);
    CHECK(byte_difference(slurp(dir / debug_name), slurp(kGolden + debug_name)) == "");
  }
  SECTION("prepare_dynamic_jit, then convert_dynamic_jit") {
    torch::jit::Module prepared = bertq::prepare_dynamic_jit(model, dict);
    CHECK(bertq::is_prepared(prepared));
    CHECK_FALSE(bertq::is_prepared(model));
    torch::jit::Module q = bertq::convert_dynamic_jit(prepared);
    save(q, dir / final_name);
    CHECK(byte_difference(slurp(dir / final_name), slurp(kGolden + final_name)) == "");
  }
  // Like Python's, the functions copy: the float model is untouched.
  CHECK(same_state(before, state_of(model)));
  CHECK_FALSE(bertq::is_prepared(model));
}

TEST_CASE("a conversion in memory that shares the float model's tensors leaves that model as it was", "[api]") {
  bertq::set_engine(bertq::Engine::OneDNN);
  torch::jit::Module model = torch::jit::load(kTestdata + "models/tiny_bert.pt");
  model.eval();
  const auto before = state_of(model);
  const bertq::QConfigDict dict = bertq::default_qconfig_dict();
  const std::vector<c10::IValue> inputs = tiny_bert_inputs();
  auto first_output = [&](torch::jit::Module& m) { return first_output_of(m, inputs); };
  const at::Tensor float_out = first_output(model);

  bertq::ConversionSettings copy, share;
  copy.input = bertq::ConversionSettings::InputTensors::Copy;
  share.input = bertq::ConversionSettings::InputTensors::Share;
  bertq::ConvertedModel a = bertq::convert_model(model, dict, copy);
  bertq::ConvertedModel b = bertq::convert_model(model, dict, share);
  // Twice, as tune does: the model must still be whole after the first.
  bertq::ConvertedModel c = bertq::convert_model(model, dict, share);
  CHECK(a.quantized_in_output == 14);
  CHECK(b.quantized_in_output == a.quantized_in_output);
  CHECK(c.quantized_in_output == a.quantized_in_output);
  // The same kernels on the same inputs in one process: equal bit for bit.
  const at::Tensor qa = first_output(a.model);
  CHECK(qa.equal(first_output(b.model)));
  CHECK(qa.equal(first_output(c.model)));
  CHECK_FALSE(qa.equal(float_out));  // the test compares quantized models
  // The float model holds its own tensors again and computes what it did.
  CHECK(same_state(before, state_of(model)));
  CHECK(first_output(model).equal(float_out));
}

TEST_CASE("fusion in memory (--fuse-qkv): the last rewrite, final models only, logits unchanged", "[api]") {
  bertq::set_engine(bertq::Engine::OneDNN);
  torch::jit::Module model = torch::jit::load(kTestdata + "models/tiny_bert.pt");
  model.eval();
  const bertq::QConfigDict dict = bertq::default_qconfig_dict();
  const std::vector<c10::IValue> inputs = tiny_bert_inputs();
  auto first_output = [&](torch::jit::Module& m) { return first_output_of(m, inputs); };
  bertq::ConversionSettings plain, fused;
  fused.fuse_qkv = true;
  bertq::ConvertedModel a = bertq::convert_model(model, dict, plain);
  bertq::ConvertedModel b = bertq::convert_model(model, dict, fused);
  CHECK(a.fusion.fused.empty());
  REQUIRE(b.fusion.fused.size() == 2);  // query, key and value of each layer
  CHECK(b.fusion.fused[0].rows == std::vector<int64_t>{32, 32, 32});
  CHECK(b.fusion.fused[0].per_tensor == std::vector<bool>{false, false, false});
  // Counted before the fusion: the fused weight still holds three.
  CHECK(b.quantized_in_output == a.quantized_in_output);
  CHECK(first_output(a.model).equal(first_output(b.model)));

  for (const auto stage : {bertq::ConversionStage::Debug, bertq::ConversionStage::Prepared}) {
    bertq::ConversionSettings s = fused;
    s.stage = stage;
    try {
      bertq::convert_model(model, dict, s);
      FAIL("--fuse-qkv was accepted for a model that is not final");
    } catch (const bertq::Error& e) {
      CHECK(e.kind() == bertq::ErrorKind::Usage);
    }
  }
}
