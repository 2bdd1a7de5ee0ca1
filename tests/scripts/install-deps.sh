#!/usr/bin/env bash
# Installs what bertq needs from the distribution's packages (Debian 12 or 13:
# the package names are the same; libtorch-dev is 1.13.1 or 2.6.0), skipping
# what is there.
# Usage: tests/scripts/install-deps.sh [--reference] [--browser]
#   --reference  also Python's PyTorch (python3-torch, the same version as
#                libtorch-dev), needed only to regenerate golden files and to
#                run the Python side of the benchmarks
set -euo pipefail

packages=(
  build-essential cmake
  libtorch-dev          # LibTorch (1.13.1 or 2.6.0): the passes, kernels and serializer
  libopenblas0-pthread  # a fast libblas.so.3; the reference BLAS is ~30x slower
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev catch2 zlib1g-dev libssl-dev
  clang-format          # the formatting check (tests/scripts/check-format.sh)
  chromium              # the HTML report's layout test (tests/html/)
)
for arg in "$@"; do
  case "$arg" in
    --reference) packages+=(python3-torch time) ;;
    --browser) ;;  # chromium is always installed now; kept for old command lines
    *) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
  esac
done

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
