"""ONNX Runtime's dynamic int8 quantization (onnxruntime.quantization.quantize_dynamic with its
defaults), re-implemented with python3-onnx only.

Why a re-implementation: ONNX Runtime's Python package (which holds the quantizer) is not in
Debian 12, and this benchmark must install everything from Debian's archive and npm (the
runtime itself comes from npm's onnxruntime-node, which has no quantizer). This script follows
ONNX Runtime's quantizer source, onnxruntime/python/tools/quantization/ (read for this port:
quantize.py quantize_dynamic, onnx_quantizer.py ONNXQuantizer, base_quantizer.py,
quant_utils.py compute_scale_zp / quantize_data / quantize_nparray / get_qmin_qmax_for_qType,
operators/matmul.py MatMulInteger, operators/gather.py GatherQuant, onnx_model.py
replace_gemm_with_matmul, registry.py IntegerOpsRegistry), for the path quantize_dynamic takes
on a float BERT with its defaults:

  quantize_dynamic(model_input, model_output)  # op_types_to_quantize=None, per_channel=False,
      # reduce_range=False, weight_type=QuantType.QInt8, extra_options={} -> MatMulConstBOnly=True

- mode IntegerOps, op types = IntegerOpsRegistry: Conv, MatMul, Attention, LSTM, Gather,
  Transpose, EmbedLayerNormalization (a plain exported BERT has only MatMul, Gather and Transpose
  of these; Transpose is only quantized when its input already is, which never happens here).
- Dynamic mode first rewrites every Gemm (alpha = beta = 1, transA = 0) as MatMul + Add,
  transposing B in place when transB = 1 (replace_gemm_with_matmul): the pooler and the classifier
  are quantized too.
- MatMul whose B is an initializer (MatMulConstBOnly, the dynamic default; attention's two
  activation x activation MatMuls stay float): A is quantized at run time by one
  DynamicQuantizeLinear (uint8, asymmetric; opset >= 11), shared by every MatMul reading the same
  tensor (query, key and value), B is quantized once here: int8, symmetric (is_weight_symmetric:
  signed types are symmetric), qmin/qmax = -127/127 (ONNX_INT_TYPE_SYMMETRIC_RANGE),
  reduce_range off, zero point 0, scale = float32(float64(2 * max|w|) / 254), i.e. max|w| / 127
  (compute_scale_zp: rmin/rmax widened to include 0, symmetrised to +-absmax, dr / dq in float64,
  then cast to float32), values round-half-even(w / scale) clipped. Per tensor by default; with
  --per-channel (per_channel=True) one scale per output column (axis -1 of B, quantize_weight's
  default axis). The node chain is MatMulInteger(A_q, B_q, A_zp, B_zp) -> Cast(float) ->
  Mul(by Mul(A_scale, B_scale)); a bias (the exporter's separate Add) stays a float Add.
- Gather whose data is a float initializer (the three embedding tables) is quantized like an
  activation (GatherQuant calls quantize_activation): uint8, asymmetric, per tensor even with
  per_channel, qmin/qmax = 0/255, scale = float32((rmax - rmin) / 255) with rmin <= 0 <= rmax,
  zero point = round(0 - rmin / scale) computed with the float64 scale; the Gather then reads the
  uint8 table and a DequantizeLinear restores float for the consumers. (quantize_dynamic_jit and
  bertq's default keep embeddings float; pass --op-types MatMul to leave them float here too.)
  This follows the current base_quantizer.py (symmetric only if the type is the weight type);
  older ORT releases quantized these tables with the weights' symmetry flag instead (uint8
  symmetric: 0..254, zero point 127).
- Unused float initializers are removed, the graph stays in the default domain (no contrib ops);
  ONNX Runtime's graph optimizer is what later fuses DynamicQuantizeLinear + MatMulInteger +
  Cast + Mul (+ Add) into DynamicQuantizeMatMul / MatMulIntegerToFloat (run_ort.js --optimized
  dumps the optimized graph to check).

What is not reproduced: shape inference (used by ORT only to find float tensors; all the
MatMul/Gather inputs here are float), subgraphs, tensor overrides, QDQ format, and node-name
details that do not change the numbers.

The weight scales are checked: every quantized MatMul weight's scale (each column's with
--per-channel) is asserted to equal float32(float64(2 * max|w|) / 254), and a few are recorded
in --record (JSON) with max|w|, max|w| / 127 and, for contrast, PyTorch's symmetric qint8 scale
max|w| / 127.5 (range -128..127, which quantize_dynamic_jit and bertq use).

Usage: /usr/bin/python3 tests/bench/ort/quantize_ort.py IN.onnx OUT.onnx [--per-channel]
          [--op-types MatMul,Gather,...] [--record scales.json]
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INTEGER_OPS = ["Conv", "MatMul", "Attention", "LSTM", "Gather", "Transpose", "EmbedLayerNormalization"]
SUPPORTED = {"MatMul", "Gather"}  # what this port implements; the rest do not occur in BERT


# --- quant_utils.py ---------------------------------------------------------------------------

def qmin_qmax(qtype, symmetric):
    """get_qmin_qmax_for_qType with reduce_range=False."""
    if qtype == TensorProto.INT8:
        return (np.array(-127, dtype=np.int8), np.array(127, dtype=np.int8)) if symmetric \
            else (np.array(-128, dtype=np.int8), np.array(127, dtype=np.int8))
    if qtype == TensorProto.UINT8:
        return (np.array(0, dtype=np.uint8), np.array(254, dtype=np.uint8)) if symmetric \
            else (np.array(0, dtype=np.uint8), np.array(255, dtype=np.uint8))
    raise ValueError(qtype)


def compute_scale_zp(rmin, rmax, qmin, qmax, symmetric):
    rmin = np.minimum(rmin, np.array(0, dtype=rmin.dtype))
    rmax = np.maximum(rmax, np.array(0, dtype=rmax.dtype))
    if symmetric:
        absmax = np.maximum(np.abs(rmin), np.abs(rmax))
        rmin = -absmax
        rmax = +absmax
    dr = np.array(rmax - rmin, dtype=np.float64)
    dq = np.array(qmax, dtype=np.float64) - np.array(qmin, dtype=np.float64)
    scale = np.array(dr / dq)
    if scale < np.finfo(rmax.dtype).tiny:
        return np.array(0, dtype=qmin.dtype), np.array(1.0, dtype=rmax.dtype)
    if symmetric:
        zero_point = np.array(np.round((qmin + qmax) / np.array(2.0, dtype=np.float64)), dtype=qmin.dtype)
    else:
        zero_point = np.array(np.round(qmin - rmin / scale), dtype=qmin.dtype)
    return zero_point, scale.astype(rmax.dtype)


def quantize_nparray(qtype, arr, scale, zero_point):
    dtype = np.int8 if qtype == TensorProto.INT8 else np.uint8
    lo, hi = qmin_qmax(qtype, symmetric=False)  # clip to the type's full range, as ORT does
    q = np.asarray((arr.astype(np.float32) / scale).round() + zero_point)
    np.clip(q, lo, hi, out=q)
    return q.astype(dtype)


def quantize_data(data, qtype, symmetric):
    """quantize_data: data is the flattened tensor (or one channel of it)."""
    rmin = np.array(data.min() if len(data) else 0.0, dtype=data.dtype)
    rmax = np.array(data.max() if len(data) else 0.0, dtype=data.dtype)
    qmin, qmax = qmin_qmax(qtype, symmetric)
    zero_point, scale = compute_scale_zp(rmin, rmax, qmin, qmax, symmetric)
    return zero_point, scale, quantize_nparray(qtype, data, scale, zero_point)


# --- onnx_model.py replace_gemm_with_matmul ---------------------------------------------------

def replace_gemm_with_matmul(graph, inits):
    new_nodes = []
    for node in graph.node:
        if node.op_type != "Gemm":
            new_nodes.append(node)
            continue
        a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        if not (a.get("alpha", 1.0) == 1.0 and a.get("beta", 1.0) == 1.0 and a.get("transA", 0) == 0):
            new_nodes.append(node)
            continue
        b = node.input[1]
        if a.get("transB", 0) == 1:
            if b not in inits:
                raise SystemExit("quantize_ort: Gemm %s with a non-constant transposed B is not handled"
                                 % node.name)
            t = numpy_helper.from_array(numpy_helper.to_array(inits[b]).T, b)  # B is used only here
            graph.initializer.remove(inits[b])
            graph.initializer.append(t)
            inits[b] = t
        has_c = len(node.input) > 2
        new_nodes.append(helper.make_node(
            "MatMul", [node.input[0], b], [node.output[0] + ("_MatMul" if has_c else "")],
            name=node.name + "_MatMul" if node.name else ""))
        if has_c:
            new_nodes.append(helper.make_node(
                "Add", [node.output[0] + "_MatMul", node.input[2]], list(node.output),
                name=node.name + "_Add" if node.name else ""))
    graph.ClearField("node")
    graph.node.extend(new_nodes)


# --- the quantizer ----------------------------------------------------------------------------

class Quantizer:
    def __init__(self, model, per_channel, op_types):
        self.model = model
        self.graph = model.graph
        self.per_channel = per_channel
        self.op_types = set(op_types)
        self.inits = {i.name: i for i in self.graph.initializer}
        self.new_nodes = []
        self.node_names = set()
        self.quantized = {}  # original value name -> (q_name, scale_name, zp_name)
        self.generated = {i.name for i in self.graph.input if i.name not in self.inits}
        self.checks = []  # weight-scale checks
        self.counts = {"MatMul": 0, "MatMul_float_B": 0, "Gather": 0}
        opset = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0]
        if opset < 11:
            raise SystemExit("quantize_ort: opset %d < 11: DynamicQuantizeLinear needs 11" % opset)

    def add_init(self, array, name):
        t = numpy_helper.from_array(array, name)
        self.graph.initializer.append(t)
        self.inits[name] = t

    def is_float_init(self, name):
        return name in self.inits and self.inits[name].data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)

    def quantize_initializer(self, name, qtype, symmetric, axis=None, user=""):
        """quantize_initializer (per tensor) or quantize_weight_per_channel (axis)."""
        if name in self.quantized:
            return self.quantized[name]
        w = numpy_helper.to_array(self.inits[name])
        if axis is None:
            zp, scale, q = quantize_data(w.flatten(), qtype, symmetric)
            q = q.reshape(w.shape)
            zp, scale = zp.reshape(()), scale.reshape(())
        else:
            axis = axis % w.ndim
            zps, scales, qs = [], [], []
            for i in range(w.shape[axis]):
                z, s, qc = quantize_data(w.take(i, axis).flatten(), qtype, symmetric)
                zps.append(z)
                scales.append(s)
                dims = list(w.shape)
                dims[axis] = 1
                qs.append(qc.reshape(dims))
            q = np.concatenate(qs, axis)
            zp, scale = np.hstack(zps), np.hstack(scales)
        if qtype == TensorProto.INT8 and symmetric:
            self.check_weight_scale(name, w, scale, axis, user)
        names = (name + "_quantized", name + "_scale", name + "_zero_point")
        self.add_init(q, names[0])
        self.add_init(np.asarray(scale, dtype=w.dtype), names[1])
        self.add_init(zp, names[2])
        self.quantized[name] = names
        return names

    def check_weight_scale(self, name, w, scale, axis, user):
        if axis is None:
            absmax = np.abs(w).max()
        else:
            absmax = np.abs(w).max(axis=tuple(d for d in range(w.ndim) if d != axis))
        expect = (np.asarray(2 * absmax, dtype=np.float64) / 254.0).astype(np.float32)
        assert np.array_equal(np.asarray(scale, dtype=np.float32), expect), \
            "%s: scale differs from float32(2 max|w| / 254)" % name
        a = float(np.max(absmax))
        s = float(np.asarray(scale).reshape(-1)[int(np.argmax(absmax))] if axis is not None else scale)
        self.checks.append({"weight": name, "node": user, "shape": list(w.shape), "per_channel": axis is not None,
                            "max_abs": a, "scale": s, "max_abs_over_127": a / 127.0,
                            "pytorch_qint8_scale_max_abs_over_127_5": a / 127.5,
                            "scale_equals_max_abs_over_127": bool(np.float32(a / 127.0) == np.float32(s))})

    def dequantize_inputs(self, node):
        """QuantOperatorBase.quantize / _dequantize_value: float consumers of a quantized value."""
        for x in node.input:
            if x in self.quantized and x not in self.generated:
                dq = x + "_DequantizeLinear"
                if dq not in self.node_names:
                    q, s, z = self.quantized[x]
                    self.emit(helper.make_node("DequantizeLinear", [q, s, z], [x], dq))

    def emit(self, node):
        self.new_nodes.append(node)
        if node.name:
            self.node_names.add(node.name)

    def quantize_activation_dynamic(self, x):
        """_get_quantize_input_nodes with fuse_dynamic_quant: one DynamicQuantizeLinear per tensor."""
        if x in self.quantized:
            return self.quantized[x]
        name = x + "_QuantizeLinear"
        outs = [x + "_quantized", x + "_scale", x + "_zero_point"]
        if name not in self.node_names:
            self.emit(helper.make_node("DynamicQuantizeLinear", [x], outs, name))
        return outs[0], outs[1], outs[2]

    def matmul(self, node):
        if "MatMul" not in self.op_types or not self.is_float_init(node.input[1]):
            self.counts["MatMul_float_B"] += node.input[1] not in self.inits
            self.dequantize_inputs(node)
            self.emit(node)
            return
        # quantize_activation(node, [0]) then quantize_weight(node, [1], op_level_per_channel=True)
        a_q, a_s, a_z = self.quantize_activation_dynamic(node.input[0])
        b_q, b_s, b_z = self.quantize_initializer(node.input[1], TensorProto.INT8, symmetric=True,
                                                  axis=-1 if self.per_channel else None, user=node.name)
        out = node.output[0]
        mm = node.name + "_quant" if node.name else ""
        self.emit(helper.make_node("MatMulInteger", [a_q, b_q, a_z, b_z], [out + "_output_quantized"], mm))
        self.emit(helper.make_node("Cast", [out + "_output_quantized"], [out + "_output_quantized_cast_output"],
                                   out + "_output_quantized_cast", to=TensorProto.FLOAT))
        smul = mm + "_scales_mul" if mm else a_s + "_" + b_s + "_mul"
        if smul not in self.node_names:
            self.emit(helper.make_node("Mul", [a_s, b_s], [smul + ":0"], smul))
        self.emit(helper.make_node("Mul", [out + "_output_quantized_cast_output", smul + ":0"], [out],
                                   mm + "_output_scale_mul" if mm else ""))
        self.counts["MatMul"] += 1

    def gather(self, node):
        if "Gather" not in self.op_types or not self.is_float_init(node.input[0]):
            self.dequantize_inputs(node)
            self.emit(node)
            return
        # GatherQuant: quantize_activation(node, [0]) on an initializer = activation type, per tensor
        q, s, z = self.quantize_initializer(node.input[0], TensorProto.UINT8, symmetric=False)
        out = node.output[0]
        self.quantized[out] = (out + "_quantized", s, z)
        new = onnx.NodeProto()
        new.CopyFrom(node)
        new.input[0] = q
        new.output[0] = out + "_quantized"
        self.emit(new)
        self.counts["Gather"] += 1

    def run(self):
        if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in self.graph.node):
            raise SystemExit("quantize_ort: the model already has QuantizeLinear/DequantizeLinear")
        replace_gemm_with_matmul(self.graph, self.inits)
        for node in list(self.graph.node):
            first = len(self.new_nodes)
            if node.op_type == "MatMul":
                self.matmul(node)
            elif node.op_type == "Gather":
                self.gather(node)
            else:
                self.dequantize_inputs(node)
                self.emit(node)
            for n in self.new_nodes[first:]:
                self.generated.update(n.output)
        for o in self.graph.output:  # _dequantize_outputs
            if o.name in self.quantized and o.name not in self.generated:
                q, s, z = self.quantized[o.name]
                self.emit(helper.make_node("DequantizeLinear", [q, s, z], [o.name], o.name + "_DequantizeLinear"))
        self.graph.ClearField("node")
        self.graph.node.extend(self.new_nodes)
        used = {x for n in self.graph.node for x in n.input} | {o.name for o in self.graph.output}
        unused = [i for i in self.graph.initializer if i.name not in used]
        for i in unused:
            self.graph.initializer.remove(i)
        for gi in [gi for gi in self.graph.input if gi.name in {i.name for i in unused}]:
            self.graph.input.remove(gi)
        self.model.producer_name = "onnx.quantize"  # quant_utils __producer__, as ORT writes
        self.model.producer_version = "0.1.0"
        return self.model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--per-channel", action="store_true", help="quantize_dynamic(per_channel=True)")
    ap.add_argument("--op-types", default=",".join(INTEGER_OPS),
                    help="op_types_to_quantize (default: IntegerOpsRegistry, as quantize_dynamic)")
    ap.add_argument("--record", help="write the weight-scale checks and counts here (JSON)")
    args = ap.parse_args()
    op_types = [t for t in args.op_types.split(",") if t]
    model = onnx.load(args.input)
    present = {n.op_type for n in model.graph.node}
    missing = (set(op_types) & present) - SUPPORTED - {"Transpose"}
    if missing:
        sys.exit("quantize_ort: the model has %s, which this port does not quantize" % sorted(missing))
    q = Quantizer(model, args.per_channel, op_types)
    model = q.run()
    onnx.checker.check_model(model)
    tmp = args.output + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, args.output)
    print("quantize_ort: %s -> %s (%s): %d MatMul -> MatMulInteger, %d MatMul with a non-constant B "
          "kept float, %d Gather tables -> uint8; %d weight scales checked = float32(2 max|w| / 254)"
          % (args.input, args.output, "per channel" if args.per_channel else "per tensor",
             q.counts["MatMul"], q.counts["MatMul_float_B"], q.counts["Gather"], len(q.checks)))
    if args.record:
        wide = [c for c in q.checks if 3072 in c["shape"]][:2]  # intermediate and output dense
        pick = q.checks[:3] + wide + q.checks[-2:]  # query, key, value, ..., pooler, classifier
        with open(args.record, "w") as f:
            json.dump({"per_channel": args.per_channel, "op_types": op_types, "counts": q.counts,
                       "weights_checked": len(q.checks), "formula": "scale = float32(float64(2*max|w|)/254)",
                       "examples": pick}, f, indent=1)


if __name__ == "__main__":
    main()
