"""The reference for bertq's quantized embedding rows (issue 11), used by generate.py.

Graph-mode quantize_dynamic_jit leaves embeddings float, so the reference is eager
PyTorch: for 8-bit rows, eager quantize_dynamic with float_qparams_weight_only_qconfig
(nnq.Embedding / nnq.EmbeddingBag: the same packed bytes, the same lookups); for 4-bit
rows, PyTorch's ops applied directly (PerChannelMinMaxObserver quint4x2 with
per_channel_affine_float_qparams, quantize_per_channel, quantized::embedding_bag_prepack,
quantized::embedding_4bit / embedding_bag_4bit), because eager quantize_dynamic with a
quint4x2 qconfig mislabels nn.Embedding in 1.13.

Where eager's quantized modules cannot take an input, the reference says what the float
module does with it: 3-D ids are looked up flattened and reshaped (the quantized ops take
1-D or 2-D ids), and bags that average or skip a padding index stay float (the quantized
bag ops only sum). The golden file holds the inputs, the expected outputs and each
module's packed rows (integer values, scales, zero points).
"""
import copy
import json
import os

import torch
from torch import nn
import torch.nn.functional as F
import torch.ao.quantization as tq
from torch.ao.quantization.observer import PerChannelMinMaxObserver


class EmbRows(nn.Module):
    """Every kind of lookup the quantized-rows pass meets: a padding index whose row is not
    zero (a trained padding row need not be), a constant row (its scale falls back to 1),
    positions from a buffer, 1-D and 3-D ids, summing bags with per-sample weights and
    include_last_offset, bags bertq must leave float (mean, padding_idx), two embeddings
    sharing one weight, and a Linear head tied to the word embedding."""

    def __init__(self):
        super().__init__()
        self.word = nn.Embedding(50, 12, padding_idx=0)
        self.pos = nn.Embedding(16, 12)
        self.register_buffer("position_ids", torch.arange(16).expand((1, -1)))
        self.bag = nn.EmbeddingBag(40, 12, mode="sum")
        self.bag_last = nn.EmbeddingBag(40, 12, mode="sum", include_last_offset=True)
        self.mean_bag = nn.EmbeddingBag(40, 12, mode="mean")
        self.pad_bag = nn.EmbeddingBag(40, 12, mode="sum", padding_idx=2)
        self.tied_a = nn.Embedding(30, 12)
        self.tied_b = nn.Embedding(30, 12)
        self.tied_b.weight = self.tied_a.weight
        self.head = nn.Linear(12, 50, bias=False)
        self.head.weight = self.word.weight
        with torch.no_grad():
            self.word.weight[0].normal_()
            self.word.weight[7].fill_(0.25)
            self.pad_bag.weight[2].normal_()

    def forward(self, ids, bag_ids, offsets, offsets_last, psw):
        h = self.word(ids) + self.pos(self.position_ids[:, :ids.size(1)])
        return (h, self.head(h), self.word(ids[0]), self.word(ids.reshape(2, 2, -1)),
                self.bag(bag_ids, offsets, per_sample_weights=psw), self.bag_last(bag_ids, offsets_last),
                self.mean_bag(bag_ids, offsets), self.pad_bag(bag_ids, offsets),
                self.tied_a(ids % 30), self.tied_b(ids.flip([1]) % 30))


class EmbOdd(nn.Module):
    """The lookups bertq rewrites, alone (no bag that stays float, whose float op crashes on
    some inputs by itself): for checking that quantized lookups fail where float fails and
    answer where float answers, on empty and malformed inputs."""

    def __init__(self):
        super().__init__()
        self.word = nn.Embedding(50, 12)
        self.bag = nn.EmbeddingBag(40, 12, mode="sum")
        self.bag_last = nn.EmbeddingBag(40, 12, mode="sum", include_last_offset=True)

    def forward(self, ids, bag_ids, offsets, offsets_last, psw):
        return (self.word(ids), self.bag(bag_ids, offsets, per_sample_weights=psw),
                self.bag_last(bag_ids, offsets_last))


QUANTIZED = ["word", "pos", "bag", "bag_last", "tied_a", "tied_b"]
LEFT_FLOAT = ["mean_bag", "pad_bag"]


def inputs():
    g = torch.Generator().manual_seed(11)
    ids = torch.randint(0, 50, (2, 8), generator=g)
    ids[0, 0] = 0   # the padding index
    ids[1, 7] = 49  # the last row
    ids[1, 0] = 7   # the constant row
    bag_ids = torch.randint(0, 40, (9,), generator=g)
    bag_ids[0] = 2  # pad_bag's padding index: float skips it
    offsets = torch.tensor([0, 4, 4, 6])  # an empty bag too
    offsets_last = torch.tensor([0, 4, 4, 6, 9])
    psw = torch.rand(9, generator=g)
    return (ids, bag_ids, offsets, offsets_last, psw)


def build_model():
    torch.manual_seed(0)
    m = EmbRows().eval()
    with torch.no_grad():
        return m, torch.jit.trace(m, inputs())


def reference_model(path):
    """EmbRows with the weights of the traced model at `path`: each PyTorch version
    computes its reference from the very weights bertq converts."""
    m = EmbRows().eval()
    m.load_state_dict(torch.jit.load(path).state_dict())
    return m


