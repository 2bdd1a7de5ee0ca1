#include "run/given_inputs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/script.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>

#include "archive/archive_file.h"
#include "base/error.h"
#include "base/files.h"
#include "base/json_io.h"
#include "base/text.h"

namespace bertq {

struct GivenRecords {
  std::optional<c10::IValue> saved;  // torch.save: a tuple or a dict
  struct Line {
    size_t number = 0;
    nlohmann::json row;
  };
  std::vector<Line> lines;  // JSON Lines
};

namespace {

using nlohmann::json;

constexpr uint64_t kMaxJsonBytes = 1ull << 30;
constexpr int kMaxJsonDepth = 16;  // a row's tensors nest a few levels deep
const char* const kLabelField = "label";
const char* const kLabelsKey = "labels";

std::string kind_of(const c10::IValue& v) {
  if (v.isTensor()) return "a tensor";
  return "a " + v.type()->str();
}

// Dim 0 of every tensor, which must agree: the rows.
int64_t count_rows(const std::vector<std::pair<std::string, c10::IValue>>& values, const std::string& path) {
  std::optional<int64_t> rows;
  std::string first;
  for (const auto& [name, v] : values) {
    if (!v.isTensor()) continue;
    const at::Tensor& t = v.toTensor();
    if (t.dim() == 0)
      throw Error(ErrorKind::Usage, path + ": " + name + " is a 0-d tensor; dim 0 of every tensor counts the rows",
                  "save it with a batch dimension, e.g. x.unsqueeze(0)");
    if (!rows) {
      rows = t.size(0);
      first = name;
    } else if (t.size(0) != *rows) {
      throw Error(ErrorKind::Usage,
                  fmt::format("{}: {} has {} rows (dim 0) but {} has {}", path, name, t.size(0), first, *rows));
    }
  }
  if (!rows) throw Error(ErrorKind::Usage, path + ": it holds no tensor, so no rows");
  return *rows;
}

GivenInputs read_saved(const std::string& path) {
  // The same checks as a model's archive (zip structure, CRC-32s, pickle and
  // tensor extents), then LibTorch reads exactly the checked bytes.
  const ArchiveFile file(path, ArchiveContents::SavedTensors);
  std::vector<char> bytes(file.size());
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::pread(file.fd(), bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
    if (n <= 0) throw Error(ErrorKind::Usage, "cannot read inputs file " + path + ": " + errno_message());
    done += static_cast<size_t>(n);
  }
  c10::IValue v;
  try {
    v = torch::jit::pickle_load(bytes);
  } catch (const std::exception& e) {
    const std::string what = first_line(e.what());
    // Python pickles a dict of one entry with SETITEM, which LibTorch 1.13's
    // unpickler does not know (2.x does).
    if (what.find("Unknown opcode for unpickling") != std::string::npos && what.find(": 115") != std::string::npos)
      throw Error(ErrorKind::Usage,
                  path + ": LibTorch " BERTQ_LIBTORCH_VERSION
                         " cannot read it: Python pickles a dict of one entry "
                         "with an opcode (SETITEM) this LibTorch's reader lacks",
                  "save a tuple instead, torch.save((x,), path), or a dict of two or more entries (\"labels\" counts)");
    throw Error(ErrorKind::Usage, path + ": LibTorch could not read it: " + printable(what),
                "save a tuple or a dict of tensors with torch.save");
  }
  file.check_unchanged();
  GivenInputs g;
  g.path = path;
  auto records = std::make_shared<GivenRecords>();
  std::vector<std::pair<std::string, c10::IValue>> values;
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    for (size_t i = 0; i < elems.size(); ++i) values.emplace_back("element " + std::to_string(i), elems[i]);
  } else if (v.isGenericDict()) {
    for (const auto& e : v.toGenericDict()) {
      if (!e.key().isString()) throw Error(ErrorKind::Usage, path + ": a dict of inputs is keyed by argument names");
      values.emplace_back(e.key().toStringRef(), e.value());
    }
  } else if (v.isTensor()) {
    values.emplace_back("the tensor", v);
    v = c10::ivalue::Tuple::create({v});
  } else {
    throw Error(ErrorKind::Usage, path + ": it holds " + kind_of(v) + ", not a tuple or a dict of tensors",
                "torch.save((x, y), path) or torch.save({\"x\": x, \"y\": y}, path)");
  }
  g.rows = count_rows(values, path);
  g.labels.assign(static_cast<size_t>(g.rows), std::nullopt);
  for (int64_t i = 0; i < g.rows; ++i) g.origins.push_back(path + ": row " + std::to_string(i));
  if (v.isGenericDict() && v.toGenericDict().contains(kLabelsKey)) {
    const c10::IValue l = v.toGenericDict().at(kLabelsKey);
    if (!l.isTensor() || l.toTensor().dim() != 1 || at::isFloatingType(l.toTensor().scalar_type()))
      throw Error(ErrorKind::Usage, path + ": \"labels\" must be a 1-D integer tensor, one label per row");
    const at::Tensor t = l.toTensor().to(at::kLong).contiguous();
    for (int64_t i = 0; i < g.rows; ++i) g.labels[static_cast<size_t>(i)] = t.data_ptr<int64_t>()[i];
  }
  records->saved = v;
  g.records = records;
  return g;
}

GivenInputs read_lines(const std::string& path) {
  const std::string text = read_file_capped(path, kMaxJsonBytes, ErrorKind::Usage, "inputs file");
  GivenInputs g;
  g.path = path;
  auto records = std::make_shared<GivenRecords>();
  size_t number = 0, start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++number;
    const std::string_view line(text.data() + start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    StrictJson parsed = parse_json_strict(line, path, ErrorKind::Usage, kMaxJsonDepth, number);
    if (!parsed.doc.is_object())
      throw Error(ErrorKind::Usage,
                  fmt::format("{}:{}: a row is a JSON object keyed by forward's argument names", path, number));
    std::optional<int64_t> label;
    if (auto l = parsed.doc.find(kLabelField); l != parsed.doc.end()) {
      if (!l->is_number_integer())
        throw Error(ErrorKind::Usage, fmt::format("{}:{}: \"label\" must be an integer class index", path, number));
      label = l->get<int64_t>();
      parsed.doc.erase(l);
    }
    g.labels.push_back(label);
    g.origins.push_back(path + ":" + std::to_string(number));
    records->lines.push_back({number, std::move(parsed.doc)});
  }
  g.rows = static_cast<int64_t>(records->lines.size());
  if (g.rows == 0) throw Error(ErrorKind::Usage, path + " has no rows");
  g.records = records;
  return g;
}

// A JSON number, bool or nested array of them as a tensor: int64 if every
// number is an integer, float32 if any is not, bool if all are booleans.
at::Tensor tensor_of(const json& value, const std::string& where) {
  std::vector<int64_t> shape;
  const json* probe = &value;
  while (probe->is_array()) {
    shape.push_back(static_cast<int64_t>(probe->size()));
    if (probe->empty()) break;
    probe = &probe->front();
  }
  std::vector<const json*> leaves;
  bool all_int = true, all_bool = true;
  // Iterative, checking that the array is rectangular.
  std::vector<std::pair<const json*, size_t>> stack{{&value, 0}};
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    if (node->is_array()) {
      if (depth >= shape.size() || static_cast<int64_t>(node->size()) != shape[depth])
        throw Error(ErrorKind::Usage, where + ": the nested arrays are not rectangular");
      for (auto it = node->rbegin(); it != node->rend(); ++it) stack.emplace_back(&*it, depth + 1);
      continue;
    }
    if (depth != shape.size() || !(node->is_number() || node->is_boolean()))
      throw Error(ErrorKind::Usage,
                  where + ": expected numbers in nested arrays, got " + quoted_value(node->dump(), 40));
    all_int = all_int && node->is_number_integer();
    all_bool = all_bool && node->is_boolean();
    leaves.push_back(node);
  }
  if (all_bool && !leaves.empty()) {
    std::vector<uint8_t> v;
    for (const json* l : leaves) v.push_back(l->get<bool>() ? 1 : 0);
    return at::tensor(v, at::kByte).to(at::kBool).reshape(shape);
  }
  if (all_int) {
    std::vector<int64_t> v;
    for (const json* l : leaves) {
      if (l->is_boolean()) throw Error(ErrorKind::Usage, where + ": mixes booleans and numbers");
      v.push_back(l->get<int64_t>());
    }
    return at::tensor(v, at::kLong).reshape(shape);
  }
  std::vector<float> v;
  for (const json* l : leaves) {
    if (l->is_boolean()) throw Error(ErrorKind::Usage, where + ": mixes booleans and numbers");
    v.push_back(l->get<float>());
  }
  return at::tensor(v, at::kFloat).reshape(shape);
}

