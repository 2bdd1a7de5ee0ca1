// A C++ port of Hugging Face's BertTokenizer (BasicTokenizer + WordPiece), for `bertq eval`.
//
// It reproduces what the PyTorch BERT quantization tutorial feeds the model:
// `glue_convert_examples_to_features(..., max_length=128)` on an uncased BERT, that is
// `tokenizer(text_a, text_b, max_length=128, truncation=True, padding="max_length")`.
// Unicode data (categories, NFD, lower case) comes from tables generated from Python's
// `unicodedata` (see unicode_tables.inc), so the tokens match HF's for any text; the known
// differences are listed at the top of tokenizer.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace bertq {

// One model input, as HF's encode_plus returns it; the three vectors have the same length.
struct Encoding {
  std::vector<int64_t> input_ids;
  std::vector<int64_t> attention_mask;  // 1 for real tokens, 0 for padding
  std::vector<int64_t> token_type_ids;  // 0 for [CLS] A [SEP], 1 for B [SEP], 0 for padding
};

// HF's BasicTokenizer on UTF-8 text: clean, space out CJK characters, split on white space,
// lower-case and strip accents (if `lower_case`), split off punctuation. Invalid UTF-8 bytes
// are dropped (they decode to U+FFFD, which HF's _clean_text removes). `never_split` words
// (the special tokens, for BertTokenizer) are kept whole.
std::vector<std::string> basic_tokenize(const std::string& text, bool lower_case = true,
                                        const std::vector<std::string>& never_split = {});

// HF's BertTokenizer: special-token splitting, BasicTokenizer, then greedy longest-match-first
// WordPiece with "##" continuations.
class WordPieceTokenizer {
 public:
  // Reads a vocab.txt (one token per line, id = 0-based line number, like HF's load_vocab).
  // Throws Error(Usage) if the file cannot be read, is empty, is not UTF-8, or lacks one of
  // [CLS], [SEP], [PAD], [UNK]. `lower_case` is BertTokenizer's do_lower_case (true for the
  // uncased models; accents are then stripped too).
  static WordPieceTokenizer from_file(const std::string& vocab_path, bool lower_case = true);

  // The vocabulary in id order. `source` names it in error messages.
  explicit WordPieceTokenizer(const std::vector<std::string>& vocab, bool lower_case = true,
                              const std::string& source = "the vocabulary");

  // tokenizer.tokenize(text): word pieces, with [UNK] for words the vocabulary cannot spell.
  std::vector<std::string> tokenize(const std::string& text) const;
  // Vocabulary ids; tokens not in the vocabulary get [UNK]'s id.
  std::vector<int64_t> convert_tokens_to_ids(const std::vector<std::string>& tokens) const;
  // tokenize + convert_tokens_to_ids: the ids of `text` without [CLS]/[SEP].
  std::vector<int64_t> encode_text(const std::string& text) const;

  // tokenizer(text, max_length=n, truncation=True, padding="max_length"): [CLS] text [SEP],
  // truncated from the end and padded with [PAD] to exactly `max_seq_length` (at least 2).
  Encoding encode_single(const std::string& text, size_t max_seq_length) const;
  // tokenizer(a, b, max_length=n, truncation=True, padding="max_length"), as in
  // glue_convert_examples_to_features: [CLS] a [SEP] b [SEP], truncated 'longest_first' and
  // padded to exactly `max_seq_length` (at least 3). An empty `b` still gives its [SEP].
  Encoding encode_pair(const std::string& a, const std::string& b, size_t max_seq_length) const;

  // HF's vocab_size: the number of distinct tokens.
  size_t vocab_size() const { return vocab_.size(); }
  // The id of `token` (the last line holding it, as in HF), if the vocabulary has it.
  std::optional<int64_t> token_to_id(const std::string& token) const;
  // The token with id `id`, or "[UNK]" if there is none (HF's _convert_id_to_token).
  std::string id_to_token(int64_t id) const;
  bool lower_case() const { return lower_case_; }
  int64_t cls_id() const { return cls_id_; }
  int64_t sep_id() const { return sep_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }

 private:
  void wordpiece(const std::string& word, std::vector<std::string>& out) const;
  Encoding build(std::vector<int64_t> a, const std::vector<int64_t>* b, size_t max_seq_length) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> tokens_;  // by line; a duplicate's earlier lines are not its id
  bool lower_case_;
  int64_t cls_id_ = 0, sep_id_ = 0, pad_id_ = 0, unk_id_ = 0;
};

}  // namespace bertq
