#!/usr/bin/env bash
# A Debian 13 ("trixie") root for building and testing bertq against
# LibTorch 2.6 on a Debian 12 machine, from Debian's own packages only.
#
#   tests/scripts/trixie.sh create [--reference]
#                                         build the root (about 5 minutes; kept
#                                         and reused while it holds every package
#                                         asked for); --reference adds Python's
#                                         PyTorch, for the 2.6 golden files
#   tests/scripts/trixie.sh run CMD...    run CMD inside it, in this source tree
#                                         (mounted at /src), as root
#
# The root lives in $BERTQ_TRIXIE_ROOT (default /var/cache/bertq/trixie). `run`
# mounts /proc (PyTorch reads /proc/cpuinfo) and bind-mounts the tree, and
# unmounts both when CMD ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/../.."
tree=$(pwd)
root=${BERTQ_TRIXIE_ROOT:-/var/cache/bertq/trixie}
# What the build and the tests need (install-deps.sh --no-format
# --no-browser); the stamp file records the list installed, and a root that
# lacks one of them is built again.
packages=(build-essential cmake ninja-build libtorch-dev libopenblas0-openmp libcli11-dev
  nlohmann-json3-dev libspdlog-dev catch2 zlib1g-dev libssl-dev libfmt-dev ca-certificates)
# The golden generator's (testdata/generate.py).
reference=(python3-torch python3-numpy)
stamp="$root/.bertq-packages"

create() {
  if [[ "${1:-}" == "--reference" ]]; then
    packages+=("${reference[@]}")
  elif [[ -n "${1:-}" ]]; then
    echo "usage: $0 create [--reference]" >&2
    exit 2
  fi
  if [[ -f "$stamp" ]]; then
    local have p up_to_date=1
    have=" $(cat "$stamp") "
    for p in "${packages[@]}"; do [[ "$have" == *" $p "* ]] || up_to_date=0; done
    if ((up_to_date)); then
      echo "trixie: $root is up to date"
      return 0
    fi
  fi
  if ! command -v debootstrap >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
  fi
  local mirror
  mirror=$(grep -rhoE 'https?://deb\.debian\.org/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null | head -1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rm -rf "$root.new"
  mkdir -p "$(dirname "$root")"
  local list
  list=$(IFS=,; echo "${packages[*]}")
  echo "trixie: debootstrap into $root.new from $mirror"
  debootstrap --variant=minbase --include="$list" trixie "$root.new" "$mirror"
  echo "${packages[*]}" >"$root.new/.bertq-packages"
  rm -rf "$root"
  mv "$root.new" "$root"
  echo "trixie: ready at $root"
}

mounted=()
unmount_all() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  mounted=()
}

run() {
  [[ -f "$stamp" ]] || { echo "trixie: no root at $root; run '$0 create' first" >&2; exit 2; }
  mkdir -p "$root/src" "$root/proc"
  trap unmount_all EXIT
  mount -t proc proc "$root/proc" && mounted+=("$root/proc")
  mount --bind "$tree" "$root/src" && mounted+=("$root/src")
  # /dev/null and friends: minbase makes static nodes; /dev/shm is needed by
  # some of LibTorch's allocators.
  mkdir -p "$root/dev/shm"
  mount -t tmpfs tmpfs "$root/dev/shm" && mounted+=("$root/dev/shm")
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 TERM="${TERM:-dumb}" JOBS="${JOBS:-2}" bash -c 'cd /src && "$@"' bash "$@"
}

case "${1:-}" in
  create) shift; create "$@" ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 create [--reference] | run CMD..." >&2; exit 2 ;;
esac
