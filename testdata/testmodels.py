"""The small test models of testdata/models and testdata/bad, kept apart from generate.py:
TorchScript's debug info records the source line of each traced op, so editing the generator
must not change the models' bytes."""
import torch
from torch import nn


class Sub(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 32)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(32, 32)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


class Submodules(nn.Module):
    def __init__(self):
        super().__init__()
        self.sub = Sub()
        self.fc = nn.Linear(32, 8)

    def forward(self, x):
        return self.fc(self.sub(x))


class FunctionalLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(24, 16) * 0.1)
        self.bias = nn.Parameter(torch.randn(24) * 0.1)
        self.fc = nn.Linear(24, 8)

    def forward(self, x):
        x = torch.nn.functional.linear(x, self.weight, self.bias)
        x = torch.relu(x)
        return self.fc(x)


class ScriptedIf(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 8)
        self.b = nn.Linear(16, 8)

    def forward(self, x):
        if bool(x.sum() > 0):
            return self.a(x)
        else:
            return self.b(x)


class EmbBag(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.EmbeddingBag(64, 16, mode="sum")
        self.fc = nn.Linear(16, 8)

    def forward(self, indices, offsets):
        return self.fc(self.emb(indices, offsets))


class FuncAttr(nn.Module):
    """F.linear on plain tensor attributes, like test_quantize_jit.py's FuncLinear: scripted,
    they stay attributes; traced, they become constants in the graph."""

    def __init__(self):
        super().__init__()
        self.w = torch.randn(8, 16) * 0.1
        self.b = torch.randn(8) * 0.1

    def forward(self, x):
        return torch.nn.functional.linear(x, self.w, self.b)


class FuncBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("w", torch.randn(8, 16) * 0.1)
        self.register_buffer("b", torch.randn(8) * 0.1)

    def forward(self, x):
        return torch.nn.functional.linear(x, self.w, self.b)


class TinyEager(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class NothingQuantizable(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(8)

    def forward(self, x):
        return torch.relu(self.norm(x))


class NoForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    @torch.jit.export
    def run(self, x):
        return self.fc(x)


class EmptyLinear(nn.Module):
    """A Linear with no output features beside an ordinary one."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 0)
        self.out = nn.Linear(8, 4)

    def forward(self, x):
        return self.out(x), self.fc(x)