def qconfig_json(dtype):
    spec = {"preset": "float_qparams_weight_only",
            "weight": {"dtype": dtype}} if dtype != "quint8" else "float_qparams_weight_only"
    return {name: spec for name in QUANTIZED + LEFT_FLOAT}


def _forward(m, look, inp):
    """EmbRows.forward with each embedding call going through look[name] (a callable
    taking the module's float call arguments)."""
    ids, bag_ids, offsets, offsets_last, psw = inp
    h = look["word"](ids) + look["pos"](m.position_ids[:, :ids.size(1)])
    return (h, F.linear(h, m.head.weight), look["word"](ids[0]),
            look["word"](ids.reshape(-1)).reshape(2, 2, -1, 12),
            look["bag"](bag_ids, offsets, per_sample_weights=psw), look["bag_last"](bag_ids, offsets_last),
            m.mean_bag(bag_ids, offsets), m.pad_bag(bag_ids, offsets),
            look["tied_a"](ids % 30), look["tied_b"](ids.flip([1]) % 30))


def _eager_8bit(m):
    spec = {name: tq.float_qparams_weight_only_qconfig for name in QUANTIZED}
    q = tq.quantize_dynamic(copy.deepcopy(m), spec)
    # PyTorch's nnq.EmbeddingBag.from_float drops include_last_offset (1.13 and 2.6), so
    # its module would return one bag too many; the packed rows are unaffected.
    for name in QUANTIZED:
        if isinstance(getattr(m, name), nn.EmbeddingBag):
            getattr(q, name).include_last_offset = getattr(m, name).include_last_offset
    look = {name: getattr(q, name) for name in QUANTIZED}
    packed = {name: torch.ops.quantized.embedding_bag_unpack(getattr(q, name)._packed_params._packed_weight)
              for name in QUANTIZED}
    return look, packed


def _ops_4bit(m):
    look, packed = {}, {}
    for name in QUANTIZED:
        mod = getattr(m, name)
        obs = PerChannelMinMaxObserver(dtype=torch.quint4x2, qscheme=torch.per_channel_affine_float_qparams,
                                       ch_axis=0)
        obs(mod.weight)
        scale, zp = obs.calculate_qparams()
        qw = torch.quantize_per_channel(mod.weight.float(), scale.to(torch.float), zp.to(torch.float), 0,
                                        torch.quint4x2)
        pk = torch.ops.quantized.embedding_bag_prepack(qw)
        packed[name] = torch.ops.quantized.embedding_bag_unpack(pk)
        if isinstance(mod, nn.EmbeddingBag):
            def bag(ids, offsets, per_sample_weights=None, pk=pk, mod=mod):
                return torch.ops.quantized.embedding_bag_4bit(pk, ids, offsets, False, 0, False, per_sample_weights,
                                                              None, mod.include_last_offset)
            look[name] = bag
        else:
            look[name] = lambda ids, pk=pk: torch.ops.quantized.embedding_4bit(pk, ids)
    return look, packed


class Golden(nn.Module):
    def __init__(self, tensors):
        super().__init__()
        self.tensors = tensors

    def forward(self):
        return self.tensors


def golden(m, dtype):
    """A scripted module whose `tensors` attribute holds the inputs (in0..), the expected
    outputs (out0..) and each quantized module's rows (NAME.int, NAME.scales, NAME.zero_points)."""
    with torch.no_grad():
        look, packed = _eager_8bit(m) if dtype == "quint8" else _ops_4bit(m)
        outs = _forward(m, look, inputs())
    t = {}  # `look` holds the packed rows until the copies below are made
    for i, x in enumerate(inputs()):
        t["in%d" % i] = x
    for i, x in enumerate(outs):
        t["out%d" % i] = x.detach().clone()
    for name, q in packed.items():
        # Copies: the unpacked tensor's qparams point into the packed rows (the
        # fused row layout keeps scale and offset inline), which may be gone by now.
        t[name + ".int"] = q.int_repr().clone()
        t[name + ".scales"] = q.q_per_channel_scales().clone()
        t[name + ".zero_points"] = q.q_per_channel_zero_points().clone()
    return torch.jit.script(Golden(t))


def main(here, goldir, torch_2):
    """Writes models/embedding_rows.pt and qconfigs/embedding_rows_{8bit,4bit}.json (with
    PyTorch 1.13), and golden/VERSION/embedding_rows_{8bit,4bit}.pt (each version)."""
    model_path = os.path.join(here, "models", "embedding_rows.pt")
    if not torch_2:
        torch.jit.save(build_model()[1], model_path)
        torch.manual_seed(0)
        with torch.no_grad():
            torch.jit.save(torch.jit.trace(EmbOdd().eval(), inputs()), os.path.join(here, "models", "embedding_odd.pt"))
        for dtype, name in (("quint8", "8bit"), ("quint4x2", "4bit")):
            with open(os.path.join(here, "qconfigs", "embedding_rows_%s.json" % name), "w") as f:
                json.dump(qconfig_json(dtype), f, indent=2)
                f.write("\n")
    model = reference_model(model_path)
    for dtype, name in (("quint8", "8bit"), ("quint4x2", "4bit")):
        torch.jit.save(golden(model, dtype), os.path.join(goldir, "embedding_rows_%s.pt" % name))
        print("golden/%s/embedding_rows_%s.pt" % (os.path.basename(goldir), name))
