#include "archive/manifest.h"

#include <fcntl.h>
#include <unistd.h>

#include "archive/zip_index.h"
#include "base/error.h"

namespace bertq {

using json = nlohmann::ordered_json;

std::string manifest_json(const Report& r) {
  json j;
  j["schema"] = "bertq-manifest/2";
  j["bertq_version"] = r.bertq_version;
  j["libtorch_version"] = r.libtorch_version;
  j["libtorch_package"] = r.libtorch_package;
  j["engine"] = r.engine;
  j["mode"] = to_string(r.mode, r.debug);  // a dry run's copy records what convert would write
  j["input_sha256"] = r.input.sha256;
  j["options"] = result_key(r.options, r.mode == ConvertMode::ConvertPrepared ? json() : to_json(r.qconfig));
  j["max_positions"] = r.max_positions ? json(*r.max_positions) : json();
  json modules = json::array();
  for (const auto& m : r.modules) {
    modules.push_back({{"path", m.plan.path},
                       {"type", m.plan.type_name},
                       {"functional", m.plan.functional},
                       {"quantized", m.plan.quantized},
                       {"op", m.plan.op},
                       {"rule", to_json(m.plan.rule)},
                       {"float_reason", m.plan.float_reason},
                       {"packed_attr", m.packed_attr},
                       {"weight_shape", m.plan.weight_shape}});
    if (m.fused_rows) modules.back()["fused_rows"] = {m.fused_rows->first, m.fused_rows->second};
  }
  j["modules"] = modules;
  return j.dump(1);
}

std::optional<Manifest> parse_manifest(const std::string& text) {
  if (text.empty()) return std::nullopt;
  try {
    const json j = json::parse(text);
    const std::string schema = j.value("schema", "");
    if (schema != "bertq-manifest/1" && schema != "bertq-manifest/2")
      throw Error(ErrorKind::Model, "the archive's bertq manifest has an unknown schema " + quoted_value(schema));
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
      if (j.contains("max_positions") && j["max_positions"].is_number_integer())
        m.max_positions = j["max_positions"].get<int64_t>();
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
        if (!rule) throw Error(ErrorKind::Model, "the archive's bertq manifest has a malformed rule");
        mm.rule = *rule;
      }
      mm.float_reason = e.at("float_reason").get<std::string>();
      mm.packed_attr = e.at("packed_attr").get<std::string>();
      if (e.contains("fused_rows")) {
        const auto rows = e["fused_rows"].get<std::vector<int64_t>>();
        if (rows.size() != 2 || rows[0] < 0 || rows[1] <= rows[0])
          throw Error(ErrorKind::Model, "the archive's bertq manifest has malformed fused_rows for " + mm.path);
        mm.fused_rows = std::make_pair(rows[0], rows[1]);
      }
      if (e.contains("weight_shape")) mm.weight_shape = e["weight_shape"].get<std::vector<int64_t>>();
      m.modules.push_back(std::move(mm));
    }
    return m;
  } catch (const json::exception& e) {
    throw Error(ErrorKind::Model, std::string("the archive's bertq manifest is malformed: ") + e.what());
  }
}

std::optional<Manifest> read_manifest(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw Error(ErrorKind::Model, "cannot open " + path + ": " + errno_message());
  try {
    const ZipIndex zip = read_zip_index(fd, path);
    std::optional<Manifest> m;
    if (const ZipEntry* e = zip.find(std::string("extra/") + kManifestName)) {
      // A manifest is a few kB; anything larger is not one of bertq's.
      if (e->size > (16u << 20)) throw Error(ErrorKind::Model, path + ": its bertq manifest is implausibly large");
      m = parse_manifest(read_zip_record(fd, path, *e));
    }
    ::close(fd);
    return m;
  } catch (...) {
    ::close(fd);
    throw;
  }
}

}  // namespace bertq
