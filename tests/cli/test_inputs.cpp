// --inputs: bench, eval, compare and tune on any model's own inputs.
#include "cli/cli.h"

using namespace cli;

namespace {
const std::string kInputs = kSource + "/testdata/inputs/";
const std::string kModels = kSource + "/testdata/models/";
}  // namespace

TEST_CASE("an LSTM classifier and an MLP run through bench, eval, compare and tune with --inputs", "[cli][inputs]") {
  for (const std::string model : {"zoo_lstm", "zoo_mlp"}) {
    Scratch s;
    const std::string fp = kModels + model + ".pt";
    REQUIRE(run({"convert", fp, s / "q.pt"}).code == 0);
    std::vector<nlohmann::json> compared;
    for (const std::string format : {".jsonl", ".pt"}) {
      const std::string inputs = kInputs + model + format;
      INFO(model << " with " << inputs);
      Result r =
          run({"bench", fp, s / "q.pt", "--inputs", inputs, "--iters", "2", "--warmup", "0", "--format", "json"});
      INFO(r.err);
      REQUIRE(r.code == 0);
      auto j = parse_json(r.out);
      CHECK(j["inputs_file"] == inputs);
      CHECK(j["batch"] == 8);
      CHECK(j["models"].size() == 2);

      r = run({"eval", s / "q.pt", "--inputs", inputs, "--format", "json"});
      REQUIRE(r.code == 0);
      j = parse_json(r.out);
      CHECK(j["examples"] == 24);

      r = run({"compare", fp, s / "q.pt", "--inputs", inputs, "--format", "json"});
      REQUIRE(r.code == 0);
      j = parse_json(r.out);
      CHECK(j["examples"] == 24);
      CHECK(j["rel_l2"].get<double>() > 0);
      CHECK(j["rel_l2"].get<double>() < 0.2);
      compared.push_back(j);

      r = run({"tune", fp, s / "t.pt", "--inputs", inputs, "--tolerance", "0.5", "--qconfig-out", s / "t.json"});
      INFO(r.err);
      CHECK(r.code == 0);
      CHECK(fs::exists(s / "t.pt"));
    }
    // The same token ids from either file give the same logits.
    if (model == "zoo_lstm") CHECK(compared[0]["max_abs_diff"] == compared[1]["max_abs_diff"]);
  }
}

TEST_CASE("inputs files that do not fit the forward are refused, naming the argument", "[cli][inputs][errors]") {
  Scratch s;
  const std::string mlp = kModels + "zoo_mlp.pt";
  write_file(s / "typo.jsonl", "{\"feature\": [1.5, 2.5]}\n");
  Result r = run({"compare", mlp, mlp, "--inputs", s / "typo.jsonl"});
  CHECK(r.code == 2);
  CHECK(r.err == "bertq: error: " + s / "typo.jsonl" +
                     ":1: \"feature\" is not an argument of the model's forward(features)\nhint: did you mean "
                     "\"features\"? fields are forward's argument names (and \"label\")\n");
  write_file(s / "ragged.jsonl", "{\"features\": [1.5, 2.5]}\n{\"features\": [1.5]}\n");
  r = run({"compare", mlp, mlp, "--inputs", s / "ragged.jsonl"});
  CHECK(r.code == 2);
  CHECK(contains(r.err, ":2: \"features\" has shape 1 but the first row's is 2; rows are stacked"));
  write_file(s / "none.jsonl", "{\"label\": 1}\n");
  r = run({"eval", mlp, "--inputs", s / "none.jsonl"});
  CHECK(r.code == 2);
  CHECK(contains(r.err, ":1: \"features\" is missing; the model's forward(features) needs it"));
  // Rows the model cannot take: the forward's error, with what was given.
  write_file(s / "short.jsonl", "{\"features\": [1.5, 2.5]}\n");
  r = run({"compare", mlp, mlp, "--inputs", s / "short.jsonl"});
  CHECK(r.code == 4);
  CHECK(contains(r.err, "forward failed on rows 0-0 (features: Float [1, 2])"));
  // A model that is not BERT-shaped, without --inputs: the hint says what to do.
  r = run({"compare", mlp, mlp});
  CHECK(r.code == 4);
  CHECK(contains(r.err, "the model's forward(features) takes 1 inputs, not BERT's three"));
  CHECK(contains(r.err, "hint: give the model's own inputs with --inputs FILE"));
  // A TorchScript model is not an inputs file.
  r = run({"eval", mlp, "--inputs", mlp});
  CHECK(r.code == 2);
  CHECK(contains(r.err, "is a TorchScript model, not inputs saved with torch.save"));
  // --inputs with options that shape dummy or tokenized inputs is a contradiction.
  r = run({"bench", mlp, "--inputs", kInputs + "zoo_mlp.pt", "--seq-length", "16"});
  CHECK(r.code == 2);
}
