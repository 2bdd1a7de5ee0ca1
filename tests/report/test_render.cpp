// The report's renderers and invariants, on a report built by hand (no
// LibTorch): the text table's fit, the JSON's types, the manifest's round trip.
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "archive/manifest.h"
#include "base/error.h"
#include "catch.hpp"
#include "report/diff_result.h"
#include "report/report.h"

using namespace bertq;

namespace {

Report sample() {
  Report r;
  r.bertq_version = "0.2.0";
  r.libtorch_version = "1.13.1";
  r.engine = "onednn";
  r.input = {"in.pt", "abc", 1000};
  r.output = {"out.pt", "def", 600};
  r.qconfig = default_qconfig_dict();
  for (int i = 0; i < 3; ++i) {
    ModuleReport m;
    m.plan.path = "bert.encoder.layer." + std::to_string(i) + ".attention.self.query_with_a_long_name";
    m.plan.type_name = "Linear";
    m.plan.weight_shape = {768, 768};
    m.plan.rule = {RuleKind::Global, ""};
    m.plan.quantized = i < 2;
    m.plan.op = m.plan.quantized ? "linear_dynamic" : "";
    m.plan.float_reason = m.plan.quantized ? "" : "opted out";
    m.plan.qconfig = preset("per_channel_dynamic");
    if (m.plan.quantized) {
      m.qscheme = "per_channel_affine";
      m.scales = {0.01, 0.02};
      m.zero_points = {0, 0};
      m.sqnr_db = 40.0 + i;
    }
    m.bytes_before = 200;
    m.bytes_after = m.plan.quantized ? 100 : 0;
    m.bytes_shared = m.plan.quantized ? 0 : 200;
    r.modules.push_back(m);
  }
  r.input_sizes = {600, 100, 200, 100, 1000};
  r.output_sizes = {200, 100, 200, 100, 600};
  r.quantized_in_output = 2;
  return r;
}

}  // namespace

TEST_CASE("the text table fits the width it is given", "[report][render]") {
  const Report r = sample();
  std::ostringstream wide, narrow;
  print_table(r, wide);
  print_table(r, narrow, TableRows::All, 80);
  std::istringstream lines(narrow.str());
  std::string line;
  size_t widest = 0;
  while (std::getline(lines, line))
    if (line.rfind("input bytes", 0) != 0 && line.rfind("output bytes", 0) != 0) widest = std::max(widest, line.size());
  CHECK(widest <= 80);
  CHECK(wide.str().find("query_with_a_long_name") != std::string::npos);
  CHECK(narrow.str().find("...") != std::string::npos);  // names shortened in the middle
  // A module stored once for several shows "shared", not 0 B.
  CHECK(wide.str().find("shared") != std::string::npos);
  std::ostringstream quantized_only;
  print_table(r, quantized_only, TableRows::Quantized);
  CHECK(quantized_only.str().find("(1 float modules not shown; --table all shows them)") != std::string::npos);
  std::ostringstream none;
  print_table(r, none, TableRows::None);
  CHECK(none.str().empty());
}

TEST_CASE("the JSON report: integer zero points, observer and tensor qschemes, guards", "[report][render]") {
  Report r = sample();
  r.guards.push_back({"min_quantized_fraction 0.9", false, "0.667 of the weight elements are quantized"});
  std::ostringstream out;
  print_json(r, out);
  const auto j = nlohmann::json::parse(out.str());
  CHECK(j["schema"] == "bertq-report/2");
  CHECK(j["modules"][0]["zero_points"][0].is_number_integer());
  CHECK(j["modules"][0]["qscheme"] == "per_channel_affine");
  CHECK(j["modules"][0]["observer_qscheme"] == "per_channel_symmetric");
  CHECK(j["modules"][2]["bytes_shared"] == 200);
  CHECK(j["guards"][0]["passed"] == false);
  CHECK(j["options"].contains("min_quantized_fraction"));
  CHECK(j["qconfig"]["resolved"][""]["weight"]["qscheme"] == "per_channel_symmetric");
}

TEST_CASE("check_totals catches accounting that does not add up", "[report]") {
  Report r = sample();
  CHECK_NOTHROW(check_totals(r));
  r.output_sizes.zip_overhead += 1;
  CHECK_THROWS_AS(check_totals(r), Error);
  r = sample();
  r.modules[0].bytes_after += 1;
  CHECK_THROWS_AS(check_totals(r), Error);
}

