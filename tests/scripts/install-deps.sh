#!/usr/bin/env bash
# Installs what bertq needs from the distribution's packages (Debian 12 or 13:
# the package names are the same; libtorch-dev is 1.13.1 or 2.6.0), skipping
# what is there.
# Usage: tests/scripts/install-deps.sh [--core] [--no-browser] [--no-format] [--reference]
#   --core        only what the core needs (no LibTorch): a build of
#                 -DBERTQ_TORCH=OFF and its tests
#   --no-browser  without chromium (the HTML layout test is skipped then)
#   --no-format   without clang-format (the formatting check is skipped then)
#   --reference   also Python's PyTorch (python3-torch, the same version as
#                 libtorch-dev), needed only to regenerate golden files and to
#                 run the Python side of the benchmarks
set -euo pipefail

core=(build-essential cmake ninja-build nlohmann-json3-dev libfmt-dev catch2 zlib1g-dev libssl-dev)
torch=(
  libtorch-dev          # LibTorch (1.13.1 or 2.6.0): the passes, kernels and serializer
  # A fast libblas.so.3 (the reference BLAS is ~30x slower), in its OpenMP
  # build: it shares LibTorch's OpenMP threads, where the default pthreads
  # build fights them. bertq's RPATH finds it (CMakeLists.txt, BERTQ_BLAS_DIR).
  libopenblas0-openmp
  libcli11-dev libspdlog-dev
)
format=(clang-format)  # the formatting check (tests/scripts/check-format.sh)
browser=(chromium)     # the HTML report's layout test (tests/html/)
with_torch=1 with_format=1 with_browser=1
extra=()
for arg in "$@"; do
  case "$arg" in
    --core) with_torch=0 with_browser=0 ;;
    --no-browser) with_browser=0 ;;
    --no-format) with_format=0 ;;
    --browser) ;;  # chromium is installed unless --no-browser; kept for old command lines
    --reference) extra+=(python3-torch time) ;;
    *) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
  esac
done
packages=("${core[@]}")
((with_torch)) && packages+=("${torch[@]}")
((with_format)) && packages+=("${format[@]}")
((with_browser)) && packages+=("${browser[@]}")
packages+=("${extra[@]}")

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
