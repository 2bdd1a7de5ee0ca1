#!/usr/bin/python3
"""Writes lib/unicode_tables.inc: the Unicode data bertq's BertTokenizer port needs.

HF's BasicTokenizer asks Python's `unicodedata` (category, NFD) and `str.lower()`. bertq has
no ICU, so this script asks the same functions once, for every code point, and writes the
answers as compact C++ tables. Run from the repository root:

    /usr/bin/python3 testdata/tokenizer/gen_unicode_tables.py

The output depends only on the Unicode version of this Python (Debian 12: 3.11, Unicode 14.0.0)
and is byte-identical across runs.
"""

import os
import sys
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference_tokenizer as ref  # noqa: E402  (HF's predicates, copied verbatim there)

OUT = os.path.join(HERE, "..", "..", "lib", "unicode_tables.inc")
MAX_CP = 0x10FFFF
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3  # decomposed arithmetically in tokenizer.cpp

# Character classes, in the order of HF's checks (see tokenizer.cpp).
OTHER, DROP, SPACE, PUNCT, MARK, SPLIT = range(6)
CLASS_NAMES = ["kOther", "kDrop", "kSpace", "kPunct", "kMark", "kSplit"]


def char_class(cp):
    c = chr(cp)
    if cp == 0 or cp == 0xFFFD or ref._is_control(c):  # _clean_text removes these
        return DROP
    if ref._is_whitespace(c):  # _clean_text maps these to " "
        return SPACE
    if ref._is_punctuation(c):  # _run_split_on_punc isolates these
        return PUNCT
    if unicodedata.category(c) == "Mn":  # _run_strip_accents drops these after NFD
        return MARK
    if c.isspace():  # survives _clean_text, but str.split() in whitespace_tokenize splits on it
        return SPLIT
    return OTHER


def class_ranges():
    ranges = []
    for cp in range(MAX_CP + 1):
        cls = char_class(cp)
        if ranges and ranges[-1][2] == cls and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp, cls])
    return [r for r in ranges if r[2] != OTHER]


def lower_runs():
    """Single-code-point lower-case mappings as runs (first, last, stride, delta)."""
    mapping = {}
    for cp in range(MAX_CP + 1):
        low = chr(cp).lower()
        if low == chr(cp):
            continue
        # HF lower-cases twice (PreTrainedTokenizer.tokenize, then BasicTokenizer); a table of
        # single lowerings is only right if lowering is idempotent.
        assert low.lower() == low, hex(cp)
        if len(low) != 1:
            assert cp == 0x130, hex(cp)  # U+0130 -> "i" U+0307, special-cased in tokenizer.cpp
            continue
        mapping[cp] = ord(low) - cp
    runs = []
    for cp in sorted(mapping):
        delta = mapping[cp]
        if runs:
            first, last, stride, d = runs[-1]
            if d == delta and (
                (stride in (0, 1) and cp == last + 1)
                or (stride in (0, 2) and cp == last + 2 and (cp - 1) not in mapping)
            ):
                runs[-1] = [first, cp, cp - last, delta]
                continue
        runs.append([cp, cp, 0, delta])
    for r in runs:
        r[2] = r[2] or 1
    # Check the runs reproduce the mapping exactly.
    seen = {}
    for first, last, stride, delta in runs:
        for cp in range(first, last + 1, stride):
            seen[cp] = delta
    assert seen == mapping
    return runs


def decomposition_table():
    """NFD of one code point, wherever it is not the identity (the full decomposition; the
    canonical reordering is done in tokenizer.cpp with the combining classes below)."""
    table = []
    for cp in range(MAX_CP + 1):
        if HANGUL_FIRST <= cp <= HANGUL_LAST or char_class(cp) in (DROP, SPACE, SPLIT):
            continue  # Hangul is done in code; the others never reach _run_strip_accents
        c = chr(cp)
        d = unicodedata.normalize("NFD", c)
        if d != c:
            # The full decomposition is already canonically ordered.
            assert list(d) == sorted_marks(d), hex(cp)
            table.append((cp, [ord(x) for x in d]))
    return table


def sorted_marks(s):
    """The canonical ordering algorithm: a stable sort of each run of non-starters."""
    out, run = [], []
    for x in s:
        if unicodedata.combining(x):
            run.append(x)
        else:
            out += sorted(run, key=unicodedata.combining) + [x]
            run = []
    return out + sorted(run, key=unicodedata.combining)


def ccc_ranges():
    ranges = []
    for cp in range(MAX_CP + 1):
        k = unicodedata.combining(chr(cp))
        if not k:
            continue
        if ranges and ranges[-1][2] == k and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp, k])
    return ranges


