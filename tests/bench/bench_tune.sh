#!/usr/bin/env bash
# `bertq tune` on BERT-base, in one run: the search's wall time against one
# conversion plus one evaluation (the float and quantized forwards `bertq
# compare` makes), and what tune chose. The tolerance is tighter than the
# all-int8 model's error on the same data, so tune must keep something float
# or at a higher precision.
#
# Usage: tests/bench/bench_tune.sh [TOLERANCE]     (default 0.03, relative L2 of the logits)
# With BASELINE=path/to/another/bertq, that binary's tune runs right after on
# the same model and data: both wall times, and whether the two chose the
# same qconfig, model bytes and trial metrics.
set -euo pipefail
cd "$(dirname "$0")/../.."
tolerance=${1:-0.03}
. tests/bench/common.sh
make_pairs

t0=$(date +%s.%N)
rm -f "$out/tune_int8.pt"
$build/bertq convert "$model" "$out/tune_int8.pt" --table none >/dev/null 2>&1
t1=$(date +%s.%N)
$build/bertq compare "$model" "$out/tune_int8.pt" --tokenized "$data" --seq-length 128 --format json \
  >"$out/tune_int8_compare.json"
t2=$(date +%s.%N)
rm -f "$out/tuned.pt" "$out/tuned.json" "$out/tune_report.json"
$build/bertq tune "$model" "$out/tuned.pt" --tolerance "$tolerance" --tokenized "$data" --seq-length 128 \
  --qconfig-out "$out/tuned.json" --tune-report "$out/tune_report.json" >"$out/tune.txt"
t3=$(date +%s.%N)
if [[ -n "${BASELINE:-}" ]]; then
  rm -f "$out/tuned_base.pt" "$out/tuned_base.json" "$out/tune_report_base.json"
  "$BASELINE" tune "$model" "$out/tuned_base.pt" --tolerance "$tolerance" --tokenized "$data" --seq-length 128 \
    --qconfig-out "$out/tuned_base.json" --tune-report "$out/tune_report_base.json" >"$out/tune_base.txt"
  t4=$(date +%s.%N)
  /usr/bin/python3 - "$out" "$t2" "$t3" "$t4" "$BASELINE" <<'PY'
import json, sys, zipfile
out, t2, t3, t4, base = sys.argv[1], *map(float, sys.argv[2:5]), sys.argv[5]
a, b = json.load(open(out + "/tune_report.json")), json.load(open(out + "/tune_report_base.json"))
print("tune: this build %.1f s, %s %.1f s: %.2fx faster" % (t3 - t2, base, t4 - t3, (t4 - t3) / (t3 - t2)))
print("same qconfig file: %s" % (open(out + "/tuned.json").read() == open(out + "/tuned_base.json").read()))
print("same trials (upgrades, metric): %s" % ([(t["upgrades"], t["metric"]) for t in a["trials"]] == [(t["upgrades"], t["metric"]) for t in b["trials"]]))
def records(p):
    z = zipfile.ZipFile(p)
    return {n.split("/", 1)[1]: z.read(n) for n in z.namelist() if not n.endswith("bertq_manifest.json")}
print("same model records (manifest aside): %s" % (records(out + "/tuned.pt") == records(out + "/tuned_base.pt")))
PY
fi

/usr/bin/python3 - "$out" "$t0" "$t1" "$t2" "$t3" "$tolerance" <<'PY'
import json, os, sys
out, t0, t1, t2, t3, tol = sys.argv[1], *map(float, sys.argv[2:6]), sys.argv[6]
c = json.load(open(out + "/tune_int8_compare.json"))
r = json.load(open(out + "/tune_report.json"))
conv, ev, tune = t1 - t0, t2 - t1, t3 - t2
print("BERT-base, 16 sentence pairs x 128 tokens, metric rel_l2, tolerance %s" % tol)
print("all-int8 Linear (per_channel_dynamic): %.2f MB, rel_l2 %.5f" % (os.path.getsize(out + "/tune_int8.pt") / 1e6, c["rel_l2"]))
print("tuned: %.2f MB, rel_l2 %.5f, %d conversions, sensitivity pass %.1f s" % (r["output_bytes"] / 1e6, r["final_metric"], r["conversions"], r["sensitivity_seconds"]))
print("kept float: %s" % ", ".join(m["path"] for m in r["modules"] if m["chosen"] == "float"))
print("embeddings: %s" % ", ".join("%s %s" % (m["path"], m["chosen"]) for m in r["modules"] if m["type"] != "Linear"))
print("wall time: one conversion %.1f s + one evaluation %.1f s = %.1f s; tune %.1f s (%.1fx)" % (conv, ev, conv + ev, tune, tune / (conv + ev)))
PY
