// `bertq eval` as a user meets it.
#include <algorithm>
#include <cctype>
#include <cmath>

#include "cli/cli.h"

using namespace cli;

namespace {
const std::string kMrpcModel = kSource + "/testdata/models/tiny_bert_mrpc.pt";
const std::string kVocab = kSource + "/testdata/tokenizer/vocab.txt";
}  // namespace

TEST_CASE("eval reproduces PyTorch's predictions, accuracy and F1 on the MRPC fixture", "[cli][eval]") {
  // testdata/mrpc/expected_eval.json comes from running the same model in
  // Python on the reference tokenizer's ids (testdata/mrpc/make_expected.py).
  const auto expected = parse_json(slurp(kSource + "/testdata/mrpc/expected_eval.json"));
  const Result r = run({"eval", kMrpcModel, "--task", "mrpc", "--data", kSource + "/testdata/mrpc", "--vocab", kVocab,
                        "--seq-length", "32", "--format", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto j = parse_json(r.out);
  // The logits went through float kernels that differ between CPUs, so only
  // predictions with a clear margin in Python's run are compared (all eight
  // today); accuracy and F1 must be the ones these predictions give.
  REQUIRE(j["predictions"].size() == expected["predictions"].size());
  size_t clear = 0;
  for (size_t i = 0; i < expected["predictions"].size(); ++i) {
    if (std::abs(expected["margins"][i].get<double>()) < 1e-3) continue;
    ++clear;
    INFO("row " << i);
    CHECK(j["predictions"][i] == expected["predictions"][i]);
  }
  CHECK(clear >= 6);
  if (clear == expected["predictions"].size()) {
    CHECK(j["accuracy"] == expected["accuracy"]);
    CHECK(j["f1"] == expected["f1"]);
  }
  CHECK(j["examples"] == 8);
  // The text form, with the evaluation time.
  const Result t = run({"eval", kMrpcModel, "--task", "mrpc", "--data", kSource + "/testdata/mrpc", "--vocab", kVocab,
                        "--seq-length", "32"});
  CHECK(contains(t.out, "  accuracy: 0.5000\n  f1: 0.6000\n  eval time: "));
}

TEST_CASE("eval and compare refuse bad data with the file and line", "[cli][eval][errors]") {
  Scratch s;
  fs::create_directories(s / "mrpc");
  fs::copy_file(kSource + "/testdata/mrpc/bad_columns.tsv", s / "mrpc/dev.tsv");
  Result r = run({"eval", kMrpcModel, "--task", "mrpc", "--data", s / "mrpc", "--vocab", kVocab, "--seq-length", "32"});
  CHECK(r.code == 2);
  CHECK(r.err.find("bertq: error: " + s / "mrpc/dev.tsv" + ":") == 0);
  CHECK(contains(r.err, "column"));
  r = run({"eval", kMrpcModel, "--task", "sst2", "--data", s / "mrpc", "--vocab", kVocab, "--seq-length", "32"});
  CHECK(r.code == 2);
  CHECK(r.err == "bertq: error: unknown task \"sst2\"\nhint: supported: mrpc; other tasks: --tokenized FILE\n");
  r = run({"eval", kMrpcModel, "--seq-length", "32"});
  CHECK(r.code == 2);
  CHECK(r.err.find("bertq: error: eval needs labelled data") == 0);
  r = run({"eval", kMrpcModel, "--task", "mrpc", "--data", kSource + "/testdata/mrpc", "--vocab", s / "none.txt"});
  CHECK(r.code == 2);
}

TEST_CASE("eval on pre-tokenized data", "[cli][eval]") {
  Scratch s;
  std::string line = "{\"input_ids\": [2, 10, 11, 3";
  std::string mask = "], \"attention_mask\": [1, 1, 1, 1";
  std::string types = "], \"token_type_ids\": [0, 0, 0, 0";
  write_file(s / "data.jsonl", line + mask + types + "], \"label\": 1}\n" + line + mask + types + "], \"label\": 0}\n");
  const Result r = run({"eval", kMrpcModel, "--tokenized", s / "data.jsonl", "--format", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto j = parse_json(r.out);
  CHECK(j["examples"] == 2);
  CHECK(j["accuracy"] == 0.5);  // two equal rows, one of each label
}

TEST_CASE("bench, eval and compare fit the model's positions, or say why not", "[cli][bench][eval][compare]") {
  Scratch s;
  REQUIRE(run({"convert", kModel, s / "q.pt"}).code == 0);
  // The tiny model has 64 positions: the default 128 does not fit, so each
  // uses 64 and says so (also for the frozen quantized model, via its manifest).
  const std::string note = " has 64 positions: using --seq-length 64 instead of the default 128\n";
  Result r = run({"bench", kModel, s / "q.pt", "--iters", "1", "--warmup", "0"});
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(contains(r.err, note));
  CHECK(r.out.find("batch 8 x seq 64,") == 0);
  r = run({"bench", s / "q.pt", "--iters", "1", "--warmup", "0"});
  CHECK(r.code == 0);
  CHECK(r.err == "bertq: info: " + s / "q.pt" + note);
  r = run({"compare", kModel, s / "q.pt", "--rows", "8"});
  CHECK(r.code == 0);
  CHECK(contains(r.out, "(8 rows x 64)"));
  r = run({"eval", kMrpcModel, "--task", "mrpc", "--data", kSource + "/testdata/mrpc", "--vocab", kVocab});
  CHECK(r.code == 0);
  // Asked for more than the model takes: an error that says the limit.
  for (const std::string cmd : {"bench", "compare"}) {
    std::vector<std::string> args = {cmd, kModel};
    if (cmd == "compare") args.push_back(s / "q.pt");
    args.insert(args.end(), {"--seq-length", "128"});
    r = run(args);
    INFO(cmd);
    CHECK(r.code == 2);
    CHECK(r.err == "bertq: error: --seq-length 128 is longer than " + kModel +
                       " takes (64 positions)\nhint: use --seq-length 64 or less\n");
  }
}

TEST_CASE("a label the model cannot predict is bad input, with its line", "[cli][eval][errors]") {
  Scratch s;
  const std::string row =
      "{\"input_ids\": [2, 10, 11, 3], \"attention_mask\": [1, 1, 1, 1], \"token_type_ids\": "
      "[0, 0, 0, 0], \"label\": ";
  write_file(s / "data.jsonl", row + "1}\n" + row + "7}\n");
  Result r = run({"eval", kMrpcModel, "--tokenized", s / "data.jsonl"});
  CHECK(r.code == 4);
  CHECK(contains(r.err, s / "data.jsonl:2: label 7 is not one of the model's 2 classes (0 to 1)"));
  // tune would otherwise "meet" an accuracy drop of 0 with every row wrong.
  r = run({"tune", kMrpcModel, s / "t.pt", "--tokenized", s / "data.jsonl", "--metric", "accuracy_drop", "--tolerance",
           "0", "--qconfig-out", s / "t.json"});
  CHECK(r.code == 4);
  CHECK_FALSE(fs::exists(s / "t.pt"));
  // A value of 3000 digits is cut in the message.
  write_file(s / "big.jsonl", row + std::string(3000, '9') + "}\n");
  r = run({"eval", kMrpcModel, "--tokenized", s / "big.jsonl"});
  CHECK(r.code == 2);
  CHECK(r.err.size() < 1000);
}

TEST_CASE("the data flag takes the folder that holds dev.tsv, and says so", "[cli][eval][errors]") {
  Scratch s;
  const std::string mrpc = kSource + "/testdata/mrpc";
  struct Case {
    std::string data, error, hint;
  };
  const std::vector<Case> cases = {
      {mrpc + "/dev.tsv", "--data " + mrpc + "/dev.tsv is a regular file, not a folder",
       "--data takes the folder that holds dev.tsv: --data " + mrpc},
      {s / "none", "--data " + s / "none" + " does not exist",
       "--data takes the folder that holds MRPC's dev.tsv (the tutorial's glue_data/MRPC)"},
      {s.dir.string(), "--data " + s.dir.string() + " has no dev.tsv",
       "--data takes the folder that holds MRPC's dev.tsv (the tutorial's glue_data/MRPC)"}};
  for (const auto& c : cases) {
    INFO(c.data);
    const Result r = run({"eval", kMrpcModel, "--data", c.data, "--vocab", kVocab});
    CHECK(r.code == 2);
    CHECK(contains(r.err, "bertq: error: " + c.error + "\nhint: " + c.hint + "\n"));
  }
  // --data alone means MRPC, the one task.
  const Result r = run({"eval", kMrpcModel, "--data", mrpc, "--vocab", kVocab, "--format", "json"});
  CHECK(r.code == 0);
}

TEST_CASE("eval gates on accuracy and F1 after printing them", "[cli][eval]") {
  const std::vector<std::string> base{"eval",     kMrpcModel, "--data",       kSource + "/testdata/mrpc",
                                      "--vocab",  kVocab,     "--seq-length", "32",
                                      "--format", "json"};
  auto with = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args);
  };
  Result r = with({});
  REQUIRE(r.code == 0);
  const double accuracy = parse_json(r.out)["accuracy"], f1 = parse_json(r.out)["f1"];
  // At the measured values the gates pass; just above them, they fail, the
  // figures printed first.
  CHECK(with({"--min-accuracy", std::to_string(accuracy - 1e-6), "--min-f1", std::to_string(f1 - 1e-6)}).code == 0);
  r = with({"--min-accuracy", std::to_string(accuracy + 1e-3)});
  CHECK(r.code == 7);
  CHECK(parse_json(r.out)["accuracy"] == accuracy);
  CHECK(contains(r.err, "bertq: error: accuracy "));
  CHECK(contains(r.err, " is below --min-accuracy "));
  r = with({"--min-f1", std::to_string(f1 + 1e-3), "--min-accuracy", std::to_string(accuracy + 1e-3)});
  CHECK(r.code == 7);
  CHECK(contains(r.err, " is below --min-accuracy "));
  CHECK(contains(r.err, "; F1 "));
  CHECK(contains(r.err, " is below --min-f1 "));
  for (const std::string bad : {"nan", "1.5", "-0.1"}) CHECK(with({"--min-f1", bad}).code == 2);
}
