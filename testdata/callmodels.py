"""Models whose modules are called more than once, or inside loops (used by generate.py).

Graph-mode quantization handles these in ways a per-module view does not predict:
- a module called k times is quantized once, in its own graph, and Finalize inlines it k
  times (its packed weight may be stored once or once per call);
- two Linears with equal weights reading one input become one quantized op (constant
  pooling, then CSE);
- InsertObservers does not enter loop bodies ("prim::Loop is not yet supported in
  quantization"): a Linear called only in a loop stays float, one also called outside a loop
  is quantized, and its in-loop calls run the quantized graph too;
- torch.jit.fork subgraphs are inlined first, so a forked call is an ordinary call.
Each traced or scripted model is saved as models/calls_NAME.pt; goldens per version.
"""
import torch
from torch import nn
import torch.nn.functional as F


class Twice(nn.Module):
    """One Linear called twice: fc(relu(fc(x)))."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x):
        return self.fc(F.relu(self.fc(x)))


class Thrice(nn.Module):
    """One Linear called three times, then another."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.out = nn.Linear(16, 8)

    def forward(self, x):
        return self.out(self.fc(torch.tanh(self.fc(torch.tanh(self.fc(x))))))


class EqualWeights(nn.Module):
    """Three Linears on one input, two of them zero-initialised (adapters): equal weights and
    biases, which freezing pools into one constant and CSE into one op."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 16)
        self.b = nn.Linear(16, 16)
        self.c = nn.Linear(16, 16)
        with torch.no_grad():
            for m in (self.b, self.c):
                m.weight.zero_()
                m.bias.zero_()

    def forward(self, x):
        return self.a(x) + self.b(x) + self.c(x)


class SharedBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.ffn = nn.Linear(16, 32)
        self.ffn_output = nn.Linear(32, 16)

    def forward(self, x):
        return x + self.ffn_output(F.gelu(self.ffn(x)))


class SharedDepths(nn.Module):
    """ALBERT's pattern: one block applied at every depth (traced: three calls)."""

    def __init__(self):
        super().__init__()
        self.layer = SharedBlock()
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        for _ in range(3):
            x = self.layer(x)
        return self.head(x)


class IfReuse(nn.Module):
    """A Linear reused twice inside one branch of an if (scripted)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.other = nn.Linear(16, 16)

    def forward(self, x):
        if bool(x.sum() > 0):
            y = self.fc(torch.relu(self.fc(x)))
        else:
            y = self.other(x)
        return y


class LoopConst(nn.Module):
    """A Linear called only in a loop with a constant trip count, then one outside it (scripted)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.out = nn.Linear(16, 8)

    def forward(self, x):
        for _ in range(3):
            x = torch.tanh(self.fc(x))
        return self.out(x)


class LoopRuntime(nn.Module):
    """A Linear called only in a loop whose trip count comes from the input (scripted)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.out = nn.Linear(16, 8)

    def forward(self, x):
        for _ in range(int(x.size(0))):
            x = torch.tanh(self.fc(x))
        return self.out(x)


class LoopAndOutside(nn.Module):
    """A Linear called once outside a loop and again inside it (scripted): quantized, and the
    loop runs the quantized graph too."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)
        self.out = nn.Linear(16, 8)

    def forward(self, x):
        x = torch.tanh(self.fc(x))
        for _ in range(int(x.size(0))):
            x = torch.tanh(self.fc(x))
        return self.out(x)


class ForkedLinear(nn.Module):
    def forward(self, x):
        w = torch.ones(5, 5)
        b = torch.zeros(5)
        return F.linear(x, w, b)


class ForkModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.test = ForkedLinear()

    def forward(self, x):
        return torch.jit._fork(self.test.forward, x)


class ForkWait(nn.Module):
    """PyTorch's own test_quantize_fork_wait: fork in one module, wait in its parent."""

    def __init__(self):
        super().__init__()
        self.fork_ops = ForkModule()

    def forward(self, x):
        return torch.jit._wait(self.fork_ops(x))


def example_input(name):
    g = torch.Generator().manual_seed(99)
    if name == "calls_fork_wait":
        return (torch.randn(5, 5, generator=g),)
    return (torch.randn(4, 16, generator=g),)


# name -> (class, traced?)
MODELS = {
    "calls_twice": (Twice, True),
    "calls_thrice": (Thrice, True),
    "calls_equal_weights": (EqualWeights, True),
    "calls_shared_depths": (SharedDepths, True),
    "calls_if_reuse": (IfReuse, False),
    "calls_loop_const": (LoopConst, False),
    "calls_loop_runtime": (LoopRuntime, False),
    "calls_loop_and_outside": (LoopAndOutside, False),
    "calls_fork_wait": (ForkWait, True),
}


def build(outdir, save):
    """Traces or scripts each model into outdir with `save(name, module)`."""
    for name, (cls, traced) in MODELS.items():
        torch.manual_seed(0)
        m = cls().eval()
        with torch.no_grad():
            save(name, torch.jit.trace(m, example_input(name)) if traced else torch.jit.script(m))
