#!/usr/bin/env bash
# The README's test command: installs what is missing, checks the formatting,
# builds into $BUILD_DIR (default build/) and runs the whole test suite there.
# The same script runs natively on Debian 12 (LibTorch 1.13.1) and Debian 13
# (LibTorch 2.6.0), and inside tests/scripts/trixie.sh's root.
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/scripts/install-deps.sh
tests/scripts/check-format.sh
tests/scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j"${JOBS:-2}"
