// `bertq convert` and `bertq prepare` as a user meets them: the exact message
// and exit code for every kind of bad input, and never a partial, clobbered or
// misplaced file.
#include "cli/cli.h"

using namespace cli;

TEST_CASE("convert prints the summary and writes a loadable model", "[cli][convert]") {
  Scratch s;
  const Result r = run({"convert", kModel, s / "q.pt"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("bertq quantize: " + kModel + " -> " + s / "q.pt" + " (engine onednn)\n") == 0);
  CHECK(contains(r.out, "  modules: 14 quantized, 8 left float (of 22 with weights)\n"));
  CHECK(contains(r.out, "    14 x linear_dynamic\n"));
  CHECK(contains(r.out, "    5 float: LayerNorm is not quantized by dynamic quantization\n"));
  CHECK(contains(r.out,
                 "    3 float: embeddings take a weight-only qconfig (float_qparams_weight_only, or --embeddings "
                 "8bit/4bit), not the Linear one that reaches them\n"));
  CHECK(fs::file_size(s / "q.pt") > 0);
  CHECK(s.leftovers().empty());
}

TEST_CASE("the embeddings flag quantizes every embedding's rows, and a null still opts out",
          "[cli][convert][embeddings]") {
  Scratch s;
  Result r = run({"convert", kModel, s / "q8.pt", "--embeddings", "8bit"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "  modules: 17 quantized, 5 left float (of 22 with weights)\n"));
  CHECK(contains(r.out, "    3 x embedding_byte\n"));
  CHECK(contains(r.err, "3 embedding modules quantized by bertq"));
  CHECK(contains(r.err, "beyond quantize_dynamic_jit"));
  r = run({"convert", kModel, s / "q4.pt", "--embeddings", "4bit"});
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "    3 x embedding_4bit\n"));
  CHECK(fs::file_size(s / "q4.pt") < fs::file_size(s / "q8.pt"));
  // A null in the qconfig is the user's word for that module.
  write_file(s / "q.json", R"({"": "per_channel_dynamic", "bert.embeddings.position_embeddings": null})");
  r = run({"convert", kModel, s / "qn.pt", "--embeddings", "8bit", "--qconfig", s / "q.json"});
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "    2 x embedding_byte\n"));
  // float: as quantize_dynamic_jit, whatever the qconfig says.
  write_file(s / "e.json", R"({"": "per_channel_dynamic", "bert.embeddings": "float_qparams_weight_only"})");
  r = run({"convert", kModel, s / "qf.pt", "--embeddings", "float", "--qconfig", s / "e.json"});
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "  modules: 14 quantized, 8 left float (of 22 with weights)\n"));
  CHECK(contains(r.out, "    3 float: --embeddings float keeps embeddings float, as quantize_dynamic_jit does\n"));
  r = run({"convert", kModel, s / "qe.pt", "--qconfig", s / "e.json"});
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "    3 x embedding_byte\n"));
  // The debug model is PyTorch's float simulation: embeddings stay float, said so.
  r = run({"convert", kModel, s / "qd.pt", "--embeddings", "8bit", "--debug"});
  REQUIRE(r.code == 0);
  CHECK(contains(r.err, "3 embedding modules planned for quantized rows stay float: --debug keeps embeddings float"));
  // A value it does not know is a usage error, with the values it knows.
  r = run({"convert", kModel, s / "bad.pt", "--embeddings", "8-bit"});
  CHECK(r.code == 2);
  CHECK(contains(r.err, "bertq: error: --embeddings takes 8bit, 4bit or float, got \"8-bit\"\n"));
  CHECK_FALSE(fs::exists(s / "bad.pt"));
}

TEST_CASE("the output may not be the input, also through a link", "[cli][convert][errors]") {
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
  CHECK(contains(r.err, "is the input file"));
  fs::create_hard_link(s / "m.pt", s / "hard.pt");
  r = run({"convert", s / "m.pt", s / "hard.pt"});
  CHECK(r.code == 2);
  CHECK(byte_difference(slurp(s / "m.pt"), before) == "");
}

