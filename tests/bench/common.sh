# Sourced by tests/bench/bench_*.sh from the repository root: what every
# benchmark needs first. BUILD_DIR and BENCH_OUT let the Debian 13 root
# (tests/scripts/trixie.sh) run them on the same tree without touching the
# host's build and results.
build=${BUILD_DIR:-build}
out=${BENCH_OUT:-bench-out}
export BUILD_DIR=$build
tests/scripts/install-deps.sh --reference
tests/scripts/build.sh
mkdir -p "$out"
# The BERT-base-shaped model (random weights, ~438 MB), generated once.
model=$out/bert_base.pt
if [[ ! -f $model ]]; then
  echo "generating $model (BERT-base shape, random weights)..."
  /usr/bin/python3 tests/bench/make_bert_base.py "$model"
fi
# 16 sentence pairs of 128 tokens (make_tokenized.py: seeded, so the same
# file every time), for the benchmarks that measure error on data.
data=$out/pairs_16x128.jsonl
make_pairs() { /usr/bin/python3 tests/bench/make_tokenized.py "$data" --rows 16 --seq 128; }
