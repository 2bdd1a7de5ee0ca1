#!/usr/bin/env bash
# Fails if a C++ file is not formatted as .clang-format says; with --fix,
# formats them. CI runs the check (Debian 12's clang-format 14; another
# version may format differently, so the check is done with that one).
# Usage: tests/scripts/check-format.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v clang-format >/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends clang-format
fi
# Formatting differs between clang-format versions; the tree is kept in
# Debian 12's (14). Elsewhere (Debian 13 ships 19) this says so and checks nothing.
major=$(clang-format --version | grep -oE 'version [0-9]+' | grep -oE '[0-9]+')
if [[ "$major" != 14 && "${1:-}" != "--fix" ]]; then
  echo "check-format: clang-format $major here; the tree's format is clang-format 14's (Debian 12), not checked"
  exit 0
fi
mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.hpp' | grep -v '^lib/text/unicode_tables')
if [[ "${1:-}" == "--fix" ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  if ! diff -q <(clang-format --style=file --assume-filename="$f" < "$f") "$f" >/dev/null; then
    echo "check-format: $f is not formatted (tests/scripts/check-format.sh --fix formats it)"
    bad=$((bad + 1))
  fi
done
if ((bad)); then
  echo "check-format: $bad of ${#files[@]} files need formatting" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
