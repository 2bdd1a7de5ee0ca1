// Writes the HTML report of a made-up BERT-base conversion (74 quantized
// Linear modules, 12 layers, realistic sizes and SQNRs with a few bad layers)
// to stdout, for checking the page's layout at full size without a 440 MB
// model. Links only bertq_core (no LibTorch). See make-synthetic-report.sh.
//
//   synthetic_report [--dry-run] [--fail] [--long]
//     --dry-run  a dry run: sizes "if written", no output hash
//     --fail     a failed --require-quantized guard: nothing written, no output sizes
//     --long     hostile strings: a 150-character module path, a long command
//                line and warnings without spaces, markup in names

#include <cmath>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "qconfig/qconfig.h"
#include "report/report.h"

using namespace bertq;

namespace {

// Deterministic noise in [-1, 1).
double noise(uint32_t& state) {
  state = state * 1664525u + 1013904223u;
  return static_cast<double>(state >> 8) / static_cast<double>(1u << 23) - 1.0;
}

uint64_t float_bytes(const std::vector<int64_t>& shape, bool bias) {
  uint64_t n = 1;
  for (auto d : shape) n *= static_cast<uint64_t>(d);
  return 4 * n + (bias ? 4 * static_cast<uint64_t>(shape[0]) : 0);
}

}  // namespace