TEST_CASE("an output that is a link is written through it, the link kept", "[cli][convert]") {
  Scratch s;
  fs::create_directories(s / "real");
  write_file(s / "real/q.pt", "old");
  fs::create_symlink(s / "real/q.pt", s / "q.pt");
  const Result r = run({"convert", kModel, s / "q.pt"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(fs::is_symlink(s / "q.pt"));
  CHECK(fs::file_size(s / "real/q.pt") > 1000);
  CHECK(s.leftovers().empty());
}

TEST_CASE("swapped arguments never overwrite the float model", "[cli][convert][errors]") {
  Scratch s;
  fs::copy_file(kModel, s / "model.pt");
  REQUIRE(run({"convert", s / "model.pt", s / "model_q.pt"}).code == 0);
  REQUIRE(run({"convert", s / "model.pt", s / "model_debug.pt", "--debug"}).code == 0);
  const std::string float_bytes = slurp(s / "model.pt");
  // The quantized model first: refused, the float model untouched.
  Result r = run({"convert", s / "model_q.pt", s / "model.pt"});
  CHECK(r.code == 4);
  CHECK(r.err == "bertq: error: " + s / "model_q.pt" +
                     " is already quantized (14 quantized weights, quantized::linear_dynamic in its graph); "
                     "converting it again would overwrite " +
                     s / "model.pt" +
                     " with a copy of it\nhint: did you swap INPUT and OUTPUT? `bertq convert FLOAT.pt QUANTIZED.pt`; "
                     "--allow-requantize quantizes what is still float in it\n");
  CHECK(byte_difference(slurp(s / "model.pt"), float_bytes) == "");
  r = run({"convert", s / "model_debug.pt", s / "model.pt"});
  CHECK(r.code == 4);
  CHECK(contains(r.err, " is a debug model (float weights with stored scales"));
  CHECK(byte_difference(slurp(s / "model.pt"), float_bytes) == "");
  // Asked for, a quantized model converts: nothing is left to quantize in it.
  r = run({"convert", s / "model_q.pt", s / "again.pt", "--allow-requantize", "--allow-nothing-quantized"});
  CHECK(r.code == 0);
  CHECK(s.leftovers().empty());
}

TEST_CASE("a conversion that quantizes nothing is an error unless allowed", "[cli][convert][errors]") {
  Scratch s;
  const std::string model = kSource + "/testdata/bad/nothing_quantizable.pt";
  Result r = run({"convert", model, s / "out.pt", "--report", s / "r.json"});
  CHECK(r.code == 7);
  CHECK(r.err ==
        "bertq: warning: qconfig key \"\" quantized nothing (norm: LayerNorm is not quantized by dynamic "
        "quantization)\nbertq: error: nothing was quantized: no weight is reached by a qconfig that quantizes "
        "it (1 weight-bearing modules, all float)\nhint: --allow-nothing-quantized writes it anyway; run "
        "`bertq convert --dry-run` to see why each module stays float\n");
  CHECK_FALSE(fs::exists(s / "out.pt"));
  // The report is written: that is when CI needs it.
  const auto j = parse_json(slurp(s / "r.json"));
  CHECK(j["guards"][0]["name"] == "nothing quantized");
  CHECK(j["guards"][0]["passed"] == false);
  r = run({"convert", model, s / "out.pt", "--allow-nothing-quantized"});
  CHECK(r.code == 0);
  CHECK(run({"inspect", s / "out.pt"}).code == 0);
  // A qconfig of nulls quantizes nothing either.
  write_file(s / "q.json", R"({"": null})");
  r = run({"convert", kModel, s / "out2.pt", "--qconfig", s / "q.json"});
  CHECK(r.code == 7);
  CHECK_FALSE(fs::exists(s / "out2.pt"));
}

TEST_CASE("weights that are not a module's parameter are counted from the graph", "[cli][convert]") {
  // F.linear on a plain tensor attribute (scripted) or a traced constant, as in
  // PyTorch's test_linear: Python's output holds quantized::linear_dynamic.
  for (const char* name : {"functional_attr", "functional_const", "functional_buffer"}) {
    Scratch s;
    const std::string model = kSource + "/testdata/models/" + name + ".pt";
    INFO(model);
    Result r = run({"convert", model, s / "q.pt", "--format", "json"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const auto j = parse_json(r.out);
    CHECK(j["summary"]["quantized"] == 1);
    CHECK(j["summary"]["quantized_in_output"] == 1);
    CHECK(j["summary"]["quantized_weight_fraction"] == 1.0);
    CHECK(j["modules"][0]["functional"] == true);
    CHECK(j["modules"][0]["packed_attr"].is_string());
    CHECK(j["modules"][0]["scales"].size() == 8);
    // The guards see it too.
    CHECK(run({"convert", model, s / "q2.pt", "--min-quantized-fraction", "1"}).code == 0);
    CHECK(run({"convert", model, s / "q3.pt", "--require-quantized", "*"}).code == 0);
  }
}

TEST_CASE("files that are not TorchScript archives are named for what they are", "[cli][convert][errors]") {
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
      {bad + "state_dict.pt", "is a state_dict saved with torch.save (tensors only, no code), not a TorchScript model",
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

TEST_CASE("a model without forward is refused", "[cli][convert][errors]") {
  Scratch s;
  const Result r = run({"convert", kSource + "/testdata/bad/no_forward.pt", s / "out.pt"});
  CHECK(r.code == 4);
  CHECK(r.err ==
        "bertq: error: the model has no forward method\nhint: bertq quantizes what forward "
        "computes; trace or script a module with forward\n");
  CHECK_FALSE(fs::exists(s / "out.pt"));
}

TEST_CASE("non-finite weights are bad input, named with their count", "[cli][convert][errors]") {
  Scratch s;
  Result r = run({"convert", kSource + "/testdata/bad/nan_weight.pt", s / "out.pt"});
  CHECK(r.code == 4);
  CHECK(r.err.find("bertq: error: the weight sub.fc1.weight has 3 non-finite values (NaN or infinity) of 512; "
                   "quantization needs finite weights\n") == 0);
  r = run({"convert", kSource + "/testdata/bad/inf_weight.pt", s / "out.pt", "--debug"});
  CHECK(r.code == 4);
  CHECK(r.err.find("bertq: error: the weight fc.weight has 2 non-finite values (NaN or infinity) of 256;") == 0);
  r = run({"convert", kSource + "/testdata/bad/inf_weight.pt", s / "out.pt", "--dry-run"});
  CHECK(r.code == 4);
  // Opted out, the module's weight is not quantized and does not matter.
  write_file(s / "q.json", R"({"": "per_channel_dynamic", "fc": null})");
  r = run({"convert", kSource + "/testdata/bad/inf_weight.pt", s / "out.pt", "--qconfig", s / "q.json"});
  CHECK(r.code == 0);
}

TEST_CASE("a qconfig key that names no module lists the closest modules", "[cli][convert][errors]") {
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

TEST_CASE("a qconfig keyed by module type says that keys are module paths", "[cli][convert][errors]") {
  Scratch s;
  // Eager mode's type keys, as a string and as Python spells the class; a
  // key that is a module path gets no such hint.
  for (const std::string key : {"Linear", "torch.nn.Linear", "nn.Linear", "BertLayer", "bert.encoder.layer.9"}) {
    INFO(key);
    write_file(s / "q.json", "{\"" + key + "\": \"per_channel_dynamic\"}");
    const Result r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "q.json"});
    CHECK(r.code == 3);
    const bool hinted = contains(r.err,
                                 "\nhint: keys are module paths (\"\" is the whole model); graph mode has no "
                                 "type keys, so name each module (or a parent of them); closest modules: ");
    CHECK(hinted == (key != "bert.encoder.layer.9"));
  }
  CHECK_FALSE(fs::exists(s / "out.pt"));
}

TEST_CASE("a bad qconfig file fails before the model is touched", "[cli][convert][errors]") {
  Scratch s;
  write_file(s / "q.json", "{\"\": \"per_channel_dynamic\",\n  \"classifier\": }\n");
  Result r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "q.json"});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: " + s / "q.json" +
                     ":2:17: malformed JSON: syntax error while parsing value - unexpected '}'; "
                     "expected '[', '{', or a literal\n");
  r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "missing.json"});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: cannot read qconfig file " + s / "missing.json" + ": No such file or directory\n");
  CHECK_FALSE(fs::exists(s / "out.pt"));
}

TEST_CASE("qconfig holes: duplicates at any depth, integers out of range, NUL bytes", "[cli][convert][errors]") {
  Scratch s;
  struct Case {
    std::string json;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"": "per_channel_dynamic", "": null})", ": [\"\"]: duplicate key"},
      {R"({"": {"preset": "default_dynamic", "weight": {"observer": "minmax", "dtype": "qint8", "dtype": "quint8"}}})",
       ": [\"\"].weight.dtype: duplicate key"},
      {R"({"": {"preset": "per_channel_dynamic", "weight": {"quant_min": 18446744073709551489, "quant_max": 127}}})",
       ": [\"\"].weight.quant_min: the integer 18446744073709551489 is out of range"},
      {std::string("{\"\": \"per_channel_dynamic\"}\0garbage", 36), ":1:28: malformed JSON: a NUL byte"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    write_file(s / "q.json", c.json);
    const Result r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "q.json"});
    CHECK(r.code == 3);
    CHECK(r.err.find("bertq: error: " + s / "q.json" + c.message) == 0);
    CHECK_FALSE(fs::exists(s / "out.pt"));
  }
}

TEST_CASE("a qconfig from stdin, a pipe or a FIFO", "[cli][convert]") {
  Scratch s;
  write_file(s / "q.json", R"({"": "default_dynamic"})");
  Result r = run({"convert", kModel, s / "a.pt", "--qconfig", "-", "--format", "json"}, s / "q.json");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(parse_json(r.out)["qconfig"]["resolved"][""]["weight"]["qscheme"] == "per_tensor_symmetric");
  r = run({"convert", kModel, s / "b.pt", "--qconfig", "/dev/stdin"}, s / "q.json");
  CHECK(r.code == 0);
  // Process substitution: a pipe under /dev/fd.
  CHECK(shell("bash -c " + quote(quote(kBinary) + " convert " + quote(kModel) + " " + quote(s / "c.pt") +
                                 " --qconfig <(cat " + quote(s / "q.json") + ") >/dev/null 2>&1")) == 0);
  REQUIRE(::mkfifo((s / "fifo").c_str(), 0600) == 0);
  CHECK(shell("(cat " + quote(s / "q.json") + " > " + quote(s / "fifo") + " &) ; " + quote(kBinary) + " convert " +
              quote(kModel) + " " + quote(s / "d.pt") + " --qconfig " + quote(s / "fifo") + " >/dev/null 2>&1") == 0);
  CHECK(slurp(s / "a.pt").size() == slurp(s / "d.pt").size());
  // The size cap holds while reading a stream that never ends.
  r = run({"convert", kModel, s / "e.pt", "--qconfig", "-"}, "/dev/zero");
  CHECK(r.code == 3);
  CHECK(r.err ==
        "bertq: error: qconfig file standard input is larger than 16777216 bytes, too large for a qconfig "
        "file\n");
}

TEST_CASE("what Python accepts, bertq accepts: preset overrides and other activation observers",
          "[cli][convert][qconfig]") {
  Scratch s;
  // A preset override without "observer" changes one field of the preset's observer.
  write_file(s / "q.json", R"({"": {"preset": "per_channel_dynamic", "weight": {"reduce_range": true}}})");
  Result r = run({"convert", kSubmodules, s / "a.pt", "--qconfig", s / "q.json", "--format", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto j = parse_json(r.out);
  CHECK(j["qconfig"]["resolved"][""]["weight"]["observer"] == "per_channel_minmax");
  CHECK(j["qconfig"]["resolved"][""]["weight"]["reduce_range"] == true);
  // A static activation observer is ignored by dynamic quantization, with a warning.
  write_file(s / "q.json", R"({"": {"preset": "per_channel_dynamic", "activation": {"observer": "minmax"}}})");
  r = run({"convert", kSubmodules, s / "b.pt", "--qconfig", s / "q.json"});
  CHECK(r.code == 0);
  CHECK(contains(r.err, "activation: the minmax activation observer is ignored in dynamic quantization"));
  // A float32 placeholder with int8 weights is int8 dynamic quantization.
  write_file(s / "q.json", R"({"": {"activation": {"observer": "placeholder"},
      "weight": {"observer": "minmax", "dtype": "qint8", "qscheme": "per_tensor_symmetric"}}})");
  CHECK(run({"convert", kSubmodules, s / "c.pt", "--qconfig", s / "q.json"}).code == 0);
  // What crashes Python stays refused: a quint8 placeholder without compute_dtype.
  write_file(s / "q.json", R"({"": {"activation": {"observer": "placeholder", "dtype": "quint8"},
      "weight": {"observer": "minmax", "dtype": "qint8", "qscheme": "per_tensor_symmetric"}}})");
  r = run({"convert", kSubmodules, s / "d.pt", "--qconfig", s / "q.json"});
  CHECK(r.code == 3);
  CHECK(contains(r.err, "a quint8 placeholder activation needs \"compute_dtype\": \"quint8\""));
}

