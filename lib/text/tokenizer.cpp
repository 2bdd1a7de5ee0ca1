// A port of transformers' BertTokenizer (models/bert/tokenization_bert.py and the parts of
// PreTrainedTokenizer it relies on). Each step names the HF function it mirrors.
//
// HF asks Python's unicodedata for categories and NFD and str.lower() for lower case; bertq
// has no ICU, so unicode_tables.inc holds the same data for every code point (categories as HF
// uses them, lower case, canonical decompositions and combining classes), generated from
// Python 3.11 (testdata/tokenizer/gen_unicode_tables.py). Known differences from HF:
// - Unicode version: HF follows the unicodedata of the Python it runs on. Characters assigned
//   after that version (or after Unicode 14.0 here) are unassigned (category Cn, removed as
//   "control") on one side only.
// - Since 2023 (transformers PR #22280) BasicTokenizer NFC-normalizes the text before splitting
//   on white space. With lower_case the NFD that follows makes that a no-op; the cased mode
//   here skips it, as the earlier releases the tutorial was written for do.
// - Invalid UTF-8 (which cannot reach HF, whose input is a Python str) decodes to U+FFFD, which
//   _clean_text removes.
// - Added tokens (tokenizer.add_tokens) do not exist here; the special tokens are BERT's five.
#include "text/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>

#include "base/error.h"
#include "base/files.h"
#include "base/text.h"
#include "text/unicode_tables.inc"

