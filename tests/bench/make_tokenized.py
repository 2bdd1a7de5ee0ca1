"""Writes pre-tokenized sentence pairs with realistic BERT id statistics, for
`bertq compare --tokenized` and `bertq eval --tokenized`.

Real text's WordPiece ids follow Zipf's law over the vocabulary (a few hundred
ids make up half of all tokens); ids below 999 are [PAD], [unused*], [UNK],
[CLS], [SEP] and [MASK] and do not occur inside text. Each row is
[CLS] A [SEP] B [SEP] with token types 0 then 1, a length drawn between 24 and
the sequence length, and padding after it, as an MRPC batch looks.

Usage: /usr/bin/python3 tests/bench/make_tokenized.py OUT.jsonl [--rows 16] [--seq 128] [--vocab 30522]
"""
import argparse
import json

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=30522)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    text_ids = np.arange(999, args.vocab)
    # Zipf with exponent 1 over a random ranking of the text ids.
    ranked = rng.permutation(text_ids)
    p = 1.0 / np.arange(1, len(ranked) + 1)
    p /= p.sum()
    with open(args.out + ".tmp", "w") as f:
        for i in range(args.rows):
            length = int(rng.integers(24, args.seq + 1))
            words = rng.choice(ranked, size=length - 3, p=p)
            cut = int(rng.integers(1, length - 3))
            ids = [101] + list(words[:cut]) + [102] + list(words[cut:]) + [102]
            types = [0] * (cut + 2) + [1] * (length - cut - 2)
            pad = args.seq - length
            row = {"input_ids": [int(x) for x in ids] + [0] * pad,
                   "attention_mask": [1] * length + [0] * pad,
                   "token_type_ids": types + [0] * pad,
                   "label": i % 2}
            f.write(json.dumps(row) + "\n")
    import os
    os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
