#include "text/glue.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

#include "base/error.h"
#include "base/files.h"
#include "base/json_io.h"
#include "base/text.h"

namespace bertq {

// Evaluation data is read whole; a GLUE dev set is a few MB.
constexpr uint64_t kMaxDataBytes = 1ull << 30;

namespace {

using json = nlohmann::json;

const char* const kHeaderHint =
    "an MRPC file starts with the header \"Quality\\t#1 ID\\t#2 ID\\t#1 String\\t#2 String\"";

// The lines as Python's text mode gives them to csv.reader / json.loads: "\n", "\r\n" and "\r"
// end a line, a final terminator does not start another, and a UTF-8 byte order mark is
// skipped (HF opens the files with encoding="utf-8-sig").
std::vector<std::string> split_lines(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n' && text[i] != '\r') continue;
    lines.emplace_back(text.substr(start, i - start));
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < text.size()) lines.emplace_back(text.substr(start));
  // One empty line at the end ("...\n\n") is a common editor artefact; allow it.
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

std::string at_line(const std::string& source, size_t line) { return source + ":" + std::to_string(line) + ": "; }

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1) {
    fields.push_back(line.substr(start, tab - start));
  }
  fields.push_back(line.substr(start));
  return fields;
}

}  // namespace

std::vector<PairExample> parse_mrpc_tsv(const std::string& text, const std::string& source) {
  const std::vector<std::string> lines = split_lines(text);
  if (lines.empty()) throw Error(ErrorKind::Usage, source + " is empty", kHeaderHint);
  std::vector<PairExample> examples;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const size_t lineno = i + 1;
    if (!is_utf8(line)) {
      throw Error(ErrorKind::Usage, at_line(source, lineno) + "not valid UTF-8");
    }
    if (line.empty()) {  // csv.reader gives [] here, and MrpcProcessor fails on line[3]
      throw Error(ErrorKind::Usage, at_line(source, lineno) + "empty line",
                  "every line after the header must be an example");
    }
    const std::vector<std::string> fields = split_tabs(line);
    if (i == 0) {
      // MrpcProcessor skips the first line unread; a file without its header would silently
      // lose its first example, so refuse a first line that looks like one.
      if (fields.size() == 5 && (fields[0] == "0" || fields[0] == "1")) {
        throw Error(ErrorKind::Usage, at_line(source, 1) + "expected the header, found an example", kHeaderHint);
      }
      continue;
    }
    // HF reads columns 0, 3 and 4 and ignores any others; a different count here means a
    // tab inside a sentence or a truncated row, so refuse it.
    if (fields.size() != 5) {
      throw Error(ErrorKind::Usage,
                  at_line(source, lineno) + std::to_string(fields.size()) +
                      (fields.size() == 1 ? " column" : " columns") + ", expected 5",
                  "the columns are Quality, #1 ID, #2 ID, #1 String, #2 String, separated by tabs");
    }
    // glue_convert_examples_to_features maps the label through {"0": 0, "1": 1}.
    if (fields[0] != "0" && fields[0] != "1") {
      throw Error(ErrorKind::Usage, at_line(source, lineno) + "label \"" + fields[0] + "\" is not 0 or 1");
    }
    examples.push_back({fields[3], fields[4], fields[0] == "1" ? 1 : 0});
  }
  if (examples.empty()) {
    throw Error(ErrorKind::Usage, source + " has a header but no examples");
  }
  return examples;
}

std::vector<PairExample> read_mrpc_tsv(const std::string& path) {
  return parse_mrpc_tsv(read_file_capped(path, kMaxDataBytes, ErrorKind::Usage, "data file"), path);
}