// A JSON value as a non-tensor argument of type `type`.
c10::IValue scalar_of(const json& value, const c10::TypePtr& type, const std::string& where) {
  if (type->kind() == c10::TypeKind::OptionalType) {
    if (value.is_null()) return c10::IValue();
    return scalar_of(value, type->castRaw<c10::OptionalType>()->getElementType(), where);
  }
  switch (type->kind()) {
    case c10::TypeKind::IntType:
      if (value.is_number_integer()) return value.get<int64_t>();
      break;
    case c10::TypeKind::FloatType:
      if (value.is_number()) return value.get<double>();
      break;
    case c10::TypeKind::BoolType:
      if (value.is_boolean()) return value.get<bool>();
      break;
    case c10::TypeKind::StringType:
      if (value.is_string()) return value.get<std::string>();
      break;
    default:
      throw Error(ErrorKind::Usage, where + ": forward takes a " + type->str() + " there, which --inputs cannot give",
                  "--inputs gives tensors, int, float, bool and str arguments");
  }
  throw Error(ErrorKind::Usage,
              where + ": forward takes a " + type->str() + " there, got " + quoted_value(value.dump(), 40));
}

bool is_tensor_type(const c10::TypePtr& t) {
  if (t->kind() == c10::TypeKind::OptionalType)
    return is_tensor_type(t->castRaw<c10::OptionalType>()->getElementType());
  return t->kind() == c10::TypeKind::TensorType;
}

