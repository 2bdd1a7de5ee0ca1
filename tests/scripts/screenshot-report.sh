#!/usr/bin/env bash
# Screenshots an HTML report with headless Chromium, to check its layout.
# Usage: tests/scripts/screenshot-report.sh REPORT.html OUT.png [WIDTH [HEIGHT]]
# The window is WIDTH x HEIGHT pixels (default 1400 x 2400); the screenshot
# shows the top HEIGHT pixels of the page. check-html-layout.sh checks that
# the page does not scroll sideways at a width.
# Installs Debian's chromium first if missing (tests/scripts/install-deps.sh --browser).
set -euo pipefail

if (($# < 2 || $# > 4)); then
  echo "usage: $0 REPORT.html OUT.png [WIDTH [HEIGHT]]" >&2
  exit 2
fi
html=$1
png=$2
width=${3:-1400}
height=${4:-2400}
for n in "$width" "$height"; do
  if ! [[ "$n" =~ ^[0-9]+$ ]] || ((n < 200 || n > 20000)); then
    echo "screenshot-report: WIDTH and HEIGHT are pixels (200 to 20000), not $n" >&2
    exit 2
  fi
done
if [[ ! -f "$html" ]]; then
  echo "screenshot-report: no such file: $html" >&2
  exit 1
fi
# Chromium needs absolute paths: a file:// URL, and an output path that does
# not depend on its working directory.
html_abs=$(realpath "$html")
png_abs=$(realpath -m "$png")
mkdir -p "$(dirname "$png_abs")"

scripts=$(cd "$(dirname "$0")" && pwd)
if ! command -v chromium >/dev/null 2>&1; then
  "$scripts/install-deps.sh" --browser
fi

# A throwaway profile, so runs neither share state nor touch ~/.config.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
profile=$work/profile
log=$work/chromium.log
# A stale PNG must not pass for a new one.
rm -f "$png_abs"

# Running as root needs --no-sandbox; the rest keeps Chromium offline and quiet.
# `timeout` guards against a headless browser that never exits.
status=0
timeout 120 chromium \
  --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size="$width,$height" \
  --screenshot="$png_abs" "file://$html_abs" >"$log" 2>&1 || status=$?

if [[ ! -s "$png_abs" ]]; then
  echo "screenshot-report: Chromium produced no screenshot at $png_abs (exit status $status); its output:" >&2
  tail -n 20 "$log" >&2 || true
  exit 1
fi
echo "screenshot-report: wrote $png_abs (${width} x ${height})"
