// `bertq compare` as a user meets it.
#include <algorithm>
#include <cctype>

#include "cli/cli.h"

using namespace cli;

namespace {
const std::string kMrpcModel = kSource + "/testdata/models/tiny_bert_mrpc.pt";
const std::string kVocab = kSource + "/testdata/tokenizer/vocab.txt";
}  // namespace

TEST_CASE("compare reports agreement and fails past --max-disagreement", "[cli][compare]") {
  Scratch s;
  REQUIRE(run({"convert", kMrpcModel, s / "q.pt"}).code == 0);
  Result r = run({"compare", kMrpcModel, s / "q.pt", "--seq-length", "32", "--rows", "64"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "on dummy inputs (64 rows x 32)\n  examples: 64\n  max abs logit difference: "));
  const size_t at = r.out.find("argmax agreement: ");
  REQUIRE(at != std::string::npos);
  const double agreement = std::stod(r.out.substr(at + 18));
  // Which rows flip depends on the float kernels of this CPU (OpenBLAS picks
  // one per CPU): only a loose bound here, and the gate is checked against
  // the disagreement this run measured.
  CHECK(agreement > 0.8);
  const size_t l2_at = r.out.find("relative L2 logit error: ");
  REQUIRE(l2_at != std::string::npos);
  const double rel_l2 = std::stod(r.out.substr(l2_at + 25));
  CHECK(rel_l2 > 0);
  CHECK(rel_l2 < 0.5);
  r = run({"compare", kMrpcModel, s / "q.pt", "--seq-length", "32", "--rows", "64", "--max-disagreement", "0.5"});
  CHECK(r.code == 0);
  const double disagreement = 1 - agreement;
  if (disagreement > 0) {
    r = run({"compare", kMrpcModel, s / "q.pt", "--seq-length", "32", "--rows", "64", "--max-disagreement", "0"});
    CHECK(r.code == 7);
    CHECK(contains(r.err, " of the rows change their predicted class, more than --max-disagreement 0.0000\n"));
  }
  // At the measured disagreement the gate passes; a hair below, it fails.
  r = run({"compare", kMrpcModel, s / "q.pt", "--seq-length", "32", "--rows", "64", "--max-disagreement",
           std::to_string(disagreement + 1e-6)});
  CHECK(r.code == 0);
  // Against itself: identical.
  r = run({"compare", kMrpcModel, kMrpcModel, "--seq-length", "32", "--rows", "16", "--max-disagreement", "0"});
  CHECK(r.code == 0);
  CHECK(contains(r.out, "max abs logit difference: 0\n"));
  CHECK(contains(r.out, "relative L2 logit error: 0\n"));
  // On the MRPC fixture too.
  r = run({"compare", kMrpcModel, s / "q.pt", "--task", "mrpc", "--data", kSource + "/testdata/mrpc", "--vocab", kVocab,
           "--seq-length", "32"});
  CHECK(r.code == 0);
  CHECK(contains(r.out, "on " + kSource + "/testdata/mrpc/dev.tsv\n  examples: 8\n"));
}

TEST_CASE("compare refuses gates and row counts that cannot mean anything", "[cli][compare][errors]") {
  for (const std::vector<std::string>& extra : {std::vector<std::string>{"--max-disagreement", "nan"},
                                                {"--max-disagreement", ""},
                                                {"--rows", "-5"},
                                                {"--rows", "0"}}) {
    INFO(extra[0] << " " << extra[1]);
    std::vector<std::string> args{"compare", kMrpcModel, kMrpcModel, "--seq-length", "32"};
    args.insert(args.end(), extra.begin(), extra.end());
    const Result r = run(args);
    CHECK(r.code == 2);
    CHECK_FALSE(contains(r.err, "internal error"));
  }
}

TEST_CASE("compare --max-rel-l2 gates on the error this run measured, after printing it", "[cli][compare]") {
  Scratch s;
  REQUIRE(run({"convert", kMrpcModel, s / "q.pt"}).code == 0);
  const std::vector<std::string> base{"compare", kMrpcModel, s / "q.pt", "--seq-length", "32",
                                      "--rows",  "32",       "--format", "json"};
  Result r = run(base);
  REQUIRE(r.code == 0);
  const double rel_l2 = parse_json(r.out)["rel_l2"].get<double>();
  REQUIRE(rel_l2 > 0);
  auto with = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args);
  };
  r = with({"--max-rel-l2", std::to_string(rel_l2 * 1.01)});
  CHECK(r.code == 0);
  r = with({"--max-rel-l2", std::to_string(rel_l2 * 0.99)});
  CHECK(r.code == 7);
  CHECK(parse_json(r.out)["rel_l2"].get<double>() == rel_l2);  // the figures come first
  CHECK(contains(r.err, "bertq: error: the relative L2 error of the logits is "));
  CHECK(contains(r.err, ", more than --max-rel-l2 "));
  for (const std::string bad : {"nan", "-1", "x"}) CHECK(with({"--max-rel-l2", bad}).code == 2);
}

TEST_CASE("compare and bench refuse a quantized model made from another model, unless allowed", "[cli][compare]") {
  Scratch s;
  const std::string other = kSource + "/testdata/models/outlier_net.pt";
  REQUIRE(run({"convert", kMrpcModel, s / "q.pt"}).code == 0);
  REQUIRE(run({"convert", kMrpcModel, s / "q2.pt", "--embeddings", "8bit"}).code == 0);
  REQUIRE(run({"convert", kMrpcModel, s / "bare.pt", "--no-manifest"}).code == 0);
  Result r = run({"compare", other, s / "q.pt", "--rows", "4"});
  CHECK(r.code == 2);
  CHECK(contains(r.err, "bertq: error: " + s / "q.pt" + " was converted from the model with SHA-256 "));
  CHECK(contains(r.err, ", not from " + other + " ("));
  CHECK(contains(r.err, "hint: compare a quantized model with the float model it came from; --allow-unrelated"));
  r = run({"bench", other, s / "q.pt", "--iters", "1", "--warmup", "0", "--seq-length", "8"});
  CHECK(r.code == 2);
  CHECK(contains(r.err, " was converted from the model with SHA-256 "));
  r = run({"compare", other, s / "q.pt", "--rows", "4", "--seq-length", "8", "--allow-unrelated"});
  CHECK(contains(r.err, "(compared anyway: --allow-unrelated)"));
  // Related: the float model itself, two conversions of it, or no manifest to tell.
  CHECK(run({"compare", kMrpcModel, s / "q.pt", "--rows", "4", "--seq-length", "8"}).code == 0);
  CHECK(run({"compare", s / "q.pt", s / "q2.pt", "--rows", "4", "--seq-length", "8"}).code == 0);
  CHECK(run({"compare", other, s / "bare.pt", "--rows", "4", "--seq-length", "8", "--allow-unrelated"}).code != 2);
}
