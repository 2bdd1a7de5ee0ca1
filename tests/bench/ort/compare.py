"""Driver of tests/bench/bench_ort.sh: bertq against ONNX Runtime's dynamic int8 quantization on
the BERT-base-shaped benchmark model, latency and accuracy, in one run (tests/bench/README.md
describes the method).

Steps: export the float model to ONNX (export_onnx.py, once), quantize it as ORT's
quantize_dynamic does (quantize_ort.py: defaults = per tensor, and per_channel=True), convert it
with bertq (default qconfig per_channel_dynamic, --fuse-qkv, and --full-range-activations when
this bertq has it); accuracy of every variant against torch's float logits on the tokenized
rows; then ROUNDS rounds, each timing every (shape, threads) configuration once per runtime:
one `node run_ort.js` process for the ORT variants and one `bertq bench` process for the bertq
variants, each timing its models interleaved (ITERS iterations after WARMUP untimed ones); the
runtime that goes first alternates from round to round. A variant's figure is the median of all
its per-iteration times over the rounds.

Usage: /usr/bin/python3 tests/bench/ort/compare.py --bertq BIN --out DIR --model bert_base.pt
          --data pairs.jsonl --node-modules DIR [--rounds 4] [--iters 4] [--warmup 2]
          [--threads 1,2] [--batches 8,1]
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]

LABELS = {
    "ort_float": "ORT float",
    "ort_int8": "ORT int8 (quantize_dynamic defaults: per tensor)",
    "ort_int8_pc": "ORT int8 per_channel=True",
    "bertq_float": "bertq float (traced bert_base.pt)",
    "bertq_int8": "bertq int8 (convert default: per_channel_dynamic)",
    "bertq_int8_fused": "bertq int8 --fuse-qkv",
    "bertq_int8_fullrange": "bertq int8 --full-range-activations",
}
# The same variants run by a second bertq (--bertq26: LibTorch 2.6 in the Debian 13 root).
for _k in list(LABELS):
    if _k.startswith("bertq_"):
        LABELS["bertq26" + _k[5:]] = LABELS[_k].replace("bertq ", "bertq (LibTorch 2.6) ", 1)


def log(msg):
    print("[compare %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def run(cmd, stdout=None, env=None):
    r = subprocess.run(cmd, stdout=subprocess.PIPE if stdout is None else stdout, text=True, env=env)
    if r.returncode != 0:
        sys.exit("compare: failed (exit %d): %s" % (r.returncode, " ".join(cmd)))
    return r.stdout


def stale(target, *sources):
    return not os.path.exists(target) or any(os.path.getmtime(s) > os.path.getmtime(target) for s in sources)


def rel_l2(x, ref):
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


def torch_logits(model, rows, batch):
    import torch
    torch.set_num_threads(1)
    m = torch.jit.load(model, map_location="cpu")
    m.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            t = [torch.tensor([r[k] for r in rows[i:i + batch]], dtype=torch.int64) for k in INPUTS]
            out.append(m(*t)[0].numpy())
    return np.concatenate(out).astype(np.float64), torch.__version__


def op_counts(path):
    import onnx
    m = onnx.load(path, load_external_data=False)
    c = {}
    for n in m.graph.node:
        k = ("com.microsoft:" if n.domain == "com.microsoft" else "") + n.op_type
        c[k] = c.get(k, 0) + 1
    return dict(sorted(c.items(), key=lambda kv: -kv[1]))


def pct(xs, q):
    return float(np.percentile(np.asarray(xs), q))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bertq", required=True)
    ap.add_argument("--bertq26", default="",
                    help="a second bertq, as a command line (tests/scripts/trixie.sh run build-trixie/bertq); "
                         "paths are the same for both, so --out must be inside the source tree")
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", required=True, help="the traced float model (bench-out/bert_base.pt)")
    ap.add_argument("--data", required=True, help="tokenized rows (make_tokenized.py)")
    ap.add_argument("--node-modules", required=True, help="folder where `npm ci` installed onnxruntime-node")
    ap.add_argument("--node", default="node")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--iters", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batches", default="8,1")
    ap.add_argument("--acc-batch", type=int, default=8, help="rows per forward for accuracy (bertq compare's)")
    args = ap.parse_args()
    threads = [int(x) for x in args.threads.split(",")]
    batches = [int(x) for x in args.batches.split(",")]
    work = os.path.join(args.out, "ort")
    os.makedirs(os.path.join(work, "runs"), exist_ok=True)
    py = sys.executable
    rows = [json.loads(line) for line in open(args.data) if line.strip()]
    seq = len(rows[0]["input_ids"])
    if max(batches) > len(rows):
        sys.exit("compare: %s has %d rows, fewer than batch %d" % (args.data, len(rows), max(batches)))
    started = datetime.datetime.now().astimezone()
    load_start = os.getloadavg()
    if load_start[0] > 0.5:
        log("NOTE: load average %.2f before starting: another process is using the CPUs, timings will be noisy"
            % load_start[0])

    # --- models ---------------------------------------------------------------------------
    onnx_float = os.path.join(work, "bert_base.onnx")
    if stale(onnx_float, args.model, os.path.join(HERE, "export_onnx.py")):
        log("exporting %s to ONNX (opset 14, dynamic batch/seq)" % args.model)
        run([py, os.path.join(HERE, "export_onnx.py"), args.model, onnx_float], stdout=sys.stdout)
    ort_models = {"ort_float": onnx_float}
    scales = {}
    for key, extra in [("ort_int8", []), ("ort_int8_pc", ["--per-channel"])]:
        path = os.path.join(work, "bert_base_%s.onnx" % key[4:])
        rec = os.path.join(work, "scales_%s.json" % key)
        log("quantizing as ORT quantize_dynamic%s" % (" per_channel=True" if extra else " (defaults)"))
        run([py, os.path.join(HERE, "quantize_ort.py"), onnx_float, path, "--record", rec] + extra,
            stdout=sys.stdout)
        ort_models[key] = path
        scales[key] = json.load(open(rec))

    # Each bertq build converts its own models (a model is packed for the LibTorch that loads it).
    builds = {"bertq": [args.bertq]}
    if args.bertq26:
        builds["bertq26"] = shlex.split(args.bertq26)
    bertq_models = {}  # build -> {variant key: model path}
    full_range = True
    for build, cmd in builds.items():
        help_text = run(cmd + ["convert", "--help"])
        models = {build + "_float": args.model}
        conversions = [("_int8", []), ("_int8_fused", ["--fuse-qkv"])]
        if "full-range-activations" in help_text:
            conversions.append(("_int8_fullrange", ["--full-range-activations"]))
        else:
            full_range = False
            log("NOTE: %s has no `convert --full-range-activations`: that variant is skipped" % build)
        for suffix, flags in conversions:
            path = os.path.join(work, build + suffix + ".pt")
            log("%s convert %s" % (build, " ".join(["--engine", "onednn"] + flags)))
            run(cmd + ["convert", args.model, path, "--engine", "onednn", "--table", "none"] + flags,
                stdout=subprocess.DEVNULL)
            models[build + suffix] = path
        bertq_models[build] = models
    bertq_version = run([args.bertq, "--version"]).strip().splitlines()
    versions = {build: run(cmd + ["--version"]).strip().splitlines() for build, cmd in builds.items()}
    all_bertq = [k for models in bertq_models.values() for k in models]

    # --- accuracy -------------------------------------------------------------------------
    log("accuracy on %d rows of %s, %d rows per forward" % (len(rows), args.data, args.acc_batch))
    ref, torch_version = torch_logits(args.model, rows, args.acc_batch)
    acc = {}
    logits_file = os.path.join(work, "ort_logits.json")
    opt_dir = os.path.join(work, "optimized")
    ort_logits = {}
    for keys, extra in [(["ort_float"], []), (["ort_int8", "ort_int8_pc"], ["--optimized", opt_dir])]:
        # the int8 sessions also write their optimized graphs, to see ORT's fusions
        run([args.node, os.path.join(HERE, "run_ort.js"), "--modules", args.node_modules, "--inputs", args.data,
             "--batch", str(args.acc_batch), "--threads", "1", "--logits", logits_file] + extra
            + ["%s=%s" % (ort_models[k], k) for k in keys], stdout=sys.stdout)
        ort_out = json.load(open(logits_file))
        ort_logits.update(ort_out["logits"])
    ort_version = ort_out["ort_version"]
    with open(logits_file, "w") as f:
        json.dump({"batch": args.acc_batch, "data": args.data, "logits": ort_logits,
                   "torch_float": ref.tolist()}, f)
    for key, lg in ort_logits.items():
        x = np.asarray(lg, dtype=np.float64)
        acc[key] = {"rel_l2": rel_l2(x, ref), "agreement": float((x.argmax(1) == ref.argmax(1)).mean()),
                    "max_abs_diff": float(np.abs(x - ref).max()), "source": "ORT logits vs torch float logits"}
    if acc["ort_float"]["rel_l2"] > 1e-4:
        sys.exit("compare: the ONNX float model's logits differ from torch's (rel L2 %g): export problem"
                 % acc["ort_float"]["rel_l2"])
    optimized = {k: op_counts(os.path.join(opt_dir, "%s.optimized.onnx" % k)) for k in ("ort_int8", "ort_int8_pc")}
    for build, models in bertq_models.items():
        acc[build + "_float"] = {"rel_l2": 0.0, "agreement": 1.0, "max_abs_diff": 0.0,
                                 "source": "the reference itself (LibTorch runs it as torch does)"}
        for key, path in models.items():
            if key.endswith("_float"):
                continue
            out = run(builds[build] + ["compare", args.model, path, "--tokenized", args.data,
                                       "--batch", str(args.acc_batch), "--engine", "onednn", "--format", "json"])
            c = json.loads(out)
            # bertq compare measures against its own LibTorch's float logits.
            acc[key] = {"rel_l2": c["rel_l2"], "agreement": c["agreement"], "max_abs_diff": c["max_abs_diff"],
                        "source": "%s compare (LibTorch float vs quantized)" % build}
    classes = np.bincount(ref.argmax(1), minlength=ref.shape[1]).tolist()

    # --- latency --------------------------------------------------------------------------
    configs = [(b, t) for b in batches for t in threads]
    samples = {(k, b, t): [] for k in list(ort_models) + all_bertq for b, t in configs}
    runners = ["ort"] + list(builds)
    kernels = set()
    round_load = []
    for r in range(args.rounds):
        for b, t in configs:
            # Who goes first rotates, so that no runtime always meets a cold or a warm machine.
            shift = (r + configs.index((b, t))) % len(runners)
            order = runners[shift:] + runners[:shift]
            for who in order:
                tag = "r%d_b%d_t%d_%s" % (r, b, t, who)
                f = os.path.join(work, "runs", tag + ".json")
                if who == "ort":
                    run([args.node, os.path.join(HERE, "run_ort.js"), "--modules", args.node_modules,
                         "--inputs", args.data, "--batch", str(b), "--threads", str(t), "--iters", str(args.iters),
                         "--warmup", str(args.warmup), "--json", f]
                        + ["%s=%s" % (p, k) for k, p in ort_models.items()])
                    res = json.load(open(f))
                    for m in res["models"]:
                        samples[(m["label"], b, t)] += m["ms"]
                else:
                    with open(f, "w") as fh:
                        run(builds[who] + ["bench"] + list(bertq_models[who].values())
                            + ["--inputs", args.data, "--batch", str(b), "--threads", str(t), "--iters",
                               str(args.iters), "--warmup", str(args.warmup), "--engine", "onednn",
                               "--format", "json"], stdout=fh)
                    res = json.load(open(f))
                    kernels.add(res.get("openblas_kernel"))
                    for key, m in zip(bertq_models[who], res["models"]):
                        samples[(key, b, t)] += m["ms"]
            round_load.append(round(os.getloadavg()[0], 2))
            log("round %d/%d, batch %d x %d, %d thread%s (load %.2f): %s" % (
                r + 1, args.rounds, b, seq, t, "" if t == 1 else "s", round_load[-1],
                ", ".join("%s %.0f" % (k, np.median(samples[(k, b, t)][-args.iters:]))
                          for k in list(ort_models) + all_bertq)))

    # --- results --------------------------------------------------------------------------
    table = []
    for b, t in configs:
        base = float(np.median(samples[("ort_int8", b, t)]))
        for key in list(ort_models) + all_bertq:
            xs = samples[(key, b, t)]
            med = float(np.median(xs))
            table.append({"variant": key, "label": LABELS[key], "threads": t, "batch": b, "seq": seq,
                          "median_ms": med, "p10_ms": pct(xs, 10), "p90_ms": pct(xs, 90), "n": len(xs),
                          "ratio_to_ort_int8": med / base, **{k: acc[key][k] for k in ("rel_l2", "agreement")}})
    result = {
        "date": started.isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_1min_start": round(load_start[0], 2), "loadavg_1min_after_each_config": round_load,
                    "loadavg_1min_end": round(os.getloadavg()[0], 2)},
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        "openblas_kernel_reported_by_bertq_bench": sorted(k for k in kernels if k),
        "bertq": bertq_version, "bertq_builds": versions, "onnxruntime_node": ort_version, "torch": torch_version,
        "onnx": __import__("onnx").__version__, "node": run([args.node, "--version"]).strip(),
        "method": {"rounds": args.rounds, "iters_per_round": args.iters, "warmup_per_process": args.warmup,
                   "inputs": args.data, "accuracy_rows": len(rows), "accuracy_batch": args.acc_batch,
                   "float_reference": "torch.jit.load(bert_base.pt), Python torch %s" % torch_version,
                   "float_reference_class_counts": classes,
                   "full_range_activations": "measured" if full_range else "skipped: this bertq lacks the flag"},
        "accuracy": acc,
        "ort_optimized_graph_ops": optimized,
        "ort_weight_scales": scales,
        "rows": table,
        "samples_ms": {"%s b%d t%d" % k: v for k, v in samples.items()},
    }
    out_json = os.path.join(args.out, "ort_compare.json")
    with open(out_json + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(out_json + ".tmp", out_json)

    print()
    print("BERT-base-shaped (random weights), %s; bertq %s, onnxruntime-node %s; OPENBLAS_CORETYPE=%s "
          "(bertq bench reports OpenBLAS kernel %s)" % (
              started.strftime("%Y-%m-%d"), bertq_version[0].split()[-1], ort_version,
              os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
              "/".join(result["openblas_kernel_reported_by_bertq_bench"])))
    print("median of %d rounds x %d iterations per variant (after %d warm-ups per process); accuracy on %d "
          "tokenized rows vs torch float (float predicts classes %s); 1-min load average %.2f at start, "
          "%.2f to %.2f during the rounds" % (
              args.rounds, args.iters, args.warmup, len(rows), classes, load_start[0], min(round_load),
              max(round_load)))
    print()
    print("| variant | threads | shape | median ms | p10-p90 ms | / ORT int8 | rel L2 vs float "
          "| argmax agreement |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for row in table:
        print("| %s | %d | %dx%d | %.1f | %.0f-%.0f | %.2f | %.4f | %.3f |" % (
            row["label"], row["threads"], row["batch"], row["seq"], row["median_ms"], row["p10_ms"],
            row["p90_ms"], row["ratio_to_ort_int8"], row["rel_l2"], row["agreement"]))
    print()
    for k in ("ort_int8", "ort_int8_pc"):
        fused = {op: n for op, n in optimized[k].items() if op.startswith("com.microsoft:")}
        print("ORT optimized graph of %s: %s" % (k, ", ".join("%s %d" % kv for kv in fused.items())))
    ex = scales["ort_int8"]["examples"][0]
    print("ORT weight scales: %d/%d checked = float32(2 max|w| / 254) = max|w|/127 (e.g. %s: max|w| %.6g, "
          "scale %.6g; PyTorch's qint8 would be max|w|/127.5 = %.6g)" % (
              scales["ort_int8"]["weights_checked"], scales["ort_int8_pc"]["weights_checked"], ex["node"],
              ex["max_abs"], ex["scale"], ex["pytorch_qint8_scale_max_abs_over_127_5"]))
    if not full_range:
        print("bertq int8 --full-range-activations: skipped (this bertq's convert has no such flag)")
    print("written: %s" % out_json)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
