#!/usr/bin/env bash
# Conversion benchmark on a BERT-base-shaped model: bertq vs Python's
# quantize_dynamic_jit, whole processes (load + quantize + save), measured in
# one run, alternating, with wall time and peak RSS from /usr/bin/time.
#
# Usage: tests/bench/bench_convert.sh [RUNS] [ENGINE]     (default 3, onednn)
# PY_THREADS=N runs Python with torch.set_num_threads(N) (default: torch's own
# count, its physical cores as cpuinfo sees them; bertq uses the usable CPUs).
# Writes into bench-out/ (git-ignored; $BENCH_OUT); the model is generated once (~438 MB).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
engine=${2:-onednn}
. tests/bench/common.sh

measure() {  # label, command...: prints "wall_s peak_kib"
  local label=$1
  shift
  /usr/bin/time -f "%e %M" -o $out/time.txt "$@" >/dev/null 2>$out/$label.log
  cat $out/time.txt
}

declare -a py_wall py_rss bq_wall bq_rss
for ((i = 0; i < runs; i++)); do
  read -r w m < <(measure python /usr/bin/python3 tests/bench/py_quantize.py "$model" $out/q_python.pt --engine "$engine" ${PY_THREADS:+--threads "$PY_THREADS"})
  py_wall+=("$w"); py_rss+=("$m")
  read -r w m < <(measure bertq $build/bertq convert "$model" $out/q_bertq.pt --engine "$engine")
  bq_wall+=("$w"); bq_rss+=("$m")
  echo "run $((i + 1))/$runs: python ${py_wall[-1]} s ${py_rss[-1]} KiB, bertq ${bq_wall[-1]} s ${bq_rss[-1]} KiB"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
pw=$(median "${py_wall[@]}"); pr=$(median "${py_rss[@]}")
bw=$(median "${bq_wall[@]}"); br=$(median "${bq_rss[@]}")
size() { stat -c %s "$1"; }
echo
echo "BERT-base-shaped model, per_channel_dynamic, engine $engine, median of $runs runs"
printf '%-28s %12s %12s %10s\n' "" "python" "bertq" "ratio"
awk -v pw="$pw" -v bw="$bw" -v pr="$pr" -v br="$br" -v ins="$(size $model)" \
    -v pos="$(size $out/q_python.pt)" -v bos="$(size $out/q_bertq.pt)" 'BEGIN {
  printf "%-28s %12.2f %12.2f %10.2f\n", "wall time (s)", pw, bw, bw / pw
  printf "%-28s %12.0f %12.0f %10.2f\n", "peak RSS (MiB)", pr / 1024, br / 1024, br / pr
  printf "%-28s %12.2f %12.2f\n", "input size (MB)", ins / 1e6, ins / 1e6
  printf "%-28s %12.2f %12.2f\n", "output size (MB)", pos / 1e6, bos / 1e6
}'
echo -n "outputs: "
/usr/bin/python3 tests/bench/compare_archives.py $out/q_python.pt $out/q_bertq.pt
