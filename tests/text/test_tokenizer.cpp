// The BertTokenizer port and the MRPC / JSON Lines readers behind `bertq eval`.
//
// The expected tokens and ids come from testdata/tokenizer/reference_tokenizer.py, a copy of
// HF's BertTokenizer code run with Python's unicodedata (see testdata/tokenizer/README.md).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "catch.hpp"
#include "text/glue.h"
#include "text/tokenizer.h"

using namespace bertq;
using namespace std::string_literals;

namespace {

const std::string kTestdata = std::string(BERTQ_SOURCE_DIR) + "/testdata/";
const std::string kVocab = kTestdata + "tokenizer/vocab.txt";

struct Failure {
  ErrorKind kind;
  std::string message;
  std::string hint;
};

template <typename F>
Failure failure(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return {e.kind(), e.what(), e.hint()};
  }
  FAIL("expected a bertq::Error");
  return {};
}

// A file in a fresh temporary directory, removed with it.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& contents) {
    // ctest runs test cases in parallel processes: make the name unique across them.
    static int counter = 0;
    dir_ = std::filesystem::temp_directory_path() /
           ("bertq_test_tokenizer_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / name).string();
    std::ofstream(path_, std::ios::binary) << contents;
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::filesystem::path dir_;
  std::string path_;
};

const WordPieceTokenizer& tokenizer() {
  static const WordPieceTokenizer tok = WordPieceTokenizer::from_file(kVocab);
  return tok;
}

}  // namespace

TEST_CASE("vocab.txt is read like HF's load_vocab", "[tokenizer]") {
  const WordPieceTokenizer& tok = tokenizer();
  CHECK(tok.vocab_size() == 73);
  CHECK(tok.pad_id() == 0);
  CHECK(tok.unk_id() == 1);
  CHECK(tok.cls_id() == 2);
  CHECK(tok.sep_id() == 3);
  CHECK(tok.token_to_id("[MASK]") == 4);
  CHECK(tok.token_to_id("##aff") == 19);
  CHECK(tok.token_to_id("中") == 52);
  CHECK_FALSE(tok.token_to_id("xylophone").has_value());
  CHECK(tok.id_to_token(72) == "οδοσ");
  CHECK(tok.id_to_token(73) == "[UNK]");
  CHECK(tok.id_to_token(-1) == "[UNK]");
  CHECK(tok.lower_case());

  SECTION("no final newline, CRLF line ends") {
    TempFile f("vocab.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhello");
    const WordPieceTokenizer t = WordPieceTokenizer::from_file(f.path());
    CHECK(t.vocab_size() == 5);
    CHECK(t.token_to_id("hello") == 4);
    CHECK(t.encode_text("Hello") == std::vector<int64_t>{4});
  }
  SECTION("a repeated token keeps its last line, as in HF's dict") {
    const WordPieceTokenizer t({"[PAD]", "dup", "[UNK]", "[CLS]", "[SEP]", "dup"});
    CHECK(t.vocab_size() == 5);
    CHECK(t.token_to_id("dup") == 5);
    CHECK(t.id_to_token(1) == "[UNK]");
    CHECK(t.id_to_token(5) == "dup");
  }
}

TEST_CASE("bad vocabularies are refused with a clear message", "[tokenizer]") {
  Failure f = failure([] { WordPieceTokenizer::from_file(kTestdata + "tokenizer/nope.txt"); });
  CHECK(f.kind == ErrorKind::Usage);
  CHECK(f.message == "cannot read vocabulary " + kTestdata + "tokenizer/nope.txt: No such file or directory");

  f = failure([] { WordPieceTokenizer::from_file(kTestdata + "tokenizer"); });
  CHECK(f.message == "vocabulary " + kTestdata + "tokenizer is a directory, not a file");

  {
    TempFile empty("vocab.txt", "");
    f = failure([&] { WordPieceTokenizer::from_file(empty.path()); });
    CHECK(f.kind == ErrorKind::Usage);
    CHECK(f.message == empty.path() + " is empty");
  }
  {
    TempFile partial("vocab.txt", "[PAD]\n[UNK]\nhello\n");
    f = failure([&] { WordPieceTokenizer::from_file(partial.path()); });
    CHECK(f.message == partial.path() + " has no [CLS], [SEP] tokens");
    CHECK(f.hint ==
          "a BERT vocab.txt has one token per line, id = line number - 1 and holds [PAD], [UNK], "
          "[CLS] and [SEP]");
  }
  {
    TempFile bom("vocab.txt", "\xEF\xBB\xBF[PAD]\n[UNK]\n[CLS]\n[SEP]\n");
    f = failure([&] { WordPieceTokenizer::from_file(bom.path()); });
    CHECK(f.message == bom.path() + " has no [PAD] token");
    CHECK(f.hint.rfind("it starts with a UTF-8 byte order mark", 0) == 0);
  }
  {
    TempFile latin1("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\ncaf\xE9\n");
    f = failure([&] { WordPieceTokenizer::from_file(latin1.path()); });
    CHECK(f.message == latin1.path() + ":5: the vocabulary is not UTF-8");
  }
  f = failure([] { WordPieceTokenizer({"[PAD]", "[UNK]"}, true, "my vocab"); });
  CHECK(f.message == "my vocab has no [CLS], [SEP] tokens");
}

