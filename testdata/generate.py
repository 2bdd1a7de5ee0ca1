#!/usr/bin/python3
"""Generate the Python reference test data for bertq.

Run from the repository root with each Debian's Python:

    /usr/bin/python3 testdata/generate.py                          # Debian 12, PyTorch 1.13.1
    tests/scripts/trixie.sh run python3 testdata/generate.py       # Debian 13 (create --reference first)

With PyTorch 1.13 it rewrites testdata/{models,bad,qconfigs}/ and golden/1.13/; with
PyTorch 2.x it reads those models and rewrites golden/2.X/ and models/v2/ (models only
2.x can express, traced with it). Deterministic and idempotent. It also checks (does not
write) the preset files in configs/ against that version's presets.
"""
import copy
import functools
import inspect
import json
import os
import shutil
import sys
from collections import Counter

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Traced models record the source file of every frame that made a node (in their
# .debug_pkl records), and Python names a __main__ script by its absolute path. So the
# script only starts this file again as the module `generate`, loaded under its path
# relative to the repository root from a `-c` launcher (whose frames are "<string>"), so
# that any checkout writes the same bytes. PYTHONHASHSEED=0: TorchScript serialises some
# class attributes in Python-set order.
_LAUNCH = ("import importlib.machinery as m, importlib.util as u, sys; sys.dont_write_bytecode = True; "
           "s = u.spec_from_loader('generate', m.SourceFileLoader('generate', 'testdata/generate.py')); "
           "g = u.module_from_spec(s); sys.modules['generate'] = g; s.loader.exec_module(g); g.run()")
if __name__ == "__main__":
    os.environ["PYTHONHASHSEED"] = "0"
    os.chdir(_ROOT)
    os.execv(sys.executable, [sys.executable, "-c", _LAUNCH] + sys.argv[1:])

import importlib.machinery  # noqa: E402
import importlib.util  # noqa: E402

sys.dont_write_bytecode = True


class _RelativeImports:
    """Imports testdata's own modules (minibert, testmodels, ...) from paths relative to the
    repository root, so that their frames, too, are recorded under relative names."""
    DIRS = ("testdata", "testdata/mrpc", "testdata/tokenizer")

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        for d in cls.DIRS:
            rel = d + "/" + name + ".py"
            if os.path.isfile(rel):
                return importlib.util.spec_from_loader(name, importlib.machinery.SourceFileLoader(name, rel))
        return None


sys.meta_path.insert(0, _RelativeImports)

import torch  # noqa: E402

HERE_DIR = os.path.dirname(os.path.abspath(__file__))
from torch import nn
import torch.ao.quantization as tq
from torch.ao.quantization.observer import (MinMaxObserver, PerChannelMinMaxObserver,
                                            PlaceholderObserver)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
import minibert  # noqa: E402

torch.set_num_threads(1)

TORCH_MAJOR, TORCH_MINOR = (int(x) for x in torch.__version__.split(".")[:2])
TORCH_2 = TORCH_MAJOR >= 2
GOLDEN_VERSION = "%d.%d" % (TORCH_MAJOR, TORCH_MINOR)

# --------------------------------------------------------------------------------------
# bertq qconfig JSON  ->  PyTorch qconfig_dict  (the reference semantics)
# --------------------------------------------------------------------------------------
PRESETS = {
    "default_dynamic": tq.default_dynamic_qconfig,
    "per_channel_dynamic": tq.per_channel_dynamic_qconfig,
    "float16_dynamic": tq.float16_dynamic_qconfig,
    "float_qparams_weight_only": tq.float_qparams_weight_only_qconfig,
}
OBSERVERS = {
    "placeholder": PlaceholderObserver,
    "minmax": MinMaxObserver,
    "per_channel_minmax": PerChannelMinMaxObserver,
}
OBS_FIELDS = {  # JSON fields accepted for each observer kind (besides "observer")
    "placeholder": ("dtype", "compute_dtype"),
    "minmax": ("dtype", "qscheme", "reduce_range", "quant_min", "quant_max"),
    "per_channel_minmax": ("ch_axis", "dtype", "qscheme", "reduce_range", "quant_min", "quant_max"),
}
DTYPES = {
    "quint8": torch.quint8, "qint8": torch.qint8, "float16": torch.float16,
    "quint4x2": torch.quint4x2, "float32": torch.float32,
}
QSCHEMES = {
    "per_tensor_affine": torch.per_tensor_affine,
    "per_tensor_symmetric": torch.per_tensor_symmetric,
    "per_channel_affine": torch.per_channel_affine,
    "per_channel_symmetric": torch.per_channel_symmetric,
    "per_channel_affine_float_qparams": torch.per_channel_affine_float_qparams,
}


def _split_observer(obs):
    """PyTorch observer factory (class or Class.with_args(...)) -> (class, keywords)."""
    if inspect.isclass(obs):
        return obs, {}
    p = obs.p
    assert isinstance(p, functools.partial) and not p.args and not obs.callable_args
    return p.func, dict(p.keywords)


def _kind_of(cls):
    for k, c in OBSERVERS.items():
        if c is cls:
            return k
    raise ValueError("unsupported observer class %r" % cls)


def _obs_kwargs(obs_json, where, base_kind=None):
    if not isinstance(obs_json, dict) or ("observer" not in obs_json and base_kind is None):
        raise ValueError("%s: observer spec must be an object with an \"observer\" field" % where)
    # In the preset form, a missing "observer" means the preset's own observer.
    kind = obs_json.get("observer", base_kind)
    if kind not in OBSERVERS:
        raise ValueError("%s: unknown observer %r" % (where, kind))
    kw = {}
    for key, val in obs_json.items():
        if key == "observer":
            continue
        if key not in OBS_FIELDS[kind]:
            raise ValueError("%s: field %r not allowed for observer %r" % (where, key, kind))
        if key == "compute_dtype" and TORCH_2:
            # bertq's compute_dtype marks a dynamic activation; PyTorch 2.x spells
            # that is_dynamic=True (its compute_dtype argument no longer does it).
            kw["is_dynamic"] = True
        elif key in ("dtype", "compute_dtype"):
            kw[key] = DTYPES[val]
        elif key == "qscheme":
            kw[key] = QSCHEMES[val]
        elif key == "reduce_range":
            assert isinstance(val, bool), where
            kw[key] = val
        else:  # ch_axis, quant_min, quant_max
            assert isinstance(val, int) and not isinstance(val, bool), where
            kw[key] = val
    return kind, kw


def _make_observer(obs_json, base, where):
    """base: PyTorch observer factory to override (preset form) or None (full form)."""
    base_kind = _kind_of(_split_observer(base)[0]) if base is not None else None
    kind, kw = _obs_kwargs(obs_json, where, base_kind)
    if base is not None:
        base_cls, base_kw = _split_observer(base)
        if base_cls is OBSERVERS[kind]:
            kw = {**base_kw, **kw}  # same kind: override the preset's arguments
    return OBSERVERS[kind].with_args(**kw)


def parse_qconfig_value(v, where):
    if v is None:
        return None
    if isinstance(v, str):
        if v not in PRESETS:
            raise ValueError("%s: unknown preset %r" % (where, v))
        return PRESETS[v]
    if not isinstance(v, dict):
        raise ValueError("%s: qconfig must be null, a preset name or an object" % where)
    if "preset" in v:
        extra = set(v) - {"preset", "activation", "weight"}
        if extra:
            raise ValueError("%s: unknown keys %s" % (where, sorted(extra)))
        base = PRESETS[v["preset"]]
        act = (_make_observer(v["activation"], base.activation, where + ".activation")
               if "activation" in v else base.activation)
        wt = (_make_observer(v["weight"], base.weight, where + ".weight")
              if "weight" in v else base.weight)
        return tq.QConfig(activation=act, weight=wt)
    if set(v) != {"activation", "weight"}:
        raise ValueError("%s: full form needs exactly \"activation\" and \"weight\"" % where)
    return tq.QConfig(activation=_make_observer(v["activation"], None, where + ".activation"),
                      weight=_make_observer(v["weight"], None, where + ".weight"))


def parse_qconfig_json(obj):
    if not isinstance(obj, dict):
        raise ValueError("qconfig JSON must be an object")
    return {k: parse_qconfig_value(v, repr(k)) for k, v in obj.items()}


def load_qconfig_file(path):
    with open(path) as f:
        return parse_qconfig_json(json.load(f))


def effective_observer_args(obs):
    """(class, full constructor kwargs incl. defaults) of an observer factory."""
    cls, kw = _split_observer(obs)
    sig = inspect.signature(cls.__init__)
    full = {n: p.default for n, p in sig.parameters.items()
            if n != "self" and p.default is not inspect.Parameter.empty}
    full.update(kw)
    return cls, full


def check_shipped_presets():
    for name, preset in PRESETS.items():
        path = os.path.join(ROOT, "configs", name + ".json")
        d = load_qconfig_file(path)
        assert list(d) == [""], path
        got = d[""]
        for field in ("activation", "weight"):
            g, e = getattr(got, field), getattr(preset, field)
            ga, ea = effective_observer_args(g), effective_observer_args(e)
            gcls, gkw = _split_observer(g)
            ecls, ekw = _split_observer(e)
            if TORCH_2 and ecls is PlaceholderObserver:
                # 2.x's dynamic presets give the placeholder a quantization range
                # (0..255) that dynamic quantization never reads; bertq leaves it out.
                for args in (ga[1], ea[1], gkw, ekw):
                    for k in ("quant_min", "quant_max"):
                        args.pop(k, None)
            assert ga == ea, (path, field, ga, ea)
            # every keyword PyTorch sets explicitly is spelled out in the file too
            assert all(gkw.get(k) == v for k, v in ekw.items()), (path, field, gkw, ekw)
    # parser self-checks for the override semantics
    q = parse_qconfig_value({"preset": "per_channel_dynamic",
                             "weight": {"observer": "per_channel_minmax", "quant_min": -127,
                                        "quant_max": 127}}, "selftest")
    assert q.activation is tq.per_channel_dynamic_qconfig.activation
    assert _split_observer(q.weight) == (PerChannelMinMaxObserver, {
        "dtype": torch.qint8, "qscheme": torch.per_channel_symmetric,
        "quant_min": -127, "quant_max": 127})
    q = parse_qconfig_value({"preset": "default_dynamic",
                             "weight": {"observer": "per_channel_minmax", "quant_min": -127,
                                        "quant_max": 127}}, "selftest")
    assert _split_observer(q.weight) == (PerChannelMinMaxObserver,
                                         {"quant_min": -127, "quant_max": 127})
    print("configs/*.json match PyTorch presets")


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------
from testmodels import (EmbBag, EmptyLinear, FuncAttr, FuncBuffer, FunctionalLinear,  # noqa: E402
                        NoForward, NothingQuantizable, ScriptedIf, Submodules, TinyEager)
import callmodels  # noqa: E402
import zoo  # noqa: E402


def model_inputs(name):
    """Fixed example inputs used for tracing and for the runnable check."""
    g = torch.Generator().manual_seed(1234)
    if name in ("tiny_bert", "sdpa_bert"):
        return minibert.example_inputs(minibert.TINY_CONFIG, 2, 16, 0)
    if name in ("submodules", "functional_linear", "scripted_if", "functional_attr", "functional_const",
                "functional_buffer"):
        return (torch.randn(2, 16, generator=g),)
    if name == "embedding_bag":
        return (torch.randint(0, 64, (10,), generator=g, dtype=torch.int64),
                torch.tensor([0, 3, 7], dtype=torch.int64))
    if name in callmodels.MODELS:
        return callmodels.example_input(name)
    if name in zoo.MODELS:
        return zoo.example_inputs(name)
    raise KeyError(name)


def build_models(outdir):
    paths = {}

    def save(name, m):
        p = os.path.join(outdir, name + ".pt")
        torch.jit.save(m, p)
        paths[name] = p

    save("tiny_bert", minibert.make_traced(minibert.TINY_CONFIG, 2, 16, 0))
    with torch.no_grad():
        torch.manual_seed(0)
        save("submodules", torch.jit.trace(Submodules().eval(), model_inputs("submodules")))
        torch.manual_seed(0)
        save("functional_linear",
             torch.jit.trace(FunctionalLinear().eval(), model_inputs("functional_linear")))
        torch.manual_seed(0)
        save("scripted_if", torch.jit.script(ScriptedIf().eval()))
        torch.manual_seed(0)
        # traced (scripting also works; tracing gives a smaller graph)
        save("embedding_bag", torch.jit.trace(EmbBag().eval(), model_inputs("embedding_bag")))
        # Weights that are not a module's `weight` parameter (issue: counted from the graph).
        torch.manual_seed(0)
        save("functional_attr", torch.jit.script(FuncAttr().eval()))
        torch.manual_seed(0)
        save("functional_const", torch.jit.trace(FuncAttr().eval(), model_inputs("functional_const")))
        torch.manual_seed(0)
        save("functional_buffer", torch.jit.trace(FuncBuffer().eval(), model_inputs("functional_buffer")))
    # Modules called more than once or in loops, and architectures beside BERT.
    callmodels.build(outdir, save)
    zoo.build(save)
    return paths


class _Inputs(nn.Module):
    """The fixed inputs of every model, for the C++ tests: inputs[model] is forward's arguments."""

    def __init__(self, inputs):
        super().__init__()
        self.inputs = inputs

    def forward(self):
        return self.inputs


def save_example_inputs(moddir, names):
    inputs = {name: list(model_inputs(name)) for name in names}
    torch.jit.save(torch.jit.script(_Inputs(inputs)), os.path.join(moddir, "example_inputs.pt"))


def _make_legacy_deterministic(path):
    """The legacy format keys storages by memory address; rename them to fixed,
    same-length digit strings so the file is byte-reproducible."""
    import pickle

    import pickletools

    with open(path, "rb") as f:
        data = f.read()
        f.seek(0)
        for _ in range(4):  # magic number, protocol version, sys info, main object
            for _op in pickletools.genops(f):
                pass
        keys = pickle.load(f)  # list of storage keys
    for i, k in enumerate(keys):
        new = str(i + 1).zfill(len(k))
        assert data.count(k.encode()) >= 1
        data = data.replace(k.encode(), new.encode())
    with open(path, "wb") as f:
        f.write(data)
    torch.load(path)  # still loadable


def build_bad(baddir, submodules_path):
    torch.manual_seed(0)
    m = TinyEager().eval()
    legacy = os.path.join(baddir, "eager_pickle_legacy.pt")
    torch.save(m, legacy, _use_new_zipfile_serialization=False)
    _make_legacy_deterministic(legacy)
    torch.save(m, os.path.join(baddir, "eager_zip.pt"))
    torch.save(m.state_dict(), os.path.join(baddir, "state_dict.pt"))
    with open(submodules_path, "rb") as f:
        data = f.read()
    with open(os.path.join(baddir, "truncated.pt"), "wb") as f:
        f.write(data[: len(data) // 2])
    open(os.path.join(baddir, "empty.pt"), "wb").close()
    with open(os.path.join(baddir, "not_a_model.txt"), "w") as f:
        f.write("This is not a TorchScript model.\n")
    torch.manual_seed(0)
    nf = torch.jit.script(NoForward().eval())
    assert not nf._c._has_method("forward")
    torch.jit.save(nf, os.path.join(baddir, "no_forward.pt"))
    # Nothing dynamic quantization can quantize: a LayerNorm and a ReLU.
    torch.manual_seed(0)
    nq = torch.jit.trace(NothingQuantizable().eval(), (torch.randn(2, 8),))
    torch.jit.save(nq, os.path.join(baddir, "nothing_quantizable.pt"))
    # A Linear with no output features: Python's quantize_dynamic_jit writes a model whose
    # first forward fails (its prepack could not be folded).
    torch.manual_seed(0)
    torch.jit.save(torch.jit.trace(EmptyLinear().eval(), (torch.randn(2, 8),)), os.path.join(baddir, "empty_linear.pt"))
    # Non-finite weights: 3 NaN in sub.fc1, 2 infinities in fc.
    for name, module, value, count in (("nan_weight", "sub.fc1", float("nan"), 3),
                                       ("inf_weight", "fc", float("inf"), 2)):
        torch.manual_seed(0)
        m = Submodules().eval()
        with torch.no_grad():
            m.get_submodule(module).weight.view(-1)[:count] = value
        torch.jit.save(torch.jit.trace(m, model_inputs("submodules")), os.path.join(baddir, name + ".pt"))
    import hostile
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        # A quantized model to damage: submodules with per_channel_dynamic.
        quantized = os.path.join(tmp, "submodules_q.pt")
        torch.backends.quantized.engine = "onednn"
        torch.jit.save(tq.quantize_dynamic_jit(torch.jit.load(submodules_path),
                                               {"": tq.per_channel_dynamic_qconfig}), quantized)
        hostile.build(os.path.join(baddir, "hostile"), submodules_path, quantized)


# --------------------------------------------------------------------------------------
# qconfig test files
# --------------------------------------------------------------------------------------
QCONFIGS = {
    "per_tensor": {"": "default_dynamic"},
    "per_channel": {"": "per_channel_dynamic"},
    "fp16": {"": "float16_dynamic"},
    "custom_range": {"": {"preset": "per_channel_dynamic",
                          "weight": {"observer": "per_channel_minmax",
                                     "quant_min": -127, "quant_max": 127}}},
    "tutorial_nested": {
        "": "default_dynamic",
        "sub": "per_channel_dynamic",
        "sub.fc1": {"preset": "default_dynamic",
                    "weight": {"observer": "minmax", "quant_min": -127, "quant_max": 127}},
        "sub.fc2": None,
    },
    "bert_nested": {
        "": "per_channel_dynamic",
        "bert.encoder.layer.1": None,
        "bert.encoder.layer.1.output.dense": "default_dynamic",
        "classifier": None,
    },
    "embedding_bag": {"": "per_channel_dynamic", "emb": "float_qparams_weight_only"},
    # expected to fail in Python (float_qparams weight observer on a Linear)
    "float_qparams_linear": {"": "float_qparams_weight_only"},
    # What Python's quantize_dynamic_jit accepts beyond the presets (all convert to working
    # dynamic models; bertq accepts them too).
    "act_placeholder_float32": {"": {"activation": {"observer": "placeholder"},
                                     "weight": {"observer": "minmax", "dtype": "qint8",
                                                "qscheme": "per_tensor_symmetric"}}},
    "act_minmax": {"": {"activation": {"observer": "minmax", "dtype": "quint8",
                                       "quant_min": 0, "quant_max": 127},
                        "weight": {"observer": "minmax", "dtype": "qint8",
                                   "qscheme": "per_tensor_symmetric"}}},
    "act_minmax_per_channel": {"": {"preset": "per_channel_dynamic",
                                    "activation": {"observer": "minmax"}}},
    "act_fp16_no_compute_dtype": {"": {"activation": {"observer": "placeholder", "dtype": "float16"},
                                       "weight": {"observer": "placeholder", "dtype": "float16"}}},
    "act_float32_compute_dtype": {"": {"activation": {"observer": "placeholder", "dtype": "float32",
                                                      "compute_dtype": "quint8"},
                                       "weight": {"observer": "minmax", "dtype": "qint8",
                                                  "qscheme": "per_tensor_symmetric"}}},
    # A preset override without "observer": the preset's observer with this field changed.
    "preset_override": {"": {"preset": "per_channel_dynamic", "weight": {"reduce_range": True}}},
    # Per-channel weights in 7 bits (what reduce_range gives, spelled as a range): reported to
    # crash 2.6's Python on some CPUs; the int8 arithmetic must be 1.13's on every version.
    "weight_range_64": {"": {"preset": "per_channel_dynamic",
                             "weight": {"quant_min": -64, "quant_max": 63}}},
}

COMMON = ["per_tensor", "per_channel", "fp16", "custom_range"]
MODEL_QCONFIGS = {
    "tiny_bert": COMMON + ["bert_nested", "preset_override", "weight_range_64"],
    "submodules": COMMON + ["tutorial_nested", "float_qparams_linear", "act_placeholder_float32",
                            "act_minmax", "act_minmax_per_channel", "act_fp16_no_compute_dtype",
                            "act_float32_compute_dtype", "preset_override"],
    "functional_attr": ["per_channel", "per_tensor"],
    "functional_const": ["per_channel", "per_tensor"],
    "functional_buffer": ["per_channel"],
    "functional_linear": COMMON,
    "scripted_if": COMMON,
    "embedding_bag": COMMON + ["embedding_bag"],
}
# A module called more than once or inside a loop; PyTorch's own fork/wait test passes
# default_qconfig (a static min-max activation observer, which dynamic quantization ignores).
for _name in callmodels.MODELS:
    MODEL_QCONFIGS[_name] = ["act_minmax"] if _name == "calls_fork_wait" else ["per_channel"]
MODEL_QCONFIGS["calls_shared_depths"].append("per_tensor")
for _name in zoo.MODELS:
    MODEL_QCONFIGS[_name] = ["per_channel"]
# Debug models of the zoo are large next to what they add (debug mode is covered by every
# other model): ALBERT's shared layer keeps its debug golden.
FINAL_ONLY = set(zoo.MODELS) - {"zoo_albert"}

# --------------------------------------------------------------------------------------
# Goldens
# --------------------------------------------------------------------------------------
INTERESTING = {"aten::linear", "aten::dequantize", "aten::_choose_qparams_per_tensor",
               "aten::embedding_bag", "aten::_saturate_weight_to_fp16"}


def _count(block, counter):
    for n in block.nodes():
        k = n.kind()
        if k.startswith("quantized::") or k.startswith("aten::quantize_per_") or k in INTERESTING:
            counter[k] += 1
        for b in n.blocks():
            _count(b, counter)


def quantized_ops(module):
    g = module.graph.copy()
    torch._C._jit_pass_inline(g)  # inlines remaining prim::CallMethod on submodules
    c = Counter()
    _count(g, c)
    return dict(sorted(c.items()))


def one_line(e):
    s = str(e).strip()
    return s


def run_case(model, qname, engine, debug, goldir):
    model_path = os.path.join(HERE, MODEL_DIRS.get(model, "models"), model + ".pt")
    suffix = "__debug" if debug else ""
    gname = "%s__%s__%s%s.pt" % (model, qname, engine, suffix)
    gpath = os.path.join(goldir, gname)
    case = {"model": "%s/%s.pt" % (MODEL_DIRS.get(model, "models"), model), "qconfig": "qconfigs/%s.json" % qname,
            "engine": engine, "debug": debug, "golden": None, "runnable": False,
            "python_error": None, "forward_error": None, "quantized_ops": None}
    torch.backends.quantized.engine = engine
    try:
        qconfig_dict = load_qconfig_file(os.path.join(HERE, "qconfigs", qname + ".json"))
        m = torch.jit.load(model_path)
        q = tq.quantize_dynamic_jit(m, qconfig_dict, debug=debug)
        torch.jit.save(q, gpath)
    except Exception as e:  # record, no golden (a failed torch.jit.save leaves part of one)
        case["python_error"] = one_line(e)
        if os.path.exists(gpath):
            os.remove(gpath)
        return case
    case["golden"] = "golden/%s/%s" % (GOLDEN_VERSION, gname)
    case["quantized_ops"] = quantized_ops(q)
    try:
        with torch.no_grad():
            torch.jit.load(gpath)(*model_inputs(model))
        case["runnable"] = True
    except Exception as e:
        case["forward_error"] = one_line(e)
    return case


def reset_dir(d):
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)


# Models only PyTorch 2.x can express, traced with it into models/v2/ (LibTorch 1.13
# cannot load them: a bertq built with it says the model needs a 2.x build).
MODEL_DIRS = {"sdpa_bert": "models/v2"}
V2_MODEL_QCONFIGS = {"sdpa_bert": ["per_channel", "per_tensor"]}


def build_models_v2(outdir):
    reset_dir(outdir)
    torch.jit.save(minibert.make_traced_sdpa(minibert.TINY_CONFIG, 2, 16, 0),
                   os.path.join(outdir, "sdpa_bert.pt"))


def main():
    check_shipped_presets()
    moddir, baddir, qdir = (os.path.join(HERE, x) for x in ("models", "bad", "qconfigs"))
    goldir = os.path.join(HERE, "golden", GOLDEN_VERSION)
    reset_dir(goldir)
    matrix = dict(MODEL_QCONFIGS)
    if TORCH_2:
        # The models, bad files and qconfigs are 1.13's (they load in 2.x too);
        # only the goldens and the 2.x-only models are this version's.
        build_models_v2(os.path.join(HERE, "models", "v2"))
        matrix.update(V2_MODEL_QCONFIGS)
    else:
        reset_dir(qdir)
        # models/v2/ is 2.x's, bad/fuzz/ holds reproducers the fuzzers found: kept.
        for d in (moddir, baddir):
            os.makedirs(d, exist_ok=True)
            for name in os.listdir(d):
                if os.path.isfile(os.path.join(d, name)):
                    os.remove(os.path.join(d, name))
        for name, obj in QCONFIGS.items():
            parse_qconfig_json(obj)  # validate
            with open(os.path.join(qdir, name + ".json"), "w") as f:
                json.dump(obj, f, indent=2)
                f.write("\n")
        paths = build_models(moddir)
        save_example_inputs(moddir, list(paths))
        zoo.write_input_files(os.path.join(HERE, "inputs"))
        build_bad(baddir, paths["submodules"])

    cases = []
    for model, qnames in matrix.items():
        for qname in qnames:
            for debug in (False, True):
                if debug and model in FINAL_ONLY:
                    continue
                cases.append(run_case(model, qname, "onednn", debug, goldir))
    cases.append(run_case("tiny_bert", "per_channel", "qnnpack", False, goldir))
    torch.backends.quantized.engine = "onednn"

    with open(os.path.join(goldir, "cases.json"), "w") as f:
        json.dump(cases, f, indent=2)
        f.write("\n")
    for c in cases:
        status = ("PY-ERROR: " + c["python_error"][:100]) if c["python_error"] else \
                 ("ok" if c["runnable"] else "FWD-ERROR: " + c["forward_error"].splitlines()[0][:100])
        print("%-62s %s" % (c["golden"] or c["model"] + " " + c["qconfig"], status))

    if not TORCH_2:
        # The MRPC evaluation fixture's model and expected result (models/ was
        # just rewritten, so it is rebuilt here too).
        import make_expected
        make_expected.main()


def run():
    global model_inputs
    main()
    # PyTorch's 4-bit weight-only qconfig, checked here rather than in PRESETS.
    PRESETS["float_qparams_weight_only_4bit"] = tq.float_qparams_weight_only_qconfig_4bit
    check_shipped_presets()
    # Quantized embedding rows (bertq's own pass): testdata/embeddings.py.
    import embeddings  # noqa: E402
    goldir = os.path.join(HERE, "golden", GOLDEN_VERSION)
    embeddings.main(HERE, goldir, TORCH_2)
    # quantize_dynamic_jit on the same model: its Linear head shares the word
    # embedding's weight, which the tracer hands the head as an argument.
    _plain_inputs = model_inputs
    model_inputs = lambda name: embeddings.inputs() if name == "embedding_rows" else _plain_inputs(name)  # noqa
    with open(os.path.join(goldir, "cases.json")) as f:
        cases = json.load(f)
    for debug in (False, True):
        cases.append(run_case("embedding_rows", "per_channel", "onednn", debug, goldir))
        print("%-62s %s" % (cases[-1]["golden"], "ok" if cases[-1]["runnable"] else cases[-1]["forward_error"]))
    with open(os.path.join(goldir, "cases.json"), "w") as f:
        json.dump(cases, f, indent=2)
        f.write("\n")
    # The model with one deliberately sensitive layer, for `bertq tune`.
    if not TORCH_2:
        import tunemodels  # noqa: E402
        tunemodels.main(HERE)
