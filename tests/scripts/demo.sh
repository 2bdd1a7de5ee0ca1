#!/usr/bin/env bash
# Installs, builds, and quantizes the bundled tiny BERT with the default qconfig
# (per_channel_dynamic for the whole model), printing bertq's summary.
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/scripts/install-deps.sh
tests/scripts/build.sh
out=$(mktemp -d)/tiny_bert_quantized.pt
build/bertq convert testdata/models/tiny_bert.pt "$out"
echo "wrote $out"
