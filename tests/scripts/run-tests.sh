#!/usr/bin/env bash
# Installs, checks the formatting, builds and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/scripts/install-deps.sh
tests/scripts/check-format.sh
tests/scripts/build.sh
cd build
ctest --output-on-failure -j"${JOBS:-2}"
