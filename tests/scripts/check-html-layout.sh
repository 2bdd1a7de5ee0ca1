#!/usr/bin/env bash
# Checks that an HTML report fits a browser window's width: loads it in
# headless Chromium at WIDTH pixels (default 1400) and fails if the page
# scrolls sideways (its document is wider than the window) or if any box on
# it does (an element with overflow-x auto/scroll whose content is wider than
# it, e.g. a table in a scrolling box).
#
# Usage: tests/scripts/check-html-layout.sh [--width WIDTH] REPORT.html
# Exit status: 0 fits, 1 scrolls sideways, 2 usage or browser error.
# Prints the measured widths either way.
#
# The report has no script, so a harness page in a temporary folder loads it
# in an iframe of the window's size, measures it from JavaScript (the iframe
# is same-origin thanks to --allow-file-access-from-files) and writes the
# result into its own DOM, which --dump-dom prints.
# tests/html/check-layout-selftest.sh checks that this check fails on wide pages.
set -euo pipefail

usage() {
  echo "usage: $0 [--width WIDTH] REPORT.html" >&2
  exit 2
}
width=1400
html=""
while (($#)); do
  case "$1" in
    --width)
      (($# >= 2)) || usage
      width=$2
      shift 2
      ;;
    --width=*)
      width=${1#--width=}
      shift
      ;;
    -h | --help) usage ;;
    -*) usage ;;
    *)
      [[ -z "$html" ]] || usage
      html=$1
      shift
      ;;
  esac
done
[[ -n "$html" ]] || usage
if ! [[ "$width" =~ ^[0-9]+$ ]] || ((width < 200 || width > 10000)); then
  echo "check-html-layout: --width must be a number of pixels (200 to 10000), not $width" >&2
  exit 2
fi
if [[ ! -f "$html" ]]; then
  echo "check-html-layout: no such file: $html" >&2
  exit 2
fi

scripts=$(cd "$(dirname "$0")" && pwd)
if ! command -v chromium >/dev/null 2>&1; then
  "$scripts/install-deps.sh" --browser
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The report sits beside the harness, so the iframe's URL is a plain name.
cp "$html" "$work/report.html"
# The iframe is the window: WIDTH wide, its own vertical scrollbar included,
# as in a browser window that wide. The marker is assembled at run time so
# that the harness's own source (also in the dumped DOM) never matches.
cat >"$work/harness.html" <<EOF
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>layout check</title></head>
<body style="margin:0">
<pre id="result">no result: the report did not load</pre>
<iframe id="frame" src="report.html" style="display:block;border:0;width:${width}px;height:900px"></iframe>
<script>
document.getElementById('frame').addEventListener('load', function () {
  var out = document.getElementById('result');
  try {
    var doc = this.contentDocument, win = this.contentWindow, root = doc.documentElement;
    var lines = ['LAYOUT' + '-RESULT viewport=' + win.innerWidth + ' clientWidth=' + root.clientWidth +
                 ' scrollWidth=' + root.scrollWidth + ' bodyScrollWidth=' + (doc.body ? doc.body.scrollWidth : 0)];
    // Boxes that scroll sideways inside the page.
    var all = doc.body ? doc.body.getElementsByTagName('*') : [];
    var boxes = 0;
    for (var i = 0; i < all.length; i++) {
      var e = all[i];
      if (!(e instanceof win.HTMLElement)) continue;  // SVG content has no scroll box
      var ox = win.getComputedStyle(e).overflowX;
      if ((ox === 'auto' || ox === 'scroll') && e.scrollWidth > e.clientWidth + 1) {
        ++boxes;
        if (boxes <= 5)
          lines.push('LAYOUT' + '-BOX <' + e.tagName.toLowerCase() + (e.className ? ' class="' + e.className + '"' : '') +
                     '> clientWidth=' + e.clientWidth + ' scrollWidth=' + e.scrollWidth);
      }
    }
    lines.push('LAYOUT' + '-BOXES ' + boxes);
    out.textContent = lines.join('\n');
  } catch (err) {
    out.textContent = 'LAYOUT' + '-ERROR ' + err;
  }
});
</script>
</body></html>
EOF

log=$work/chromium.log
status=0
timeout 120 chromium \
  --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" --allow-file-access-from-files \
  --window-size="$((width + 100)),1000" --virtual-time-budget=5000 \
  --dump-dom "file://$work/harness.html" >"$work/dom.html" 2>"$log" || status=$?

result=$(grep -o 'LAYOUT-RESULT [^<]*' "$work/dom.html" | head -n 1 || true)
if [[ -z "$result" ]]; then
  echo "check-html-layout: no measurement of $html (Chromium exit status $status)" >&2
  grep -o 'LAYOUT-ERROR [^<]*' "$work/dom.html" >&2 || true
  tail -n 20 "$log" >&2 || true
  exit 2
fi
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$result"; }
viewport=$(field viewport)
client=$(field clientWidth)
scroll=$(field scrollWidth)
boxes=$(grep -o 'LAYOUT-BOXES [0-9]*' "$work/dom.html" | head -n 1 | cut -d' ' -f2)
boxes=${boxes:-0}

echo "check-html-layout: $html at ${width} px: window ${viewport} px, document clientWidth ${client} px, scrollWidth ${scroll} px, ${boxes} box(es) scrolling sideways"
grep -o 'LAYOUT-BOX .*scrollWidth=[0-9]*' "$work/dom.html" |
  sed 's/^LAYOUT-BOX /  scrolls sideways: /; s/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&amp;/\&/g' || true

failed=0
if ((scroll > client)); then
  echo "check-html-layout: FAIL: the page scrolls sideways: its document is $((scroll - client)) px wider than the window" >&2
  failed=1
fi
if ((boxes > 0)); then
  echo "check-html-layout: FAIL: $boxes box(es) on the page scroll sideways" >&2
  failed=1
fi
if ((failed == 0)); then
  echo "check-html-layout: ok: fits ${width} px"
fi
exit "$failed"
