#!/usr/bin/python3
"""Pure-Python reference for bertq's BertTokenizer port (lib/tokenizer.cpp).

There is no `transformers` on the build machine, so this file re-creates the parts of Hugging
Face's BertTokenizer that `glue_convert_examples_to_features` uses, as close to HF's own code
as possible:

- `load_vocab`, `whitespace_tokenize`, `_is_whitespace`, `_is_control`, `_is_punctuation`,
  `BasicTokenizer` and `WordpieceTokenizer` are copied from transformers 4.x
  (models/bert/tokenization_bert.py, tokenization_utils.py; Apache-2.0, (c) the Google AI
  Language Team Authors and The HuggingFace Inc. team), trimmed of docstrings and of the
  options bertq does not use.
- `BertTokenizerRef.tokenize` mirrors `PreTrainedTokenizer.tokenize`: lower-case all but the
  special tokens with HF's regex, split out the special tokens, then `_tokenize`.
- `BertTokenizerRef.encode` mirrors `tokenizer(a, b, max_length=..., truncation=True,
  padding="max_length")`: `prepare_for_model` with the 'longest_first' loop of
  `truncate_sequences` (transformers 2.x/3.x; 4.x computes the same split in closed form),
  `build_inputs_with_special_tokens`, `create_token_type_ids_from_sequences`, then padding.

Usage, from the repository root:

    /usr/bin/python3 testdata/tokenizer/reference_tokenizer.py            # expected test values
    /usr/bin/python3 testdata/tokenizer/reference_tokenizer.py --lines VOCAB < texts.txt
        # one line of space-separated tokens per input line (for differential testing)
"""

import collections
import json
import os
import re
import sys
import unicodedata


# ---- copied from transformers (tokenization_bert.py / tokenization_utils.py) ----

def load_vocab(vocab_file):
    vocab = collections.OrderedDict()
    with open(vocab_file, "r", encoding="utf-8") as reader:
        tokens = reader.readlines()
    for index, token in enumerate(tokens):
        token = token.rstrip("\n")
        vocab[token] = index
    return vocab


def whitespace_tokenize(text):
    text = text.strip()
    if not text:
        return []
    tokens = text.split()
    return tokens


def _is_whitespace(char):
    if char == " " or char == "\t" or char == "\n" or char == "\r":
        return True
    cat = unicodedata.category(char)
    if cat == "Zs":
        return True
    return False


def _is_control(char):
    if char == "\t" or char == "\n" or char == "\r":
        return False
    cat = unicodedata.category(char)
    if cat.startswith("C"):
        return True
    return False


def _is_punctuation(char):
    cp = ord(char)
    if (cp >= 33 and cp <= 47) or (cp >= 58 and cp <= 64) or (cp >= 91 and cp <= 96) or (cp >= 123 and cp <= 126):
        return True
    cat = unicodedata.category(char)
    if cat.startswith("P"):
        return True
    return False


class BasicTokenizer(object):
    def __init__(self, do_lower_case=True, never_split=None, tokenize_chinese_chars=True, strip_accents=None):
        if never_split is None:
            never_split = []
        self.do_lower_case = do_lower_case
        self.never_split = set(never_split)
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents

    def tokenize(self, text, never_split=None):
        never_split = self.never_split.union(set(never_split)) if never_split else self.never_split
        text = self._clean_text(text)
        if self.tokenize_chinese_chars:
            text = self._tokenize_chinese_chars(text)
        orig_tokens = whitespace_tokenize(text)
        split_tokens = []
        for token in orig_tokens:
            if token not in never_split:
                if self.do_lower_case:
                    token = token.lower()
                    if self.strip_accents is not False:
                        token = self._run_strip_accents(token)
                elif self.strip_accents:
                    token = self._run_strip_accents(token)
            split_tokens.extend(self._run_split_on_punc(token, never_split))
        output_tokens = whitespace_tokenize(" ".join(split_tokens))
        return output_tokens

    def _run_strip_accents(self, text):
        text = unicodedata.normalize("NFD", text)
        output = []
        for char in text:
            cat = unicodedata.category(char)
            if cat == "Mn":
                continue
            output.append(char)
        return "".join(output)

    def _run_split_on_punc(self, text, never_split=None):
        if never_split is not None and text in never_split:
            return [text]
        chars = list(text)
        i = 0
        start_new_word = True
        output = []
        while i < len(chars):
            char = chars[i]
            if _is_punctuation(char):
                output.append([char])
                start_new_word = True
            else:
                if start_new_word:
                    output.append([])
                start_new_word = False
                output[-1].append(char)
            i += 1
        return ["".join(x) for x in output]

    def _tokenize_chinese_chars(self, text):
        output = []
        for char in text:
            cp = ord(char)
            if self._is_chinese_char(cp):
                output.append(" ")
                output.append(char)
                output.append(" ")
            else:
                output.append(char)
        return "".join(output)

    def _is_chinese_char(self, cp):
        if (
            (cp >= 0x4E00 and cp <= 0x9FFF)
            or (cp >= 0x3400 and cp <= 0x4DBF)
            or (cp >= 0x20000 and cp <= 0x2A6DF)
            or (cp >= 0x2A700 and cp <= 0x2B73F)
            or (cp >= 0x2B740 and cp <= 0x2B81F)
            or (cp >= 0x2B820 and cp <= 0x2CEAF)
            or (cp >= 0xF900 and cp <= 0xFAFF)
            or (cp >= 0x2F800 and cp <= 0x2FA1F)
        ):
            return True
        return False

    def _clean_text(self, text):
        output = []
        for char in text:
            cp = ord(char)
            if cp == 0 or cp == 0xFFFD or _is_control(char):
                continue
            if _is_whitespace(char):
                output.append(" ")
            else:
                output.append(char)
        return "".join(output)


