#!/usr/bin/env bash
# bertq against ONNX Runtime's dynamic int8 quantization, side by side in one run, on the
# BERT-base-shaped model: latency at batch 8 and 1 x seq 128 with 1 and 2 threads, and accuracy
# (relative L2 of the logits against torch's float logits, argmax agreement) on the tokenized
# rows. Variants: ORT float, ORT int8 (quantize_dynamic's defaults, re-implemented in
# tests/bench/ort/quantize_ort.py because ORT's Python package is not in Debian), ORT int8
# per_channel=True, bertq float, bertq int8 (convert's default), bertq int8 --fuse-qkv, and
# bertq int8 --full-range-activations when this bertq has that flag. tests/bench/README.md has
# the method; figures go to $BENCH_OUT/ort_compare.json and a markdown table on stdout.
#
# Installs what it needs beyond common.sh: python3-onnx (Debian) and onnxruntime-node (npm ci
# against tests/bench/ort/package-lock.json, into $BENCH_OUT/ort-node; nodejs and npm from Debian
# if there is no node).
#
# bertq's float model runs with OpenBLAS as the caller's environment sets it (OPENBLAS_CORETYPE
# is passed through, not unset); the kernel bertq bench reports is printed and recorded.
#
# Usage: tests/bench/bench_ort.sh [ROUNDS] [ITERS]     (default 4 rounds x 4 iterations)
# Environment: THREADS (default 1,2), BATCHES (default 8,1), WARMUP (default 2), and common.sh's
#   BUILD_DIR / BENCH_OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-4}
iters=${2:-4}
. tests/bench/common.sh
make_pairs

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
apt_install() {  # packages... (only the missing ones)
  local missing=() p
  for p in "$@"; do
    [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" == "install ok installed" ]] || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  echo "bench_ort: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
}
apt_install python3-onnx python3-numpy
# Node: whatever is on PATH (tested with 20; Debian 12 has 18), else Debian's.
command -v node >/dev/null || apt_install nodejs
command -v npm >/dev/null || apt_install npm

# onnxruntime-node at the version pinned in package-lock.json. Its install script would download
# CUDA binaries from nuget.org; ONNXRUNTIME_NODE_INSTALL=skip keeps it to the CPU binaries the
# npm package ships.
node_dir=$out/ort-node
mkdir -p "$node_dir"
if ! cmp -s tests/bench/ort/package-lock.json "$node_dir/package-lock.json" ||
  [[ ! -f $node_dir/node_modules/onnxruntime-node/package.json ]]; then
  cp tests/bench/ort/package.json tests/bench/ort/package-lock.json "$node_dir/"
  (cd "$node_dir" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund)
fi

# LibTorch 2.6 too, on Debian 12 (its oneDNN runs the int8 products differently): bertq built in
# the Debian 13 root, run there on the same files, which must then lie inside the tree (the root
# sees it at /src). LIBTORCH26=0 skips it.
bertq26=()
if [[ "${LIBTORCH26:-1}" == 1 ]] && grep -q bookworm /etc/os-release; then
  case "$(realpath -m "$out")" in
    "$(pwd)"/*)
      tests/scripts/trixie.sh create
      tests/scripts/trixie.sh run env BUILD_DIR=build-trixie bash tests/scripts/build.sh
      bertq26=(--bertq26 "bash tests/scripts/trixie.sh run build-trixie/bertq")
      ;;
    *) echo "bench_ort: BENCH_OUT=$out is outside the tree: the LibTorch 2.6 variants are skipped" >&2 ;;
  esac
fi

/usr/bin/python3 tests/bench/ort/compare.py --bertq "$build/bertq" "${bertq26[@]}" --out "$out" --model "$model" \
  --data "$data" --node-modules "$node_dir" --node "$(command -v node)" \
  --rounds "$rounds" --iters "$iters" --warmup "${WARMUP:-2}" \
  --threads "${THREADS:-1,2}" --batches "${BATCHES:-8,1}"
