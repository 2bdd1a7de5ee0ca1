// `bertq tune` as a user meets it: the chart page, the exit codes, and no
// output when no quantized choice meets the tolerance.
#include <cmath>
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

namespace {

// The metric each "tune: trial N" line reports, in order.
std::vector<double> trial_metrics(const std::string& log) {
  std::vector<double> out;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("bertq: info: tune: trial ", 0) != 0) continue;
    const size_t at = line.find("): rel_l2 ");
    if (at != std::string::npos) out.push_back(std::stod(line.substr(at + 10)));
  }
  return out;
}

}  // namespace

TEST_CASE("tune explains itself: a baseline first, every trial with size and time, the final conversion",
          "[cli][tune]") {
  Scratch s;
  const Result r = run({"tune", kOutlier, s / "t.pt", "--tolerance", "5%", "--qconfig-out", s / "t.json", "--rows",
                        "16", "--seq-length", "16", "--tune-report", s / "r.json", "--tune-html", s / "t.html"});
  REQUIRE(r.code == 0);
  const size_t baseline = r.err.find(
      "bertq: info: tune: baseline: plain `bertq convert` (per_channel_dynamic) gives "
      "rel_l2 ");
  const size_t first = r.err.find("bertq: info: tune: trial 1 (");
  const size_t last = r.err.find("bertq: info: tune: final conversion, as `bertq convert --qconfig` makes it: ");
  REQUIRE(baseline != std::string::npos);
  REQUIRE(first != std::string::npos);
  REQUIRE(last != std::string::npos);
  CHECK(baseline < first);
  CHECK(first < last);
  CHECK(contains(r.err, "which misses --tolerance 0.05, at about "));
  const auto report = parse_json(slurp(s / "r.json"));
  CHECK(report["schema"] == "bertq-tune/2");
  CHECK(report["tolerance"] == 0.05);  // 5% is 0.05
  // Every conversion of the search is logged (a choice met again is not
  // converted again), with the estimate refined as trials run.
  CHECK(trial_metrics(r.err).size() == report["conversions"].get<size_t>() - 1);
  CHECK(contains(r.err, " s so far, at most "));
  // The baseline's size estimate is within 10 % of what plain convert writes.
  REQUIRE(run({"convert", kOutlier, s / "plain.pt"}).code == 0);
  const double plain = static_cast<double>(fs::file_size(s / "plain.pt"));
  CHECK(std::abs(report["baseline"]["estimated_bytes"].get<double>() - plain) <= 0.1 * plain);
  // Each module's reason is its own: its sensitivity and rank.
  std::set<std::string> whys;
  for (const auto& m : report["modules"]) whys.insert(m["why"].get<std::string>());
  CHECK(whys.size() == report["modules"].size());
  const std::string page = slurp(s / "t.html");
  CHECK(contains(page, "<h2>Trials</h2>"));
  CHECK(contains(page, "<h2>The chosen qconfig</h2>"));
  CHECK(contains(page, "4bit "));  // both embedding precisions' sensitivity
  CHECK_FALSE(contains(page, "&amp;"));
}

TEST_CASE("tune stops at --max-trials with the best choice that met the tolerance, or says none did", "[cli][tune]") {
  Scratch s;
  const std::vector<std::string> base{"tune", kOutlier,       s / "t.pt", "--qconfig-out", s / "t.json", "--rows",
                                      "16",   "--seq-length", "16",       "--tune-report", s / "r.json", "--tolerance"};
  auto with = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args);
  };
  // The full search, then the same stopped after two trials.
  Result r = with({"0.05"});
  REQUIRE(r.code == 0);
  const size_t full = trial_metrics(r.err).size();
  REQUIRE(full > 2);
  r = with({"0.05", "--max-trials", "2"});
  if (r.code == 0) {
    CHECK(trial_metrics(r.err).size() == 2);
    CHECK(contains(r.err,
                   "bertq: warning: tune: stopped early (--max-trials 2) after 2 trials: writing the smallest "
                   "choice measured to meet the tolerance"));
    CHECK(parse_json(slurp(s / "r.json"))["stopped_early"] == "--max-trials 2");
    CHECK(parse_json(slurp(s / "r.json"))["final_metric"].get<double>() <= 0.05);
  } else {
    CHECK(r.code == 10);
    CHECK(contains(r.err, "bertq: error: tune stopped (--max-trials 2) after 2 trials before any choice met"));
  }
  // One trial (the cheapest everywhere) cannot meet a tight tolerance.
  fs::remove(s / "t.pt");
  r = with({"0.0001", "--max-trials", "1"});
  CHECK(r.code == 10);
  CHECK(trial_metrics(r.err).size() == 1);
  CHECK(contains(r.err,
                 "bertq: error: tune stopped (--max-trials 1) after 1 trial before any choice met --tolerance "
                 "0.0001 on rel_l2; the best gave "));
  CHECK_FALSE(fs::exists(s / "t.pt"));
}

TEST_CASE("tune quotes its best trial when nothing meets the tolerance", "[cli][tune]") {
  Scratch s;
  const Result r = run({"tune", kOutlier, s / "t.pt", "--tolerance", "1e-9", "--qconfig-out", s / "t.json", "--rows",
                        "16", "--seq-length", "16"});
  CHECK(r.code == 10);
  const auto metrics = trial_metrics(r.err);
  REQUIRE_FALSE(metrics.empty());
  const double best = *std::min_element(metrics.begin(), metrics.end());
  const size_t at = r.err.find("(the best trial gave ");
  REQUIRE(at != std::string::npos);
  // Both printed with 6 significant digits.
  CHECK(std::abs(std::stod(r.err.substr(at + 21)) - best) <= 1e-5 * best);
  CHECK(contains(r.err, "; plain `bertq convert` gives "));
}

