#!/usr/bin/env bash
# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer, in
# build-asan/: the same as `tests/scripts/run-tests.sh --sanitize`, which
# explains the sanitizer options.
# Usage: tests/scripts/sanitize.sh [extra ctest arguments, e.g. -R qconfig]
set -euo pipefail
exec "$(dirname "$0")/run-tests.sh" --sanitize --no-format -- "$@"
