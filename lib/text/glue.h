// Evaluation data for `bertq eval`: GLUE MRPC files, and pre-tokenized JSON Lines.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bertq {

// One sentence pair with its label (MRPC: 1 = paraphrase, 0 = not).
struct PairExample {
  std::string a;  // "#1 String", HF's text_a
  std::string b;  // "#2 String", HF's text_b
  int label = 0;
};

// Reads a GLUE MRPC dev.tsv/train.tsv the way HF's MrpcProcessor does: UTF-8 (a leading byte
// order mark is skipped), tab-separated with no quote processing, the first line a header
// ("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"), then label, id1, id2, sentence1, sentence2.
// Stricter than HF, which crashes or silently mis-reads instead: throws Error(Usage), naming the
// file and 1-based line, for a missing file, a row without exactly 5 columns, a label other
// than 0 or 1, an empty line (one at the very end is allowed), invalid UTF-8, a first line that
// is an example rather than the header, and a file with no examples.
std::vector<PairExample> read_mrpc_tsv(const std::string& path);
// The same on the file's contents; `source` names it in messages.
std::vector<PairExample> parse_mrpc_tsv(const std::string& text, const std::string& source);

// One pre-tokenized model input, e.g. exported from Python's tokenizer.
struct TokenizedExample {
  std::vector<int64_t> input_ids;
  std::vector<int64_t> attention_mask;
  std::vector<int64_t> token_type_ids;
  std::optional<int64_t> label;
};

// Reads JSON Lines, one object per line:
//   {"input_ids": [...], "attention_mask": [...], "token_type_ids": [...], "label": 0}
// "label" is optional, but all lines or none must have it. The three arrays hold integers and
// have the same non-zero length on every line; attention_mask holds 0/1, the others are
// non-negative. Throws Error(Usage), naming the file and 1-based line, for anything else
// (including unknown or duplicate keys, and empty lines but one at the very end).
std::vector<TokenizedExample> read_tokenized_jsonl(const std::string& path);
std::vector<TokenizedExample> parse_tokenized_jsonl(const std::string& text, const std::string& source);

}  // namespace bertq