namespace {

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

struct TokenizeCase {
  const char* name;
  std::string text;
  std::vector<std::string> tokens;
  std::vector<int64_t> ids;
};

// Output of reference_tokenizer.py ("tokenize").
// clang-format off
const std::vector<TokenizeCase> kTokenizeCases = {
    {"accents", "Café Déjà vu"s,
     {"cafe", "deja", "vu"},
     {23, 24, 25}},
    {"punctuation", "Hello, world! (He said: \"run\".)"s,
     {"hello", ",", "world", "!", "(", "he", "said", ":", "\"", "run", "\"", ".", ")"},
     {13, 59, 14, 60, 64, 15, 16, 66, 63, 17, 63, 58, 65}},
    {"unknown", "The quick xylophone jumps"s,
     {"the", "quick", "[UNK]", "jumps"},
     {5, 6, 1, 9}},
    {"wordpiece", "unaffable runs running dogs"s,
     {"un", "##aff", "##able", "run", "##s", "run", "##ning", "dog", "##s"},
     {18, 19, 20, 17, 21, 17, 22, 12, 21}},
    {"empty", ""s, {}, {}},
    {"only spaces", " \t\n\r  "s, {}, {}},
    {"control characters", "hel\x00" "lo\x07" " wor\x1b" "ld\u200b\ufffd!"s,
     {"hello", "world", "!"},
     {13, 14, 60}},
    {"chinese", "the中国dog"s,
     {"the", "中", "国", "dog"},
     {5, 52, 53, 12}},
    {"tabs and spaces", "  the\tquick\n\nbrown \u00a0 fox\u3000dog  "s,
     {"the", "quick", "brown", "fox", "dog"},
     {5, 6, 7, 8, 12}},
    {"european", "Straße naïve résumé ÀÉÎÕÜ"s,
     {"stra", "##ß", "##e", "naive", "resume", "a", "##e", "##i", "##o", "##u"},
     {28, 29, 30, 26, 27, 34, 30, 31, 32, 33}},
    // "ΟΔΟΣ" -> "οδοσ", not "οδος": HF lower-cases code point by code point (no final sigma).
    {"greek cyrillic turkish", "ΑΘΗΝΑ Ἀθῆναι ΟΔΟΣ МОСКВА İstanbul"s,
     {"αθηνα", "αθηνα", "##ι", "οδοσ", "москва", "istanbul"},
     {54, 54, 55, 72, 56, 57}},
    {"line separator", "the\u2028dog\u2029fox"s,
     {"the", "dog", "fox"},
     {5, 12, 8}},
    {"special tokens", "the [MASK] dog[SEP]fox [cls]"s,
     {"the", "[MASK]", "dog", "[SEP]", "fox", "[", "cl", "##s", "]"},
     {5, 4, 12, 3, 8, 70, 39, 21, 71}},
    // 101 code points is over max_input_chars_per_word; 100 that cannot be spelled are [UNK] too.
    {"too long word", std::string(101, 'a') + " " + repeat("ab", 50),
     {"[UNK]", "[UNK]"},
     {1, 1}},
    {"numbers", "shares rose 15 percent, to $105."s,
     {"shares", "rose", "1", "##5", "percent", ",", "to", "$", "1", "##0", "##5", "."},
     {41, 42, 49, 51, 43, 59, 40, 69, 49, 50, 51, 58}},
    // Invalid bytes become U+FFFD, which _clean_text drops: "the\xffdog" is one word.
    {"invalid utf-8", "the\xff" "dog \xe2" "\x82" " fox\xc3"s,
     {"[UNK]", "fox"},
     {1, 8}},
    {"surrogate and overlong", "he\xed" "\xa0" "\x80" "llo \xc0" "\xaf" "dog"s,
     {"hello", "dog"},
     {13, 12}},
};
// clang-format on

}  // namespace

