#!/usr/bin/env bash
# A Debian 13 ("trixie") root for building and testing bertq against
# LibTorch 2.6 on a Debian 12 machine, from Debian's own packages only.
#
#   tests/scripts/trixie.sh create        build the root (about 7 minutes; kept
#                                         and reused while its package list is
#                                         unchanged)
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
# What the build, the tests and the golden generator need; the stamp file
# records this list so that a changed list rebuilds the root.
packages=(build-essential cmake libtorch-dev libopenblas0-pthread libcli11-dev
  nlohmann-json3-dev libspdlog-dev catch2 zlib1g-dev libssl-dev libfmt-dev
  python3-torch python3-numpy ca-certificates)
stamp="$root/.bertq-packages"

create() {
  if [[ -f "$stamp" && "$(cat "$stamp")" == "${packages[*]}" ]]; then
    echo "trixie: $root is up to date"
    return 0
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
  create) create ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 create | run CMD..." >&2; exit 2 ;;
esac
