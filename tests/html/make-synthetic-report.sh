#!/usr/bin/env bash
# Writes the HTML report of a made-up BERT-base conversion (74 quantized
# modules), to check the page's layout at full size: see synthetic_report.cpp.
# Usage: tests/html/make-synthetic-report.sh BUILD_DIR OUT.html [--dry-run] [--fail] [--long]
# BUILD_DIR is a configured and built bertq build folder (it needs libbertq_core.a).
set -euo pipefail

if (($# < 2)); then
  echo "usage: $0 BUILD_DIR OUT.html [--dry-run] [--fail] [--long]" >&2
  exit 2
fi
build=$(realpath "$1")
out=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
if [[ ! -f "$build/libbertq_core.a" ]]; then
  echo "make-synthetic-report: no $build/libbertq_core.a; configure and build bertq in $build first" >&2
  exit 1
fi

# Built with the tests (target synthetic_report).
bin=$build/tests/synthetic_report
cmake --build "$build" --target synthetic_report >/dev/null
"$bin" "$@" >"$out"
echo "make-synthetic-report: wrote $out"
