#!/usr/bin/env bash
# Where the quantized BERT-base forward's time goes, and what --fuse-qkv takes
# back, in one run: `bertq bench --profile` on float, quantized and quantized
# with --fuse-qkv (8 x 128, one thread, onednn, interleaved rounds), the int8
# bound measured from each model's own linear shapes in the same process,
# and `bertq compare` to check that the fused logits equal the unfused ones
# bit for bit (on realistic token ids, not only the dummy inputs).
#
# Float runs with OpenBLAS's best kernel: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
# are unset for the bench command only (see bench_latency.sh).
#
# Usage: tests/bench/bench_speed.sh [ITERS]     (default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
iters=${1:-10}
. tests/bench/common.sh
make_pairs

# The conversions are timed too: what --fuse-qkv costs at convert time.
convert() {  # output, flags...
  local o=$1
  shift
  /usr/bin/time -f "%e" -o "$out/speed_time.txt" $build/bertq convert "$model" "$o" --engine onednn "$@" >/dev/null
  echo "convert $* -> $(cat "$out/speed_time.txt") s"
}
convert "$out/speed_plain.pt"
convert "$out/speed_fused.pt" --fuse-qkv

env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $build/bertq bench "$model" "$out/speed_plain.pt" "$out/speed_fused.pt" \
  --engine onednn --threads 1 --iters "$iters" --warmup 3 --profile --format json >"$out/speed.json"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $build/bertq bench "$out/speed_fused.pt" \
  --engine onednn --threads 1 --iters 3 --warmup 1 --profile >"$out/speed_profile_fused.txt"
$build/bertq compare "$out/speed_plain.pt" "$out/speed_fused.pt" --tokenized "$data" \
  --format json >"$out/speed_compare.json"

/usr/bin/python3 - "$iters" "$out" <<'PY'
import json, sys
iters, out = sys.argv[1], sys.argv[2]
r = json.load(open(out + "/speed.json"))
m = r["models"]
f = m[0]["median_ms"]
print("BERT-base, batch 8 x seq 128, 1 thread, onednn, median of %s interleaved rounds" % iters)
print("%-22s %10s %10s %12s %12s" % ("model", "median ms", "/ float", "int8 bound", "/ bound"))
for name, x in zip(["float", "quantized", "quantized --fuse-qkv"], m):
    b = x["profile"]["int8_bound_ms"]
    print("%-22s %10.1f %10.3f %12s %12s" % (name, x["median_ms"], x["median_ms"] / f,
          "%.1f" % b if b else "", "%.2f" % (x["median_ms"] / b) if b else ""))
print("\nself time per forward (profiled), ms:")
ops = {}
for i, x in enumerate(m):
    for o in x["profile"]["ops"]:
        ops.setdefault(o["op"], [0.0, 0.0, 0.0])[i] = o["self_ms"]
print("%-32s %10s %10s %10s" % ("operator", "float", "quantized", "fused"))
for op, v in sorted(ops.items(), key=lambda kv: -max(kv[1]))[:14]:
    print("%-32s %10.1f %10.1f %10.1f" % (op, v[0], v[1], v[2]))
c = json.load(open(out + "/speed_compare.json"))
print("\nfused vs unfused logits on %d tokenized pairs: max_abs_diff %g, rel_l2 %g"
      % (c["examples"], c["max_abs_diff"], c["rel_l2"]))
PY