TEST_CASE("Python spellings in a qconfig get the JSON spelling as a hint", "[cli][convert][qconfig]") {
  Scratch s;
  struct Case {
    std::string json;
    std::string hint;
  };
  const std::vector<Case> cases = {
      {R"({"": None})", "hint: this looks like Python: JSON spells None, True and False as null, true and false\n"},
      {R"({'': 'per_channel_dynamic'})", "hint: this looks like Python: JSON strings take double quotes\n"},
      {R"({"": "per_channel_dynamic_qconfig"})",
       "hint: PyTorch's per_channel_dynamic_qconfig is the preset \"per_channel_dynamic\" here; presets: "},
      {R"({"": {"preset": "default_dynamic", "weight": {"observer": "minmax", "dtype": "torch.qint8"}}})",
       "hint: JSON spells torch.qint8 as \"qint8\"; allowed: "},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    write_file(s / "q.json", c.json);
    const Result r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "q.json"});
    CHECK(r.code == 3);
    CHECK(contains(r.err, c.hint));
  }
}

TEST_CASE("messages escape what a terminal would obey, and stay short", "[cli][convert][errors]") {
  Scratch s;
  // An escape sequence in a file name reaches the terminal escaped.
  const std::string evil = s / "\x1b[31mred.pt";
  Result r = run({"convert", evil, s / "out.pt"});
  CHECK(r.code == 4);
  CHECK_FALSE(contains(r.err, "\x1b"));
  CHECK(contains(r.err, "\\x1b[31mred.pt"));
  // A NUL inside a JSON string ends no message early.
  write_file(s / "q.json", R"({"": "per_channel_dynamic", "a\u0000b": null})");
  r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "q.json"});
  CHECK(r.code == 3);
  CHECK(contains(r.err, "qconfig key \"a\\x00b\" names no module in the model\n"));
  // A 10 MB preset name is not echoed whole.
  write_file(s / "q.json", "{\"\": \"" + std::string(10 << 20, 'x') + "\"}");
  r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "q.json"});
  CHECK(r.code == 3);
  CHECK(r.err.size() < 1000);
  CHECK(contains(r.err, "...\" (10485760 bytes in all)"));
}

TEST_CASE("a qconfig that only a model-level check can catch", "[cli][convert][errors]") {
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
    CHECK(contains(r.err, "hint: use qscheme per_channel_symmetric or per_tensor_symmetric, or --engine qnnpack\n"));
  }
  CHECK_FALSE(fs::exists(s / "out.pt"));
}

TEST_CASE("fp16 is refused where it cannot run, unless asked for", "[cli][convert][errors]") {
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

TEST_CASE("usage errors, with a did-you-mean", "[cli][convert][errors]") {
  Scratch s;
  Result r = run({"convert", kModel, s / "out.pt", "--engine", "fbgem"});
  CHECK(r.code == 2);
  CHECK(r.err.find("bertq: error: unknown engine \"fbgem\"\nhint: did you mean \"fbgemm\"? this LibTorch has: ") == 0);
  // A known engine this LibTorch lacks is not a typo.
  r = run({"convert", kModel, s / "out.pt", "--engine", "fbgemm"});
  CHECK(r.code == 6);
  CHECK(r.err.find("bertq: error: engine fbgemm is not in this LibTorch (") == 0);
  r = run({"convert", kModel});
  CHECK(r.code == 2);
  CHECK(r.err.find("bertq: error: output is required") == 0);
  // The word bertq did not know, and what was meant, come first.
  r = run({"convrt", kModel, s / "out.pt"});
  CHECK(r.code == 2);
  CHECK(r.err == "bertq: error: unknown subcommand \"convrt\": did you mean `bertq convert`?\n");
  r = run({"convert", kModel, s / "out.pt", "--dryrun"});
  CHECK(r.code == 2);
  CHECK(r.err == "bertq: error: unknown flag --dryrun for `bertq convert`: did you mean --dry-run?\n");
  // A flag with a value: not "arguments were not expected: 8bit --embedings".
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"convert", kModel, s / "out.pt", "--embedings", "8bit"},
        {"convert", "--embedings=8bit", kModel, s / "out.pt"}}) {
    r = run(args);
    CHECK(r.code == 2);
    CHECK(r.err == "bertq: error: unknown flag --embedings for `bertq convert`: did you mean --embeddings?\n");
  }
  r = run({"frobnicate"});
  CHECK(r.code == 2);
  CHECK(r.err ==
        "bertq: error: unknown subcommand \"frobnicate\"\nhint: subcommands: convert, prepare, inspect, diff, "
        "bench, eval, compare, tune, batch\n");
  CHECK_FALSE(fs::exists(s / "out.pt"));
}

TEST_CASE("a repeatable flag takes one value per occurrence and leaves the positionals alone", "[cli][convert]") {
  Scratch s;
  // Before the positionals, twice.
  const Result r = run({"convert", "--require-quantized", "bert.encoder.*", "--require-quantized", "bert.pooler*",
                        kModel, s / "out.pt", "--format", "json"});
  REQUIRE(r.code == 0);
  const auto report = parse_json(r.out);
  std::vector<std::string> guards;
  for (const auto& g : report["guards"]) guards.push_back(g["name"]);
  CHECK(guards == std::vector<std::string>{"nothing quantized", "require_quantized \"bert.encoder.*\"",
                                           "require_quantized \"bert.pooler*\""});
  CHECK(fs::exists(s / "out.pt"));
}

TEST_CASE("each subcommand's help ends with its own example and exit codes", "[cli]") {
  for (const std::string sub : {"convert", "prepare", "inspect", "diff", "bench", "eval", "compare", "tune", "batch"}) {
    INFO(sub);
    const Result r = run({sub, "--help"});
    CHECK(r.code == 0);
    const size_t example = r.out.rfind("example:\n  ");
    REQUIRE(example != std::string::npos);
    CHECK(r.out.compare(example, 18 + sub.size(), "example:\n  bertq " + sub + " ") == 0);
    // Every example line is this subcommand's (prepare's second is the
    // convert that finishes it).
    const size_t exits = r.out.find("\n\nexit codes: ", example);
    REQUIRE(exits != std::string::npos);
    std::istringstream lines(r.out.substr(example + 9, exits - example - 9));
    for (std::string line; std::getline(lines, line);)
      CHECK((line.rfind("  bertq " + sub + " ", 0) == 0 || (sub == "prepare" && contains(line, "bertq convert"))));
    CHECK(contains(r.out.substr(exits), "128+N stopped by signal N"));
  }
}

TEST_CASE("the version and help texts say what a user needs", "[cli]") {
  Result r = run({"--version"});
  CHECK(r.code == 0);
  CHECK(r.out.rfind("bertq ", 0) == 0);
  CHECK(contains(r.out, "\nLibTorch " + std::string(BERTQ_LIBTORCH_VERSION)));
  CHECK(contains(r.out, "\nquantized engines: "));
  CHECK(contains(r.out, "onednn"));
  CHECK(contains(r.out, "\nBLAS: "));
  r = run({"--help"});
  CHECK(r.code == 0);
  CHECK(contains(r.out, "example:\n  bertq convert bert.pt bert_int8.pt --qconfig q.json"));
  CHECK(contains(r.out, "exit codes: 0 ok; 1 internal error; 2 usage; 3 qconfig; 4 input model; 5 cannot write"));
  r = run({"convert", "--help"});
  CHECK(contains(r.out, "--allow-requantize"));
  CHECK(contains(r.out, "--threads"));
}

