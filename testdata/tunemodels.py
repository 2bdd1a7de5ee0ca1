"""A model for `bertq tune` with one deliberately sensitive layer (issue 12), used by
generate.py (run last, so that the other models keep their bytes).

`fc1` gives two of its 64 outputs a huge scale (the outlier features LLM.int8() describes
in large transformers); `fc2`, which reads them, ignores those two (zero weights) and
computes from the other 62. Dynamic quantization quantizes fc2's input with one scale per
tensor, which the outliers set: the 62 features that matter fall into a step or two and
fc2's output is destroyed. fc1 and fc3 see ordinary inputs. Its forward takes BERT's
three inputs, so that tune's data readers feed it like a BERT classifier.
"""
import os

import torch
from torch import nn


class OutlierNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(100, 32)
        self.fc1 = nn.Linear(32, 64)
        self.fc2 = nn.Linear(64, 64)
        self.fc3 = nn.Linear(64, 2)
        with torch.no_grad():
            self.fc1.weight[:2] *= 300.0
            self.fc1.bias[:2] += 300.0
            self.fc2.weight[:, :2] = 0.0

    def forward(self, input_ids, attention_mask, token_type_ids):
        x = self.emb(input_ids).mean(1)
        h = torch.relu(self.fc1(x))
        h = torch.relu(self.fc2(h))
        return (self.fc3(h),)


def main(here):
    torch.manual_seed(0)
    m = OutlierNet().eval()
    ids = torch.randint(0, 100, (2, 16))
    with torch.no_grad():
        traced = torch.jit.trace(m, (ids, torch.ones_like(ids), torch.zeros_like(ids)))
    path = os.path.join(here, "models", "outlier_net.pt")
    torch.jit.save(traced, path)
    print("models/outlier_net.pt")
