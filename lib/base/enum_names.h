// One table of names per enum, and the three things bertq does with it:
// name a value (reports, JSON), find a value by name (JSON, manifests), and
// parse a name the user typed, with a did-you-mean listing the choices.
//
//   const EnumNames<Engine> kEngineNames{{Engine::OneDNN, "onednn"}, ...};
//   kEngineNames.name(Engine::OneDNN)          "onednn"
//   kEngineNames.find("qnnpack")               Engine::QNNPACK
//   kEngineNames.parse("onedn", "engine")      Error(Usage): unknown engine "onedn" (did you mean "onednn"? ...)
//
// The table's order is the order names() lists them in.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/text.h"

namespace bertq {

template <typename E>
class EnumNames {
 public:
  EnumNames(std::initializer_list<std::pair<E, const char*>> entries) {
    for (const auto& [value, name] : entries) {
      values_.push_back(value);
      names_.emplace_back(name);
    }
  }

  // Every value of the enum is listed; "?" only for a value cast from an int.
  const std::string& name(E value) const {
    static const std::string unknown = "?";
    for (size_t i = 0; i < values_.size(); ++i)
      if (values_[i] == value) return names_[i];
    return unknown;
  }

  std::optional<E> find(const std::string& name) const {
    for (size_t i = 0; i < names_.size(); ++i)
      if (names_[i] == name) return values_[i];
    return std::nullopt;
  }

  // The value called `name`; otherwise Error(kind): "unknown WHAT "x"", with
  // the nearest names and the full list as the hint.
  E parse(const std::string& name, const std::string& what, ErrorKind kind = ErrorKind::Usage) const {
    if (auto v = find(name)) return *v;
    throw Error(kind, "unknown " + what + " " + quoted_value(name),
                did_you_mean(name, names_, "one of: " + join(names_, ", ")));
  }

  const std::vector<std::string>& names() const { return names_; }
  const std::vector<E>& values() const { return values_; }

 private:
  std::vector<E> values_;
  std::vector<std::string> names_;
};

}  // namespace bertq
