"""Writes a BERT-base-shaped traced model (random weights, ~438 MB) for benchmarks.

Usage: /usr/bin/python3 tests/bench/make_bert_base.py OUT.pt [--batch 8] [--seq 128]
Never committed: benchmarks generate it on demand.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "testdata"))
import minibert  # noqa: E402
import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--batch", type=int, default=8)  # the tutorial's shape
    ap.add_argument("--seq", type=int, default=128)
    args = ap.parse_args()
    traced = minibert.make_traced(minibert.BASE_CONFIG, args.batch, args.seq, seed=0)
    tmp = args.out + ".tmp"
    torch.jit.save(traced, tmp)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
