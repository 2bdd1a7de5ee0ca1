#!/usr/bin/env bash
# Quantized embeddings on BERT-base (issue 11), all figures from one run:
# file size, relative L2 error of the logits against float on 16 realistic
# sentence pairs of 128 tokens (tests/bench/make_tokenized.py), and latency at
# 8 x 128 on one thread, for Linear-only, + 8-bit embeddings, + 4-bit
# embeddings, and + 4-bit word / 8-bit position and token-type embeddings.
# The latency rounds visit the models in turn (bertq bench), so a busy
# machine slows them alike.
#
# Usage: tests/bench/bench_embeddings.sh [ITERS]     (default 20)
set -euo pipefail
cd "$(dirname "$0")/../.."
iters=${1:-20}
. tests/bench/common.sh
make_pairs

variants=(linear emb8 emb4 emb4word)
declare -A args=(
  [linear]=""
  [emb8]="--embeddings 8bit"
  [emb4]="--embeddings 4bit"
  [emb4word]="--qconfig configs/examples/bert_embeddings_4bit_word.json"
)
for v in "${variants[@]}"; do
  rm -f "$out/emb_$v.pt"
  # shellcheck disable=SC2086
  $build/bertq convert "$model" "$out/emb_$v.pt" ${args[$v]} --table none --format json >"$out/emb_convert_$v.json"
  $build/bertq compare "$model" "$out/emb_$v.pt" --tokenized "$data" --seq-length 128 --format json \
    >"$out/emb_compare_$v.json"
done
paths=()
for v in "${variants[@]}"; do paths+=("$out/emb_$v.pt"); done
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $build/bertq bench "${paths[@]}" --threads 1 \
  --iters "$iters" --warmup 3 --vocab 30522 --format json >"$out/emb_latency.json"

/usr/bin/python3 - "$out" "$iters" "${variants[@]}" <<'PY'
import json, os, sys
out, iters, variants = sys.argv[1], sys.argv[2], sys.argv[3:]
names = {"linear": "per-channel Linear only", "emb8": "+ 8-bit embeddings (--embeddings 8bit)",
         "emb4": "+ 4-bit embeddings (--embeddings 4bit)",
         "emb4word": "+ 4-bit word, 8-bit pos/type embeddings"}
lat = {os.path.basename(m["model"])[4:-3]: m for m in json.load(open(out + "/emb_latency.json"))["models"]}
base = json.load(open(out + "/emb_compare_linear.json"))["rel_l2"]
print("BERT-base, logits vs float on 16 pairs x 128 tokens; latency 8 x 128, 1 thread, median of %s rounds" % iters)
print("%-42s %9s %12s %10s %10s %9s %9s" % ("model", "MB", "rel L2 err", "err/lin", "agreement", "ms", "ms/lin"))
for v in variants:
    size = os.path.getsize("%s/emb_%s.pt" % (out, v)) / 1e6
    c = json.load(open("%s/emb_compare_%s.json" % (out, v)))
    ms = lat[v]["median_ms"]
    print("%-42s %9.2f %12.5f %10.3f %10.3f %9.1f %9.3f" % (names[v], size, c["rel_l2"], c["rel_l2"] / base,
                                                           c["agreement"], ms, ms / lat["linear"]["median_ms"]))
PY