namespace {

const char* const kJsonlHint =
    "each line is {\"input_ids\": [...], \"attention_mask\": [...], \"token_type_ids\": [...]} "
    "with an optional \"label\"";

// An integer that fits int64_t (nlohmann stores large ones as unsigned).
bool is_int64(const json& x) {
  return x.is_number_integer() &&
         !(x.is_number_unsigned() && x.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
}

std::vector<int64_t> int_array(const json& v, const char* key, bool mask, const std::string& where) {
  if (!v.is_array()) {
    throw Error(ErrorKind::Usage, where + "\"" + key + "\" is not an array", kJsonlHint);
  }
  std::vector<int64_t> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const json& x = v[i];
    const std::string elem = std::string("\"") + key + "\"[" + std::to_string(i) + "] ";
    if (!is_int64(x)) {
      throw Error(ErrorKind::Usage, where + elem + "is " + clipped_value(x.dump(), 40) + ", not an integer");
    }
    const int64_t n = x.get<int64_t>();
    if (mask ? (n != 0 && n != 1) : n < 0) {
      throw Error(ErrorKind::Usage, where + elem + "is " + std::to_string(n) + (mask ? ", not 0 or 1" : ", negative"));
    }
    out.push_back(n);
  }
  return out;
}

}  // namespace

std::vector<TokenizedExample> parse_tokenized_jsonl(const std::string& text, const std::string& source) {
  const std::vector<std::string> lines = split_lines(text);
  std::vector<TokenizedExample> examples;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const std::string where = at_line(source, i + 1);
    if (line.find_first_not_of(" \t") == std::string::npos) {
      throw Error(ErrorKind::Usage, where + "empty line", kJsonlHint);
    }
    const json doc = parse_json_strict(line, source, ErrorKind::Usage, 8, i + 1).doc;
    if (!doc.is_object()) {
      throw Error(ErrorKind::Usage, where + "expected a JSON object, got " + doc.type_name(), kJsonlHint);
    }
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      const std::string& k = it.key();
      if (k != "input_ids" && k != "attention_mask" && k != "token_type_ids" && k != "label") {
        throw Error(ErrorKind::Usage, where + "unknown key \"" + k + "\"", kJsonlHint);
      }
    }
    TokenizedExample ex;
    for (const char* key : {"input_ids", "attention_mask", "token_type_ids"}) {
      if (!doc.contains(key)) {
        throw Error(ErrorKind::Usage, where + "no \"" + key + "\"", kJsonlHint);
      }
    }
    ex.input_ids = int_array(doc["input_ids"], "input_ids", false, where);
    ex.attention_mask = int_array(doc["attention_mask"], "attention_mask", true, where);
    ex.token_type_ids = int_array(doc["token_type_ids"], "token_type_ids", false, where);
    const size_t n = ex.input_ids.size();
    if (n == 0) throw Error(ErrorKind::Usage, where + "\"input_ids\" is empty");
    if (ex.attention_mask.size() != n || ex.token_type_ids.size() != n) {
      throw Error(ErrorKind::Usage, where + "the arrays differ in length: input_ids " + std::to_string(n) +
                                        ", attention_mask " + std::to_string(ex.attention_mask.size()) +
                                        ", token_type_ids " + std::to_string(ex.token_type_ids.size()));
    }
    if (!examples.empty() && n != examples.front().input_ids.size()) {
      throw Error(
          ErrorKind::Usage,
          where + std::to_string(n) + " tokens, but line 1 has " + std::to_string(examples.front().input_ids.size()),
          "pad every example to the same max_seq_length");
    }
    if (doc.contains("label")) {
      const json& l = doc["label"];
      if (!is_int64(l) || l.get<int64_t>() < 0) {
        throw Error(ErrorKind::Usage,
                    where + "\"label\" is " + clipped_value(l.dump(), 40) + ", not a non-negative integer");
      }
      ex.label = l.get<int64_t>();
    }
    if (!examples.empty() && ex.label.has_value() != examples.front().label.has_value()) {
      throw Error(ErrorKind::Usage,
                  where + (ex.label ? "has a \"label\" but line 1 has none" : "has no \"label\" but line 1 has one"),
                  "give every example a label, or none");
    }
    examples.push_back(std::move(ex));
  }
  if (examples.empty()) throw Error(ErrorKind::Usage, source + " has no examples", kJsonlHint);
  return examples;
}

std::vector<TokenizedExample> read_tokenized_jsonl(const std::string& path) {
  return parse_tokenized_jsonl(read_file_capped(path, kMaxDataBytes, ErrorKind::Usage, "data file"), path);
}

}  // namespace bertq