class WordpieceTokenizer(object):
    def __init__(self, vocab, unk_token, max_input_chars_per_word=100):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word

    def tokenize(self, text):
        output_tokens = []
        for token in whitespace_tokenize(text):
            chars = list(token)
            if len(chars) > self.max_input_chars_per_word:
                output_tokens.append(self.unk_token)
                continue
            is_bad = False
            start = 0
            sub_tokens = []
            while start < len(chars):
                end = len(chars)
                cur_substr = None
                while start < end:
                    substr = "".join(chars[start:end])
                    if start > 0:
                        substr = "##" + substr
                    if substr in self.vocab:
                        cur_substr = substr
                        break
                    end -= 1
                if cur_substr is None:
                    is_bad = True
                    break
                sub_tokens.append(cur_substr)
                start = end
            if is_bad:
                output_tokens.append(self.unk_token)
            else:
                output_tokens.extend(sub_tokens)
        return output_tokens


# ---- BertTokenizer + the PreTrainedTokenizer methods glue_convert_examples_to_features uses ----

class BertTokenizerRef(object):
    # BertTokenizer's defaults; all_special_tokens holds them whether or not vocab.txt does.
    SPECIAL = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]

    def __init__(self, vocab_file, do_lower_case=True):
        self.vocab = load_vocab(vocab_file)
        self.do_lower_case = do_lower_case
        self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case)
        self.wordpiece_tokenizer = WordpieceTokenizer(vocab=self.vocab, unk_token="[UNK]")

    def _tokenize(self, text):
        split_tokens = []
        for token in self.basic_tokenizer.tokenize(text, never_split=self.SPECIAL):
            if token in self.basic_tokenizer.never_split:
                split_tokens.append(token)
            else:
                split_tokens += self.wordpiece_tokenizer.tokenize(token)
        return split_tokens

    def tokenize(self, text):
        if self.do_lower_case:
            escaped_special_toks = [re.escape(s_tok) for s_tok in self.SPECIAL]
            pattern = r"(" + r"|".join(escaped_special_toks) + r")|" + r"(.+?)"
            text = re.sub(pattern, lambda m: m.groups()[0] or m.groups()[1].lower(), text)
        # The special tokens never overlap, so splitting on them one after the other gives what
        # HF's Trie (4.x) or split_on_tokens (3.x) give.
        pieces = [text]
        for tok in self.SPECIAL:
            out = []
            for piece in pieces:
                if piece in self.SPECIAL:
                    out.append(piece)
                    continue
                parts = piece.split(tok)
                for i, part in enumerate(parts):
                    if i:
                        out.append(tok)
                    out.append(part)
            pieces = out
        tokens = []
        for piece in pieces:
            if piece in self.SPECIAL:
                tokens.append(piece)
            elif piece:
                tokens.extend(self._tokenize(piece))
        return tokens

    def convert_tokens_to_ids(self, tokens):
        return [self.vocab.get(t, self.vocab.get("[UNK]")) for t in tokens]

    def encode(self, text_a, text_b, max_length):
        ids = self.convert_tokens_to_ids(self.tokenize(text_a))
        pair_ids = self.convert_tokens_to_ids(self.tokenize(text_b)) if text_b is not None else None
        num_special = 3 if pair_ids is not None else 2
        total_len = len(ids) + (len(pair_ids) if pair_ids is not None else 0) + num_special
        for _ in range(max(0, total_len - max_length)):  # truncate_sequences, 'longest_first'
            if pair_ids is None or len(ids) > len(pair_ids):
                ids = ids[:-1]
            else:
                pair_ids = pair_ids[:-1]
        cls, sep = [self.vocab["[CLS]"]], [self.vocab["[SEP]"]]
        if pair_ids is None:
            input_ids = cls + ids + sep
            token_type_ids = len(input_ids) * [0]
        else:
            input_ids = cls + ids + sep + pair_ids + sep
            token_type_ids = len(cls + ids + sep) * [0] + len(pair_ids + sep) * [1]
        attention_mask = [1] * len(input_ids)
        pad = max_length - len(input_ids)
        return {
            "input_ids": input_ids + [self.vocab["[PAD]"]] * pad,
            "attention_mask": attention_mask + [0] * pad,
            "token_type_ids": token_type_ids + [0] * pad,
        }