TEST_CASE("the manifest stores rules as the report does, and reads back", "[report][manifest]") {
  Report r = sample();
  r.modules[1].plan.rule = {RuleKind::Inherited, "bert.encoder"};
  r.modules[1].packed_attr = "quantized_forward._jit_pass_packed_weight_1";
  r.max_positions = 512;
  const auto m = parse_manifest(manifest_json(r));
  REQUIRE(m.has_value());
  CHECK(m->schema == 2);
  CHECK(m->libtorch_version == "1.13.1");
  CHECK(m->max_positions == 512);
  REQUIRE(m->modules.size() == 3);
  CHECK(m->modules[1].rule == Rule{RuleKind::Inherited, "bert.encoder"});
  CHECK(m->modules[1].rule.describe() == "inherited from \"bert.encoder\"");
  CHECK(m->modules[1].packed_attr == "quantized_forward._jit_pass_packed_weight_1");
  CHECK(m->modules[1].weight_shape == std::vector<int64_t>{768, 768});
  CHECK(m->options == result_key(r.options, to_json(r.qconfig)));
}

TEST_CASE("diff results render as text and JSON from the same data", "[diff]") {
  DiffResult d;
  d.path_a = "a.pt";
  d.path_b = "b.pt";
  d.matched_by = "module names";
  d.compared = 2;
  d.differences.push_back({"fc", "scales", "", "", 3, 8, 0.5});
  d.differences.push_back({"x", "only in B", "", "", 0, 0, 0});
  std::ostringstream text, js;
  print_diff(d, text);
  print_diff_json(d, js);
  CHECK(text.str() ==
        "fc: scales differ in 3 of 8 values (max abs difference 0.5)\nx: quantized only in b.pt\n"
        "differ: 2 differences in 2 modules compared by module names\n");
  const auto j = nlohmann::json::parse(js.str());
  CHECK(j["identical"] == false);
  CHECK(j["differences"][0]["differing"] == 3);
  CHECK(j["differences"][1]["text"] == "x: quantized only in b.pt");
}

TEST_CASE("the HTML page escapes every text once and writes its own entities as markup", "[report][render][html]") {
  Report r = sample();
  const std::string hostile = "<script>alert('x')</script>&amp;";
  r.input.path = hostile + ".pt";
  r.command_line = "bertq convert " + hostile;
  r.warnings = {hostile};
  r.notes = {hostile};
  r.modules[0].plan.path = "a.<b>&c";
  r.modules[0].sqnr_db = std::numeric_limits<double>::infinity();
  r.modules[2].plan.float_reason = hostile;
  r.guards = {{hostile, false, hostile}};
  r.fusions = {{hostile, {hostile, ""}, {1, 1}}};
  std::ostringstream s;
  print_html(r, s);
  const std::string page = s.str();
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t at = page.find(needle); at != std::string::npos; at = page.find(needle, at + 1)) ++n;
    return n;
  };
  // Nothing from the report reaches the page as markup.
  CHECK(count("<script") == 0);
  CHECK(count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;amp;") >= 8);
  // Escaped once: no entity of bertq's own is escaped again, and text
  // already escaped once is not escaped twice.
  CHECK(count("&rarr;") >= 1);
  CHECK(count("&infin;") >= 1);
  CHECK(count("&amp;rarr;") == 0);
  CHECK(count("&amp;infin;") == 0);
  CHECK(count("&amp;lt;") == 0);
  // A module path breaks after its dots, and only its text is escaped.
  CHECK(count("a.<wbr>&lt;b&gt;&amp;c") >= 1);
  CHECK(count("<span class=\"arg\">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;amp;</span>") == 1);
}

TEST_CASE("the page marks the lowest SQNR only when the spread means something, and words guards as checks",
          "[report][render][html]") {
  auto page_with = [](const std::vector<double>& sqnr) {
    Report r = sample();
    r.modules.clear();
    for (size_t i = 0; i < sqnr.size(); ++i) {
      ModuleReport m = sample().modules[0];
      m.plan.path = "layer." + std::to_string(i);
      m.sqnr_db = sqnr[i];
      r.modules.push_back(m);
    }
    r.guards = {{"nothing quantized", true, ""}};
    std::ostringstream s;
    print_html(r, s);
    return s.str();
  };
  const std::string close = page_with({41.0, 41.4, 41.9, 42.1, 42.3, 41.2});
  CHECK(close.find("none marked as the lowest: all 6 are within 3 dB of each other") != std::string::npos);
  CHECK(close.find("<tr class=\"low\">") == std::string::npos);
  const std::string spread = page_with({30.0, 41.4, 41.9, 42.1, 42.3, 36.2});
  CHECK(spread.find("among the 2 lowest SQNR") != std::string::npos);
  // "nothing quantized" passing means something was: said as what was checked.
  CHECK(close.find("passed:</strong> at least one weight is quantized <code class=\"chip\">nothing quantized</code>") !=
        std::string::npos);
  CHECK(guard_check_text("require_quantized \"bert.*\"") == "every Linear matching \"bert.*\" is quantized");
}
