// `bertq tune` as a user meets it: the chart page, the exit codes, and no
// output when no quantized choice meets the tolerance.
#include <set>

#include "cli/cli.h"

using namespace cli;

namespace {
const std::string kOutlier = kSource + "/testdata/models/outlier_net.pt";
}  // namespace

TEST_CASE("tune writes the model, the qconfig, its report and a page with the worst module first", "[cli][tune]") {
  Scratch s;
  Result r = run({"tune", kOutlier, s / "t.pt", "--tolerance", "0.1", "--qconfig-out", s / "t.json", "--rows", "32",
                  "--seq-length", "16", "--tune-html", s / "t.html", "--tune-report", s / "t_report.json", "--format",
                  "json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const nlohmann::json j = parse_json(r.out);
  CHECK(j.at("final_metric").get<double>() <= 0.1);
  CHECK(j.at("qconfig").at("fc2").is_null());
  const std::string page = slurp(s / "t.html");
  const size_t fc2 = page.find("<code>fc2</code>"), fc1 = page.find("<code>fc1</code>");
  REQUIRE(fc2 != std::string::npos);
  REQUIRE(fc1 != std::string::npos);
  CHECK(fc2 < fc1);  // worst first
  CHECK(contains(page, "<tr class=\"float\"><td><code>fc2</code>"));
  // bertq's entities are markup, written once: never escaped into text.
  CHECK(contains(page, " MB &rarr; "));
  CHECK(contains(page, " &le; tolerance "));
  CHECK_FALSE(contains(page, "&amp;"));
  // --tune-report: the same choices as stdout's JSON, every module with its
  // sensitivity, and the trials that led there.
  const nlohmann::json rep = parse_json(slurp(s / "t_report.json"));
  CHECK(rep.at("qconfig") == j.at("qconfig"));
  CHECK(rep.at("final_metric") == j.at("final_metric"));
  CHECK(rep.at("tolerance").get<double>() == 0.1);
  std::set<std::string> paths;
  for (const auto& m : rep.at("modules")) {
    paths.insert(m.at("path").get<std::string>());
    CHECK(m.at("sensitivity").size() >= 1);
  }
  CHECK(paths == std::set<std::string>{"emb", "fc1", "fc2", "fc3"});
  for (const auto& m : rep.at("modules"))
    if (m.at("path") == "fc2") CHECK(m.at("chosen") == "float");
  CHECK(rep.at("trials").size() >= 1);
  CHECK(rep.at("conversions").get<int>() >= 1);
  CHECK(s.leftovers().empty());
}

TEST_CASE("tune: a tolerance only float meets is exit 10, and nothing is written", "[cli][tune][errors]") {
  Scratch s;
  Result r = run({"tune", kOutlier, s / "t.pt", "--tolerance", "0", "--qconfig-out", s / "t.json", "--rows", "16",
                  "--seq-length", "16"});
  CHECK(r.code == 10);
  CHECK(contains(r.err, "bertq: error: no quantized choice meets --tolerance 0 on rel_l2"));
  CHECK_FALSE(fs::exists(s / "t.pt"));
  CHECK_FALSE(fs::exists(s / "t.json"));
  CHECK(s.leftovers().empty());
  r = run({"tune", kOutlier, s / "t.pt", "--tolerance", "0.1", "--qconfig-out", s / "t.json", "--metric", "rel-l2"});
  CHECK(r.code == 2);
  CHECK(contains(r.err, "bertq: error: unknown --metric \"rel-l2\"\nhint: did you mean \"rel_l2\"?"));
  // The qconfig may not overwrite the input.
  r = run({"tune", kOutlier, s / "t.pt", "--tolerance", "0.1", "--qconfig-out", kOutlier});
  CHECK(r.code == 2);
  CHECK_FALSE(fs::exists(s / "t.pt"));
}

TEST_CASE("tune never writes over what it reads, and writes all its outputs or none", "[cli][tune][errors]") {
  Scratch s;
  fs::copy_file(kSource + "/testdata/tokenizer/vocab.txt", s / "vocab.txt");
  fs::create_directories(s / "mrpc");
  fs::copy_file(kSource + "/testdata/mrpc/dev.tsv", s / "mrpc/dev.tsv");
  const std::string vocab = slurp(s / "vocab.txt"), dev = slurp(s / "mrpc/dev.tsv");
  const std::vector<std::string> data{"--task", "mrpc", "--data", s / "mrpc", "--vocab", s / "vocab.txt"};
  for (const std::vector<std::string>& outs : {std::vector<std::string>{"--qconfig-out", s / "vocab.txt"},
                                               {"--qconfig-out", s / "q.json", "--tune-report", s / "mrpc/dev.tsv"},
                                               {"--qconfig-out", s / "q.json", "--tune-html", s / "mrpc/dev.tsv"},
                                               {"--qconfig-out", s / "q.json", "--report", s / "vocab.txt"},
                                               {"--qconfig-out", s / "q.json", "--html", s / "mrpc/dev.tsv"}}) {
    INFO(outs[0] << " " << outs[1] << " ...");
    std::vector<std::string> args{"tune", kSource + "/testdata/models/tiny_bert_mrpc.pt", s / "t.pt", "--tolerance",
                                  "0.5"};
    args.insert(args.end(), data.begin(), data.end());
    args.insert(args.end(), outs.begin(), outs.end());
    const Result r = run(args);
    CHECK(r.code == 2);
    CHECK(contains(r.err, "bertq never overwrites"));
  }
  CHECK(slurp(s / "vocab.txt") == vocab);
  CHECK(slurp(s / "mrpc/dev.tsv") == dev);
  CHECK_FALSE(fs::exists(s / "t.pt"));
}

TEST_CASE("an interrupted tune leaves no temporary behind", "[cli][tune]") {
  for (const int sig : {SIGTERM, SIGINT, SIGHUP}) {
    INFO("signal " << sig);
    Scratch s;
    fs::create_directories(s / "tmp");
    // Tune stages every output before it reads its data: it waits in that
    // read, with its temporaries made, until signalled.
    HeldFifo fifo(s / "data.jsonl");
    Background tune("env TMPDIR=" + quote(s / "tmp") + " " + quote(kBinary) + " tune " + quote(kOutlier) + " " +
                    quote(s / "t.pt") + " --tolerance 0.05 --qconfig-out " + quote(s / "t.json") + " --tokenized " +
                    quote(s / "data.jsonl") + " --seq-length 16 --tune-report " + quote(s / "r.json") + " 2>/dev/null");
    REQUIRE(fifo.opened_elsewhere());
    CHECK(s.leftovers().size() == 3);  // the model's, the qconfig's and the tune report's
    REQUIRE(::kill(tune.pid(), sig) == 0);
    CHECK(tune.wait() == 128 + sig);
    CHECK(s.leftovers().empty());
    for (const char* out : {"t.pt", "t.json", "r.json"}) CHECK_FALSE(fs::exists(s / out));
    CHECK(fs::is_empty(s / "tmp"));
  }
}

TEST_CASE("tune refuses a tolerance that is not a number", "[cli][tune][errors]") {
  Scratch s;
  for (const std::string v : {"", "nan", "-1", "3x"}) {
    INFO("--tolerance '" << v << "'");
    const Result r = run({"tune", kOutlier, s / "t.pt", "--tolerance", v, "--qconfig-out", s / "t.json"});
    CHECK(r.code == 2);
  }
}
