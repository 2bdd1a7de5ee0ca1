#!/usr/bin/env bash
# Configures and builds bertq (Release, -j2 by default) into $BUILD_DIR
# (default build/; the Debian 13 suite uses build-trixie/ so that the two
# LibTorch versions never share a cache).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} >/dev/null
cmake --build "$build" -j"${JOBS:-2}"