TEST_CASE("an unwritable output folder fails cleanly", "[cli][convert][errors]") {
  Scratch s;
  const Result r = run({"convert", kModel, s / "no/such/dir/out.pt"});
  CHECK(r.code == 5);
  CHECK(r.err == "bertq: error: cannot write output " + s / "no/such/dir/out.pt" + ": folder " + s / "no/such/dir" +
                     " does not exist\nhint: create the folder first\n");
}

TEST_CASE("devices, FIFOs and folders at an output path are never replaced", "[cli][convert][errors]") {
  Scratch s;
  REQUIRE(::mkfifo((s / "fifo").c_str(), 0600) == 0);
  fs::create_directories(s / "folder");
  std::vector<std::pair<std::string, std::string>> nodes = {{s / "fifo", "a FIFO (named pipe)"},
                                                            {s / "folder", "a folder"}};
  if (running_as_root()) {
    // Our own null device, never the machine's /dev/null.
    REQUIRE(::mknod((s / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
    nodes.push_back({s / "null", "a character device"});
  } else {
    WARN("not root: the character-device case needs mknod and is not tested");
  }
  for (const auto& [path, kind] : nodes) {
    INFO(path);
    for (const std::string flag : {"output", "--report", "--html"}) {
      INFO(flag);
      std::vector<std::string> args = {"convert", kModel, flag == "output" ? path : s / "q.pt"};
      if (flag != "output") args.insert(args.end(), {flag, path});
      const Result r = run(args);
      CHECK(r.code == 2);
      CHECK(r.err == "bertq: error: " + flag + " " + path + " is " + kind +
                         "; bertq writes only regular files\nhint: give the path of a new or existing regular file\n");
    }
  }
  CHECK(fs::is_fifo(s / "fifo"));
  if (running_as_root()) CHECK(fs::is_character_file(s / "null"));
  CHECK(fs::is_directory(s / "folder"));
  CHECK_FALSE(fs::exists(s / "q.pt"));
  CHECK(s.leftovers().empty());
}

TEST_CASE("report files never land on the input, the model or each other", "[cli][convert][errors]") {
  Scratch s;
  fs::copy_file(kModel, s / "in.pt");
  write_file(s / "q.json", R"({"": "per_channel_dynamic"})");
  const std::string in_bytes = slurp(s / "in.pt");
  struct Case {
    std::vector<std::string> extra;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--report", s / "in.pt"},
       "--report " + s / "in.pt" +
           " is the input file; bertq never overwrites its input\nhint: choose another "
           "path for --report\n"},
      {{"--html", s / "out.pt"},
       "--html " + s / "out.pt" +
           " is also the output file\nhint: give each output its own "
           "path\n"},
      {{"--report", s / "r.json", "--html", s / "r.json"},
       "--html " + s / "r.json" + " is also the --report file\nhint: give each output its own path\n"},
      {{"--qconfig", s / "q.json", "--report", s / "q.json"},
       "--report " + s / "q.json" +
           " is the --qconfig file; bertq never overwrites what it reads\nhint: choose "
           "another path for --report\n"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"convert", s / "in.pt", s / "out.pt"};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    const Result r = run(args);
    INFO(r.err);
    CHECK(r.code == 2);
    CHECK(r.err == "bertq: error: " + c.message);
    CHECK_FALSE(fs::exists(s / "out.pt"));
  }
  CHECK(byte_difference(slurp(s / "in.pt"), in_bytes) == "");
  CHECK(slurp(s / "q.json") == R"({"": "per_channel_dynamic"})");
}

TEST_CASE("prepare then convert gives a quantized model", "[cli][convert]") {
  Scratch s;
  Result r = run({"prepare", kModel, s / "prepared.pt"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("bertq prepare: ") == 0);
  r = run({"convert", s / "prepared.pt", s / "q.pt"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("bertq convert prepared: ") == 0);
  CHECK(contains(r.out, "  modules: 14 quantized, 8 left float (of 22 with weights)\n"));
  // The qconfig was fixed at prepare time.
  r = run({"convert", s / "prepared.pt", s / "q2.pt", "--qconfig", kSource + "/configs/default_dynamic.json"});
  CHECK(r.code == 2);
  CHECK(contains(r.err, "is already prepared; its qconfig was fixed by `bertq prepare`"));
}

TEST_CASE("a model bertq wrote with a newer LibTorch, or prepared with another line, is refused",
          "[cli][convert][errors]") {
  // testdata/bad/manifest_*.pt (testdata/hostile.py) carry a bertq manifest
  // that names another LibTorch.
  Scratch s;
  const std::string here = BERTQ_LIBTORCH_VERSION;
  Result r = run({"convert", kSource + "/testdata/bad/manifest_newer.pt", s / "q.pt"});
  CHECK(r.code == 4);
  CHECK(contains(r.err,
                 "manifest_newer.pt: it was written by bertq with LibTorch 99.0.0, newer than this bertq's "
                 "LibTorch " +
                     here + "\n"));
  r = run({"convert", kSource + "/testdata/bad/manifest_prepared_old.pt", s / "q.pt"});
  CHECK(r.code == 4);
  CHECK(contains(
      r.err, "it was prepared with LibTorch 1.0.0, whose observers differ from this bertq's LibTorch " + here + "\n"));
  CHECK_FALSE(fs::exists(s / "q.pt"));
}

TEST_CASE("convert --dry-run prints the plan with the exact size and writes nothing", "[cli][convert][report]") {
  Scratch s;
  const Result r = run({"convert", kModel, s / "out.pt", "--dry-run"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("bertq dry run: " + kModel + " -> (nothing written) (engine onednn)\n") == 0);
  CHECK(contains(r.out, ", if written\n"));
  const size_t row =
      r.out.find("\nbert.encoder.layer.0.attention.self.query        Linear     linear_dynamic  [32, 32]");
  REQUIRE(row != std::string::npos);
  const std::string line = r.out.substr(row + 1, r.out.find('\n', row + 1) - row - 1);
  CHECK(line.size() > 10);
  CHECK(line.substr(line.size() - 9) == "global \"\"");  // the rule, last
  CHECK(fs::is_empty(s.dir));
  const Result real = run({"convert", kModel, s / "out.pt"});
  REQUIRE(real.code == 0);
  const auto size_line = [](const std::string& out) { return out.substr(out.find("  size: "), 40); };
  CHECK(size_line(r.out).substr(0, 30) == size_line(real.out).substr(0, 30));
}

TEST_CASE("coverage guards fail the conversion before the model is written", "[cli][convert][errors]") {
  Scratch s;
  const std::string nested = kSource + "/testdata/qconfigs/bert_nested.json";
  Result r = run({"convert", kModel, s / "out.pt", "--qconfig", nested, "--require-quantized", "bert.encoder.*",
                  "--report", s / "r.json", "--html", s / "r.html"});
  CHECK(r.code == 7);
  CHECK(r.err ==
        "bertq: error: --require-quantized \"bert.encoder.*\": 5 of 12 matching Linear modules stay float: "
        "bert.encoder.layer.1.attention.self.query (opted out: null at \"bert.encoder.layer.1\"), "
        "bert.encoder.layer.1.attention.self.key (opted out: null at \"bert.encoder.layer.1\"), "
        "bert.encoder.layer.1.attention.self.value (opted out: null at \"bert.encoder.layer.1\"), "
        "bert.encoder.layer.1.attention.output.dense (opted out: null at \"bert.encoder.layer.1\"), "
        "bert.encoder.layer.1.intermediate.dense (opted out: null at \"bert.encoder.layer.1\")\n"
        "hint: the report lists why each float module stays float\n");
  CHECK_FALSE(fs::exists(s / "out.pt"));
  // The summary too, for the CI log: what was converted, what the guard saw.
  CHECK(r.out.rfind("bertq quantize: " + kModel + " -> " + s / "out.pt", 0) == 0);
  CHECK(contains(r.out, "\n  size: 0.17 MB -> not written (a guard failed)\n"));
  CHECK(contains(r.out, "guard failed: require_quantized \"bert.encoder.*\": "));
  // The report files are written when a guard fails: CI needs them then.
  const auto j = parse_json(slurp(s / "r.json"));
  CHECK(j["guards"][1]["passed"] == false);
  CHECK(j["output"]["sha256"].is_null());
  CHECK(contains(slurp(s / "r.html"), "guard failed"));

  r = run({"convert", kModel, s / "out.pt", "--require-quantized", "gpt2.*"});
  CHECK(r.code == 7);
  CHECK(r.err ==
        "bertq: error: --require-quantized \"gpt2.*\" matches no Linear module (patterns are globs over "
        "module names, e.g. \"bert.encoder.*\")\nhint: the report lists why each float module stays float\n");
  r = run({"convert", kModel, s / "out.pt", "--min-quantized-fraction", "0.9"});
  CHECK(r.code == 7);
  CHECK(r.err.find("bertq: error: 0.7") == 0);
  CHECK(contains(r.err, " of the weight elements are quantized, less than --min-quantized-fraction 0.900\n"));
  CHECK(s.leftovers().empty());
  CHECK_FALSE(fs::exists(s / "out.pt"));
  r = run(
      {"convert", kModel, s / "out.pt", "--require-quantized", "bert.encoder.*", "--min-quantized-fraction", "0.5"});
  CHECK(r.code == 0);
  CHECK(fs::exists(s / "out.pt"));
}

TEST_CASE("reports as JSON and HTML files, written whole", "[cli][convert][report]") {
  Scratch s;
  const Result r = run({"convert", kModel, s / "q.pt", "--report", s / "r.json", "--html", s / "r.html"});
  REQUIRE(r.code == 0);
  const auto j = parse_json(slurp(s / "r.json"));
  CHECK(j["schema"] == "bertq-report/2");
  CHECK(j["libtorch_version"] == BERTQ_LIBTORCH_VERSION);
  // Zero points are integers (floats only for float-qparams rows).
  bool checked = false;
  for (const auto& m : j["modules"])
    if (m["state"] == "quantized") {
      REQUIRE(m["zero_points"].size() > 0);
      CHECK(m["zero_points"][0].is_number_integer());
      checked = true;
    }
  CHECK(checked);
  const std::string html = slurp(s / "r.html");
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(contains(html, "bert.encoder.layer.0.attention.self.query"));
  // Self-contained: nothing to fetch (the only URL is the SVG namespace).
  size_t urls = 0;
  for (size_t p = html.find("http"); p != std::string::npos; p = html.find("http", p + 4))
    if (html.compare(p, 26, "http://www.w3.org/2000/svg") != 0) ++urls;
  CHECK(urls == 0);
  CHECK_FALSE(contains(html, "<script"));
  // --format json puts the report on stdout instead of the table.
  const Result js = run({"convert", kModel, s / "q2.pt", "--format", "json"});
  REQUIRE(js.code == 0);
  CHECK(parse_json(js.out)["schema"] == "bertq-report/2");
  CHECK(s.leftovers().empty());
}

TEST_CASE("a full disk is a write error and leaves nothing behind", "[cli][convert][errors]") {
  Scratch s;
  // A file size limit stands in for a full disk: writes fail with EFBIG
  // (bash's ulimit -f counts KiB). 64 KiB: the model (77 kB) does not fit.
  int code = shell("bash -c 'ulimit -f 64; exec \"$@\"' bash " + quote(kBinary) + " convert " + quote(kModel) + " " +
                   quote(s / "out.pt") + " > " + quote(s / "log") + " 2>&1");
  CHECK(code == 5);
  CHECK(slurp(s / "log").find("bertq: error: cannot write " + s / "out.pt") == 0);
  CHECK_FALSE(fs::exists(s / "out.pt"));
  // 11 KiB: submodules' model (10 kB) fits, its HTML report (14 kB) does not; no
  // empty file is left.
  code = shell("bash -c 'ulimit -f 11; exec \"$@\"' bash " + quote(kBinary) + " convert " + quote(kSubmodules) + " " +
               quote(s / "out.pt") + " --html " + quote(s / "r.html") + " > " + quote(s / "log") + " 2>&1");
  CHECK(code == 5);
  CHECK(contains(slurp(s / "log"), "bertq: error: cannot write --html " + s / "r.html"));
  CHECK_FALSE(fs::exists(s / "r.html"));
  // stdout that cannot be written is a failure too.
  code = shell(quote(kBinary) + " convert " + quote(kModel) + " " + quote(s / "o2.pt") +
               " --format json > /dev/full 2> " + quote(s / "log"));
  CHECK(code == 5);
  CHECK(slurp(s / "log") == "bertq: error: cannot write to standard output\n");
  CHECK(s.leftovers().empty());
}

TEST_CASE("a conversion stopped by a signal leaves nothing and exits 128 + signal", "[cli][convert]") {
  for (const int sig : {SIGTERM, SIGINT, SIGHUP}) {
    INFO("signal " << sig);
    Scratch s;
    // The qconfig is read after every output has its temporary folder: the
    // conversion waits in that read, with its temporaries made, until signalled.
    HeldFifo fifo(s / "fifo");
    Scratch logs;
    Background bertq(quote(kBinary) + " convert " + quote(kModel) + " " + quote(s / "out.pt") + " --qconfig " +
                     quote(s / "fifo") + " --report " + quote(s / "r.json") + " 2>" + quote(logs / "err"));
    REQUIRE(fifo.opened_elsewhere());
    CHECK(s.leftovers().size() == 2);  // the model's and the report's
    REQUIRE(::kill(bertq.pid(), sig) == 0);
    CHECK(bertq.wait() == 128 + sig);
    // One line says what is on disk.
    CHECK(slurp(logs / "err") == std::string("bertq: stopped by ") +
                                     (sig == SIGINT    ? "SIGINT"
                                      : sig == SIGTERM ? "SIGTERM"
                                                       : "SIGHUP") +
                                     ": nothing was written; its unfinished files are removed\n");
    CHECK_FALSE(fs::exists(s / "out.pt"));
    CHECK_FALSE(fs::exists(s / "r.json"));
    CHECK(s.leftovers().empty());
  }
}

TEST_CASE("temporaries of a killed run are removed by the next run into the folder", "[cli][convert]") {
  Scratch s;
  // What SIGKILL leaves: a folder no process holds the lock of, from an
  // hour ago (one made this minute may be a run that has not locked it yet).
  fs::create_directories(s / ".bertq-tmp-999999-123-abcdef");
  write_file(s / ".bertq-tmp-999999-123-abcdef/q.pt", "partial");
  fs::last_write_time(s / ".bertq-tmp-999999-123-abcdef", fs::file_time_type::clock::now() - std::chrono::hours(1));
  // Someone else's: left alone.
  fs::create_directories(s / ".bertq-tmp-notours");
  const Result r = run({"convert", kModel, s / "q.pt"});
  REQUIRE(r.code == 0);
  CHECK(contains(r.err, "removed 1 temporary folder left by an interrupted bertq run in " + s.dir.string()));
  CHECK_FALSE(fs::exists(s / ".bertq-tmp-999999-123-abcdef"));
  CHECK(fs::exists(s / ".bertq-tmp-notours"));
}

TEST_CASE("the text table fits the terminal, or shows only what is asked", "[cli][convert][report]") {
  Scratch s;
  REQUIRE(run({"convert", kModel, s / "a.pt"}).code == 0);
  const int code = shell("COLUMNS=80 " + quote(kBinary) + " convert " + quote(kModel) + " " + quote(s / "b.pt") +
                         " > " + quote(s / "out"));
  REQUIRE(code == 0);
  std::istringstream lines(slurp(s / "out"));
  std::string line;
  size_t widest = 0, rows = 0;
  bool table = false;
  while (std::getline(lines, line)) {
    if (line.rfind("MODULE", 0) == 0) table = true;
    if (table && line.rfind("input bytes", 0) != 0 && line.rfind("output bytes", 0) != 0) {
      widest = std::max(widest, line.size());
      ++rows;
    }
  }
  CHECK(rows == 23);  // header + 22 modules
  CHECK(widest <= 80);
  Result r = run({"convert", kModel, s / "c.pt", "--table", "quantized"});
  CHECK(contains(r.out, "(8 float modules not shown; --table all shows them)\n"));
  CHECK_FALSE(contains(r.out, "LayerNorm  float"));
  r = run({"convert", kModel, s / "d.pt", "--table", "none"});
  CHECK_FALSE(contains(r.out, "MODULE"));
  CHECK(contains(r.out, "  modules: 14 quantized"));
}

TEST_CASE("the same input, qconfig and engine give byte-identical files whatever the thread count",
          "[cli][convert][determinism]") {
  Scratch s;
  fs::create_directories(s / "a");
  fs::create_directories(s / "b");
  REQUIRE(run({"convert", kModel, s / "a/q.pt", "--threads", "1"}).code == 0);
  REQUIRE(run({"convert", kModel, s / "b/q.pt", "--threads", "2"}).code == 0);
  CHECK(byte_difference(slurp(s / "a/q.pt"), slurp(s / "b/q.pt")) == "");
  REQUIRE(run({"convert", kModel, s / "a/d.pt", "--threads", "1", "--debug"}).code == 0);
  REQUIRE(run({"convert", kModel, s / "b/d.pt", "--threads", "2", "--debug"}).code == 0);
  CHECK(byte_difference(slurp(s / "a/d.pt"), slurp(s / "b/d.pt")) == "");
}

TEST_CASE("convert uses every CPU it may run on, unless --threads or OMP_NUM_THREADS says", "[cli][convert][threads]") {
  // LibTorch's own default is its count of physical cores, 1 on some VMs
  // with several vCPUs; the passes pack every weight in parallel loops.
  Scratch s;
  auto threads_line = [&](const std::string& prefix, const std::string& flags) {
    const int code = shell(prefix + " " + quote(kBinary) + " convert " + quote(kModel) + " " + quote(s / "q.pt") +
                           " --table none -v " + flags + " > " + quote(s / "log") + " 2>&1");
    const std::string log = slurp(s / "log");
    INFO(log);
    CHECK(code == 0);
    const size_t at = log.find("LibTorch threads: ");
    return at == std::string::npos ? std::string() : log.substr(at, log.find('\n', at) - at);
  };
  // nproc counts the affinity mask, as bertq does.
  REQUIRE(shell("nproc > " + quote(s / "nproc")) == 0);
  std::string cpus = slurp(s / "nproc");
  cpus.erase(cpus.find_last_not_of(" \n") + 1);
  CHECK(threads_line("env -u OMP_NUM_THREADS -u MKL_NUM_THREADS", "") ==
        "LibTorch threads: " + cpus + " (the usable CPUs)");
  CHECK(threads_line("env -u OMP_NUM_THREADS -u MKL_NUM_THREADS taskset -c 0", "") ==
        "LibTorch threads: 1 (the usable CPUs)");
  CHECK(threads_line("env OMP_NUM_THREADS=3", "") ==
        "LibTorch threads: 3 (OMP_NUM_THREADS or MKL_NUM_THREADS, read by LibTorch)");
  CHECK(threads_line("env OMP_NUM_THREADS=3", "--threads 2") == "LibTorch threads: 2 (--threads)");
}

TEST_CASE("every pass finishes with the thread pools started: no work after fork", "[cli][convert][threads]") {
  // LibTorch's OpenMP workers are started by the passes (4 of them here,
  // whatever the machine); a forked child inherits none of them, and the
  // first parallel region it meets (unpacking embedding rows while saving)
  // waits forever. `timeout` turns a hang into exit 124 in a minute.
  Scratch s;
  fs::create_directories(s / "a");
  fs::create_directories(s / "b");
  for (const std::string threads : {"4", "1"}) {
    const std::string dir = threads == "4" ? "a" : "b";
    const int code = shell("OMP_NUM_THREADS=" + threads + " timeout 60 " + quote(kBinary) + " convert " +
                           quote(kModel) + " " + quote(s / (dir + "/q.pt")) +
                           " --embeddings 8bit --fuse-qkv --table none > " + quote(s / "log") + " 2>&1");
    INFO(slurp(s / "log"));
    REQUIRE(code == 0);
  }
  // And the pools do not change a byte.
  CHECK(byte_difference(slurp(s / "a/q.pt"), slurp(s / "b/q.pt")) == "");
  CHECK(s.leftovers().empty());
}

TEST_CASE("hostile qconfig files get a clear error", "[cli][convert][errors]") {
  Scratch s;
  write_file(s / "deep.json", "{\"\": " + std::string(100000, '[') + std::string(100000, ']') + "}");
  Result r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "deep.json"});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: " + s / "deep.json" + ": nested more than 32 levels deep; a qconfig is at most four\n");
  write_file(s / "utf.json", "{\"\xff\xfe\": null}");
  r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "utf.json"});
  CHECK(r.code == 3);
  CHECK(r.err.find("bertq: error: " + s / "utf.json" +
                   ":1:3: malformed JSON: syntax error while parsing object key - "
                   "invalid string: ill-formed UTF-8 byte; last read: '\"\\xff'") == 0);
  write_file(s / "long.json", "{\"" + std::string(100000, 'a') + "\": null}");
  r = run({"convert", kModel, s / "out.pt", "--qconfig", s / "long.json"});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: " + s / "long.json" +
                     ": a key of 100000 characters is not a module name (at most 4096): \"" + std::string(40, 'a') +
                     "...\" (100000 bytes in all)\n");
  r = run({"convert", kModel, s / "out.pt", "--qconfig", s.dir.string()});
  CHECK(r.code == 3);
  CHECK(r.err == "bertq: error: qconfig file " + s.dir.string() + " is a directory, not a file\n");
  CHECK_FALSE(fs::exists(s / "out.pt"));
}

