"""The Python reference run that bench_convert.sh times: load, quantize, save.

Usage: /usr/bin/python3 tests/bench/py_quantize.py IN.pt OUT.pt [--engine onednn] [--debug] [--threads N]
Uses per_channel_dynamic_qconfig for the whole model, as the tutorial does.
"""
import argparse

import torch
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic_jit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--engine", default="onednn")
    ap.add_argument("--debug", action="store_true")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.quantized.engine = args.engine
    model = torch.jit.load(args.inp)
    quantized = quantize_dynamic_jit(model, {"": per_channel_dynamic_qconfig}, debug=args.debug)
    torch.jit.save(quantized, args.out)


if __name__ == "__main__":
    main()