namespace bertq {

namespace {

namespace ut = unicode_tables;

// BertTokenizer's all_special_tokens. They never overlap, so splitting on the earliest match
// is what HF's Trie (4.x) and split_on_tokens (2.x/3.x) do.
const std::vector<std::string> kSpecialTokens = {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};
constexpr size_t kMaxInputCharsPerWord = 100;  // WordpieceTokenizer's default

// ---- UTF-8 ----

// Decodes UTF-8, turning each maximal invalid subsequence into U+FFFD (Python's
// errors="replace"). Sets *valid to false if there was any.
std::u32string decode_utf8(std::string_view s, bool* valid = nullptr) {
  std::u32string out;
  out.reserve(s.size());
  if (valid) *valid = true;
  for (size_t i = 0; i < s.size();) {
    const Utf8Step step = utf8_step(s, i);
    if (step.code_point >= 0) {
      out.push_back(static_cast<char32_t>(step.code_point));
    } else {
      out.push_back(0xFFFD);
      if (valid) *valid = false;
    }
    i += step.length;
  }
  return out;
}

void append_utf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string encode_utf8(const std::u32string& cps) {
  std::string out;
  for (char32_t cp : cps) append_utf8(cp, out);
  return out;
}

// ---- Unicode properties, from the generated tables ----

ut::Class char_class(char32_t cp) {
  const auto* end = std::end(ut::kClassRanges);
  const auto* it = std::upper_bound(std::begin(ut::kClassRanges), end, cp,
                                    [](char32_t c, const ut::ClassRange& r) { return c < r.first; });
  if (it == std::begin(ut::kClassRanges)) return ut::kOther;
  --it;
  return cp <= it->last ? it->cls : ut::kOther;
}

// str.lower() of one code point. PreTrainedTokenizer.tokenize lower-cases code point by
// code point (its regex matches one character at a time), so Python's context-dependent
// final-sigma rule never applies: "Σ" always becomes "σ".
void append_lower(char32_t cp, std::u32string& out) {
  if (cp == 0x130) {  // "İ": the only code point whose lower case is two code points
    out.push_back(U'i');
    out.push_back(0x307);
    return;
  }
  const auto* end = std::end(ut::kLowerRuns);
  const auto* it = std::upper_bound(std::begin(ut::kLowerRuns), end, cp,
                                    [](char32_t c, const ut::LowerRun& r) { return c < r.first; });
  if (it != std::begin(ut::kLowerRuns)) {
    --it;
    if (cp <= it->last && (cp - it->first) % it->stride == 0) {
      out.push_back(static_cast<char32_t>(static_cast<int32_t>(cp) + it->delta));
      return;
    }
  }
  out.push_back(cp);
}

// Canonical combining class (0 for most characters).
uint8_t combining_class(char32_t cp) {
  const auto* end = std::end(ut::kCombiningRanges);
  const auto* it = std::upper_bound(std::begin(ut::kCombiningRanges), end, cp,
                                    [](char32_t c, const ut::CombiningRange& r) { return c < r.first; });
  if (it == std::begin(ut::kCombiningRanges)) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

// The canonical decomposition of one code point.
void append_decomposition(char32_t cp, std::u32string& out) {
  constexpr char32_t kHangulFirst = 0xAC00, kHangulLast = 0xD7A3;
  if (cp >= kHangulFirst && cp <= kHangulLast) {  // Hangul syllables decompose arithmetically
    const char32_t s = cp - kHangulFirst;
    out.push_back(0x1100 + s / 588);
    out.push_back(0x1161 + (s % 588) / 28);
    if (s % 28) out.push_back(0x11A7 + s % 28);
    return;
  }
  const auto* end = std::end(ut::kDecompositions);
  const auto* it = std::lower_bound(std::begin(ut::kDecompositions), end, cp,
                                    [](const ut::Decomposition& d, char32_t c) { return d.cp < c; });
  if (it == end || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  for (char32_t c : it->out) {
    if (c) out.push_back(c);
  }
}

// BasicTokenizer._run_strip_accents: unicodedata.normalize("NFD") (decompose, then stably sort
// each run of combining characters by combining class), then drop the Mn marks.
void strip_accents(const std::u32string& word, std::u32string& nfd, std::u32string& out) {
  nfd.clear();
  for (char32_t cp : word) append_decomposition(cp, nfd);
  for (size_t i = 0; i < nfd.size();) {
    if (combining_class(nfd[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < nfd.size() && combining_class(nfd[j]) != 0) ++j;
    std::stable_sort(nfd.begin() + i, nfd.begin() + j,
                     [](char32_t x, char32_t y) { return combining_class(x) < combining_class(y); });
    i = j;
  }
  out.clear();
  for (char32_t cp : nfd) {
    if (char_class(cp) != ut::kMark) out.push_back(cp);
  }
}

// BasicTokenizer._is_chinese_char: the CJK ideograph blocks, not Hangul or kana.
bool is_chinese_char(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// Python's readlines() in text mode: "\n", "\r\n" and "\r" end a line; a final terminator
// does not start another line.
std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n' && text[i] != '\r') continue;
    lines.push_back(text.substr(start, i - start));
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

}  // namespace

// ---- BasicTokenizer ----

std::vector<std::string> basic_tokenize(const std::string& text, bool lower_case,
                                        const std::vector<std::string>& never_split) {
  std::u32string cps = decode_utf8(text);
  if (lower_case) {  // PreTrainedTokenizer.tokenize, before BasicTokenizer (see append_lower)
    std::u32string lowered;
    lowered.reserve(cps.size());
    for (char32_t cp : cps) append_lower(cp, lowered);
    cps.swap(lowered);
  }

  // _clean_text (drop NUL, U+FFFD and category C* but \t\n\r; white space becomes " "),
  // then _tokenize_chinese_chars (spaces around CJK ideographs).
  std::u32string clean;
  clean.reserve(cps.size());
  for (char32_t cp : cps) {
    const ut::Class cls = char_class(cp);
    if (cls == ut::kDrop) continue;
    if (cls == ut::kSpace) {
      clean.push_back(U' ');
    } else if (is_chinese_char(cp)) {
      clean.push_back(U' ');
      clean.push_back(cp);
      clean.push_back(U' ');
    } else {
      clean.push_back(cp);
    }
  }

  // whitespace_tokenize (str.split(): after cleaning only " " and U+2028/U+2029 are left),
  // then per word: lower-case and strip accents, and _run_split_on_punc.
  std::vector<std::string> out;
  std::u32string word, nfd, stripped;
  std::string piece;
  auto finish_word = [&] {
    if (word.empty()) return;
    const std::string utf8 = encode_utf8(word);
    if (std::find(never_split.begin(), never_split.end(), utf8) != never_split.end()) {
      out.push_back(utf8);
      word.clear();
      return;
    }
    const std::u32string* chars = &word;
    if (lower_case) {  // already lower case; do_lower_case implies strip_accents
      strip_accents(word, nfd, stripped);
      chars = &stripped;
    }
    piece.clear();
    for (char32_t cp : *chars) {
      if (char_class(cp) == ut::kPunct) {
        if (!piece.empty()) out.push_back(piece);
        piece.clear();
        out.emplace_back();
        append_utf8(cp, out.back());
      } else {
        append_utf8(cp, piece);
      }
    }
    if (!piece.empty()) out.push_back(piece);  // empty pieces vanish, as in HF's final split
    word.clear();
  };
  for (char32_t cp : clean) {
    if (cp == U' ' || char_class(cp) == ut::kSplit) {
      finish_word();
    } else {
      word.push_back(cp);
    }
  }
  finish_word();
  return out;
}

// ---- WordPieceTokenizer ----

WordPieceTokenizer WordPieceTokenizer::from_file(const std::string& vocab_path, bool lower_case) {
  // A BERT vocabulary is ~230 kB; the cap keeps a wrong path (a model, a
  // device) from being read whole.
  const std::string text = read_file_capped(vocab_path, 64u << 20, ErrorKind::Usage, "vocabulary");
  const std::vector<std::string> lines = split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    bool valid = true;
    decode_utf8(lines[i], &valid);
    if (!valid) {  // HF's load_vocab reads with encoding="utf-8" and would fail too
      throw Error(ErrorKind::Usage, vocab_path + ":" + std::to_string(i + 1) + ": the vocabulary is not UTF-8");
    }
  }
  return WordPieceTokenizer(lines, lower_case, vocab_path);
}

WordPieceTokenizer::WordPieceTokenizer(const std::vector<std::string>& vocab, bool lower_case,
                                       const std::string& source)
    : tokens_(vocab), lower_case_(lower_case) {
  const std::string hint = "a BERT vocab.txt has one token per line, id = line number - 1";
  if (vocab.empty()) throw Error(ErrorKind::Usage, source + " is empty", hint);
  // load_vocab: vocab[token] = index, so a repeated token keeps its last line.
  for (size_t i = 0; i < vocab.size(); ++i) vocab_[vocab[i]] = static_cast<int64_t>(i);
  std::vector<std::string> missing;
  for (const char* name : {"[CLS]", "[SEP]", "[PAD]", "[UNK]"}) {
    if (!vocab_.count(name)) missing.push_back(name);
  }
  if (!missing.empty()) {
    std::string why = source + " has no " + join(missing, ", ") + (missing.size() == 1 ? " token" : " tokens");
    std::string h = hint + " and holds [PAD], [UNK], [CLS] and [SEP]";
    if (vocab[0].rfind("\xEF\xBB\xBF", 0) == 0) h = "it starts with a UTF-8 byte order mark; " + h;
    throw Error(ErrorKind::Usage, why, h);
  }
  cls_id_ = vocab_.at("[CLS]");
  sep_id_ = vocab_.at("[SEP]");
  pad_id_ = vocab_.at("[PAD]");
  unk_id_ = vocab_.at("[UNK]");
}

std::optional<int64_t> WordPieceTokenizer::token_to_id(const std::string& token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

std::string WordPieceTokenizer::id_to_token(int64_t id) const {
  if (id >= 0 && static_cast<size_t>(id) < tokens_.size() && vocab_.at(tokens_[id]) == id) {
    return tokens_[id];
  }
  return "[UNK]";
}

// WordpieceTokenizer.tokenize for one word: greedy longest-match-first, "##" marking a piece
// that continues a word; a word that cannot be spelled, or is longer than 100 code points,
// becomes one [UNK].
void WordPieceTokenizer::wordpiece(const std::string& word, std::vector<std::string>& out) const {
  const std::u32string cps = decode_utf8(word);
  if (cps.size() > kMaxInputCharsPerWord) {
    out.push_back("[UNK]");
    return;
  }
  std::vector<size_t> offset(cps.size() + 1, 0);  // byte offset of each code point
  std::string tmp;
  for (size_t i = 0; i < cps.size(); ++i) {
    tmp.clear();
    append_utf8(cps[i], tmp);
    offset[i + 1] = offset[i] + tmp.size();
  }
  const size_t first_piece = out.size();
  size_t start = 0;
  std::string candidate;
  while (start < cps.size()) {
    size_t end = cps.size();
    bool found = false;
    while (start < end) {
      candidate = start > 0 ? "##" : "";
      candidate.append(word, offset[start], offset[end] - offset[start]);
      if (vocab_.count(candidate)) {
        found = true;
        break;
      }
      --end;
    }
    if (!found) {
      out.resize(first_piece);
      out.push_back("[UNK]");
      return;
    }
    out.push_back(candidate);
    start = end;
  }
}

std::vector<std::string> WordPieceTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> out;
  auto tokenize_chunk = [&](const std::string& chunk) {  // BertTokenizer._tokenize
    for (const std::string& word : basic_tokenize(chunk, lower_case_, kSpecialTokens)) {
      wordpiece(word, out);
    }
  };
  // PreTrainedTokenizer.tokenize: special tokens in the text stay whole.
  size_t pos = 0;
  while (pos < text.size()) {
    size_t hit = std::string::npos;
    const std::string* special = nullptr;
    for (const std::string& s : kSpecialTokens) {
      const size_t at = text.find(s, pos);
      if (at < hit) hit = at, special = &s;
    }
    if (!special) break;
    tokenize_chunk(text.substr(pos, hit - pos));
    out.push_back(*special);
    pos = hit + special->size();
  }
  tokenize_chunk(text.substr(pos));
  return out;
}

std::vector<int64_t> WordPieceTokenizer::convert_tokens_to_ids(const std::vector<std::string>& tokens) const {
  std::vector<int64_t> ids;
  ids.reserve(tokens.size());
  for (const std::string& t : tokens) {
    const auto it = vocab_.find(t);
    ids.push_back(it == vocab_.end() ? unk_id_ : it->second);
  }
  return ids;
}

std::vector<int64_t> WordPieceTokenizer::encode_text(const std::string& text) const {
  return convert_tokens_to_ids(tokenize(text));
}

Encoding WordPieceTokenizer::encode_single(const std::string& text, size_t max_seq_length) const {
  return build(encode_text(text), nullptr, max_seq_length);
}

Encoding WordPieceTokenizer::encode_pair(const std::string& a, const std::string& b, size_t max_seq_length) const {
  const std::vector<int64_t> b_ids = encode_text(b);
  return build(encode_text(a), &b_ids, max_seq_length);
}

// prepare_for_model with truncation=True and padding="max_length".
Encoding WordPieceTokenizer::build(std::vector<int64_t> a, const std::vector<int64_t>* b_in,
                                   size_t max_seq_length) const {
  const size_t num_special = b_in ? 3 : 2;
  if (max_seq_length < num_special) {
    throw Error(ErrorKind::Usage,
                "max_seq_length " + std::to_string(max_seq_length) + " leaves no room for [CLS] and [SEP]",
                "it must be at least " + std::to_string(num_special));
  }
  std::vector<int64_t> b = b_in ? *b_in : std::vector<int64_t>{};
  const size_t total = a.size() + b.size() + num_special;
  // truncate_sequences, 'longest_first': one token at a time from the end of the longer
  // sequence, from the second one when they are equally long. max_seq_length >= num_special
  // means there is always a token to remove.
  for (size_t n = total > max_seq_length ? total - max_seq_length : 0; n > 0; --n) {
    if (!b_in || a.size() > b.size()) {
      a.pop_back();
    } else {
      b.pop_back();
    }
  }

  // build_inputs_with_special_tokens and create_token_type_ids_from_sequences.
  Encoding e;
  e.input_ids.reserve(max_seq_length);
  e.input_ids.push_back(cls_id_);
  e.input_ids.insert(e.input_ids.end(), a.begin(), a.end());
  e.input_ids.push_back(sep_id_);
  e.token_type_ids.assign(e.input_ids.size(), 0);
  if (b_in) {
    e.input_ids.insert(e.input_ids.end(), b.begin(), b.end());
    e.input_ids.push_back(sep_id_);
    e.token_type_ids.resize(e.input_ids.size(), 1);
  }
  e.attention_mask.assign(e.input_ids.size(), 1);
  // padding="max_length", on the right: [PAD], attention 0, token type 0.
  e.input_ids.resize(max_seq_length, pad_id_);
  e.attention_mask.resize(max_seq_length, 0);
  e.token_type_ids.resize(max_seq_length, 0);
  return e;
}

}  // namespace bertq