TEST_CASE("tune reads tolerances as the user means them, and needs real data unless asked", "[cli][tune][errors]") {
  Scratch s;
  const std::vector<std::string> base{"tune",       kOutlier,       s / "t.pt", "--qconfig-out",
                                      s / "t.json", "--seq-length", "16"};
  auto with = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args);
  };
  // No data, no --rows: refused; tuning on dummy ids is only on request.
  Result r = with({"--tolerance", "0.05"});
  CHECK(r.code == 2);
  CHECK(r.err ==
        "bertq: error: tune needs data to measure the error on\nhint: --tokenized FILE.jsonl, --data DIR "
        "--vocab FILE (MRPC), or --inputs FILE; --rows N tunes on N dummy rows\n");
  // A relative metric's tolerance of 1 or more is 100 % or more: said.
  r = with({"--tolerance", "3", "--rows", "8"});
  CHECK(r.code == 0);
  CHECK(contains(r.err,
                 "bertq: warning: --tolerance 3 allows rel_l2 of 300 %: rel_l2 is a fraction (did you mean "
                 "--tolerance 3%?)\n"));
  CHECK_FALSE(contains(with({"--tolerance", "3%", "--rows", "8"}).err, "bertq: warning: --tolerance"));
  for (const std::string bad : {"10%x", "%", "-1%", "nan", ""}) {
    INFO(bad);
    r = with({"--tolerance", bad, "--rows", "8"});
    CHECK(r.code == 2);
    CHECK(contains(r.err, "bertq: error: --tolerance "));
  }
  r = with({"--tolerance", "5%", "--metric", "max_abs", "--rows", "8"});
  CHECK(r.code == 2);
  CHECK(contains(r.err, "max_abs is in the logits' unit, not a fraction"));
}

TEST_CASE("tune --time-limit starts no trial past the limit", "[cli][tune]") {
  Scratch s;
  // The baseline and the sensitivity pass alone take longer than 1 ms.
  const Result r = run({"tune", kOutlier, s / "t.pt", "--tolerance", "0.05", "--qconfig-out", s / "t.json", "--rows",
                        "16", "--seq-length", "16", "--time-limit", "0.001"});
  CHECK(r.code == 10);
  CHECK(trial_metrics(r.err).empty());
  CHECK(contains(r.err, "bertq: error: tune stopped (--time-limit 0.001) after 0 trials before any choice met"));
  CHECK_FALSE(fs::exists(s / "t.pt"));
  CHECK(run({"tune", kOutlier, s / "t.pt", "--tolerance", "0.05", "--qconfig-out", s / "t.json", "--rows", "16",
             "--time-limit", "-1"})
            .code == 2);
}

TEST_CASE("tune --full-range-activations takes 8-bit activations per Linear where they err less", "[cli][tune]") {
  Scratch s;
  const std::vector<std::string> args = {
      "tune",          kModel,      s / "t.pt", "--tolerance",  "0.5", "--qconfig-out",
      s / "t.json",    "--rows",    "16",       "--seq-length", "16",  "--full-range-activations",
      "--tune-report", s / "r.json"};
  const bool exact_here = contains(run({"--version"}).out, "full 8-bit activations with onednn: exact here");
  // Where oneDNN has no VNNI, refused before any work.
  std::string cmd = "ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 " + quote(kBinary);
  for (const auto& a : args) cmd += " " + quote(a);
  CHECK(shell(cmd + " >/dev/null 2>" + quote(s / "err")) == 6);
  CHECK(contains(slurp(s / "err"), "full 8-bit activations would not be exact"));
  CHECK_FALSE(fs::exists(s / "t.pt"));
  if (!exact_here) return;
  const Result r = run(args);
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto rep = parse_json(slurp(s / "r.json"));
  const auto chosen = parse_json(slurp(s / "t.json"));
  int eight = 0;
  for (const auto& m : rep.at("modules")) {
    if (m.at("type") != "Linear") continue;
    const int bits = m.at("activation_bits");
    CHECK((bits == 7 || bits == 8));
    const std::string path = m.at("path");
    // The qconfig says it where the module is int8 with 8-bit activations.
    const bool says =
        chosen.contains(path) && chosen[path].is_object() && chosen[path].value("full_range_activations", false);
    CHECK(says == (bits == 8 && m.at("chosen") == "int8"));
    eight += bits == 8 ? 1 : 0;
  }
  // Half the activation step: most of tiny BERT's Linears err less with it.
  CHECK(eight > 0);
  // The model written is the qconfig's: convert reproduces its 8-bit linears.
  const Result c = run({"convert", kModel, s / "again.pt", "--qconfig", s / "t.json", "--report", s / "again.json"});
  REQUIRE(c.code == 0);
  const auto again = parse_json(slurp(s / "again.json"));
  int again_eight = 0;
  for (const auto& m : again.at("modules")) again_eight += m.at("activation_bits") == 8 ? 1 : 0;
  int chosen_eight = 0;
  for (const auto& m : rep.at("modules"))
    chosen_eight += m.at("type") == "Linear" && m.at("activation_bits") == 8 && m.at("chosen") == "int8" ? 1 : 0;
  CHECK(again_eight == chosen_eight);
}