TEST_CASE("tokenize matches HF's BertTokenizer", "[tokenizer]") {
  const WordPieceTokenizer& tok = tokenizer();
  for (const TokenizeCase& c : kTokenizeCases) {
    INFO(c.name);
    const std::vector<std::string> tokens = tok.tokenize(c.text);
    CHECK(tokens == c.tokens);
    CHECK(tok.convert_tokens_to_ids(tokens) == c.ids);
    CHECK(tok.encode_text(c.text) == c.ids);
  }
}

TEST_CASE("basic_tokenize is HF's BasicTokenizer", "[tokenizer]") {
  using V = std::vector<std::string>;
  CHECK(basic_tokenize("Café Déjà vu") == V{"cafe", "deja", "vu"});
  CHECK(basic_tokenize("Hello, world!") == V{"hello", ",", "world", "!"});
  // Hangul is not spaced out like CJK ideographs, and NFD splits it into jamo.
  CHECK(basic_tokenize("한국어 中文") == V{"\u1112\u1161\u11ab\u1100\u116e\u11a8\u110b\u1165", "中", "文"});
  // Compatibility ideographs are CJK too, and NFD maps them to the unified ones.
  CHECK(basic_tokenize("\uF900x") == V{"\u8C48", "x"});
  // Punctuation is Unicode category P, plus all of ASCII's symbols; "€" (Sc) is not.
  CHECK(basic_tokenize("a“b”c—d€e^f") == V{"a", "“", "b", "”", "c", "—", "d€e", "^", "f"});
  // Combining marks after a base letter are stripped; the letters stay one word.
  CHECK(basic_tokenize("e\u0301te\u0301") == V{"ete"});
  // NFD reorders combining characters by class before the Mn marks go: the musical augmentation
  // dot (class 226) moves after the stem (216), both Mc and kept.
  CHECK(basic_tokenize("x\U0001D16D\U0001D165") == V{"x\U0001D165\U0001D16D"});
  // Cased (do_lower_case=False): no lower-casing, no accent stripping.
  CHECK(basic_tokenize("Café Déjà vu.", false) == V{"Café", "Déjà", "vu", "."});
  // never_split words stay whole (BertTokenizer passes its special tokens).
  CHECK(basic_tokenize("[CLS] a", false, {"[CLS]"}) == V{"[CLS]", "a"});
  CHECK(basic_tokenize("[CLS] a", false) == V{"[", "CLS", "]", "a"});
}

