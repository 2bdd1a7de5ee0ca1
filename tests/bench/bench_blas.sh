#!/usr/bin/env bash
# Which OpenBLAS bertq should run on, measured: its pthreads and OpenMP builds
# at 1 and 2 threads, and the kernel OpenBLAS picks by itself against the one
# named by OPENBLAS_CORETYPE. Float and quantized BERT-base (8 x 128) with
# `bertq bench`, each configuration one bench process; the rounds visit the
# configurations in turn, so that the machine's noise is shared.
#
# bertq finds the OpenMP build through its RPATH (CMakeLists.txt,
# BERTQ_BLAS_DIR); LD_LIBRARY_PATH, searched first, puts the pthreads build
# in its place for the rows that measure it.
#
# Usage: tests/bench/bench_blas.sh [ROUNDS] [ITERS] [KERNEL]
#   (default 3 rounds x 5 iterations; KERNEL: what OPENBLAS_CORETYPE names for
#   the "named" rows, default SkylakeX, use Haswell on an AVX2 CPU)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
iters=${2:-5}
kernel=${3:-SkylakeX}
. tests/bench/common.sh
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
if [[ "$(dpkg-query -W -f='${Status}' libopenblas0-pthread 2>/dev/null || true)" != "install ok installed" ]]; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends libopenblas0-pthread
fi
quant=$out/bert_base_onednn.pt
[[ -f $quant ]] || $build/bertq convert "$model" "$quant" --engine onednn >/dev/null
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
pthread_dir=/usr/lib/$arch/openblas-pthread

configs=(openmp_1 openmp_2 pthread_1 pthread_2 detected_1 named_1)
run_config() {  # config round
  local c=$1 r=$2 threads=${1##*_} envs=(-u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
  case $c in
    pthread_*) envs+=(LD_LIBRARY_PATH=$pthread_dir) ;;
    named_*) envs+=(OPENBLAS_CORETYPE=$kernel) ;;
  esac
  env "${envs[@]}" $build/bertq bench "$model" "$quant" --threads "$threads" --iters "$iters" --warmup 2 \
    --format json >"$out/blas_${c}_r$r.json"
}
for ((r = 0; r < rounds; r++)); do
  for c in "${configs[@]}"; do run_config "$c" "$r"; done
done

/usr/bin/python3 - "$out" "$rounds" "$iters" "$kernel" "${configs[@]}" <<'PY'
import json, statistics, sys
out, rounds, iters, kernel, configs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
what = {"openmp": "OpenMP build (bertq's RPATH)", "pthread": "pthreads build (LD_LIBRARY_PATH)",
        "detected": "OpenMP, OPENBLAS_CORETYPE unset", "named": "OpenMP, OPENBLAS_CORETYPE=" + kernel}
print("BERT-base 8 x 128, `bertq bench`, median of %d rounds x %s iterations" % (rounds, iters))
print()
print("| BLAS | threads | kernel (who chose) | float ms | int8 ms |")
print("|---|---:|---|---:|---:|")
for c in configs:
    runs = [json.load(open("%s/blas_%s_r%d.json" % (out, c, r))) for r in range(rounds)]
    ms = [[x for run in runs for x in run["models"][k]["ms"]] for k in (0, 1)]
    kind, threads = c.rsplit("_", 1)
    first = runs[0]
    print("| %s (%s) | %s | %s (%s) | %.1f | %.1f |" % (
        what[kind], first["blas_threading"], threads, first["openblas_kernel"],
        first["openblas_kernel_source"], statistics.median(ms[0]), statistics.median(ms[1])))
PY
