#!/usr/bin/env bash
# Configures and builds bertq (Release, -j2 by default) into $BUILD_DIR
# (default build/; the Debian 13 suite uses build-trixie/ so that the two
# LibTorch versions never share a cache). Ninja when installed, for a new
# folder; a folder configured before keeps its generator.
# Environment: BUILD_DIR, BUILD_TYPE (default Release), JOBS (default 2),
#   BERTQ_CMAKE_ARGS (more cmake arguments, e.g. -DBERTQ_TORCH=OFF).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
generator=()
if [[ ! -f "$build/CMakeCache.txt" ]] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
# shellcheck disable=SC2086  # BERTQ_CMAKE_ARGS is a list of arguments
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" ${BERTQ_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"${JOBS:-2}"
