#!/usr/bin/env bash
# The HTML report in a real browser: headless Chromium at 1400 and 1000 px,
# for a made-up BERT-base report (74 quantized modules; also a dry run, a
# failed guard, and hostile strings) and a real tiny_bert conversion. Fails if
# any page scrolls sideways, and first checks that the check itself fails on
# pages that do (check-layout-selftest.sh).
# Usage: tests/html/run-layout-tests.sh SYNTHETIC_REPORT_BINARY BERTQ_BINARY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
synthetic=$1
bertq=$2
if ! command -v chromium >/dev/null; then
  echo "run-layout-tests: chromium is not installed (tests/scripts/install-deps.sh --browser)" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/check-layout-selftest.sh"
"$synthetic" >"$tmp/bert_base.html"
"$synthetic" --dry-run >"$tmp/bert_base_dry.html"
"$synthetic" --fail >"$tmp/bert_base_fail.html"
"$synthetic" --long >"$tmp/bert_base_long.html"
"$bertq" convert "$source_dir/testdata/models/tiny_bert.pt" "$tmp/q.pt" --qconfig \
  "$source_dir/testdata/qconfigs/bert_nested.json" --html "$tmp/tiny_bert.html" >/dev/null
for page in bert_base bert_base_dry bert_base_fail bert_base_long tiny_bert; do
  for width in 1400 1000; do
    "$source_dir/tests/scripts/check-html-layout.sh" --width "$width" "$tmp/$page.html"
  done
done