std::string signature(const std::vector<c10::Argument>& args) {
  std::vector<std::string> names;
  for (size_t i = 1; i < args.size(); ++i) names.push_back(args[i].name());
  return "forward(" + join(names, ", ") + ")";
}

}  // namespace

GivenInputs read_given_inputs(const std::string& path) {
  // A zip is torch.save's format; anything else is read as JSON Lines.
  // (Only a regular file is peeked at: a FIFO's bytes are read once.)
  std::string head;
  struct stat st {};
  if (path != "-" && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[4];
      const ssize_t n = ::pread(fd, buf, sizeof buf, 0);
      if (n > 0) head.assign(buf, static_cast<size_t>(n));
      ::close(fd);
    }
  }
  if (head.rfind("PK\x03\x04", 0) == 0) return read_saved(path);
  return read_lines(path);
}

BoundInputs::BoundInputs(const GivenInputs& given, const torch::jit::Module& model) {
  const auto& args = model.get_method("forward").function().getSchema().arguments();
  const GivenRecords& rec = *given.records;
  rows_ = given.rows;
  const std::string sig = signature(args);
  std::vector<std::string> arg_names;
  for (size_t i = 1; i < args.size(); ++i) arg_names.push_back(args[i].name());

  if (rec.saved) {
    std::map<std::string, c10::IValue> by_name;
    if (rec.saved->isTuple()) {
      const auto& elems = rec.saved->toTupleRef().elements();
      if (elems.size() > arg_names.size())
        throw Error(ErrorKind::Usage, fmt::format("{}: it holds {} inputs, but the model's {} takes {}", given.path,
                                                  elems.size(), sig, arg_names.size()));
      for (size_t i = 0; i < elems.size(); ++i) by_name.emplace(arg_names[i], elems[i]);
    } else {
      for (const auto& e : rec.saved->toGenericDict()) {
        const std::string key = e.key().toStringRef();
        if (key == kLabelsKey) continue;
        if (std::find(arg_names.begin(), arg_names.end(), key) == arg_names.end())
          throw Error(ErrorKind::Usage,
                      given.path + ": " + quoted_value(key) + " is not an argument of the model's " + sig,
                      did_you_mean(key, arg_names, "keys are forward's argument names (and \"labels\")"));
        by_name.emplace(key, e.value());
      }
    }
    for (size_t i = 1; i < args.size(); ++i) {
      const c10::Argument& a = args[i];
      auto it = by_name.find(a.name());
      names_.push_back(a.name());
      if (it == by_name.end()) {
        if (!a.default_value())
          throw Error(ErrorKind::Usage,
                      given.path + ": it gives no " + quoted_value(a.name()) + ", which the model's " + sig + " needs");
        values_.push_back(*a.default_value());
        continue;
      }
      const bool tensor = is_tensor_type(a.type());
      if (tensor != it->second.isTensor() && !(it->second.isNone() && a.type()->kind() == c10::TypeKind::OptionalType))
        throw Error(ErrorKind::Usage, given.path + ": " + quoted_value(a.name()) + " is " + kind_of(it->second) +
                                          ", but the model's forward takes a " + a.type()->str() + " there");
      values_.push_back(it->second);
    }
    return;
  }

  // JSON Lines: every field names an argument.
  for (const auto& line : rec.lines)
    for (const auto& [key, value] : line.row.items())
      if (std::find(arg_names.begin(), arg_names.end(), key) == arg_names.end())
        throw Error(ErrorKind::Usage,
                    fmt::format("{}:{}: {} is not an argument of the model's {}", given.path, line.number,
                                quoted_value(key), sig),
                    did_you_mean(key, arg_names, "fields are forward's argument names (and \"label\")"));
  for (size_t i = 1; i < args.size(); ++i) {
    const c10::Argument& a = args[i];
    names_.push_back(a.name());
    const bool tensor = is_tensor_type(a.type());
    std::vector<at::Tensor> rows;
    std::optional<c10::IValue> scalar;
    std::optional<json> first;
    for (const auto& line : rec.lines) {
      const std::string where = fmt::format("{}:{}: {}", given.path, line.number, quoted_value(a.name()));
      auto f = line.row.find(a.name());
      if (f == line.row.end()) {
        if (!a.default_value()) throw Error(ErrorKind::Usage, where + " is missing; the model's " + sig + " needs it");
        if (!tensor) continue;
        throw Error(ErrorKind::Usage, where + " is missing; give it on every row or on none");
      }
      if (tensor) {
        if (f->is_null() && a.type()->kind() == c10::TypeKind::OptionalType) {
          scalar = c10::IValue();
          continue;
        }
        rows.push_back(tensor_of(*f, where));
        if (rows.size() > 1 && rows.back().sizes() != rows.front().sizes())
          throw Error(ErrorKind::Usage,
                      fmt::format("{} has shape {} but the first row's is {}; rows are stacked", where,
                                  fmt::join(rows.back().sizes(), "x"), fmt::join(rows.front().sizes(), "x")));
        if (rows.size() > 1 && rows.back().scalar_type() != rows.front().scalar_type()) {
          // Integers on one row, decimals on another: all are numbers of one tensor.
          for (auto& r : rows) r = r.to(at::kFloat);
        }
      } else {
        if (!first) {
          first = *f;
          scalar = scalar_of(*f, a.type(), where);
        } else if (*f != *first) {
          throw Error(ErrorKind::Usage, where +
                                            " differs from the first row's; a non-tensor argument is one value "
                                            "for the whole batch");
        }
      }
    }
    if (tensor && !rows.empty()) {
      if (scalar) throw Error(ErrorKind::Usage, given.path + ": " + quoted_value(a.name()) + " is null on some rows");
      values_.push_back(at::stack(rows));
    } else if (scalar) {
      values_.push_back(*scalar);
    } else {
      values_.push_back(*a.default_value());
    }
  }
}

std::vector<c10::IValue> BoundInputs::rows(int64_t begin, int64_t end) const {
  std::vector<c10::IValue> out;
  for (const auto& v : values_) {
    if (v.isTensor() && v.toTensor().dim() > 0)
      out.emplace_back(v.toTensor().narrow(0, begin, end - begin));
    else
      out.push_back(v);
  }
  return out;
}

std::string BoundInputs::describe(int64_t rows) const {
  std::vector<std::string> parts;
  for (size_t i = 0; i < names_.size(); ++i) {
    const c10::IValue& v = values_[i];
    std::vector<int64_t> shape;
    if (v.isTensor()) shape = v.toTensor().sizes().vec();
    if (!shape.empty()) shape[0] = rows;
    if (v.isTensor())
      parts.push_back(
          fmt::format("{}: {} [{}]", names_[i], c10::toString(v.toTensor().scalar_type()), fmt::join(shape, ", ")));
    else
      parts.push_back(names_[i] + ": " + v.type()->str());
  }
  return join(parts, "; ");
}

}  // namespace bertq