namespace {
// Runs bertq as an unprivileged user (nobody), for tests of what root may
// always do (write in a read-only folder).
Result run_unprivileged(const std::vector<std::string>& args, const Scratch& s) {
  std::string cmd = "setpriv --reuid=65534 --regid=65534 --clear-groups " + quote(kBinary);
  for (const auto& a : args) cmd += " " + quote(a);
  Result r;
  r.code = shell(cmd + " > " + quote(s / "stdout") + " 2> " + quote(s / "stderr"));
  r.out = slurp(s / "stdout");
  r.err = slurp(s / "stderr");
  return r;
}
}  // namespace

TEST_CASE("an output that cannot be written fails the run before any other is replaced", "[cli][convert][errors]") {
  Scratch s;
  fs::permissions(s.dir, fs::perms::all);
  fs::create_directories(s / "ro");
  fs::permissions(s / "ro", fs::perms::owner_read | fs::perms::owner_exec | fs::perms::others_read |
                                fs::perms::others_exec | fs::perms::group_read | fs::perms::group_exec);
  write_file(s / "model.pt", "the old model");
  fs::permissions(s / "model.pt", fs::perms::all);
  const Result r = run_unprivileged({"convert", kSubmodules, s / "model.pt", "--report", s / "ro/r.json"}, s);
  INFO(r.err);
  CHECK(r.code == 5);
  CHECK(contains(r.err, "bertq: error: cannot write to " + s / "ro"));
  CHECK(slurp(s / "model.pt") == "the old model");
  CHECK(s.leftovers().empty());
}