namespace {

struct EncodeCase {
  const char* name;
  std::string a;
  std::optional<std::string> b;
  size_t max_length;
  std::vector<int64_t> input_ids, token_type_ids, attention_mask;
};

// Output of reference_tokenizer.py ("encode"): tokenizer(a, b, max_length=n, truncation=True,
// padding="max_length").
// clang-format off
const std::vector<EncodeCase> kEncodeCases = {
    {"pair", "The quick brown fox."s, "The lazy dog!"s, 16,
     {2, 5, 6, 7, 8, 58, 3, 5, 11, 12, 60, 3, 0, 0, 0, 0},
     {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}},
    // 9 + 5 + 3 = 17 tokens: one comes off the longer, first sentence.
    {"pair longest_first", "the quick brown fox jumps over the lazy dog"s,
     "hello world , he said"s, 16,
     {2, 5, 6, 7, 8, 9, 10, 5, 11, 3, 13, 14, 59, 15, 16, 3},
     {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"pair second longer", "hello"s, "the quick brown fox jumps over the lazy dog again"s, 12,
     {2, 13, 3, 5, 6, 7, 8, 9, 10, 5, 11, 3},
     {0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1},
     {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    // 5 + 5: remove 4, alternating and starting with the second sentence when equal.
    {"pair equal lengths", "a b c d e"s, "a b c d e"s, 9,
     {2, 34, 35, 36, 3, 34, 35, 36, 3},
     {0, 0, 0, 0, 0, 1, 1, 1, 1},
     {1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"pair empty second", "hello world"s, ""s, 8,
     {2, 13, 14, 3, 3, 0, 0, 0},
     {0, 0, 0, 0, 1, 0, 0, 0},
     {1, 1, 1, 1, 1, 0, 0, 0}},
    {"pair both empty", ""s, ""s, 4,
     {2, 3, 3, 0},
     {0, 0, 1, 0},
     {1, 1, 1, 0}},
    {"pair exact fit", "hello world"s, "the dog"s, 7,
     {2, 13, 14, 3, 5, 12, 3},
     {0, 0, 0, 0, 1, 1, 1},
     {1, 1, 1, 1, 1, 1, 1}},
    {"single", "Café Déjà vu"s, std::nullopt, 8,
     {2, 23, 24, 25, 3, 0, 0, 0},
     {0, 0, 0, 0, 0, 0, 0, 0},
     {1, 1, 1, 1, 1, 0, 0, 0}},
    {"single truncated", "the quick brown fox jumps"s, std::nullopt, 5,
     {2, 5, 6, 7, 3},
     {0, 0, 0, 0, 0},
     {1, 1, 1, 1, 1}},
};
// clang-format on

}  // namespace

TEST_CASE("encode_pair and encode_single match HF's encode_plus", "[tokenizer]") {
  const WordPieceTokenizer& tok = tokenizer();
  for (const EncodeCase& c : kEncodeCases) {
    INFO(c.name);
    const Encoding e = c.b ? tok.encode_pair(c.a, *c.b, c.max_length) : tok.encode_single(c.a, c.max_length);
    CHECK(e.input_ids == c.input_ids);
    CHECK(e.token_type_ids == c.token_type_ids);
    CHECK(e.attention_mask == c.attention_mask);
  }

  Failure f = failure([&] { tok.encode_pair("a", "b", 2); });
  CHECK(f.kind == ErrorKind::Usage);
  CHECK(f.message == "max_seq_length 2 leaves no room for [CLS] and [SEP]");
  CHECK(f.hint == "it must be at least 3");
  CHECK(tok.encode_single("a", 2).input_ids == std::vector<int64_t>{2, 3});
}

TEST_CASE("the MRPC reader follows HF's MrpcProcessor", "[glue]") {
  const std::vector<PairExample> ex = read_mrpc_tsv(kTestdata + "mrpc/dev.tsv");
  REQUIRE(ex.size() == 8);
  CHECK(ex[0].a == "The quick brown fox jumps over the lazy dog.");
  CHECK(ex[0].b == "A quick brown fox jumps over a lazy dog.");
  CHECK(ex[2].a == "Café owner said: \"Déjà vu!\"");
  CHECK(ex[5].a == "\"Hello\" world");  // quotechar=None: quotes are text
  CHECK(ex[5].b == "it was \"a dog");
  std::vector<int> labels;
  for (const PairExample& e : ex) labels.push_back(e.label);
  CHECK(labels == std::vector<int>{1, 0, 1, 0, 1, 0, 1, 0});

  // glue_convert_examples_to_features(max_length=16) on the same file, from
  // reference_tokenizer.py ("mrpc"). Row 5 is the long pair that truncates.
  const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> want = {
      {{2, 5, 6, 7, 8, 9, 10, 5, 3, 34, 6, 7, 8, 9, 10, 3}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1}},
      {{2, 41, 42, 49, 51, 43, 45, 46, 3, 5, 44, 16, 41, 1, 58, 3}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1}},
      {{2, 23, 1, 16, 66, 63, 24, 25, 3, 5, 23, 1, 16, 48, 47, 3}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1}},
      {{2, 15, 16, 5, 1, 47, 18, 19, 3, 13, 14, 59, 15, 16, 58, 3}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1}},
      {{2, 5, 6, 7, 8, 9, 10, 5, 3, 13, 14, 59, 5, 44, 16, 3}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1}},
      {{2, 63, 13, 63, 14, 3, 48, 47, 63, 34, 12, 3, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0}},
      {{2, 5, 12, 17, 21, 58, 3, 5, 12, 47, 17, 22, 58, 3, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0}},
      {{2, 54, 1, 56, 3, 57, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
  };
  for (size_t i = 0; i < ex.size(); ++i) {
    INFO("example " << i);
    const Encoding e = tokenizer().encode_pair(ex[i].a, ex[i].b, 16);
    CHECK(e.input_ids == want[i].first);
    CHECK(e.token_type_ids == want[i].second);
    std::vector<int64_t> mask;
    for (int64_t id : e.input_ids) mask.push_back(id != 0);
    CHECK(e.attention_mask == mask);
  }

  SECTION("CRLF and a byte order mark, as HF's utf-8-sig text mode reads them") {
    const auto crlf = parse_mrpc_tsv(
        "\xEF\xBB\xBFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t1\t2\tA b.\tC d.\r\n"
        "0\t3\t4\tE\tF\r\n",
        "crlf.tsv");
    REQUIRE(crlf.size() == 2);
    CHECK(crlf[0].a == "A b.");
    CHECK(crlf[0].b == "C d.");
    CHECK(crlf[1].label == 0);
    CHECK(crlf[1].b == "F");
  }
  SECTION("one trailing empty line is allowed, a last line without newline too") {
    const std::string head = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n";
    CHECK(parse_mrpc_tsv(head + "1\t1\t2\ta\tb\n\n", "t.tsv").size() == 1);
    CHECK(parse_mrpc_tsv(head + "1\t1\t2\ta\tb", "t.tsv").size() == 1);
    CHECK(parse_mrpc_tsv(head + "1\t1\t2\ta\t\n", "t.tsv")[0].b.empty());
  }
}

TEST_CASE("malformed MRPC files are refused naming the line", "[glue]") {
  Failure f = failure([] { read_mrpc_tsv(kTestdata + "mrpc/bad_columns.tsv"); });
  CHECK(f.kind == ErrorKind::Usage);
  CHECK(f.message == kTestdata + "mrpc/bad_columns.tsv:4: 4 columns, expected 5");
  CHECK(f.hint == "the columns are Quality, #1 ID, #2 ID, #1 String, #2 String, separated by tabs");

  f = failure([] { read_mrpc_tsv(kTestdata + "mrpc/bad_label.tsv"); });
  CHECK(f.kind == ErrorKind::Usage);
  CHECK(f.message == kTestdata + "mrpc/bad_label.tsv:3: label \"yes\" is not 0 or 1");

  f = failure([] { read_mrpc_tsv(kTestdata + "mrpc/missing.tsv"); });
  CHECK(f.kind == ErrorKind::Usage);
  CHECK(f.message == "cannot read data file " + kTestdata + "mrpc/missing.tsv: No such file or directory");

  const std::string head = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n";
  const std::string row = "1\t1\t2\ta\tb\n";
  f = failure([&] { parse_mrpc_tsv(head + row + "\n" + row, "dev.tsv"); });
  CHECK(f.message == "dev.tsv:3: empty line");
  f = failure([&] { parse_mrpc_tsv(head + row + "\r\n\r\n", "dev.tsv"); });
  CHECK(f.message == "dev.tsv:3: empty line");  // only one trailing empty line is allowed
  f = failure([&] { parse_mrpc_tsv(head + "1\t1\t2\ta\tb\tc\n", "dev.tsv"); });
  CHECK(f.message == "dev.tsv:2: 6 columns, expected 5");
  f = failure([&] { parse_mrpc_tsv(head + "1\r2\t1\t2\ta\tb\n", "dev.tsv"); });
  CHECK(f.message == "dev.tsv:2: 1 column, expected 5");  // a lone \r ends a line, as in Python
  f = failure([&] { parse_mrpc_tsv(head + " 1\t1\t2\ta\tb\n", "dev.tsv"); });
  CHECK(f.message == "dev.tsv:2: label \" 1\" is not 0 or 1");
  f = failure([&] { parse_mrpc_tsv(head + "1\t1\t2\tcaf\xE9\tb\n", "dev.tsv"); });
  CHECK(f.message == "dev.tsv:2: not valid UTF-8");
  f = failure([&] { parse_mrpc_tsv(row + row, "dev.tsv"); });
  CHECK(f.message == "dev.tsv:1: expected the header, found an example");
  f = failure([&] { parse_mrpc_tsv(head, "dev.tsv"); });
  CHECK(f.message == "dev.tsv has a header but no examples");
  f = failure([&] { parse_mrpc_tsv("", "dev.tsv"); });
  CHECK(f.message == "dev.tsv is empty");
}

TEST_CASE("pre-tokenized JSON Lines", "[glue]") {
  const std::string l1 =
      R"({"input_ids": [2, 13, 3, 0], "attention_mask": [1, 1, 1, 0], "token_type_ids": [0, 0, 0, 0], "label": 1})";
  const std::string l2 =
      R"({"label": 0, "token_type_ids": [0, 0, 1, 1], "attention_mask": [1, 1, 1, 1], "input_ids": [2, 3, 5, 3]})";
  const auto ex = parse_tokenized_jsonl(l1 + "\r\n" + l2 + "\n\n", "t.jsonl");
  REQUIRE(ex.size() == 2);
  CHECK(ex[0].input_ids == std::vector<int64_t>{2, 13, 3, 0});
  CHECK(ex[0].attention_mask == std::vector<int64_t>{1, 1, 1, 0});
  CHECK(ex[0].label == 1);
  CHECK(ex[1].token_type_ids == std::vector<int64_t>{0, 0, 1, 1});
  CHECK(ex[1].label == 0);

  const auto unlabeled =
      parse_tokenized_jsonl(R"({"input_ids": [2, 3], "attention_mask": [1, 1], "token_type_ids": [0, 0]})", "u.jsonl");
  REQUIRE(unlabeled.size() == 1);
  CHECK_FALSE(unlabeled[0].label.has_value());

  {
    TempFile file("t.jsonl", l1 + "\n");
    CHECK(read_tokenized_jsonl(file.path()).size() == 1);
  }

  auto message = [](const std::string& text) {
    return failure([&] { parse_tokenized_jsonl(text, "t.jsonl"); }).message;
  };
  const std::string ok = R"("attention_mask": [1, 1], "token_type_ids": [0, 0])";
  CHECK(message(l1 + "\n" + R"({"input_ids": [2, 3], )" + ok + "}") == "t.jsonl:2: 2 tokens, but line 1 has 4");
  CHECK(message(R"({"input_ids": [2, 3, 4], )" + ok + "}") ==
        "t.jsonl:1: the arrays differ in length: input_ids 3, attention_mask 2, token_type_ids 2");
  CHECK(message(R"({"input_ids": [2, 3], "attention_mask": [1, 2], "token_type_ids": [0, 0]})") ==
        "t.jsonl:1: \"attention_mask\"[1] is 2, not 0 or 1");
  CHECK(message(R"({"input_ids": [2, -3], )" + ok + "}") == "t.jsonl:1: \"input_ids\"[1] is -3, negative");
  CHECK(message(R"({"input_ids": [2, 3.5], )" + ok + "}") == "t.jsonl:1: \"input_ids\"[1] is 3.5, not an integer");
  CHECK(message(R"({"input_ids": "2 3", )" + ok + "}") == "t.jsonl:1: \"input_ids\" is not an array");
  CHECK(message(R"({"input_ids": [], "attention_mask": [], "token_type_ids": []})") ==
        "t.jsonl:1: \"input_ids\" is empty");
  CHECK(message(R"({)" + ok + "}") == "t.jsonl:1: no \"input_ids\"");
  CHECK(message(R"({"input_ids": [2, 3], "idx": 7, )" + ok + "}") == "t.jsonl:1: unknown key \"idx\"");
  CHECK(message(R"({"input_ids": [2, 3], "input_ids": [2, 3], )" + ok + "}") ==
        "t.jsonl:1: [\"input_ids\"]: duplicate key");
  CHECK(message(R"({"input_ids": [2, 3], "label": "1", )" + ok + "}") ==
        "t.jsonl:1: \"label\" is \"1\", not a non-negative integer");
  const std::string unlabeled4 =
      R"({"input_ids": [2, 3, 4, 5], "attention_mask": [1, 1, 1, 1], "token_type_ids": [0, 0, 0, 0]})";
  CHECK(message(l1 + "\n" + unlabeled4) == "t.jsonl:2: has no \"label\" but line 1 has one");
  CHECK(message(R"({"input_ids": [1e999]})") == "t.jsonl:1: malformed JSON: number overflow parsing '1e999'");
  CHECK(message("[1, 2]") == "t.jsonl:1: expected a JSON object, got array");
  CHECK(message(l1 + "\n\n" + l1) == "t.jsonl:2: empty line");
  CHECK(message("") == "t.jsonl has no examples");
  CHECK(message(l1 + "\n" + R"({"input_ids": [2, 3,, )") ==
        "t.jsonl:2:21: malformed JSON: syntax error while parsing value - unexpected ','; "
        "expected '[', '{', or a literal");
}
