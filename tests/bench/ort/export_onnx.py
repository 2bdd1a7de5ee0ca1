"""Exports the BERT-base-shaped benchmark model to ONNX (opset 14, dynamic batch and sequence
axes), with the same weights as the traced bench-out/bert_base.pt.

The eager model is rebuilt with testdata/minibert.py and the seed make_bert_base.py uses
(make_model(BASE_CONFIG, seed=0)); every parameter and buffer is then checked against the traced
model's (exactly equal), and so are the logits of the eager and the traced model on the tracing
inputs. Exporting the eager module rather than the loaded ScriptModule keeps the exporter on its
well-trodden path (torch 1.13's exporter handles both). Whether the ONNX graph computes the
same logits as torch is checked by the driver (compare.py), which runs it in onnxruntime-node:
Debian 12 has no Python onnxruntime, and onnx 1.12 has no reference evaluator.

Usage: /usr/bin/python3 tests/bench/ort/export_onnx.py TRACED.pt OUT.onnx [--opset 14]
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "testdata"))
import minibert  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("traced")
    ap.add_argument("out")
    ap.add_argument("--opset", type=int, default=14)
    ap.add_argument("--seed", type=int, default=0)  # make_bert_base.py's
    args = ap.parse_args()

    config = minibert.BASE_CONFIG
    model = minibert.make_model(config, seed=args.seed)
    traced = torch.jit.load(args.traced, map_location="cpu")
    traced.eval()

    # Same weights: every parameter and buffer of the traced model equals the eager one's.
    eager_state = model.state_dict()
    traced_state = traced.state_dict()
    if set(eager_state) != set(traced_state):
        sys.exit("export_onnx: the traced model's state names differ from minibert's: %s"
                 % sorted(set(eager_state) ^ set(traced_state))[:10])
    for name, t in traced_state.items():
        if not torch.equal(t, eager_state[name]):
            sys.exit("export_onnx: %s differs between %s and the rebuilt eager model"
                     % (name, args.traced))
    inputs = minibert.example_inputs(config, 8, 128, seed=args.seed)
    with torch.no_grad():
        le = model(*inputs)[0]
        lt = traced(*inputs)[0]
    if not torch.equal(le, lt):
        sys.exit("export_onnx: eager and traced logits differ (max %g)" % (le - lt).abs().max())
    print("export_onnx: %d tensors equal to %s; eager logits == traced logits"
          % (len(traced_state), args.traced))

    tmp = args.out + ".tmp"
    with torch.no_grad():
        torch.onnx.export(
            model, inputs, tmp,
            input_names=INPUTS, output_names=["logits"],
            dynamic_axes={**{n: {0: "batch", 1: "seq"} for n in INPUTS}, "logits": {0: "batch"}},
            opset_version=args.opset, do_constant_folding=True)
    m = onnx.load(tmp)
    onnx.checker.check_model(m)
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    print("export_onnx: opset %d, %d nodes: %s" % (
        m.opset_import[0].version, len(m.graph.node),
        ", ".join("%s %d" % kv for kv in sorted(ops.items(), key=lambda kv: -kv[1]))))
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
