// `bertq bench` as a user meets it.
#include <algorithm>
#include <cctype>

#include "cli/cli.h"

using namespace cli;

namespace {
const std::string kMrpcModel = kSource + "/testdata/models/tiny_bert_mrpc.pt";
const std::string kVocab = kSource + "/testdata/tokenizer/vocab.txt";
}  // namespace

TEST_CASE("bench times several models on the same dummy inputs", "[cli][bench]") {
  Scratch s;
  REQUIRE(run({"convert", kModel, s / "q.pt"}).code == 0);
  Result r =
      run({"bench", kModel, s / "q.pt", "--seq-length", "16", "--iters", "3", "--warmup", "1", "--format", "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto j = parse_json(r.out);
  CHECK(j["batch"] == 8);
  CHECK(j["seq"] == 16);
  CHECK(j["threads"] == 1);
  CHECK(j["inputs"] == nlohmann::json::array({"input_ids", "attention_mask", "token_type_ids"}));
  CHECK(j["models"][0]["kind"] == "float");
  CHECK(j["models"][1]["kind"] == "quantized");
  CHECK(j["models"][0]["ratio"] == 1.0);
  r = run({"bench", kModel, "--seq-length", "16", "--iters", "2"});
  CHECK(r.code == 0);
  CHECK(r.out.find("batch 8 x seq 16, 1 thread, engine onednn, 2 iterations after 2 warm-up\n") == 0);
}