def hangul_check():
    # tokenizer.cpp decomposes Hangul syllables with the Unicode formula; check it here.
    for cp in range(HANGUL_FIRST, HANGUL_LAST + 1):
        s = cp - HANGUL_FIRST
        want = [0x1100 + s // 588, 0x1161 + (s % 588) // 28] + ([0x11A7 + s % 28] if s % 28 else [])
        assert [ord(x) for x in unicodedata.normalize("NFD", chr(cp))] == want


def nfd_check(decomp):
    """Checks that decomposing code point by code point and then reordering is NFD, on
    strings that need the reordering."""
    table = dict(decomp)
    samples = ["a\u0345\u0301", "\u1f82\u0323", "\U0001D15F\U0001D16D\U0001D165",
               "\U0001D16D\U0001D165x\u0301\u0316", "\u0130\u0323", "e\u0301\u0327\u0316\u031b"]
    for s in samples:
        cps = []
        for x in s:
            cps += table.get(ord(x), [ord(x)])
        assert "".join(sorted_marks("".join(map(chr, cps)))) == unicodedata.normalize("NFD", s), s


def fmt_rows(items, width=100):
    """Packs the items into lines of at most `width` columns (the project's clang-format)."""
    lines, line = [], "   "
    for item in items:
        if len(line) + 1 + len(item) > width:
            lines.append(line)
            line = "   "
        line += " " + item
    lines.append(line)
    return "\n".join(lines)


def main():
    hangul_check()
    ranges = class_ranges()
    runs = lower_runs()
    decomp = decomposition_table()
    nfd_check(decomp)
    cccs = ccc_ranges()
    out = []
    out.append("// Generated by testdata/tokenizer/gen_unicode_tables.py from Python %s's unicodedata"
               % sys.version.split()[0])
    out.append("// (Unicode %s). Do not edit; re-run the script instead." % unicodedata.unidata_version)
    out.append("// Included by tokenizer.cpp only.")
    out.append("")
    out.append("namespace bertq {")
    out.append("namespace unicode_tables {")
    out.append("")
    out.append("// What HF's BasicTokenizer does with a code point; code points not listed are kOther.")
    out.append("enum Class : uint8_t { %s };" % ", ".join(CLASS_NAMES))
    out.append("struct ClassRange {")
    out.append("  char32_t first, last;")
    out.append("  Class cls;")
    out.append("};")
    out.append("constexpr ClassRange kClassRanges[] = {")
    out.append(fmt_rows(["{0x%X, 0x%X, %s}," % (a, b, CLASS_NAMES[c]) for a, b, c in ranges]))
    out.append("};")
    out.append("")
    out.append("// str.lower() of one code point: every stride-th code point in [first, last] maps to")
    out.append("// itself plus delta. U+0130, whose lower case is two code points, is not listed.")
    out.append("struct LowerRun {")
    out.append("  char32_t first, last;")
    out.append("  uint8_t stride;")
    out.append("  int32_t delta;")
    out.append("};")
    out.append("constexpr LowerRun kLowerRuns[] = {")
    out.append(fmt_rows(["{0x%X, 0x%X, %d, %d}," % tuple(r) for r in runs]))
    out.append("};")
    out.append("")
    width = max(len(d) for _, d in decomp)
    out.append("// The canonical decomposition (NFD) of a code point, where it is not the code point itself.")
    out.append("// Hangul syllables, and characters _clean_text removes or splits on, are not listed.")
    out.append("// Unused places are 0 (left out below).")
    out.append("struct Decomposition {")
    out.append("  char32_t cp;")
    out.append("  char32_t out[%d];" % width)
    out.append("};")
    out.append("constexpr Decomposition kDecompositions[] = {")
    out.append(fmt_rows(["{0x%X, {%s}}," % (cp, ", ".join("0x%X" % x for x in d)) for cp, d in decomp]))
    out.append("};")
    out.append("")
    out.append("// Canonical combining classes; code points not listed have class 0.")
    out.append("struct CombiningRange {")
    out.append("  char32_t first, last;")
    out.append("  uint8_t ccc;")
    out.append("};")
    out.append("constexpr CombiningRange kCombiningRanges[] = {")
    out.append(fmt_rows(["{0x%X, 0x%X, %d}," % tuple(r) for r in cccs]))
    out.append("};")
    out.append("")
    out.append("}  // namespace unicode_tables")
    out.append("}  // namespace bertq")
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print("wrote %s: %d class ranges, %d lower runs, %d decompositions, %d combining ranges"
          % (os.path.relpath(OUT), len(ranges), len(runs), len(decomp), len(cccs)))


if __name__ == "__main__":
    main()
