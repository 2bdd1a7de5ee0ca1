#!/usr/bin/python3
"""Writes the expected `bertq eval` result for the MRPC fixture, from PyTorch.

Builds testdata/models/tiny_bert_mrpc.pt (the mini BERT with a wider weight
init, so its predictions vary from pair to pair), tokenizes dev.tsv with the
pure-Python reference of Hugging Face's BertTokenizer
(testdata/tokenizer/reference_tokenizer.py), runs the float model in Python in
batches of 8 like the tutorial's evaluate(), and writes the predictions,
accuracy and F1 (sklearn's binary f1, computed by hand) to expected_eval.json.

Run from the repository root with Debian's PyTorch: /usr/bin/python3 testdata/mrpc/make_expected.py
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tokenizer"))
import minibert  # noqa: E402
from reference_tokenizer import BertTokenizerRef  # noqa: E402

MAX_SEQ = 32
MODEL = os.path.join(HERE, "..", "models", "tiny_bert_mrpc.pt")


def build_model():
    config = minibert.BertConfig(**dict(minibert.TINY_CONFIG.__dict__, initializer_range=0.5))
    model = minibert.make_model(config, seed=3)
    inputs = minibert.example_inputs(config, 2, MAX_SEQ, 3)
    with torch.no_grad():
        traced = torch.jit.trace(model, inputs)
    torch.jit.save(traced, MODEL)


def f1(labels, preds):
    tp = sum(1 for l, p in zip(labels, preds) if l == 1 and p == 1)
    fp = sum(1 for l, p in zip(labels, preds) if l == 0 and p == 1)
    fn = sum(1 for l, p in zip(labels, preds) if l == 1 and p == 0)
    if tp == 0:
        return 0.0
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return 2 * precision * recall / (precision + recall)


def main():
    build_model()
    tok = BertTokenizerRef(os.path.join(HERE, "..", "tokenizer", "vocab.txt"))
    rows = []
    with open(os.path.join(HERE, "dev.tsv"), encoding="utf-8") as f:
        lines = f.read().split("\n")[1:]
    for line in lines:
        if not line.strip():
            continue
        cols = line.rstrip("\r").split("\t")
        rows.append((cols[3], cols[4], int(cols[0])))
    model = torch.jit.load(MODEL)
    preds, labels, margins = [], [], []
    for start in range(0, len(rows), 8):
        batch = rows[start:start + 8]
        enc = [tok.encode(a, b, MAX_SEQ) for a, b, _ in batch]
        ids = torch.tensor([e["input_ids"] for e in enc])
        mask = torch.tensor([e["attention_mask"] for e in enc])
        types = torch.tensor([e["token_type_ids"] for e in enc])
        with torch.no_grad():
            logits = model(ids, mask, types)[0]
        preds += logits.argmax(1).tolist()
        # How far each prediction is from flipping: float kernels differ between CPUs
        # (OpenBLAS picks one per CPU), so a test checks only predictions with a clear margin.
        margins += [round(m, 6) for m in (logits[:, 1] - logits[:, 0]).tolist()]
        labels += [label for _, _, label in batch]
    acc = sum(int(p == l) for p, l in zip(preds, labels)) / len(labels)
    out = {"max_seq_length": MAX_SEQ, "predictions": preds, "margins": margins, "labels": labels, "accuracy": acc,
           "f1": f1(labels, preds)}
    with open(os.path.join(HERE, "expected_eval.json"), "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(out)


if __name__ == "__main__":
    main()