int main(int argc, char** argv) {
  bool dry_run = false, fail = false, hostile = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--dry-run")
      dry_run = true;
    else if (a == "--fail")
      fail = true;
    else if (a == "--long")
      hostile = true;
    else {
      std::cerr << "usage: synthetic_report [--dry-run] [--fail] [--long]\n";
      return 2;
    }
  }

  Report r;
  r.bertq_version = "0.2.0";
  r.libtorch_version = "1.13.1";
  r.libtorch_package = "libtorch-dev 1.13.1+dfsg-4";
  r.engine = "onednn";
  r.dry_run = dry_run;
  r.created = "2025-01-31T09:41:07Z";
  r.command_line =
      "bertq convert models/bert-base-uncased-mrpc.pt out/bert-base-uncased-mrpc.int8.pt "
      "--html out/report.html --require-quantized 'bert.encoder.*'";
  if (hostile)
    r.command_line += " --qconfig /very/long/path/" + std::string(180, 'x') +
                      "/qconfig.json --report '<script>alert(1)</script>.json'";
  r.input = {"models/bert-base-uncased-mrpc.pt", "2b2c1e0b9a7d4c3f8e6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e",
             438'280'328};
  r.output.path = "out/bert-base-uncased-mrpc.int8.pt";
  r.qconfig = default_qconfig_dict();

  uint32_t seed = 12345;
  auto add = [&](const std::string& path, const std::string& type, std::vector<int64_t> shape, bool quantize,
                 double sqnr, bool shared = false) {
    ModuleReport m;
    m.plan.path = path;
    m.plan.type_name = type;
    m.plan.weight_shape = shape;
    m.plan.rule.kind = RuleKind::Global;
    m.bytes_before = float_bytes(shape, type != "Embedding");
    if (quantize) {
      m.plan.quantized = true;
      m.plan.op = "linear_dynamic";
      m.dtype = "qint8";
      m.qscheme = "per_channel_affine";
      m.axis = 0;
      for (int64_t c = 0; c < shape[0]; ++c) {
        m.scales.push_back(0.0021 * (1 + 0.35 * noise(seed)));
        m.zero_points.push_back(0);
      }
      m.sqnr_db = sqnr;
      m.max_abs_error = 0.0021 * std::pow(10.0, (44 - sqnr) / 20);
      m.bytes_after = static_cast<uint64_t>(shape[0] * shape[1]) + 16 * static_cast<uint64_t>(shape[0]) + 256;
    } else {
      m.plan.float_reason = type == "Embedding" ? "aten::embedding is not supported by graph-mode dynamic quantization"
                                                : "LayerNorm is not quantized by dynamic quantization";
      m.dtype = "float32";
      m.bytes_after = shared ? 0 : m.bytes_before;
      m.bytes_shared = shared ? m.bytes_before : 0;
    }
    r.modules.push_back(m);
  };

  add("bert.embeddings.word_embeddings", "Embedding", {30522, 768}, false, 0);
  add("bert.embeddings.position_embeddings", "Embedding", {512, 768}, false, 0);
  add("bert.embeddings.token_type_embeddings", "Embedding", {2, 768}, false, 0);
  add("bert.embeddings.LayerNorm", "LayerNorm", {768}, false, 0);
  for (int l = 0; l < 12; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
    // Near-identical SQNRs, as real BERT weights give, with a few bad layers.
    auto s = [&](double base) { return base + 0.6 * noise(seed); };
    add(p + "attention.self.query", "Linear", {768, 768}, true, s(44.8));
    add(p + "attention.self.key", "Linear", {768, 768}, true, s(44.9));
    add(p + "attention.self.value", "Linear", {768, 768}, true, s(45.2));
    add(p + "attention.output.dense", "Linear", {768, 768}, true, l == 9 ? 41.2 : s(44.6));
    add(p + "attention.output.LayerNorm", "LayerNorm", {768}, false, 0, true);
    add(p + "intermediate.dense", "Linear", {3072, 768}, true, l == 11 ? 42.9 : s(44.4));
    add(p + "output.dense", "Linear", {768, 3072}, true, l == 11 ? 39.7 : s(43.9));
    add(p + "output.LayerNorm", "LayerNorm", {768}, false, 0, true);
  }
  add("bert.pooler.dense", "Linear", {768, 768}, true, 45.6);
  add("classifier", "Linear", {2, 768}, true, 46.3);
  if (hostile) {
    add("bert.adapters.<b>not_bold</b>." + std::string(120, 'a') + ".dense", "Linear", {64, 768}, true, 44.0);
    r.warnings.push_back("a warning without spaces: " + std::string(300, 'w'));
    r.warnings.push_back("qconfig key \"bert.encoder.layer.12\" quantized nothing <img src=x onerror=alert(1)>");
  }
  r.warnings.push_back("qconfig key \"bert.encoder.layer.12\" names no module (ignored because of --allow-missing)");

  r.quantized_in_output = r.quantized_count();
  r.input_sizes.total = r.input.bytes;
  for (const auto& m : r.modules) r.input_sizes.modules += m.bytes_before;
  r.input_sizes.other_tensors = 2'048;
  r.input_sizes.code_and_metadata = 310'221;
  r.input_sizes.zip_overhead =
      r.input_sizes.total - r.input_sizes.modules - r.input_sizes.other_tensors - r.input_sizes.code_and_metadata;

  r.guards.push_back({"nothing quantized", true, ""});
  if (fail)
    r.guards.push_back({"require_quantized \"bert.pooler.*\"", false,
                        "--require-quantized \"bert.pooler.*\": 1 of 1 matching Linear modules stay float: "
                        "bert.pooler.dense (opted out: null at \"bert.pooler\")"});
  else
    r.guards.push_back({"require_quantized \"bert.encoder.*\"", true, ""});

  if (!fail) {
    for (const auto& m : r.modules) r.output_sizes.modules += m.bytes_after;
    r.output_sizes.other_tensors = 2'048;
    r.output_sizes.code_and_metadata = 141'733;
    r.output_sizes.zip_overhead = 61'440;
    r.output_sizes.total = r.output_sizes.modules + r.output_sizes.other_tensors + r.output_sizes.code_and_metadata +
                           r.output_sizes.zip_overhead;
    if (!dry_run) {
      r.output.bytes = r.output_sizes.total;
      r.output.sha256 = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0";
    }
  } else {
    for (auto& m : r.modules) m.bytes_after = 0, m.bytes_shared = 0;
  }
  print_html(r, std::cout);
  return 0;
}