# ---- the values in tests/test_tokenizer.cpp ----

HERE = os.path.dirname(os.path.abspath(__file__))

# (name, text): tokens and ids of tokenizer.tokenize(text)
TOKENIZE_CASES = [
    ("accents", "Café Déjà vu"),
    ("punctuation", "Hello, world! (He said: \"run\".)"),
    ("unknown", "The quick xylophone jumps"),
    ("wordpiece", "unaffable runs running dogs"),
    ("empty", ""),
    ("only spaces", " \t\n\r  "),
    ("control characters", "hel\x00lo\x07 wor\x1bld\u200b\ufffd!"),
    ("chinese", "the中国dog"),
    ("tabs and spaces", "  the\tquick\n\nbrown \u00a0 fox\u3000dog  "),
    ("european", "Straße naïve résumé ÀÉÎÕÜ"),
    ("greek cyrillic turkish", "ΑΘΗΝΑ Ἀθῆναι ΟΔΟΣ МОСКВА İstanbul"),
    ("line separator", "the\u2028dog\u2029fox"),
    ("special tokens", "the [MASK] dog[SEP]fox [cls]"),
    ("too long word", "a" * 101 + " " + "ab" * 50),
    ("numbers", "shares rose 15 percent, to $105."),
]

# invalid UTF-8 cannot be a Python str; these are the bytes the C++ test feeds, and the text HF
# would see if the bytes had been decoded with errors="replace" (U+FFFD, which _clean_text drops).
INVALID_UTF8_CASES = [
    ("invalid utf-8", b"the\xffdog \xe2\x82 fox\xc3", "the\ufffddog \ufffd fox\ufffd"),
    ("surrogate and overlong", b"he\xed\xa0\x80llo \xc0\xafdog", "he\ufffd\ufffd\ufffdllo \ufffd\ufffddog"),
]

# (name, text_a, text_b or None, max_length): tokenizer(text_a, text_b, max_length=...,
# truncation=True, padding="max_length")
ENCODE_CASES = [
    ("pair", "The quick brown fox.", "The lazy dog!", 16),
    ("pair longest_first", "the quick brown fox jumps over the lazy dog",
     "hello world , he said", 16),
    ("pair second longer", "hello", "the quick brown fox jumps over the lazy dog again", 12),
    ("pair equal lengths", "a b c d e", "a b c d e", 9),
    ("pair empty second", "hello world", "", 8),
    ("pair both empty", "", "", 4),
    ("pair exact fit", "hello world", "the dog", 7),
    ("single", "Café Déjà vu", None, 8),
    ("single truncated", "the quick brown fox jumps", None, 5),
]


def expected_values():
    tok = BertTokenizerRef(os.path.join(HERE, "vocab.txt"))
    out = {"tokenize": [], "encode": []}
    for name, text in TOKENIZE_CASES:
        tokens = tok.tokenize(text)
        out["tokenize"].append({"name": name, "text": text, "tokens": tokens,
                                "ids": tok.convert_tokens_to_ids(tokens)})
    for name, raw, text in INVALID_UTF8_CASES:
        assert raw.decode("utf-8", errors="replace") == text, name
        tokens = tok.tokenize(text)
        out["tokenize"].append({"name": name, "bytes": raw.hex(), "tokens": tokens,
                                "ids": tok.convert_tokens_to_ids(tokens)})
    for name, a, b, n in ENCODE_CASES:
        out["encode"].append({"name": name, "a": a, "b": b, "max_length": n, **tok.encode(a, b, n)})
    # The MRPC fixture, as glue_convert_examples_to_features (max_length 16) sees it.
    from csv import reader
    with open(os.path.join(HERE, "..", "mrpc", "dev.tsv"), "r", encoding="utf-8-sig") as f:
        lines = list(reader(f, delimiter="\t", quotechar=None))
    out["mrpc"] = [{"label": int(line[0]), **tok.encode(line[3], line[4], 16)} for line in lines[1:]]
    return out


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--lines":
        tok = BertTokenizerRef(sys.argv[2])
        data = sys.stdin.buffer.read().decode("utf-8", errors="replace")
        for line in data.split("\n"):
            print(" ".join(tok.tokenize(line)))
        return
    print(json.dumps(expected_values(), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