TEST_CASE("a symbolic link to nothing at an output is refused, relative or absolute", "[cli][convert][errors]") {
  Scratch s;
  fs::create_symlink("missing.pt", s / "rel.pt");
  fs::create_symlink(s / "missing.pt", s / "abs.pt");
  for (const std::string link : {"rel.pt", "abs.pt"}) {
    const Result r = run({"convert", kSubmodules, s / link});
    CHECK(r.code == 2);
    CHECK(contains(r.err, "is a symbolic link to nothing"));
    CHECK(fs::is_symlink(s / link));
  }
  CHECK_FALSE(fs::exists(s / "missing.pt"));
}

TEST_CASE("a signal ignored at start stays ignored", "[cli][convert]") {
  // `nohup bertq ...`: SIGHUP ignored before bertq starts (LibTorch 2.x
  // installs a handler of its own as it loads). bertq waits in the read of
  // its FIFO qconfig, gets SIGHUP, and must go on once the qconfig arrives.
  Scratch s;
  HeldFifo fifo(s / "fifo");
  Background bertq("nohup " + quote(kBinary) + " convert " + quote(kSubmodules) + " " + quote(s / "out.pt") +
                   " --qconfig " + quote(s / "fifo") + " > /dev/null 2>&1");
  REQUIRE(fifo.opened_elsewhere());
  REQUIRE(::kill(bertq.pid(), SIGHUP) == 0);
  fifo.send(R"({"": "default_dynamic"})");
  CHECK(bertq.wait() == 0);
  CHECK(fs::exists(s / "out.pt"));
  CHECK(s.leftovers().empty());
}

