#include "base/json_io.h"

#include <unordered_set>

#include "base/text.h"

namespace bertq {

namespace {

// "SOURCE:LINE:COL" for byte `offset` (nlohmann's, just past the character).
std::string position(std::string_view text, size_t offset, const std::string& source, size_t line) {
  auto [l, col] = line_column(text, offset);
  return source + ":" + std::to_string(line ? line : l) + ":" + std::to_string(col);
}

}  // namespace

namespace {

// nlohmann quotes what it read ("number overflow parsing '9999...'"): a value
// over 200 bytes is cut, as every value in bertq's messages is.
std::string clip_quoted(const std::string& what) {
  std::string out;
  size_t i = 0;
  while (i < what.size()) {
    const size_t open = what.find('\'', i);
    const size_t close = open == std::string::npos ? std::string::npos : what.find('\'', open + 1);
    if (close == std::string::npos) {
      out += what.substr(i);
      break;
    }
    out += what.substr(i, open - i);
    const std::string inner = what.substr(open + 1, close - open - 1);
    out += inner.size() > 200 ? "'" + inner.substr(0, 200) + "...' (" + std::to_string(inner.size()) + " bytes)"
                              : "'" + inner + "'";
    i = close + 1;
  }
  return out;
}

}  // namespace

void throw_json_error(const nlohmann::json::exception& e, std::string_view text, const std::string& source,
                      ErrorKind kind, size_t line) {
  std::string what = clip_quoted(e.what());
  if (const auto* parse = dynamic_cast<const nlohmann::json::parse_error*>(&e)) {
    // "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ..."
    if (auto pos = what.find(": "); pos != std::string::npos) what = what.substr(pos + 2);
    throw Error(kind, position(text, parse->byte, source, line) + ": malformed JSON: " + printable(what));
  }
  // e.g. out_of_range.406 for a number too large for a double.
  if (auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
  throw Error(kind, source + (line ? ":" + std::to_string(line) : "") + ": malformed JSON: " + printable(what));
}

namespace {

// Builds an ordered_json from nlohmann's SAX events, appending keys without
// a search (parse_json_strict has refused duplicates before).
class OrderedBuilder : public nlohmann::json_sax<nlohmann::ordered_json> {
 public:
  using J = nlohmann::ordered_json;
  bool null() override { return put(J()) != nullptr; }
  bool boolean(bool v) override { return put(J(v)) != nullptr; }
  bool number_integer(number_integer_t v) override { return put(J(v)) != nullptr; }
  bool number_unsigned(number_unsigned_t v) override { return put(J(v)) != nullptr; }
  bool number_float(number_float_t v, const string_t&) override { return put(J(v)) != nullptr; }
  bool string(string_t& v) override { return put(J(std::move(v))) != nullptr; }
  bool binary(binary_t&) override { return false; }
  bool start_object(std::size_t) override {
    open_.push_back(put(J::object()));
    return true;
  }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override {
    open_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    open_.push_back(put(J::array()));
    return true;
  }
  bool end_array() override {
    open_.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }
  J take() { return std::move(root_); }

 private:
  // Only the containers on the path to the current value are held: adding
  // to the innermost may move its children, none of which is held.
  J* put(J v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    J& top = *open_.back();
    if (top.is_object()) {
      auto& entries = top.get_ref<J::object_t&>();
      entries.emplace_back(std::move(key_), std::move(v));
      return &entries.back().second;
    }
    auto& items = top.get_ref<J::array_t&>();
    items.push_back(std::move(v));
    return &items.back();
  }
  J root_;
  std::vector<J*> open_;
  std::string key_;
};

}  // namespace

nlohmann::ordered_json parse_json_ordered(std::string_view text, const std::string& source, ErrorKind kind,
                                          int max_depth) {
  parse_json_strict(text, source, kind, max_depth);
  OrderedBuilder builder;
  if (!nlohmann::ordered_json::sax_parse(text, &builder))
    throw Error(kind, source + ": malformed JSON");  // parse_json_strict would have said where
  return builder.take();
}

StrictJson parse_json_strict(std::string_view text, const std::string& source, ErrorKind kind, int max_depth,
                             size_t line) {
  if (const auto nul = text.find('\0'); nul != std::string_view::npos)
    throw Error(kind, position(text, nul + 1, source, line) + ": malformed JSON: a NUL byte (JSON text holds none)");
  StrictJson out;
  std::vector<std::unordered_set<std::string>> seen;  // keys of each open object
  std::vector<std::string> open_keys;                 // the current key of each open object
  std::string duplicate;                              // its JSON path
  int deepest = 0;
  auto on_event = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    deepest = std::max(deepest, depth);
    // Past the limit nothing is kept, so memory stays small; reported below.
    if (depth > max_depth) return false;
    switch (event) {
      case nlohmann::json::parse_event_t::object_start:
        seen.emplace_back();
        open_keys.emplace_back();
        break;
      case nlohmann::json::parse_event_t::object_end:
        if (!seen.empty()) seen.pop_back();
        if (!open_keys.empty()) open_keys.pop_back();
        break;
      case nlohmann::json::parse_event_t::key: {
        if (seen.empty()) break;
        const std::string& k = parsed.get_ref<const std::string&>();
        open_keys.back() = k;
        if (!seen.back().insert(k).second && duplicate.empty()) {
          duplicate = "[" + quoted_value(open_keys[0]) + "]";
          for (size_t i = 1; i < open_keys.size(); ++i) duplicate += "." + printable(open_keys[i]);
        }
        if (seen.size() == 1) out.top_keys.push_back(k);
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    out.doc = nlohmann::json::parse(text.begin(), text.end(), on_event);
  } catch (const nlohmann::json::exception& e) {
    throw_json_error(e, text, source, kind, line);
  }
  const std::string where = source + (line ? ":" + std::to_string(line) : "");
  if (deepest > max_depth)
    throw Error(kind, where + ": nested more than " + std::to_string(max_depth) + " levels deep");
  if (!duplicate.empty())
    throw Error(kind, where + ": " + duplicate + ": duplicate key", "each key may appear once in an object");
  return out;
}

}  // namespace bertq
