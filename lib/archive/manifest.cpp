#include "archive/manifest.h"

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <set>

#include "archive/zip_index.h"
#include "base/error.h"
#include "base/fd.h"
#include "base/json_io.h"
#include "base/text.h"

namespace bertq {

using json = nlohmann::ordered_json;

namespace {

// The members of one fused weight must tile its rows from 0, in order, with
// no gap or overlap (equal modules sharing one packed weight share a range),
// and a module alone with its packed weight has no rows of another's.
void check_fused_groups(const Manifest& m, const std::string& its) {
  std::map<std::string, std::set<std::pair<int64_t, int64_t>>> ranges;
  std::map<std::string, size_t> members;
  for (const auto& mm : m.modules) {
    if (!mm.fused_rows) continue;
    ranges[mm.packed_attr].insert(*mm.fused_rows);
    ++members[mm.packed_attr];
  }
  for (const auto& [attr, rs] : ranges) {
    if (members[attr] < 2)
      throw Error(ErrorKind::Model, its + " gives fused rows of " + quoted_value(attr) +
                                        " to one module only; a fused weight has two or more");
    int64_t next = 0;
    for (const auto& [begin, end] : rs) {
      if (begin != next)
        throw Error(ErrorKind::Model, its + " gives the members of " + quoted_value(attr) +
                                          " rows that overlap or leave a gap at row " + std::to_string(next));
      next = end;
    }
  }
}

}  // namespace

std::optional<Manifest> parse_manifest(const std::string& text, const std::string& model_path) {
  // Messages name the model: "m.pt: its bertq manifest ...".
  const std::string its = model_path.empty() ? "the archive's bertq manifest" : model_path + ": its bertq manifest";
  if (text.empty()) return std::nullopt;
  try {
    // Strictly, and at most 16 levels deep, first: a manifest nests 4, and a
    // hostile one of 200,000 nested arrays must not reach nlohmann's
    // recursive parser. Then again in order, which the options keep.
    const json j = parse_json_ordered(text, its, ErrorKind::Model, 16);
    const std::string schema = j.value("schema", "");
    if (schema != "bertq-manifest/1" && schema != "bertq-manifest/2")
      throw Error(ErrorKind::Model, its + " has an unknown schema " + quoted_value(schema));
    Manifest m;
    m.schema = schema == "bertq-manifest/1" ? 1 : 2;
    m.bertq_version = j.at("bertq_version").get<std::string>();
    m.libtorch_version = j.at("libtorch_version").get<std::string>();
    m.libtorch_package = j.value("libtorch_package", "");
    m.engine = j.at("engine").get<std::string>();
    m.mode = j.at("mode").get<std::string>();
    m.input_sha256 = j.at("input_sha256").get<std::string>();
    if (m.schema >= 2) {
      m.options = j.at("options");
      if (j.contains("max_positions") && !j["max_positions"].is_null()) {
        if (!j["max_positions"].is_number_integer() || j["max_positions"].get<int64_t>() < 1)
          throw Error(ErrorKind::Model, its + " gives max_positions " + clipped_value(j["max_positions"].dump(), 40) +
                                            ", not a positive count");
        m.max_positions = j["max_positions"].get<int64_t>();
      }
    }
    for (const auto& e : j.at("modules")) {
      ManifestModule mm;
      mm.path = e.at("path").get<std::string>();
      mm.type_name = e.at("type").get<std::string>();
      mm.functional = e.value("functional", false);
      mm.quantized = e.at("quantized").get<bool>();
      mm.op = e.at("op").get<std::string>();
      if (m.schema >= 2) {
        const auto rule = rule_from_json(e.at("rule"));
        if (!rule) throw Error(ErrorKind::Model, its + " has a malformed rule");
        mm.rule = *rule;
      }
      mm.float_reason = e.at("float_reason").get<std::string>();
      mm.packed_attr = e.at("packed_attr").get<std::string>();
      if (e.contains("weight_shape")) mm.weight_shape = e["weight_shape"].get<std::vector<int64_t>>();
      if (e.contains("fused_rows")) {
        const auto& rows = e["fused_rows"];
        // Integers only: nlohmann would turn 0.5 into 0.
        if (!rows.is_array() || rows.size() != 2 || !rows[0].is_number_integer() || !rows[1].is_number_integer() ||
            rows[0].get<int64_t>() < 0 || rows[1].get<int64_t>() <= rows[0].get<int64_t>())
          throw Error(ErrorKind::Model, its + " has malformed fused_rows for " + quoted_value(mm.path) + ": " +
                                            clipped_value(rows.dump(), 60));
        mm.fused_rows = std::make_pair(rows[0].get<int64_t>(), rows[1].get<int64_t>());
        if (!mm.weight_shape.empty() && mm.fused_rows->second - mm.fused_rows->first != mm.weight_shape[0])
          throw Error(ErrorKind::Model,
                      its + " gives " + quoted_value(mm.path) + " rows " + std::to_string(mm.fused_rows->first) +
                          " to " + std::to_string(mm.fused_rows->second) + " of " + quoted_value(mm.packed_attr) +
                          ", but its weight has " + std::to_string(mm.weight_shape[0]));
      }
      m.modules.push_back(std::move(mm));
    }
    check_fused_groups(m, its);
    return m;
  } catch (const json::exception& e) {
    throw Error(ErrorKind::Model, std::string(its + " is malformed: ") + e.what());
  }
}

std::optional<Manifest> read_manifest(const std::string& path) {
  const Fd fd = open_fd(path, O_RDONLY | O_NONBLOCK);
  if (!fd) throw Error(ErrorKind::Model, "cannot open " + path + ": " + errno_message());
  const ZipIndex zip = read_zip_index(fd.get(), path);
  const ZipEntry* e = zip.find(std::string("extra/") + kManifestName);
  if (!e) return std::nullopt;
  // A manifest is a few kB; anything larger is not one of bertq's.
  if (e->size > (16u << 20)) throw Error(ErrorKind::Model, path + ": its bertq manifest is implausibly large");
  return parse_manifest(read_zip_record(fd.get(), path, *e), path);
}

}  // namespace bertq
