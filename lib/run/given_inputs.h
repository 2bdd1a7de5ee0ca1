// --inputs FILE: a model's own inputs, for bench, eval, compare and tune,
// whatever its forward takes (BERT's three token tensors are only the
// default). Two formats:
// - tensors saved with Python's torch.save: a tuple in forward's order, or a
//   dict keyed by forward's argument names (plus "labels", a 1-D integer
//   tensor, for eval); dim 0 of every tensor counts the rows;
// - JSON Lines: one row per line, an object whose fields are forward's
//   argument names (plus "label"); nested arrays of numbers become tensors
//   (int64 if every number is an integer, else float32) and rows are stacked
//   on a new dim 0.
// The forward's signature decides names, order and types: a missing, unknown
// or mistyped argument is an Error(Usage) naming it.
#pragma once

#include <ATen/core/ivalue.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace torch::jit {
struct Module;
}

namespace bertq {

struct GivenRecords;  // the file as read, before a model's signature gives it meaning

// An inputs file, read and checked once (a torch.save file goes through the
// same archive checks as a model before LibTorch reads it).
struct GivenInputs {
  std::string path;
  int64_t rows = 0;
  std::vector<std::optional<int64_t>> labels;  // one per row
  std::vector<std::string> origins;            // one per row: "rows.jsonl:7", "rows.pt: row 6"
  std::shared_ptr<const GivenRecords> records;
};

// Throws Error(Usage) for an unreadable or malformed file, naming the line
// (JSON Lines) or the record.
GivenInputs read_given_inputs(const std::string& path);

// The given rows as one model's forward arguments.
class BoundInputs {
 public:
  // Matches the file to `model`'s forward; throws Error(Usage) naming the
  // argument that is missing, unknown, of the wrong type, or whose rows
  // differ in shape.
  BoundInputs(const GivenInputs& given, const torch::jit::Module& model);
  // Forward's arguments for rows [begin, end).
  std::vector<c10::IValue> rows(int64_t begin, int64_t end) const;
  int64_t row_count() const { return rows_; }
  // "x: Float [8, 16]; n: int", for `rows` rows, for messages.
  std::string describe(int64_t rows) const;

 private:
  std::vector<std::string> names_;
  std::vector<c10::IValue> values_;  // tensors hold every row on dim 0
  int64_t rows_ = 0;
};

}  // namespace bertq
