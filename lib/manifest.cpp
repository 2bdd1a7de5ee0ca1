#include "manifest.h"

#include <nlohmann/json.hpp>

#include "error.h"

namespace bertq {

using json = nlohmann::ordered_json;

std::string manifest_json(const Report& r) {
  json j;
  j["schema"] = "bertq-manifest/1";
  j["bertq_version"] = r.bertq_version;
  j["libtorch_version"] = r.libtorch_version;
  j["engine"] = r.engine;
  j["mode"] = r.mode;
  j["input_sha256"] = r.input.sha256;
  j["qconfig"] = r.qconfig_resolved.empty() ? json() : json::parse(r.qconfig_resolved);
  json modules = json::array();
  for (const auto& m : r.modules) {
    modules.push_back({{"path", m.plan.path},
                       {"type", m.plan.type_name},
                       {"quantized", m.plan.quantized},
                       {"op", m.plan.op},
                       {"rule", m.plan.rule.describe()},
                       {"float_reason", m.plan.float_reason},
                       {"packed_attr", m.packed_attr}});
  }
  j["modules"] = modules;
  return j.dump(1);
}

std::optional<Manifest> parse_manifest(const std::string& text) {
  if (text.empty()) return std::nullopt;
  try {
    const json j = json::parse(text);
    if (j.value("schema", "") != "bertq-manifest/1") throw Error(ErrorKind::Model, "unknown manifest schema");
    Manifest m;
    m.bertq_version = j.at("bertq_version").get<std::string>();
    m.libtorch_version = j.at("libtorch_version").get<std::string>();
    m.engine = j.at("engine").get<std::string>();
    m.mode = j.at("mode").get<std::string>();
    m.input_sha256 = j.at("input_sha256").get<std::string>();
    m.qconfig_resolved = j.at("qconfig").is_null() ? "" : j.at("qconfig").dump();
    for (const auto& e : j.at("modules")) {
      ManifestModule mm;
      mm.path = e.at("path").get<std::string>();
      mm.type_name = e.at("type").get<std::string>();
      mm.quantized = e.at("quantized").get<bool>();
      mm.op = e.at("op").get<std::string>();
      mm.rule = e.at("rule").get<std::string>();
      mm.float_reason = e.at("float_reason").get<std::string>();
      mm.packed_attr = e.at("packed_attr").get<std::string>();
      m.modules.push_back(std::move(mm));
    }
    return m;
  } catch (const json::exception& e) {
    throw Error(ErrorKind::Model, std::string("the archive's bertq manifest is malformed: ") + e.what());
  }
}

}  // namespace bertq
