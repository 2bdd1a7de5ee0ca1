#!/usr/bin/env bash
# Checks tests/scripts/check-html-layout.sh itself: it must pass a page that
# fits and fail a page wider than the window and a page with a box that
# scrolls sideways, at 1400 and at 1000 px.
# Usage: tests/html/check-layout-selftest.sh
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
check=$here/../scripts/check-html-layout.sh
failures=0
expect() {  # expect STATUS WIDTH PAGE
  local want=$1 width=$2 page=$3 got=0
  "$check" --width "$width" "$here/$page" >/dev/null 2>&1 || got=$?
  if ((got == want)); then
    echo "ok: $page at $width px: exit status $got"
  else
    echo "FAIL: $page at $width px: exit status $got, expected $want" >&2
    failures=$((failures + 1))
  fi
}
for width in 1400 1000; do
  expect 0 "$width" fits.html
  expect 1 "$width" too-wide.html
  expect 1 "$width" inner-scroll.html
done
expect 2 1400 no-such-page.html
if ((failures)); then
  echo "check-layout-selftest: $failures failure(s)" >&2
  exit 1
fi
echo "check-layout-selftest: all passed"