TEST_CASE("names with control bytes never reach the terminal raw", "[cli][errors]") {
  // A file named to retitle and clear the terminal: every command that
  // prints its name (convert's summary, inspect, bench, diff, batch lines,
  // warnings) escapes it.
  Scratch s;
  const std::string evil = s / "evil\n\x1b]0;PWNED\x07\x1b[2J\xc2\x9b.pt";
  fs::copy_file(kSubmodules, evil);
  const std::string out = s / "out\x1b[2J.pt";
  std::vector<Result> results{run({"convert", evil, out}), run({"inspect", out}),
                              run({"bench", evil, out, "--iters", "1", "--warmup", "0", "--seq-length", "16"}),
                              run({"diff", out, out})};
  write_file(s / "batch.json", "{\"jobs\": [{\"input\": " + nlohmann::json(evil).dump() +
                                   ", \"output\": " + nlohmann::json(s / "b\x07.pt").dump() + "}]}");
  results.push_back(run({"batch", s / "batch.json"}));
  for (const auto& r : results) {
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    for (const std::string& text : {r.out, r.err}) {
      CHECK(text.find('\x1b') == std::string::npos);
      CHECK(text.find('\x07') == std::string::npos);
      CHECK(text.find("\xc2\x9b") == std::string::npos);
    }
  }
  CHECK(contains(results[0].out, "evil\\x0a\\x1b]0;PWNED\\x07\\x1b[2J"));
}

TEST_CASE("gates and paths that cannot mean anything are refused", "[cli][convert][errors]") {
  Scratch s;
  for (const std::string v : {"nan", "", "inf", "0.5x"}) {
    INFO("--min-quantized-fraction " << v);
    const Result r = run({"convert", kSubmodules, s / "out.pt", "--min-quantized-fraction", v});
    CHECK(r.code == 2);
    CHECK_FALSE(fs::exists(s / "out.pt"));
  }
  // An output path so long that its temporary name beside it would pass the
  // system's limit: said up front, and the reason survives a long message.
  std::string deep = s.dir.string();
  while (deep.size() + 201 < 4000) deep += "/" + std::string(200, 'd');
  fs::create_directories(deep);
  const std::string path = deep + "/" + std::string(4074 - deep.size() - 1, 'm');  // 74 to 255 bytes
  const Result r = run({"convert", kSubmodules, path});
  CHECK(r.code == 2);
  CHECK(contains(r.err, "bertq writes it under a temporary name beside it first, which would pass the system's limit"));
}

TEST_CASE("a model whose quantized weights cannot be packed is said to be so", "[cli][convert][errors]") {
  // fc = Linear(8, 0): Python's quantize_dynamic_jit writes a model whose
  // first forward fails; bertq says why instead of blaming fp16.
  Scratch s;
  const Result r = run({"convert", kSource + "/testdata/bad/empty_linear.pt", s / "out.pt"});
  CHECK(r.code == 6);
  CHECK(contains(r.err, "quantized::linear_prepack could not pack the empty weight of fc ([0, 8])"));
  CHECK_FALSE(contains(r.err, "fp16"));
  CHECK_FALSE(fs::exists(s / "out.pt"));
}

TEST_CASE("300000 qconfig keys that name no module convert in linear time", "[cli][convert][.linear]") {
  // Hidden: tests/CMakeLists.txt runs it alone under a 60 s ctest TIMEOUT
  // (the quadratic report and manifest took over 120 s; now about 3 s).
  Scratch s;
  std::string json = "{\"\": \"per_channel_dynamic\"";
  for (int i = 0; i < 300000; ++i) json += ",\"missing." + std::to_string(i) + "\": null";
  write_file(s / "q.json", json + "}");
  const Result r = run(
      {"convert", kSubmodules, s / "out.pt", "--qconfig", s / "q.json", "--allow-missing", "--report", s / "r.json"});
  CHECK(r.code == 0);
  CHECK(parse_json(slurp(s / "r.json"))["qconfig"]["resolved"].size() == 300001);
}

TEST_CASE("convert --no-manifest writes Python's file byte for byte, and the default adds only the manifest",
          "[cli][convert][golden]") {
  Scratch s;
  const std::string golden = kSource + "/testdata/" BERTQ_GOLDEN_DIR "/tiny_bert__per_tensor__onednn.pt";
  const std::vector<std::string> common = {
      "--qconfig", kSource + "/testdata/qconfigs/per_tensor.json", "--engine", "onednn", "--embeddings", "float"};
  auto args = [&](const std::string& out, bool manifest) {
    std::vector<std::string> a = {"convert", kModel, out};
    a.insert(a.end(), common.begin(), common.end());
    if (!manifest) a.push_back("--no-manifest");
    return a;
  };
  // The archive's root folder is named after the file: Python's name, in
  // a folder of its own.
  fs::create_directories(s / "plain");
  const std::string plain = s / "plain/tiny_bert__per_tensor__onednn.pt";
  Result r = run(args(plain, false));
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(byte_difference(slurp(plain), slurp(golden)) == "");
  r = run(args(s / "with.pt", true));
  REQUIRE(r.code == 0);
  const std::string with = slurp(s / "with.pt");
  CHECK(contains(with, "extra/bertq_manifest.json"));
  CHECK_FALSE(contains(slurp(plain), "bertq_manifest"));
  // inspect reads what each says about itself.
  r = run({"inspect", plain, "--format", "json"});
  REQUIRE(r.code == 0);
  CHECK(parse_json(r.out).at("manifest").is_null());
  r = run({"inspect", s / "with.pt", "--format", "json"});
  REQUIRE(r.code == 0);
  CHECK(parse_json(r.out).at("manifest").at("engine") == "onednn");
}

TEST_CASE("a dash sends a text or JSON output to standard output, and never a model", "[cli][convert]") {
  Scratch s;
  // The report on stdout, whole and alone; the summary moves to stderr.
  Result r = run({"convert", kModel, s / "q.pt", "--report", "-"});
  REQUIRE(r.code == 0);
  const auto report = parse_json(r.out);
  CHECK(report["output"]["path"] == s / "q.pt");
  CHECK(contains(r.err, "bertq quantize: "));
  CHECK_FALSE(fs::exists(s / "-"));
  r = run({"convert", kModel, s / "q2.pt", "--html", "-", "--format", "json"});
  REQUIRE(r.code == 0);
  CHECK(r.out.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(parse_json(r.err.substr(r.err.find('{')))["output"]["path"] == s / "q2.pt");
  // A guard that fails still gives the report, then exits 7.
  r = run({"convert", kModel, s / "q3.pt", "--report", "-", "--require-quantized", "no.such.*"});
  CHECK(r.code == 7);
  CHECK(parse_json(r.out)["guards"][1]["passed"] == false);
  CHECK_FALSE(fs::exists(s / "q3.pt"));

  // A model is binary; two outputs cannot share stdout.
  r = run({"convert", kModel, "-"});
  CHECK(r.code == 2);
  CHECK(r.err ==
        "bertq: error: output - would be standard output: a model is a binary zip archive\n"
        "hint: give a file path (./- for a file named -)\n");
  r = run({"convert", kModel, s / "q4.pt", "--report", "-", "--html", "-"});
  CHECK(r.code == 2);
  CHECK(r.err ==
        "bertq: error: --html and --report are both - (standard output)\nhint: give one of them a file path\n");
  CHECK_FALSE(fs::exists(s / "q4.pt"));

  // tune's qconfig on stdout: the file `convert --qconfig` would read.
  const std::string outlier = kSource + "/testdata/models/outlier_net.pt";
  r = run(
      {"tune", outlier, s / "t.pt", "--tolerance", "0.05", "--qconfig-out", "-", "--rows", "16", "--seq-length", "16"});
  REQUIRE(r.code == 0);
  CHECK(contains(r.err, "bertq tune: "));
  const Result to_file = run({"tune", outlier, s / "t2.pt", "--tolerance", "0.05", "--qconfig-out", s / "tuned.json",
                              "--rows", "16", "--seq-length", "16"});
  REQUIRE(to_file.code == 0);
  CHECK(r.out == slurp(s / "tuned.json"));
  CHECK(parse_json(r.out).contains(""));
  CHECK_FALSE(fs::exists(s / "-"));
  CHECK(s.leftovers().empty());
}

TEST_CASE("modules that lose far more precision than the rest are said in the text output too",
          "[cli][convert][report]") {
  Scratch s;
  // 4-bit embedding rows err about 20 dB more than int8 Linears.
  Result r = run({"convert", kModel, s / "q4.pt", "--embeddings", "4bit", "--table", "none"});
  REQUIRE(r.code == 0);
  CHECK(contains(r.err,
                 "bertq: warning: 3 modules lose far more precision than the rest, weight SQNR more than 6 dB "
                 "below the median of "));
  CHECK(contains(r.err, "bert.embeddings.position_embeddings (embedding_4bit "));
  r = run({"convert", kModel, s / "q8.pt", "--embeddings", "8bit", "--table", "none"});
  REQUIRE(r.code == 0);
  CHECK_FALSE(contains(r.err, "lose far more precision"));
  // The table gives each float module's reason where a quantized one's rule is.
  r = run({"convert", kModel, s / "q.pt"});
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "RULE, or why float"));
  CHECK(contains(r.out, "LayerNorm is not quantized by dynamic quantization"));
  // A prepared model holds observers, not quantized weights.
  r = run({"prepare", kModel, s / "p.pt"});
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "  modules: 14 observed (quantized by `bertq convert`), 8 left float"));
}

TEST_CASE("full 8-bit activations: asked for per model or per module, recorded, refused where not exact",
          "[cli][full_range]") {
  Scratch s;
  const bool exact_here = contains(run({"--version"}).out, "full 8-bit activations with onednn: exact here");
  // oneDNN told to stop at AVX2 has no VNNI on any CPU.
  const std::string no_vnni = "ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 ";
  const std::string bin = quote(kBinary);
  CHECK(shell(no_vnni + bin + " convert " + quote(kModel) + " " + quote(s / "refused.pt") +
              " --full-range-activations 2>" + quote(s / "err")) == 6);
  CHECK(contains(slurp(s / "err"), "full 8-bit activations would not be exact with engine onednn here"));
  CHECK_FALSE(fs::exists(s / "refused.pt"));
  // qnnpack always multiplies 8-bit inputs exactly.
  CHECK(shell(no_vnni + bin + " convert " + quote(kModel) + " " + quote(s / "qnnpack.pt") +
              " --full-range-activations --engine qnnpack --report " + quote(s / "qnnpack.json") + " 2>/dev/null") ==
        0);
  const auto qnnpack = parse_json(slurp(s / "qnnpack.json"));
  for (const auto& m : qnnpack["modules"])
    if (m["op"] == "linear_dynamic") CHECK(m["activation_bits"] == 8);
  // The same model loaded where onednn would saturate: a warning, the run goes on.
  CHECK(shell(no_vnni + bin + " bench " + quote(kModel) + " " + quote(s / "qnnpack.pt") +
              " --iters 1 --warmup 0 --seq-length 8 >/dev/null 2>" + quote(s / "bench_err")) == 0);
  CHECK(contains(slurp(s / "bench_err"),
                 "of its int8 linears take full 8-bit activations, which engine onednn does "
                 "not compute exactly here"));
  if (!exact_here) {
    WARN("this CPU's oneDNN has no VNNI: the onednn conversions below are refused, as checked above");
    return;
  }
  // Per module, from the qconfig: only layer 0's linears.
  write_file(s / "q.json", R"({"": "per_channel_dynamic",
    "bert.encoder.layer.0": {"preset": "per_channel_dynamic", "full_range_activations": true}})");
  Result r = run({"convert", kModel, s / "layer0.pt", "--qconfig", s / "q.json", "--report", s / "layer0.json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  int eight = 0, seven = 0;
  const auto layer0 = parse_json(slurp(s / "layer0.json"));
  for (const auto& m : layer0["modules"]) {
    if (m["op"] != "linear_dynamic") continue;
    const bool in_layer0 = m["path"].get<std::string>().rfind("bert.encoder.layer.0.", 0) == 0;
    CHECK(m["activation_bits"] == (in_layer0 ? 8 : 7));
    (in_layer0 ? eight : seven)++;
  }
  CHECK(eight == 6);
  CHECK(seven > 0);
  CHECK(contains(r.out + r.err, "6 int8 linears quantize their input to the full 8 bits"));
  r = run({"inspect", s / "layer0.pt", "--module", "bert.encoder.layer.0.attention.self.query"});
  CHECK(contains(r.out, "activations: quantized per batch to 8 bits (reduce_range False: full_range_activations)"));
  r = run({"inspect", s / "layer0.pt", "--module", "bert.encoder.layer.1.attention.self.query"});
  CHECK(contains(r.out, "activations: quantized per batch to 7 bits (reduce_range True, as PyTorch writes)"));
  // The flag: every int8 linear, recorded in the manifest's options.
  r = run({"convert", kModel, s / "all.pt", "--full-range-activations", "--report", s / "all.json"});
  REQUIRE(r.code == 0);
  const auto report = parse_json(slurp(s / "all.json"));
  CHECK(report["options"]["full_range_activations"] == true);
  for (const auto& m : report["modules"])
    if (m["op"] == "linear_dynamic") CHECK(m["activation_bits"] == 8);
  // PyTorch's own: 7 bits everywhere, and no note.
  r = run({"convert", kModel, s / "plain.pt", "--report", s / "plain.json"});
  const auto plain = parse_json(slurp(s / "plain.json"));
  for (const auto& m : plain["modules"])
    if (m["op"] == "linear_dynamic") CHECK(m["activation_bits"] == 7);
  CHECK_FALSE(contains(r.out + r.err, "full 8 bits"));
}

TEST_CASE("full_range_activations in a qconfig: int8 dynamic linears only, true or false", "[cli][full_range]") {
  Scratch s;
  write_file(s / "fp16.json", R"({"": {"preset": "float16_dynamic", "full_range_activations": true}})");
  Result r = run({"convert", kModel, s / "o.pt", "--qconfig", s / "fp16.json"});
  CHECK(r.code == 3);
  CHECK(contains(r.err, "full_range_activations applies to int8 dynamic linears (qint8 weights) only"));
  write_file(s / "str.json", R"({"": {"preset": "per_channel_dynamic", "full_range_activations": "yes"}})");
  r = run({"convert", kModel, s / "o.pt", "--qconfig", s / "str.json"});
  CHECK(r.code == 3);
  CHECK(contains(r.err, "[\"\"].full_range_activations: expected true or false"));
  r = run({"convert", kModel, s / "o.pt", "--debug", "--full-range-activations"});
  CHECK(r.code == 2);
  CHECK_FALSE(fs::exists(s / "o.pt"));
}

TEST_CASE("siblings reading one input under different qconfigs are a qconfig error, as in Python", "[cli][errors]") {
  Scratch s;
  // Query per tensor, key and value per channel: PyTorch's InsertObservers
  // cannot give their shared input two observers (Python fails too).
  write_file(s / "q.json", R"({"": "per_channel_dynamic",
    "bert.encoder.layer.0.attention.self.query": "default_dynamic"})");
  const Result r = run({"convert", kModel, s / "o.pt", "--qconfig", s / "q.json"});
  CHECK(r.code == 3);
  CHECK(contains(r.err, "modules that read the same input have different qconfigs"));
  CHECK(contains(r.err, "hint: give siblings that read one input"));
  CHECK_FALSE(contains(r.err, "internal error"));
  CHECK_FALSE(fs::exists(s / "o.pt"));
}
